"""The weekly report (docs/metrics.md §7.1): computed with `analytics` into a `WeeklyReport`
(`fallbackscope.render.model`, which owns the keys and their order); renderers only format it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb

from analytics import costs, refusals, reliability, tiers
from analytics.collect import collect
from analytics.common import Rate, clean, money
from analytics.coverage import Coverage, partial_week, period_coverage
from analytics.credits import credit_summary
from analytics.facts import Facts
from analytics.metrics import (
    blended_cost_per_request,
    cost_lower_bound_warning,
    refusal_lower_bound_warning,
    slo_met,
)
from analytics.policy_names import policy_name_warnings
from analytics.reconcile import ReconciliationSummary, period_summary
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
    before = Period.week(monday - dt.timedelta(days=7))
    previous = refusals.period_refusal_rate(con, before)
    coverage = period_coverage(con, Period.week(monday))
    previous_coverage = period_coverage(con, before) if previous.denominator else None
    return build_report(facts, monday, previous, coverage=coverage, previous_coverage=previous_coverage,
                        warnings=policy_name_warnings(con, policy),
                        reconciliation=period_summary(con, Period.week(monday)))


def weekly_report(
    con: duckdb.DuckDBPyConnection,
    week: str | dt.date | None = None,
    policy: Policy | str | None = None,
) -> dict[str, Any]:
    """Return the weekly report of ISO week `week` (`2026-W47`, or a date in it; default: `default_week`)
    as a JSON-ready dict with the keys of docs/metrics.md §7.1 (`compute_weekly(…).as_dict()`)."""
    return compute_weekly(con, week, policy).as_dict()


def build_report(facts: Facts, monday: dt.date, previous: Rate, *, coverage: Coverage | None = None,
                 previous_coverage: Coverage | None = None, warnings: Sequence[str] = (),
                 reconciliation: ReconciliationSummary | None = None) -> WeeklyReport:
    """Return the WeeklyReport of the facts of one week, given the previous week's chain refusal rate, the
    coverage of both weeks (default: unknown, 0 of 7 days), warnings found on the way (policy names) and the
    week's billing reconciliation (None: no reconciled day)."""
    total = present(chain_table(facts, None, False), None).iloc[0].to_dict()
    current = Rate.of(total["refused_chains"], total["chains"])
    coverage = coverage or Coverage(0, 7)
    if previous.denominator and previous_coverage is None:
        previous_coverage = Coverage(0, 7)
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
            unknown_stop_attempts=int(total["unknown_stop_attempts"]),
            cost_incomplete_attempts=int(total["cost_incomplete_attempts"]),
        ),
        coverage=coverage,
        refusal_rate=current,
        session_refusal_rate=Rate.of(total["refused_sessions"], total["sessions"]),
        previous_week=PreviousWeek(previous, previous_coverage) if previous.denominator else None,
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
        cache_credit=credit_summary(facts),
        policy_violations=tuple(PolicyViolation(r["kind"], r["workload"], int(r["count"]))
                                for r in violations(facts).to_dict("records")),
        warnings=tuple(report_warnings(monday, total, coverage, previous_coverage if previous.denominator else None,
                                       warnings)),
        reconciliation=reconciliation,
    )


def report_warnings(monday: dt.date, total: dict[str, Any], coverage: Coverage, previous: Coverage | None,
                    found: Sequence[str]) -> list[str]:
    """Return the warnings of a week's report: no data, a partial week, refusal rates that are lower bounds,
    and those `found` on the way (policy names)."""
    out = []
    if not int(total["chains"]):
        out.append(f"no data: no chain started in {week_label(monday)}.")
    flag = partial_week(coverage, previous)
    if flag:
        out.append(flag + ".")
    out += [w for w in (refusal_lower_bound_warning(int(total["unknown_stop_attempts"])),
                        cost_lower_bound_warning(int(total["cost_incomplete_attempts"]))) if w]
    return out + list(found)


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
            attempts=int(row["attempts"]),
            sessions=int(row["sessions"]),
            refusal_rate=Rate.of(row["refused_chains"], chains).value,
            session_refusal_rate=session_rate.value,
            slo=rules.refusal_slo,
            slo_source=rules.slo_source,
            slo_met=slo_met(session_rate.value, rules.refusal_slo),
            fallback_rate=Rate.of(row["fallback_chains"], chains).value,
            escalation_rate=Rate.of(row["escalated_chains"], chains).value,
            unresolved_rate=Rate.of(row["unresolved_chains"], chains).value,
            unknown_stop_attempts=int(row["unknown_stop_attempts"]),
            resolution=tuple(Resolution(r["model"], clean(r["value"]))
                             for r in resolution[resolution["workload"] == name].to_dict("records")),
            cost_usd=money(cost),
            unpriced_attempts=int(row["unpriced_attempts"]),
            cost_incomplete_attempts=int(row["cost_incomplete_attempts"]),
            blended_cost_per_request=money(blended_cost_per_request(cost, chains)),
            escalation_overhead_usd=money(row["escalation_overhead_usd"]),
            top_tier_counterfactual_usd=money(row["top_tier_counterfactual_usd"]),
            start_tier_advice=tuple(
                StartTierAdvice(a["from_model"], a["to_model"], clean(a["climb_rate"]),
                                clean(a["break_even"]), a["advice"])
                for a in advice[advice["workload"] == name].to_dict("records")),
        ))
    return tuple(out)
