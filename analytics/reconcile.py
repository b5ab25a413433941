"""Billing reconciliation (docs/metrics.md §10): what Anthropic billed against what the logs saw.

The bill comes in as plain rows — `BilledUsage` (the usage report) and `BilledCost` (the cost report), read by
the shell (`fallbackscope.adminapi`). `compare` sets them beside the charged attempts of surface `anthropic`,
per UTC day × normalised model × token type (web searches per day), and returns the rows of table
`reconciliation` and of `reconciliation_apart` (what the bill holds but is not compared). Everything else
reads the stored table: `token_gaps` (each row with its coverage and its part of the gap — the one home of the
split), `model_days`, `coverage_by_day`, `gap_by_model`, `apart_items` and `period_summary` (the weekly
report's `reconciliation`).

The split of a day × model: gap = billed USD − computed USD = explained + price gap, where explained =
billed USD × (1 − coverage) (coverage weighted by billed USD across token types) and the price gap is the
rest; per token type, price gap = billed USD × the type's coverage − computed USD, so the types' parts add up
to the model's and the type carrying the most of it can be named.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd

from analytics.common import clean, fetch_df, money, money_sum_sql
from fallbackscope.core.modelnames import normalise_model
from fallbackscope.core.periods import Period, day_sql
from fallbackscope.core.prices import PRICE_JOIN, install_price_rows, not_charged_sql, token_term_sql
from fallbackscope.core.store import has_table

#: The token types of the bill, in the order tables show them, each with the attempt column that holds it.
TOKEN_COLUMNS: dict[str, str] = {
    "uncached_input": "input_tokens", "output": "output_tokens", "cache_read": "cache_read_tokens",
    "cache_write_5m": "cache_write_5m_tokens", "cache_write_1h": "cache_write_1h_tokens",
}
#: Web searches: compared per day (the cost report names no model for them); their rows have model NULL.
WEB_SEARCH = "web_search"
#: The order rows are shown in: the bill's token types, then web searches.
TYPE_ORDER = [*TOKEN_COLUMNS, WEB_SEARCH]
#: Priority Tier usage has no line in the cost report: listed apart, never compared.
PRIORITY = "priority"
#: Every reconciled day.
WHOLE = Period()
#: A part of a gap smaller than this (USD) names no token type: it is rounding, not a price.
NEGLIGIBLE_USD = 1e-6

ROW_COLUMNS = ["day", "model", "token_type", "billed", "logged", "billed_usd", "computed_usd"]
APART_COLUMNS = ["day", "kind", "model", "token_type", "description", "billed", "logged", "billed_usd"]


@dataclass(frozen=True)
class BilledUsage:
    """One result of the usage report: a UTC day, the model as billed, its service tier (`standard`, `batch`,
    `priority`), the tokens of each type and the web searches."""

    day: dt.date
    model: str | None
    service_tier: str | None
    uncached_input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write_5m: int = 0
    cache_write_1h: int = 0
    web_search: int = 0


@dataclass(frozen=True)
class BilledCost:
    """One result of the cost report: a UTC day, its cost type (`tokens`, `web_search`, `code_execution`, …), the
    amount in USD, and for token costs the model and our token type (None when the report's `raw_token_type` is
    not one of ours); its description as the report gives it."""

    day: dt.date
    cost_type: str | None
    usd: Decimal
    model: str | None = None
    token_type: str | None = None
    raw_token_type: str | None = None
    service_tier: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class Bill:
    """What the Admin API billed over the UTC days [since, until), for the organisation or one workspace."""

    since: dt.date
    until: dt.date
    usage: tuple[BilledUsage, ...] = ()
    costs: tuple[BilledCost, ...] = ()
    workspace_id: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The rows `compare` found: `rows` for table `reconciliation` (ROW_COLUMNS), `apart` for
    `reconciliation_apart` (APART_COLUMNS)."""

    rows: pd.DataFrame
    apart: pd.DataFrame


# ---------------------------------------------------------------- the bill beside the logs


def compare(con: duckdb.DuckDBPyConnection, bill: Bill) -> Comparison:
    """Return the bill set beside the logged attempts of its days: one row per day × normalised model × token
    type (web searches per day), billed and logged tokens, billed and computed USD, and the items listed apart.

    Models are normalised with the aliases of the price table in force, which also prices the logged tokens
    (`fallbackscope.core.prices.token_term_sql`, the one price definition). Logged = attempts of surface
    `anthropic` that are charged (`not_charged_sql`), priority tier apart. `billed` is NULL where the usage
    report has no row for the model that day, `billed_usd` where the cost report has none; `computed_usd` is
    NULL where a logged token has no price (an unpriced model, fast mode without fast prices).
    """
    table = install_price_rows(con)
    billed, apart = _billed(bill, table.aliases)
    logged = _logged(con, bill.since, bill.until, table.web_search_usd)
    rows = _rows(billed, logged)
    apart = _priority_apart(apart, billed, logged)
    return Comparison(rows, apart)


def _billed(bill: Bill, aliases: dict[str, str]) -> tuple[dict[tuple, list], list[dict[str, Any]]]:
    """Return {(day, model, token_type, priority): [tokens, usd]} of the bill's days, and the items listed
    apart that are not priority-tier tokens (usage without a model, costs the comparison cannot place)."""
    out: dict[tuple, list] = defaultdict(lambda: [None, None])
    apart: dict[tuple, list] = defaultdict(lambda: [None, None])

    def add(to: dict[tuple, list], key: tuple, index: int, value: int | Decimal) -> None:
        cell = to[key]
        cell[index] = (cell[index] or 0) + value

    for u in bill.usage:
        if not bill.since <= u.day < bill.until:
            continue
        model = normalise_model(u.model, aliases)
        tier = u.service_tier == PRIORITY
        for token_type in TOKEN_COLUMNS:
            if model is None:  # nothing to set it beside (model NULL is the web searches' row)
                add(apart, (u.day, "no_model", None, token_type, None), 0, int(getattr(u, token_type)))
            else:
                add(out, (u.day, model, token_type, tier), 0, int(getattr(u, token_type)))
        add(out, (u.day, None, WEB_SEARCH, False), 0, int(u.web_search))
    for c in bill.costs:
        if not bill.since <= c.day < bill.until:
            continue
        model = normalise_model(c.model, aliases)
        if c.cost_type == "tokens" and c.token_type in TOKEN_COLUMNS and model and c.service_tier != PRIORITY:
            add(out, (c.day, model, c.token_type, False), 1, c.usd)
        elif c.cost_type == WEB_SEARCH:
            add(out, (c.day, None, WEB_SEARCH, False), 1, c.usd)
        else:  # code execution, session runtime, a token type or tier the comparison cannot place
            key = (c.day, c.cost_type or "unknown", model, c.raw_token_type or c.token_type, c.description)
            add(apart, key, 1, c.usd)
    items = [{"day": day, "kind": kind, "model": model, "token_type": token_type, "description": text,
              "billed": tokens, "logged": None, "billed_usd": None if usd is None else float(usd)}
             for (day, kind, model, token_type, text), (tokens, usd) in apart.items() if tokens or usd is not None]
    return out, items


def _logged_sql() -> str:
    """Return SQL: per UTC day number × model × priority, the charged attempts' tokens of each type, their
    computed USD and how many of them had tokens without a price, and their web searches."""
    parts = []
    for token_type, column in TOKEN_COLUMNS.items():
        term = token_term_sql("a", "p", column)
        parts += [f"sum(a.{column}) AS {token_type}",
                  f"{money_sum_sql(term)} AS usd_{token_type}",
                  f"count(*) FILTER (WHERE {term} IS NULL) AS unpriced_{token_type}"]
    return (f"SELECT {day_sql('a.ts')} AS dayn, a.model AS model,"
            f" coalesce(a.service_tier = '{PRIORITY}', false) AS priority, {', '.join(parts)},"
            f" sum(coalesce(a.web_search_requests, 0)) AS {WEB_SEARCH}"
            f" FROM attempts a {PRICE_JOIN.format(a='a')}"
            f" WHERE a.surface = 'anthropic' AND a.model IS NOT NULL AND a.ts >= ? AND a.ts < ?"
            f" AND NOT {not_charged_sql('a')} GROUP BY ALL")


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), dt.UTC)


def _logged(con: duckdb.DuckDBPyConnection, since: dt.date, until: dt.date,
            web_search_usd: float) -> dict[tuple, list]:
    """Return {(day, model, token_type, priority): [tokens, computed USD or None when unpriced]}."""
    frame = fetch_df(con, _logged_sql(), [_midnight(since), _midnight(until)])
    out: dict[tuple, list] = defaultdict(lambda: [0, 0.0])
    epoch = dt.date(1970, 1, 1)
    for row in frame.to_dict("records"):
        day, priority = epoch + dt.timedelta(days=int(row["dayn"])), bool(row["priority"])
        for token_type in TOKEN_COLUMNS:
            cell = out[(day, row["model"], token_type, priority)]
            cell[0] += int(row[token_type])
            usd = None if int(row[f"unpriced_{token_type}"]) else float(clean(row[f"usd_{token_type}"]) or 0.0)
            cell[1] = None if usd is None or cell[1] is None else cell[1] + usd
        searches = int(row[WEB_SEARCH])
        cell = out[(day, None, WEB_SEARCH, False)]
        cell[0] += searches
        cell[1] += searches * web_search_usd
    return out


def _rows(billed: dict[tuple, list], logged: dict[tuple, list]) -> pd.DataFrame:
    """Return the reconciliation rows: standard and batch tiers, one per key that holds anything."""
    rows = []
    for key in sorted({k for k in (*billed, *logged) if not k[3]}, key=_order):
        day, model, token_type, _ = key
        tokens, usd = billed.get(key, [None, None])
        seen, computed = logged.get(key, [0, 0.0])
        if not tokens and not usd and not seen:
            continue
        rows.append({"day": day, "model": model, "token_type": token_type, "billed": tokens, "logged": seen,
                     "billed_usd": None if usd is None else float(usd), "computed_usd": computed})
    return pd.DataFrame(rows, columns=ROW_COLUMNS).astype({"billed": "Int64", "logged": "int64"})


def _order(key: tuple) -> tuple:
    day, model, token_type, priority = key
    return day, model is None, model or "", TYPE_ORDER.index(token_type), priority


def _priority_apart(items: list[dict[str, Any]], billed: dict[tuple, list],
                    logged: dict[tuple, list]) -> pd.DataFrame:
    """Return the items listed apart: the cost items not compared and priority-tier tokens (billed and logged)."""
    for key in sorted({k for k in (*billed, *logged) if k[3]}, key=_order):
        day, model, token_type, _ = key
        tokens = (billed.get(key) or [None])[0]
        seen = (logged.get(key) or [0])[0]
        if tokens or seen:
            items.append({"day": day, "kind": "priority_tier", "model": model, "token_type": token_type,
                          "description": None, "billed": tokens, "logged": seen, "billed_usd": None})
    frame = pd.DataFrame(items, columns=APART_COLUMNS).astype({"billed": "Int64", "logged": "Int64"})
    return frame.sort_values(["day", "kind", "model", "token_type"], na_position="last").reset_index(drop=True)


# ---------------------------------------------------------------- reading the stored table


def has_reconciliation(con: duckdb.DuckDBPyConnection) -> bool:
    """Return whether the database has the `reconciliation` table (a schema from before §10 has not)."""
    return has_table(con, "reconciliation")


def day_bounds(period: Period) -> tuple[str, list[Any]]:
    """Return (SQL condition on DATE column `day`, parameters): the UTC days whose midnight lies in the period."""
    parts, params = [], []
    if period.since is not None:
        since = period.since.astimezone(dt.UTC)
        first = since.date() + dt.timedelta(days=1 if since.time() != dt.time() else 0)
        parts.append("day >= ?")
        params.append(first)
    if period.until is not None:
        until = period.until.astimezone(dt.UTC)
        last = until.date() + dt.timedelta(days=1 if until.time() != dt.time() else 0)
        parts.append("day < ?")
        params.append(last)
    return (" AND ".join(parts) or "TRUE"), params


def _gaps_sql(where: str) -> str:
    """Return SQL: the stored rows of the days in `where`, each with its coverage (logged ÷ billed, NULL without
    billed tokens), `unbilled` (logged where nothing was billed), and its part of its day × model's split.

    cov = the row's coverage, else its day × model's (coverage weighted by billed USD over its rows that have
    one), else 1; `explained_usd` = billed USD × (1 − cov); `price_gap_usd` = billed USD × cov − computed USD
    (NULL when unpriced); `weight_usd` / `seen_usd` = billed USD and billed USD × coverage of the rows that
    have a coverage: any level's coverage is Σ seen ÷ Σ weight.
    """
    return f"""
        WITH r AS (
            SELECT day, model, token_type, billed, logged, billed_usd, computed_usd,
                   CASE WHEN billed > 0 THEN logged / billed::DOUBLE END AS coverage
            FROM reconciliation WHERE {where}),
        w AS (
            SELECT day, model, sum(billed_usd * coverage) / nullif(sum(billed_usd), 0) AS model_coverage
            FROM r WHERE coverage IS NOT NULL GROUP BY day, model),
        c AS (
            SELECT r.*, w.model_coverage, coalesce(r.billed_usd, 0) AS usd,
                   coalesce(r.coverage, w.model_coverage, 1) AS cov
            FROM r LEFT JOIN w ON r.day = w.day AND r.model IS NOT DISTINCT FROM w.model)
        SELECT day, model, token_type, billed, logged, billed_usd, computed_usd, coverage, model_coverage,
               CASE WHEN coalesce(billed, 0) = 0 THEN logged ELSE 0 END AS unbilled,
               usd * (1 - cov) AS explained_usd,
               usd * cov - computed_usd AS price_gap_usd,
               CASE WHEN coverage IS NOT NULL THEN usd ELSE 0 END AS weight_usd,
               CASE WHEN coverage IS NOT NULL THEN usd * coverage ELSE 0 END AS seen_usd
        FROM c"""


def token_gaps(con: duckdb.DuckDBPyConnection, period: Period = WHOLE) -> pd.DataFrame:
    """Return the stored reconciliation rows of a period's days with their split: day, model (None: web search),
    token_type, billed, logged, billed_usd, computed_usd, coverage, model_coverage, unbilled, explained_usd,
    price_gap_usd, weight_usd, seen_usd (see `_gaps_sql`)."""
    where, params = day_bounds(period)
    return fetch_df(con, _gaps_sql(where) + " ORDER BY day, model NULLS LAST, list_position(?, token_type)",
                    [*params, TYPE_ORDER])


def _rollup_sql(where: str, keys: Sequence[str]) -> str:
    """Return SQL summing the split of `_gaps_sql` to `keys` (a subset of day, model): billed_usd, computed_usd
    and price_gap_usd (NULL when any part is unpriced), coverage, explained_usd, unbilled tokens, unpriced
    (bool), the token type carrying the most of the price gap, and seen_usd / weight_usd (coverage's sums)."""
    group = ", ".join(keys)
    return f"""
        WITH g AS ({_gaps_sql(where)}),
        t AS (
            SELECT {group}, token_type, sum(billed_usd) AS billed_usd, sum(computed_usd) AS computed_usd,
                   bool_or(computed_usd IS NULL) AS unpriced, sum(price_gap_usd) AS price_gap_usd,
                   sum(explained_usd) AS explained_usd, sum(weight_usd) AS weight_usd,
                   sum(seen_usd) AS seen_usd, sum(unbilled) AS unbilled
            FROM g GROUP BY {group}, token_type)
        SELECT {group}, sum(billed_usd) AS billed_usd,
               CASE WHEN bool_or(unpriced) THEN NULL ELSE sum(computed_usd) END AS computed_usd,
               sum(seen_usd) / nullif(sum(weight_usd), 0) AS coverage,
               sum(explained_usd) AS explained_usd,
               CASE WHEN bool_or(unpriced) THEN NULL ELSE sum(price_gap_usd) END AS price_gap_usd,
               CASE WHEN bool_or(unpriced) THEN NULL ELSE arg_max(token_type, abs(price_gap_usd))
                    FILTER (WHERE abs(price_gap_usd) >= {NEGLIGIBLE_USD}) END AS gap_token_type,
               sum(unbilled)::BIGINT AS unbilled, bool_or(unpriced) AS unpriced,
               sum(seen_usd) AS seen_usd, sum(weight_usd) AS weight_usd
        FROM t GROUP BY {group}"""


def model_days(con: duckdb.DuckDBPyConnection, period: Period = WHOLE) -> pd.DataFrame:
    """Return one row per reconciled day × model (model None: the day's web searches): billed_usd,
    computed_usd (None when unpriced), coverage, explained_usd (billed × (1 − coverage)), price_gap_usd (the
    rest; None when unpriced), gap_token_type (the token type carrying the most of the price gap), unbilled
    (logged tokens with nothing billed) and unpriced."""
    where, params = day_bounds(period)
    return fetch_df(con, _rollup_sql(where, ["day", "model"]) + " ORDER BY day, model NULLS LAST", params)


def gap_by_model(con: duckdb.DuckDBPyConnection, period: Period = WHOLE) -> pd.DataFrame:
    """Return one row per model (None: web searches) over a period's reconciled days, with the columns of
    `model_days` but `day`: the dashboard's gap by model."""
    where, params = day_bounds(period)
    return fetch_df(con, _rollup_sql(where, ["model"]) + " ORDER BY model NULLS LAST", params)


def coverage_by_day(con: duckdb.DuckDBPyConnection, period: Period = WHOLE) -> pd.DataFrame:
    """Return one row per reconciled day of a period: day, coverage (logged ÷ billed, weighted by billed USD
    over every model and token type), billed_usd, computed_usd and price_gap_usd (over the priced models),
    explained_usd, unbilled, unpriced_models, seen_usd and weight_usd — the dashboard's coverage by day."""
    where, params = day_bounds(period)
    return fetch_df(con, f"""
        SELECT day, sum(seen_usd) / nullif(sum(weight_usd), 0) AS coverage, sum(billed_usd) AS billed_usd,
               sum(computed_usd) AS computed_usd, sum(explained_usd) AS explained_usd,
               sum(price_gap_usd) AS price_gap_usd, sum(unbilled)::BIGINT AS unbilled,
               count(*) FILTER (WHERE unpriced)::BIGINT AS unpriced_models, sum(seen_usd) AS seen_usd,
               sum(weight_usd) AS weight_usd
        FROM ({_rollup_sql(where, ["day", "model"])}) GROUP BY day ORDER BY day""", params)


def apart_items(con: duckdb.DuckDBPyConnection, period: Period = WHOLE) -> pd.DataFrame:
    """Return what the bill of a period's days holds but reconciliation does not compare (APART_COLUMNS):
    priority-tier tokens, code execution and other non-token costs."""
    where, params = day_bounds(period)
    return fetch_df(con, f"SELECT {', '.join(APART_COLUMNS)} FROM reconciliation_apart WHERE {where}"
                         " ORDER BY day, kind, model NULLS LAST, token_type NULLS LAST", params)


@dataclass(frozen=True)
class ReconciliationSummary:
    """A period's reconciliation (the weekly report's `reconciliation`): `days` reconciled, `coverage` (logged ÷
    billed, weighted by billed USD), `billed_usd` (every compared line), `computed_usd`, `explained_usd` and
    `price_gap_usd` (over the priced models), `unpriced_models` (whose billed USD has no computed twin)."""

    days: int
    coverage: float | None
    billed_usd: float | None
    computed_usd: float | None
    explained_usd: float | None
    price_gap_usd: float | None
    unpriced_models: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return the report's `{days, coverage, billed_usd, computed_usd, explained_usd, price_gap_usd,
        unpriced_models}`."""
        return asdict(self) | {"unpriced_models": list(self.unpriced_models)}


def period_summary(con: duckdb.DuckDBPyConnection, period: Period) -> ReconciliationSummary | None:
    """Return the reconciliation of a period's days, None when none of them was reconciled."""
    if not has_reconciliation(con):
        return None
    days = coverage_by_day(con, period)
    if days.empty:
        return None
    models = gap_by_model(con, period)
    unpriced = tuple(sorted(str(m) for m in models.loc[models["unpriced"].astype(bool), "model"].dropna()))
    weight = float(days["weight_usd"].sum())
    coverage = float(days["seen_usd"].sum()) / weight if weight else None

    def total(column: str) -> float | None:
        return money(days[column].sum(min_count=1))

    return ReconciliationSummary(len(days), coverage, total("billed_usd"), total("computed_usd"),
                                 total("explained_usd"), total("price_gap_usd"), unpriced)
