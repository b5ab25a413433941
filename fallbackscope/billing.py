"""The `reconcile` command's library (docs/metrics.md §10): read the bill (the Admin API, or saved pages), set it
beside the logs (`analytics.reconcile.compare`), replace the reconciled days in the database, and say what was
found.

The bill is read before the database is opened, and the database is held only for the comparison and its one
transaction (docs/metrics.md §2: writers wait up to `--lock-timeout` for the file, then give up in one sentence).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analytics import reconcile as rec
from analytics.common import clean
from fallbackscope.adminapi import (
    DEFAULT_API_URL,
    AdminClient,
    admin_key,
    bill_of,
    check_api_url,
    fetch_bill,
    pages_span,
    read_saved_pages,
)
from fallbackscope.core import store
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.core.periods import Period, to_utc

DAYS_BY_DEFAULT = 7


@dataclass(frozen=True)
class ReconcileResult:
    """What one `reconcile` run stored and found over the UTC days [since, until)."""

    since: dt.date
    until: dt.date
    workspace_id: str | None
    rows: int  # rows written to `reconciliation`
    model_days: pd.DataFrame  # analytics.reconcile.model_days
    unbilled: pd.DataFrame  # rows of token_gaps with logged tokens and nothing billed
    apart: pd.DataFrame  # analytics.reconcile.apart_items
    summary: rec.ReconciliationSummary | None
    warnings: tuple[str, ...] = field(default=())


def days_of(since: str | None, until: str | None, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """Return the UTC days [since, until) to reconcile: given as dates (an ISO week is its Monday); by default the
    7 complete UTC days before today. UsageError for a time that is not a UTC midnight, or since ≥ until."""
    end = _day(until, "until") or (today or dt.datetime.now(dt.UTC).date())
    start = _day(since, "since") or end - dt.timedelta(days=DAYS_BY_DEFAULT)
    if start >= end:
        raise UsageError("--since must be before --until (--until is exclusive).")
    return start, end


def _day(value: str | None, what: str) -> dt.date | None:
    moment = to_utc(value, what)
    if moment is None:
        return None
    if moment.time() != dt.time():
        raise UsageError(f"--{what} `{value}` is not a day: the bill comes in whole UTC days (write 2026-03-02).")
    return moment.date()


def saved_files(paths: Sequence[Path]) -> list[Path]:
    """Return the files of `--from-file`: each file as given, each folder's `*.json` files in name order."""
    out: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            out += sorted(p for p in path.glob("*.json") if p.is_file())
        else:
            out.append(path)
    if not out:
        raise UsageError("--from-file: no .json page in the folders given.")
    return out


def reconcile_bill(db_path: Path, *, since: str | None = None, until: str | None = None,
                   workspace_id: str | None = None, from_files: Sequence[Path] = (), api_url: str | None = None,
                   lock_timeout: float = 60.0, environ: Mapping[str, str] | None = None,
                   today: dt.date | None = None) -> ReconcileResult:
    """Read the bill of the UTC days [since, until) — from the Admin API, or from saved report pages (whose days
    are the default then) — compare it with the logged attempts, replace those days' rows of `reconciliation`
    and `reconciliation_apart`, and return what was found. Raises FallbackscopeError (one sentence) on a
    failure of the API, the pages or the database."""
    db_path = Path(db_path)
    if not db_path.exists():
        raise FallbackscopeError(f"{db_path}: no such database; load logs first with `fallbackscope ingest`.")
    warnings: list[str] = []
    if from_files:
        usage, costs = read_saved_pages(saved_files(from_files))
        span = pages_span(usage, costs)
        if since is None and until is None and span is not None:
            first, end = span
        else:
            first, end = days_of(since, until, today)
        warnings += [f"--from-file: no {name} page among the files; its side of the bill is empty."
                     for name, pages in (("usage report", usage), ("cost report", costs)) if not pages]
        bill = bill_of(usage, costs, first, end, workspace_id)
    else:
        base = check_api_url(api_url or DEFAULT_API_URL)
        first, end = days_of(since, until, today)
        client = AdminClient(admin_key(dict(os.environ if environ is None else environ)), base)
        try:
            bill = fetch_bill(client, first, end, workspace_id)
        finally:
            client.close()
    return store_bill(db_path, bill, lock_timeout, warnings)


def store_bill(db_path: Path, bill: rec.Bill, lock_timeout: float = 60.0,
               warnings: Sequence[str] = ()) -> ReconcileResult:
    """Compare a bill with the logs and replace its days in one transaction (waiting up to `lock_timeout` s for
    the file); return the result read back from the table."""
    fetched_at = dt.datetime.now(dt.UTC)
    con = store.connect(db_path, wait_seconds=lock_timeout)
    try:
        found = rec.compare(con, bill)
        bounds = [bill.since, bill.until]
        con.execute("BEGIN TRANSACTION")
        try:
            for table in ("reconciliation", "reconciliation_apart"):
                con.execute(f"DELETE FROM {table} WHERE day >= ? AND day < ?", bounds)
            _insert(con, "reconciliation", found.rows, rec.ROW_COLUMNS, fetched_at, bill.workspace_id)
            _insert(con, "reconciliation_apart", found.apart, rec.APART_COLUMNS, fetched_at, bill.workspace_id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        period = Period(*(dt.datetime.combine(d, dt.time(), dt.UTC) for d in (bill.since, bill.until)))
        gaps = rec.token_gaps(con, period)
        result = ReconcileResult(
            since=bill.since, until=bill.until, workspace_id=bill.workspace_id, rows=len(found.rows),
            model_days=rec.model_days(con, period), unbilled=gaps[gaps["unbilled"] > 0].reset_index(drop=True),
            apart=rec.apart_items(con, period), summary=rec.period_summary(con, period))
    finally:
        con.close()
    unpriced = result.summary.unpriced_models if result.summary else ()
    found_warnings = [*warnings] + ([
        "no price for " + ", ".join(unpriced) + ": their computed cost and price gap are unknown (add them to a "
        "price table: `fallbackscope ingest --prices FILE`)."] if unpriced else [])
    return dataclasses.replace(result, warnings=tuple(found_warnings))


def _insert(con: Any, table: str, frame: pd.DataFrame, columns: Sequence[str], fetched_at: dt.datetime,
            workspace_id: str | None) -> None:
    if frame.empty:
        return
    rows = frame[list(columns)].astype(object).where(frame[list(columns)].notna(), None).values.tolist()
    marks = ", ".join("?" for _ in range(len(columns) + 2))
    con.executemany(f"INSERT INTO {table} ({', '.join(columns)}, fetched_at, workspace_id) VALUES ({marks})",
                    [[*row, fetched_at, workspace_id] for row in rows])


# ---------------------------------------------------------------- the summary printed


def _usd(value: Any) -> str:
    if value is None:
        return "—"
    return f"-${-value:,.2f}" if value < -0.005 else f"${abs(value):,.2f}"


def _pct(value: Any) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    return ["  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths,
                                                                                                     strict=True)))
            .rstrip() for r in [header, *rows]]


def summary_text(result: ReconcileResult) -> str:
    """Return the summary `reconcile` prints: per day × model billed and computed USD, coverage, the gap split into
    what coverage explains and the price gap with the token type carrying it; then unbilled usage, the items
    listed apart and the totals."""
    scope = f"workspace {result.workspace_id}" if result.workspace_id else "the organisation"
    days = (result.until - result.since).days
    lines = [f"Reconciled {result.since} – {result.until - dt.timedelta(days=1)} ({days} UTC days, {scope}): "
             f"{result.rows} rows in table reconciliation."]
    header = ["day", "model", "billed", "computed", "coverage", "explained", "price gap", "carried by"]
    rows = []
    for r in _records(result.model_days):
        unpriced = bool(r["unpriced"])
        rows.append([str(r["day"])[:10], r["model"] if r["model"] is not None else "web search",
                     _usd(r["billed_usd"]), "unpriced" if unpriced else _usd(r["computed_usd"]),
                     _pct(r["coverage"]), _usd(r["explained_usd"]),
                     "—" if unpriced else _usd(r["price_gap_usd"]), r["gap_token_type"] or ""])
    lines += _table(header, rows) if rows else ["nothing billed and nothing logged on these days."]
    for r in _records(result.unbilled):
        what = "web searches" if r["token_type"] == rec.WEB_SEARCH else f"{r['token_type']} tokens"
        lines.append(f"unbilled: {str(r['day'])[:10]} {r['model'] or 'all models'}: {int(r['logged']):,} {what} "
                     "logged, none billed.")
    for r in _records(result.apart):
        if r["kind"] == "priority_tier":
            lines.append(f"apart (priority tier): {str(r['day'])[:10]} {r['model']} {r['token_type']}: "
                         f"{_count(r['billed'])} billed, {_count(r['logged'])} logged tokens.")
        else:
            lines.append(f"apart ({r['kind']}): {str(r['day'])[:10]} {r['description'] or r['model'] or ''}: "
                         f"{_usd(r['billed_usd'])}.")
    s = result.summary
    if s is not None:
        lines.append(f"total: billed {_usd(s.billed_usd)}, computed {_usd(s.computed_usd)}, coverage "
                     f"{_pct(s.coverage)}, explained by coverage {_usd(s.explained_usd)}, price gap "
                     f"{_usd(s.price_gap_usd)}.")
    return "\n".join(lines)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: clean(v) for k, v in r.items()} for r in frame.to_dict("records")]


def _count(value: Any) -> str:
    return "—" if value is None else f"{int(value):,}"
