"""The weekly report (docs/metrics.md §7.1): computed with `analytics` into a `WeeklyReport`
(`fallbackscope.render.model`, which owns the keys and their order); renderers only format it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from analytics import costs, refusals, reliability, tiers
from analytics.collect import collect
from analytics.common import Rate, clean, money
from analytics.credits import credit_summary
from analytics.facts import Facts
from analytics.metrics import blended_cost_per_request, slo_met
from analytics.summary import chain_table, present
from analytics.violations import violations
from fallbackscope.core.periods import (
    US_PER_DAY,
    UTC,
    Period,
    day_to_date,
    parse_week,
    week_label,
    week_of,
    week_start_day,
)
from fallbackscope.core.policy import Policy, resolve_policy
from fallbackscope.render.model import (
    CacheCredit,
    CategoryRefusals,
    ErrorCount,
    ModelRefusals,
    PolicyViolation,
    PreviousWeek,
    Resolution,
    StartTierAdvice,
    Totals,
    WeeklyReport,
    WorkloadRow,
)


def default_week(con: duckdb.DuckDBPyConnection, today: dt.date | None = None) -> dt.date:
    """Return the Monday of the week a report covers by default: the last ISO week that ended before
    the latest attempt; if no attempt is that old, the latest attempt's week; with no attempt at all,
    the current week."""
    latest, earliest = con.execute(
        "SELECT max(epoch_us(ts)), min(epoch_us(ts)) FROM attempts").fetchone()
    if latest is None:
        today = today or dt.datetime.now(UTC).date()
        return week_of(today)
    latest_week = week_start_day(int(latest // US_PER_DAY))
    if int(earliest // US_PER_DAY) < latest_week:
        return day_to_date(latest_week - 7)
    return day_to_date(latest_week)


def _iso(day: dt.date) -> str:
    return dt.datetime.combine(day, dt.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report_monday(con: duckdb.DuckDBPyConnection, week: str | dt.date | None = None) -> dt.date:
    """Return the Monday of the week a report covers: of ISO week `week` (`2026-W47`), of the week holding
    the date `week`, or (None) `default_week`."""
    if week is None:
        return default_week(con)
    if isinstance(week, dt.datetime):
        week = week.date()
    if isinstance(week, dt.date):
        return week_of(week)
    return parse_week(week)


def compute_weekly(
    con: duckdb.DuckDBPyConnection,
    week: str | dt.date | None = None,
    policy: Policy | str | None = None,
) -> WeeklyReport:
    """Return the WeeklyReport of ISO week `week` (`2026-W47`, or a date in it; default: `default_week`)."""
    policy = resolve_policy(con, policy)
    monday = report_monday(con, week)
    facts = collect(con, Period.week(monday), policy)
    previous = refusals.period_refusal_rate(con, Period.week(monday - dt.timedelta(days=7)))
    return build_report(facts, monday, previous)


def weekly_report(
    con: duckdb.DuckDBPyConnection,
    week: str | dt.date | None = None,
    policy: Policy | str | None = None,
) -> dict[str, Any]:
    """Return the weekly report of ISO week `week` (`2026-W47`, or a date in it; default: `default_week`)
    as a JSON-ready dict with the keys of docs/metrics.md §7.1 (`compute_weekly(…).as_dict()`)."""
    return compute_weekly(con, week, policy).as_dict()


def build_report(facts: Facts, monday: dt.date, previous: Rate) -> WeeklyReport:
    """Return the WeeklyReport of the facts of one week, given the previous week's chain refusal rate."""
    total = present(chain_table(facts, None, False), None).iloc[0].to_dict()
    current = Rate.of(total["refused_chains"], total["chains"])
    return WeeklyReport(
        week=week_label(monday),
        start=_iso(monday),
        end=_iso(monday + dt.timedelta(days=7)),
        totals=Totals(
            attempts=int(total["attempts"]),
            chains=int(total["chains"]),
            sessions=int(total["sessions"]),
            cost_usd=money(total["cost_usd"]),
            unpriced_attempts=int(total["unpriced_attempts"]),
        ),
        refusal_rate=current,
        session_refusal_rate=Rate.of(total["refused_sessions"], total["sessions"]),
        previous_week=PreviousWeek(previous) if previous.denominator else None,
        drift=refusals.drift(current, previous),
        refusals_by_category=tuple(
            CategoryRefusals(r["category"], int(r["refused_attempts"]), clean(r["value"]))
            for r in refusals.refusals_by_category(facts).to_dict("records")),
        refusals_by_model=tuple(
            ModelRefusals(r["model"], int(r["attempts"]), int(r["refused_attempts"]), clean(r["value"]))
            for r in refusals.attempt_refusal_rate(facts).to_dict("records")),
        workloads=_workloads(facts),
        errors=tuple(ErrorCount(r["error_class"], int(r["attempts"]))
                     for r in reliability.errors(facts).to_dict("records")),
        cache_credit=CacheCredit.of(credit_summary(facts)),
        policy_violations=tuple(PolicyViolation(r["kind"], r["workload"], int(r["count"]))
                                for r in violations(facts).to_dict("records")),
    )


def _workloads(facts: Facts) -> tuple[WorkloadRow, ...]:
    table = present(chain_table(facts, None, True), None)
    resolution = tiers.resolution(facts, by_workload=True)
    advice = costs.start_tier_advice(facts)
    out = []
    for row in table.sort_values("workload").to_dict("records"):
        name = str(row["workload"])
        rules = facts.policy.for_workload(name)
        session_rate = Rate.of(row["refused_sessions"], row["sessions"])
        cost = clean(row["cost_usd"])
        chains = int(row["chains"])
        out.append(WorkloadRow(
            workload=name,
            chains=chains,
            sessions=int(row["sessions"]),
            refusal_rate=Rate.of(row["refused_chains"], chains).value,
            session_refusal_rate=session_rate.value,
            slo=rules.refusal_slo,
            slo_met=slo_met(session_rate.value, rules.refusal_slo),
            fallback_rate=Rate.of(row["fallback_chains"], chains).value,
            escalation_rate=Rate.of(row["escalated_chains"], chains).value,
            unresolved_rate=Rate.of(row["unresolved_chains"], chains).value,
            resolution=tuple(Resolution(r["model"], clean(r["value"]))
                             for r in resolution[resolution["workload"] == name].to_dict("records")),
            cost_usd=money(cost),
            blended_cost_per_request=money(blended_cost_per_request(cost, chains)),
            escalation_overhead_usd=money(row["escalation_overhead_usd"]),
            top_tier_counterfactual_usd=money(row["top_tier_counterfactual_usd"]),
            start_tier_advice=tuple(
                StartTierAdvice(a["from_model"], a["to_model"], clean(a["climb_rate"]),
                                clean(a["break_even"]), a["advice"])
                for a in advice[advice["workload"] == name].to_dict("records")),
        ))
    return tuple(out)
