"""Multi-window, multi-burn-rate alerts on the refusal SLO (docs/metrics.md §9) — computation only.

For a watched workload with target t, a rule (severity, long window, short window, factor) fires when the burn
rate (`analytics.metrics.burn_rate`: session refusal rate ÷ t, over `analytics.windows`) reaches the factor over
the short window and over the long one, the long window's Wilson 95% lower bound ÷ t reaches it too (three
refusals in four sessions page nobody), and the long window holds at least `min_sessions` sessions. Watched are
the workloads whose `refusal_slo` the policy sets, in (0, 1). Delivery, state and exit codes are the shell's
(`fallbackscope.alerting`); the dashboard reads `burn_table` and `alert_history`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import duckdb

from analytics.policy_names import policy_name_warnings
from analytics.windows import (
    BUDGET,
    LAST_DAY,
    Category,
    Window,
    WindowBurn,
    error_budget_remaining,
    iso,
    latest_attempt,
    top_categories,
    window_burns,
    window_counts,
    window_period,
)
from fallbackscope.core.errors import UsageError
from fallbackscope.core.policy import AlertRule, Policy, resolve_policy

if TYPE_CHECKING:  # pandas only for the hint
    import pandas as pd

NOTHING_TO_WATCH = "no workload has a refusal_slo: nothing to watch"
#: a burn equal to the factor reaches it, whatever the last bit of a float division says
_EPSILON = 1e-9


def watched_workloads(policy: Policy) -> tuple[dict[str, float], list[str]]:
    """Return ({workload: target} of the workloads whose refusal_slo the policy sets in (0, 1), warnings for
    the ones set to 0 or 1, which no burn rate can measure)."""
    watched, warnings = {}, []
    for name, rules in sorted(policy.workloads.items()):
        if rules.slo_source != "policy":
            continue
        if 0 < rules.refusal_slo < 1:
            watched[name] = rules.refusal_slo
        else:
            warnings.append(f"alert: workload `{name}` has refusal_slo {rules.refusal_slo:g}; a target must be "
                            "between 0 and 1 (exclusive) to be watched: not watched.")
    return watched, warnings


def rule_applies(rule: AlertRule, target: float) -> bool:
    """Return whether `rule` can fire for a workload with `target`: not when factor × target ≥ 1 (the rate
    would have to exceed 100%)."""
    return rule.factor * target < 1


def rule_windows(rules: Iterable[AlertRule]) -> list[Window]:
    """Return the distinct windows of the rules (long and short), longest first."""
    found: dict[str, Window] = {}
    for rule in rules:
        found.setdefault(rule.long, Window(rule.long, rule.long_window))
        found.setdefault(rule.short, Window(rule.short, rule.short_window))
    return sorted(found.values(), key=lambda w: (-w.length, w.name))


def _reaches(burn: float | None, factor: float) -> bool:
    return burn is not None and burn >= factor * (1 - _EPSILON)


def fires(long: WindowBurn, short: WindowBurn, factor: float, min_sessions: int) -> bool:
    """Return whether a rule fires on its two windows: short burn ≥ factor, long burn ≥ factor, the long
    window's Wilson lower bound ÷ target ≥ factor, and at least `min_sessions` sessions in the long window."""
    return (long.sessions >= min_sessions and _reaches(short.burn, factor) and _reaches(long.burn, factor)
            and _reaches(long.burn_lower, factor))


@dataclass(frozen=True)
class RuleCheck:
    """One rule evaluated for one workload: its two windows and whether it fires."""

    workload: str
    rule: AlertRule
    long: WindowBurn
    short: WindowBurn
    firing: bool

    @property
    def key(self) -> tuple[str, str, str]:
        """(workload, severity, rule name): what identifies its alert in the `alerts` table."""
        return (self.workload, self.rule.severity, self.rule.name)


@dataclass(frozen=True)
class Alert:
    """A firing alert: the rule's check, the 28-day error budget, the long window's top refusal categories
    and a link to the dashboard's refusals page filtered to the workload and the long window."""

    check: RuleCheck
    at: dt.datetime
    budget: WindowBurn
    top_categories: tuple[Category, ...]
    dashboard_url: str | None

    @property
    def key(self) -> tuple[str, str, str]:
        """(workload, severity, rule name)."""
        return self.check.key

    @property
    def budget_remaining(self) -> float | None:
        """The share of the 28-day error budget left (negative once overspent)."""
        return error_budget_remaining(self.budget.burn)

    def as_dict(self) -> dict[str, Any]:
        """Return the alert object (docs/metrics.md §9): what `alert --format json` prints and posts."""
        check, rule = self.check, self.check.rule
        return {
            "status": "firing", "workload": check.workload, "severity": rule.severity, "rule": rule.name,
            "factor": rule.factor, "at": iso(self.at), "rate": "session_refusal_rate",
            "target": check.long.target, "slo_source": check.long.slo_source,
            "long": check.long.as_dict(), "short": check.short.as_dict(),
            "error_budget_remaining": self.budget_remaining, "error_budget_window": BUDGET[0],
            "error_budget_sessions": self.budget.sessions,
            "error_budget_refused_sessions": self.budget.refused_sessions,
            "top_categories": [c.as_dict() for c in self.top_categories],
            "dashboard_url": self.dashboard_url,
        }


@dataclass(frozen=True)
class Evaluation:
    """What `alert` found at `at`: the watched workloads, every rule checked, the firing alerts, warnings,
    and the chains of watched workloads in the longest rule window (none: no data, exit 4)."""

    at: dt.datetime | None
    latest: dt.datetime | None
    watched: dict[str, float]
    checks: tuple[RuleCheck, ...]
    alerts: tuple[Alert, ...]
    warnings: tuple[str, ...]
    sessions: int

    @property
    def has_data(self) -> bool:
        """Whether the windows hold any chain of a watched workload."""
        return self.sessions > 0


def dashboard_link(base_url: str, workload: str, since: dt.datetime, until: dt.datetime) -> str:
    """Return the dashboard's refusals page filtered to a workload and the UTC days of (since, until] — the
    `from`, `to` and `workload` parameters its filters read (`dashboard/filters.py`)."""
    query = urlencode([("from", since.astimezone(dt.UTC).date().isoformat()),
                       ("to", until.astimezone(dt.UTC).date().isoformat()), ("workload", workload)])
    return f"{base_url.rstrip('/')}/refusals?{query}"


def evaluate(con: duckdb.DuckDBPyConnection, policy: Policy | str | None = None, at: dt.datetime | None = None,
             *, dashboard_url: str | None = None) -> Evaluation:
    """Evaluate every alert rule for every watched workload over windows ending at `at` (default: the latest
    attempt). Returns the Evaluation; raises UsageError when no workload is watched."""
    policy = resolve_policy(con, policy)
    watched, warnings = watched_workloads(policy)
    if not watched:
        raise UsageError(NOTHING_TO_WATCH)
    warnings += policy_name_warnings(con, policy)
    rules = policy.alerts.rules
    for name, target in watched.items():
        for rule in rules:
            if not rule_applies(rule, target):
                warnings.append(f"alert: rule {rule.severity} {rule.name} cannot fire for `{name}` (target "
                                f"{target:g} × factor {rule.factor:g} ≥ 1): skipped there.")
    latest = latest_attempt(con)
    at = at or latest
    if at is None:
        return Evaluation(None, None, watched, (), (), tuple(warnings), 0)
    windows = rule_windows(rules)
    budget = Window(*BUDGET)
    # one pass counts the rules' windows and the budget's (the alert object's), which all end at `at`
    counts = window_counts(con, at, [*windows, budget], watched)
    checks = []
    for name, target in watched.items():
        burns = window_burns(counts, at, windows, name, target, "policy")
        for rule in rules:
            if rule_applies(rule, target):
                long, short = burns[rule.long], burns[rule.short]
                checks.append(RuleCheck(name, rule, long, short,
                                        fires(long, short, rule.factor, policy.alerts.min_sessions)))
    alerts = []
    for check in (c for c in checks if c.firing):
        spent = window_burns(counts, at, [budget], check.workload, check.long.target, check.long.slo_source)
        since = check.long.since
        link = dashboard_link(dashboard_url, check.workload, since, at) if dashboard_url else None
        alerts.append(Alert(check, at, spent[budget.name], top_categories(con, check.workload, since, at), link))
    sessions = sum(counts.get((name, windows[0].name), (0, 0))[0] for name in watched)
    return Evaluation(at, latest, watched, tuple(checks), tuple(alerts), tuple(warnings), sessions)


@dataclass(frozen=True)
class Resolved:
    """A notified alert that no longer fires: its key, when it first fired, when it was found stopped, and
    its rule's check now (None when the rule or the workload is no longer evaluated)."""

    workload: str
    severity: str
    rule: str
    first_fired: dt.datetime
    at: dt.datetime
    check: RuleCheck | None

    @property
    def key(self) -> tuple[str, str, str]:
        """(workload, severity, rule name)."""
        return (self.workload, self.severity, self.rule)

    def as_dict(self) -> dict[str, Any]:
        """Return the resolution as posted (`status: resolved`), with the rule's windows now when known."""
        out: dict[str, Any] = {"status": "resolved", "workload": self.workload, "severity": self.severity,
                               "rule": self.rule, "first_fired": iso(self.first_fired), "at": iso(self.at)}
        if self.check is not None:
            out |= {"rate": "session_refusal_rate", "target": self.check.long.target,
                    "slo_source": self.check.long.slo_source, "long": self.check.long.as_dict(),
                    "short": self.check.short.as_dict()}
        return out


def changes(evaluation: Evaluation, notified: dict[tuple[str, str, str], dt.datetime]
            ) -> tuple[tuple[Alert, ...], tuple[Resolved, ...]]:
    """Return (firing alerts not yet notified, notified alerts that stopped firing) given `notified`, the open
    alerts of the `alerts` table ({key: first fired}); an alert notified and still firing is in neither."""
    assert evaluation.at is not None, "no evaluation time: nothing was evaluated"
    new = tuple(a for a in evaluation.alerts if a.key not in notified)
    firing = {a.key for a in evaluation.alerts}
    checks = {c.key: c for c in evaluation.checks}
    stopped = tuple(Resolved(*key, first, evaluation.at, checks.get(key))
                    for key, first in sorted(notified.items()) if key not in firing)
    return new, stopped


# ---------------------------------------------------------------- what the exports and the dashboard read


@dataclass(frozen=True)
class LastDay:
    """One workload's chains over the last 24 hours: the OpenMetrics day gauges."""

    workload: str
    chains: int
    refused_chains: int
    fallback_chains: int
    cost_usd: float | None


@dataclass(frozen=True)
class SloSnapshot:
    """Every workload's burn rates at `at`: per window of the rules plus 24h (and 28d, the error budget's),
    the last day's chain counts, and the time of the latest attempt at or before `at`. `rate_windows` names
    the windows whose rates are shown (the rules' and 24h; 28d only when a rule uses it)."""

    at: dt.datetime | None
    latest: dt.datetime | None
    windows: tuple[Window, ...]
    burns: tuple[WindowBurn, ...]
    last_day: tuple[LastDay, ...]
    rate_windows: tuple[str, ...] = ()

    def frame(self) -> pd.DataFrame:
        """Return the burns as a DataFrame, one row per workload and window (`WindowBurn.as_row`)."""
        import pandas as pd

        rows = [b.as_row() for b in self.burns]
        return pd.DataFrame(rows, columns=_BURN_COLUMNS)


_BURN_COLUMNS = ["workload", "window", "since", "until", "sessions", "refused_sessions", "session_refusal_rate",
                 "ci95_low", "ci95_high", "target", "slo_source", "burn_rate", "burn_rate_lower_bound",
                 "error_budget_remaining"]


def snapshot_windows(policy: Policy) -> list[Window]:
    """Return the windows every workload's burn rate is shown over: the rules' windows, 24h and 28d."""
    windows = {w.name: w for w in rule_windows(policy.alerts.rules)}
    for name, length in (LAST_DAY, BUDGET):
        windows.setdefault(name, Window(name, length))
    return sorted(windows.values(), key=lambda w: (-w.length, w.name))


def burn_table(con: duckdb.DuckDBPyConnection, policy: Policy | str | None = None, at: dt.datetime | None = None,
               *, last_day: bool = False) -> SloSnapshot:
    """Return the SloSnapshot at `at` (default: the latest attempt): each workload with a chain in the last
    28 days, and each workload the policy gives a refusal_slo, over `snapshot_windows`, against its target
    (the policy's or the default, with `slo_source`). With `last_day`, also each workload's chain refusal
    and fallback counts and cost over the last 24 hours (`analytics.collect`, the report's definitions)."""
    policy = resolve_policy(con, policy)
    latest = latest_attempt(con, at)
    at = at or latest
    windows = snapshot_windows(policy)
    shown = tuple(dict.fromkeys([w.name for w in rule_windows(policy.alerts.rules)] + [LAST_DAY[0]]))
    if at is None:
        return SloSnapshot(None, None, tuple(windows), (), (), shown)
    counts = window_counts(con, at, windows)
    names = sorted({w for w, _ in counts} | {n for n, r in policy.workloads.items() if r.slo_source == "policy"})
    burns = []
    for name in names:
        rules = policy.for_workload(name)
        burns += window_burns(counts, at, windows, name, rules.refusal_slo, rules.slo_source).values()
    days = _last_day(con, policy, at) if last_day else ()
    return SloSnapshot(at, latest, tuple(windows), tuple(burns), days, shown)


def _last_day(con: duckdb.DuckDBPyConnection, policy: Policy, at: dt.datetime) -> tuple[LastDay, ...]:
    from analytics.collect import collect  # the whole report machinery, for the exports only
    from analytics.summary import chain_table

    period = window_period(at - LAST_DAY[1], at)
    table = chain_table(collect(con, period, policy), None, True)
    out = []
    for row in table.to_dict("records"):
        cost = row["cost_usd"]
        out.append(LastDay(str(row["workload"]), int(row["chains"]), int(row["refused_chains"]),
                           int(row["fallback_chains"]), None if cost != cost else float(cost)))
    return tuple(out)


ALERT_COLUMNS = ["workload", "severity", "rule", "first_fired", "last_notified", "resolved", "target",
                 "long_burn", "short_burn"]


def open_alerts(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str, str], dt.datetime]:
    """Return {(workload, severity, rule): first fired} of the alerts notified and not resolved."""
    rows = con.execute("SELECT workload, severity, rule, first_fired FROM alerts WHERE resolved IS NULL").fetchall()
    return {(w, s, r): f for w, s, r, f in rows}


def alert_history(con: duckdb.DuckDBPyConnection, limit: int | None = None) -> pd.DataFrame:
    """Return the alerts notified so far, latest first: workload, severity, rule, first_fired, last_notified,
    resolved (NaT while still firing), target, long_burn and short_burn of the first notification."""
    from analytics.common import fetch_df

    sql = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts ORDER BY first_fired DESC, workload, severity, rule"
    if limit is not None:
        return fetch_df(con, sql + " LIMIT ?", [int(limit)])
    return fetch_df(con, sql)
