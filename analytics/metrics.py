"""The metric registry: every metric's name → definition, numerator, denominator and SQL (docs/metrics.md §6).

One place says what each number means. `REGISTRY[name].sql` is the metric's definition as one query over
`chains` (one row per chain, `CHAINS_SQL`), `sessions` (`SESSIONS_SQL`) or `attempts`: run it with
`metric_sql` and it returns `numerator, denominator`. The CLI's `metrics` table, the weekly report and the
dashboard compute the same numbers faster from `analytics.facts` (a few cubes instead of a pass over every
chain); `tests/analytics/test_metrics_registry.py` checks that both give the same counts.

The derived verdicts used wherever a number is shown — an SLO met, its burn rate, a blended cost per
request — are the small functions at the end: the report, the metrics table and the dashboard call them.
This module imports neither pandas nor DuckDB, so a renderer can use it cheaply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from fallbackscope.core.outcomes import success_sql
from fallbackscope.core.periods import day_sql

Level = Literal["chain", "session", "attempt", "credit"]

#: One row per chain of the analysed period (chains whose first attempt is in it; `{period}` is its SQL
#: condition on `ts`): the chain-level facts every chain metric counts. A chain belongs to the day of its
#: first attempt (`attempt_index = 1`).
CHAINS_SQL = f"""
    WITH firsts AS (
        SELECT chain_id, ts, {day_sql('ts')} AS day, workload, session_id, model AS first_model,
            coalesce("trigger" = 'pinned', false) AS pinned
        FROM attempts WHERE attempt_index = 1 AND {{period}}
    ), a AS (
        SELECT a.chain_id, a.attempt_index, a.model, a.outcome, {success_sql('a')} AS success,
            lag(a.model) OVER (PARTITION BY a.chain_id ORDER BY a.attempt_index) AS previous_model
        FROM attempts a JOIN firsts f USING (chain_id)
    ), per AS (
        SELECT chain_id, count(*) AS attempts,
            bool_or(outcome = 'refusal') AS refused,
            bool_or(success) AS resolved,
            arg_min(model, attempt_index) FILTER (WHERE success) AS resolver_model,
            bool_or(previous_model IS NOT NULL AND model = previous_model) AS retried
        FROM a GROUP BY chain_id
    )
    SELECT f.chain_id, f.day, f.workload, f.session_id, f.first_model, f.pinned, p.attempts, p.refused,
        p.resolved, p.resolver_model, p.retried,
        coalesce(bool_or(x.model <> f.first_model), false) AS escalated,
        f.pinned OR coalesce(p.resolver_model <> f.first_model, false) AS fallback
    FROM firsts f JOIN per p USING (chain_id) LEFT JOIN a x USING (chain_id)
    GROUP BY ALL
"""

#: A chain's session: its session id, else the chain itself (a chain without a session id is its own session).
SESSION_KEY_SQL = "coalesce(session_id, 'chain:' || chain_id)"

#: One row per session and workload of the period: a chain without a session id is its own session; a
#: session is refused when one of its chains in the period had a refused attempt.
SESSIONS_SQL = f"""
    SELECT workload, {SESSION_KEY_SQL} AS session, bool_or(refused) AS refused
    FROM chains GROUP BY ALL
"""


@dataclass(frozen=True)
class Metric:
    """One metric: what it means (`definition`, `section` of docs/metrics.md), the columns of the metrics
    table that hold its `numerator` and `denominator`, and `sql`, its definition as a query returning
    `numerator, denominator` over `chains`, `sessions` or `attempts` (of the period)."""

    name: str
    level: Level
    definition: str
    numerator: str
    denominator: str
    sql: str
    section: str

    @property
    def label(self) -> str:
        """Return the metric's name as words, for headings and legends (`refusal rate`)."""
        return self.name.replace("_", " ")


def _chain_rate(name: str, flag: str, numerator: str, definition: str, section: str) -> Metric:
    return Metric(name, "chain", definition, numerator, "chains",
                  f"SELECT count(*) FILTER (WHERE {flag}), count(*) FROM chains", section)


REGISTRY: dict[str, Metric] = {m.name: m for m in (
    _chain_rate("refusal_rate", "refused", "refused_chains",
                "chains with at least one refused attempt / chains", "§6.1"),
    Metric("session_refusal_rate", "session", "sessions with at least one refused attempt / sessions",
           "refused_sessions", "sessions",
           "SELECT count(DISTINCT session) FILTER (WHERE refused), count(DISTINCT session) FROM sessions", "§6.1"),
    Metric("attempt_refusal_rate", "attempt", "refused attempts / attempts answered (outcome ok or refusal), "
           "per model", "refused_attempts", "answered_attempts",
           "SELECT count(*) FILTER (WHERE outcome = 'refusal'), count(*) FILTER (WHERE outcome IN ('ok', 'refusal'))"
           " FROM attempts", "§6.1"),
    _chain_rate("fallback_rate", "fallback", "fallback_chains",
                "chains whose resolver's model differs from the first attempt's, or whose first attempt was "
                "pinned / chains", "§6.2"),
    _chain_rate("escalation_rate", "escalated", "escalated_chains",
                "chains with a later attempt on a different model than the first / chains", "§6.2"),
    _chain_rate("retry_rate", "retried", "retried_chains",
                "chains with a same-model retry (attempt k on the model of attempt k−1) / chains", "§6.2"),
    _chain_rate("unresolved_rate", "NOT resolved", "unresolved_chains",
                "chains none of whose attempts succeeded / chains", "§6.2"),
    Metric("error_rate", "attempt", "attempts with an error class / attempts", "errors", "attempts",
           "SELECT count(*) FILTER (WHERE error_class IS NOT NULL), count(*) FROM attempts", "§6.4"),
)}


def metric_sql(name: str, period_sql: str = "TRUE") -> str:
    """Return the full query of a registered metric over the chains whose first attempt satisfies
    `period_sql` (a condition on `ts`; bind its parameters yourself): it returns `numerator, denominator`."""
    metric = REGISTRY[name]
    chains = CHAINS_SQL.replace("{period}", period_sql)
    ctes = f"chains AS ({chains}), sessions AS ({SESSIONS_SQL})"
    if metric.level == "attempt":
        ctes += (", attempts AS (SELECT attempts.* FROM attempts JOIN chains USING (chain_id))")
    return f"WITH {ctes} {metric.sql}"


# ---------------------------------------------------------------- verdicts derived from the numbers


def _number(value: Any) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def slo_met(rate: Any, target: float) -> bool | None:
    """Return whether a workload meets its refusal SLO: session refusal rate ≤ target (§6.1); None
    without a rate (no sessions)."""
    value = _number(rate)
    return None if value is None else bool(value <= target)


def burn_rate(rate: Any, target: float) -> float | None:
    """Return the SLO burn rate, rate / target (§6.1); None without a rate, and for a zero target unless
    the rate is 0 too."""
    value = _number(rate)
    if value is None:
        return None
    if target == 0:
        return 0.0 if value == 0 else None
    return value / target


def blended_cost_per_request(cost_usd: Any, chains: Any) -> float | None:
    """Return the blended cost per request, cost / chains (§6.3); None when the cost is unknown or there
    are no chains."""
    cost, n = _number(cost_usd), _number(chains)
    if cost is None or not n:
        return None
    return cost / n


def refusal_lower_bound_warning(unknown_stop_attempts: int) -> str | None:
    """Return the warning that refusal rates are lower bounds when some attempts say nothing of their stop
    reason (docs/metrics.md §6.3); None when there are none."""
    if not unknown_stop_attempts:
        return None
    return (f"{unknown_stop_attempts:,} attempts say nothing of their stop reason (response logging off or "
            "redacted): a refusal could hide in them, so the refusal rates are lower bounds.")


def cost_lower_bound_warning(cost_incomplete_attempts: int) -> str | None:
    """Return the warning that costs are lower bounds when part of some attempts' cost is unknown (web
    searches their log did not report, docs/metrics.md §3.8); None when there are none."""
    if not cost_incomplete_attempts:
        return None
    return (f"{cost_incomplete_attempts:,} attempts have part of their cost unknown (web searches their log did "
            "not report): the costs are lower bounds.")
