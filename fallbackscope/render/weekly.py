"""Renderers of the weekly report (docs/metrics.md §7, §7.1): a WeeklyReport or its dict → json, csv, md or one
html file (`fallbackscope.render.html`), and the dispatch by format for one week or a backfill.

Compute first, render second: `fallbackscope.render.report` computes the report; these functions only lay it
out, the keys in the order `fallbackscope.render.model` defines. Their arithmetic is display arithmetic (sums
of a money column, a cost per chain, burn = rate / target).

Every name that comes from logs (workload, model, category, error class, session, …) is untrusted text:
html output passes every string through `html.escape`, markdown output backslash-escapes the markdown and
HTML metacharacters, csv output defuses spreadsheet formulas. The html file is self-contained: plotly.js is
inlined and a Content-Security-Policy forbids every fetch, so it opens offline and never calls out.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from analytics.common import money
from analytics.metrics import blended_cost_per_request
from fallbackscope.render.display import (
    COST_HEADER,
    WORKLOAD_HEADER,
    Report,
    as_mapping,
    billing_line,
    cost_rows,
    coverage_text,
    date_text,
    drift_line,
    entries,
    ordered,
    part,
    plain,
    previous_rate,
    rate_line,
    rate_value,
    section_rows,
    slo_line,
    slo_missed,
    total_of,
    totals_line,
    warning_lines,
    workload_rows,
)
from fallbackscope.render.html import render_html, render_html_many

if TYPE_CHECKING:  # pandas only for the hint: rendering needs no pandas import
    import pandas as pd

__all__ = ["CSV_CATEGORY_COLUMNS", "CSV_COLUMNS", "FORMATS", "Format", "md_escape", "render", "render_csv",
           "render_html", "render_json", "render_many", "render_md", "report_filename", "slo_missed"]

Format = Literal["json", "csv", "md", "html"]
FORMATS: tuple[str, ...] = ("json", "csv", "md", "html")


# ---------------------------------------------------------------- json


def render_json(report: Report) -> str:
    """Return the report as JSON text: §7.1 keys in contract order (extras after), 2-space indent, floats
    as computed (NaN → null), UTF-8 text unescaped, one trailing newline."""
    return _json(ordered(report))


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------- csv

CSV_COLUMNS: tuple[str, ...] = (
    "week", "level", "workload", "attempts", "chains", "sessions", "refusal_rate", "session_refusal_rate",
    "slo", "slo_met", "fallback_rate", "escalation_rate", "unresolved_rate", "cost_usd",
    "blended_cost_per_request", "escalation_overhead_usd", "top_tier_counterfactual_usd", "unpriced_attempts")
CSV_CATEGORY_COLUMNS: tuple[str, ...] = ("week", "category", "refused_attempts", "share")


def _csv_cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_name(value: Any) -> str:
    """Return a name from logs that a spreadsheet shows as text, never runs as a formula."""
    text = _csv_cell(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(report: Report, by_category: bool) -> list[list[str]]:
    report = as_mapping(report)
    week = _csv_cell(report.get("week"))
    if by_category:
        return [[week, _csv_name(c.get("category") or "unspecified"), _csv_cell(c.get("refused_attempts")),
                 _csv_cell(c.get("share"))] for c in entries(report, "refusals_by_category")]
    if not rate_value(part(report, "totals").get("chains")):
        return []  # no data: the header only (the CLI says why on stderr)
    workloads = entries(report, "workloads")
    rows = [[week, "workload", _csv_name(w.get("workload")),
             *(_csv_cell(w.get(k)) for k in CSV_COLUMNS[3:])] for w in workloads]
    totals = part(report, "totals")
    met = [w.get("slo_met") for w in workloads if isinstance(w.get("slo_met"), bool)]
    total = {
        "attempts": totals.get("attempts"), "chains": totals.get("chains"), "sessions": totals.get("sessions"),
        "refusal_rate": rate_value(report.get("refusal_rate")),
        "session_refusal_rate": rate_value(report.get("session_refusal_rate")),
        "slo_met": (all(met) if met else None),
        # whole-week rates are shown only when the analytics computed them (never re-derived here)
        **{k: rate_value(report.get(k)) for k in ("fallback_rate", "escalation_rate", "unresolved_rate")},
        "cost_usd": totals.get("cost_usd"),
        "blended_cost_per_request": money(blended_cost_per_request(totals.get("cost_usd"), totals.get("chains"))),
        "escalation_overhead_usd": money(total_of([w.get("escalation_overhead_usd") for w in workloads])),
        "top_tier_counterfactual_usd": money(total_of([w.get("top_tier_counterfactual_usd") for w in workloads])),
        "unpriced_attempts": totals.get("unpriced_attempts"),
    }
    rows.append([week, "total", "", *(_csv_cell(total.get(k)) for k in CSV_COLUMNS[3:])])
    return rows


def _write_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def render_csv(report: Report, *, by_category: bool = False) -> str:
    """Return the report as CSV text with a header row.

    Default: one row per workload (`level` = `workload`) plus one `total` row for the whole week (columns
    `CSV_COLUMNS`). With `by_category`: the refusals-by-category table (`CSV_CATEGORY_COLUMNS`). Empty
    cells are nulls; booleans are `true`/`false`; floats as computed.
    """
    header = CSV_CATEGORY_COLUMNS if by_category else CSV_COLUMNS
    return _write_csv(header, _csv_rows(report, by_category))


# ---------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def md_escape(value: Any) -> str:
    """Return text that markdown shows literally: metacharacters backslash-escaped, line breaks as spaces."""
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", str(value)))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> list[str]:
    if not rows:
        return ["None this week.", ""]
    align = ["---" if i < numeric_from else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(map(md_escape, header)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def render_md(report: Report) -> str:
    """Return the report as Markdown (GitHub flavour) readable pasted into a chat or an email.

    Names from logs are escaped with `md_escape`, so markup in a workload name shows as text.
    """
    report = as_mapping(report)
    lines = [
        f"# Weekly refusal report — {md_escape(report.get('week'))}", "",
        f"{md_escape(date_text(report.get('start')))} to {md_escape(date_text(report.get('end')))} "
        f"(UTC, end exclusive) · {md_escape(totals_line(report))}"
        + (f" · {md_escape(coverage_text(report))}" if coverage_text(report) else ""), "",
        *[f"> **Warning:** {md_escape(w)}" for w in warning_lines(report)], *([""] if warning_lines(report) else []),
        f"- **Refusal rate (chains):** {md_escape(rate_line(report.get('refusal_rate'), 'chains'))}",
        f"- **Session refusal rate:** {md_escape(rate_line(report.get('session_refusal_rate'), 'sessions'))}",
        f"- **Previous week:** {md_escape(rate_line(previous_rate(report), 'chains'))}",
        f"- **Drift:** {md_escape(drift_line(report))}",
        f"- **SLO:** {md_escape(slo_line(report))}",
        *([f"- **Billing:** {md_escape(billing_line(report))}"] if billing_line(report) else []), "",
        "## Workloads and SLO", "", *_md_table(WORKLOAD_HEADER, workload_rows(report), 2),
        "## Cost", "", *_md_table(COST_HEADER, cost_rows(report)),
    ]
    for title, header, rows, numeric_from in section_rows(report):
        lines += [f"## {title}", "", *_md_table(header, rows, numeric_from)]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- several weeks (backfill)


def render(report: Report, fmt: str, *, daily: pd.DataFrame | None = None,
           by_category: bool = False) -> str:
    """Return `report` rendered in format `fmt` (one of FORMATS); raises ValueError for another format."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report, by_category=by_category)
    if fmt == "md":
        return render_md(report)
    if fmt == "html":
        return render_html(report, daily)
    raise _unknown(fmt)


def render_many(reports: Sequence[Report], fmt: str, *, daily: pd.DataFrame | None = None,
                by_category: bool = False) -> str:
    """Return several weekly reports (a backfill, oldest first) as one document in format `fmt`.

    json: an array of reports; csv: one header, the rows of every week (its `week` column tells them apart);
    md: the weeks one after another, separated by rules; html: one page with one plotly.js, a section per
    week and links to each. `daily` may span all the weeks.
    """
    if fmt == "json":
        return _json([ordered(r) for r in reports])
    if fmt == "csv":
        return _write_csv(CSV_CATEGORY_COLUMNS if by_category else CSV_COLUMNS,
                          [row for r in reports for row in _csv_rows(r, by_category)])
    if fmt == "md":
        return "\n---\n\n".join(render_md(r) for r in reports)
    if fmt == "html":
        return render_html_many(reports, daily)
    raise _unknown(fmt)


def _unknown(fmt: str) -> ValueError:
    return ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def report_filename(report: Report, fmt: str, stem: str = "weekly") -> str:
    """Return a file name for one week's report, e.g. `weekly-2026-W44.html` (for one file per week)."""
    week = re.sub(r"[^0-9A-Za-z-]", "_", str(as_mapping(report).get("week")))
    return f"{stem}-{week}.{fmt}"
