"""What the dashboard shows of the alerts and of the bill (docs/metrics.md §9 and §10), read through
`analytics.alerts` and `analytics.reconcile` on short read-only connections (`DataSource.read`, cached per
database version). This module only selects and reshapes their frames: burn rates, error budgets, coverage and
gaps are computed there, never here.

Both read the whole database: an SLO and its alerts are a workload's over all its traffic up to its latest
attempt, and the bill knows no workload; so the model and surface filters (and, for the burn rates, the dates)
do not apply. The workload filter only chooses which workloads' rows are shown.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import duckdb
import pandas as pd

from analytics.alerts import NOTHING_TO_WATCH, alert_history, burn_table, watched_workloads
from analytics.reconcile import ReconciliationSummary, coverage_by_day, gap_by_model, period_summary
from analytics.windows import BUDGET
from dashboard.data import DataSource
from dashboard.filters import Filters
from fallbackscope.core.periods import Period
from fallbackscope.core.policy import Policy, resolve_policy

NOTHING_WATCHED = NOTHING_TO_WATCH  # the alert command's sentence, one text for one fact
#: the alert history shows this many episodes, latest first
ALERT_LIMIT = 500


# ---------------------------------------------------------------------------- burn rates


@dataclasses.dataclass(frozen=True)
class Burns:
    """The burn rates of the watched workloads at `at` (the latest attempt): `frame` holds the rows of
    `analytics.alerts.burn_table(...).frame()` of the workloads `analytics.alerts.watched_workloads` watches;
    `windows` names the windows shown (the rules' and 24h), shortest first; `budget_window` is the error
    budget's (28d)."""

    at: dt.datetime | None
    windows: tuple[str, ...]
    frame: pd.DataFrame
    watched: tuple[str, ...]
    budget_window: str = BUDGET[0]


def compute_burns(con: duckdb.DuckDBPyConnection, policy: Policy | None) -> Burns:
    """Return the Burns of the database (the policy given to the dashboard, else the stored one)."""
    policy = resolve_policy(con, policy)
    watched, _ = watched_workloads(policy)
    snapshot = burn_table(con, policy)
    length = {w.name: w.length for w in snapshot.windows}
    shown = tuple(sorted(snapshot.rate_windows, key=lambda name: (length.get(name, dt.timedelta.max), name)))
    frame = snapshot.frame()
    frame = frame[frame["workload"].isin(list(watched))].reset_index(drop=True)
    return Burns(snapshot.at, shown, frame, tuple(sorted(watched)))


def burns(source: DataSource, filters: Filters) -> Burns:
    """Return the Burns of the source's database, the rows limited to the filters' workloads (if any)."""
    value: Burns = source.read(("burns",), lambda con: compute_burns(con, source.policy)).value
    if not filters.workloads:
        return value
    frame = value.frame[value.frame["workload"].isin(list(filters.workloads))].reset_index(drop=True)
    return dataclasses.replace(value, frame=frame)


def burn_grid(b: Burns) -> pd.DataFrame:
    """Return one row per watched workload shown: workload, target, slo_source, one column per window of
    `b.windows` holding its burn rate (None over no session), `sessions` and `refused_sessions` of the error
    budget's window and `error_budget_remaining` (None over no session)."""
    columns = ["workload", "target", "slo_source", *b.windows, "sessions", "refused_sessions",
               "error_budget_remaining"]
    rows = []
    for workload, part in b.frame.groupby("workload", sort=True):
        by_window = {str(r["window"]): r for r in part.to_dict("records")}
        budget = by_window.get(b.budget_window, {})
        first = part.iloc[0]
        rows.append({"workload": workload, "target": first["target"], "slo_source": first["slo_source"],
                     **{w: by_window.get(w, {}).get("burn_rate") for w in b.windows},
                     "sessions": budget.get("sessions", 0), "refused_sessions": budget.get("refused_sessions", 0),
                     "error_budget_remaining": budget.get("error_budget_remaining")})
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------------- alert history


def alerts(source: DataSource, filters: Filters) -> pd.DataFrame:
    """Return `analytics.alerts.alert_history` (the latest ALERT_LIMIT episodes), limited to the filters'
    workloads (if any)."""
    history: pd.DataFrame = source.read(("alerts", ALERT_LIMIT), lambda con: alert_history(con, ALERT_LIMIT)).value
    if filters.workloads:
        history = history[history["workload"].isin(list(filters.workloads))].reset_index(drop=True)
    return history


# ---------------------------------------------------------------------------- billing reconciliation


@dataclasses.dataclass(frozen=True)
class Billing:
    """The reconciliation of a period's days: `days` (`coverage_by_day`), `models` (`gap_by_model`) and
    `summary` (`period_summary`: the period's coverage as Σ seen ÷ Σ weight; None when no day was reconciled)."""

    days: pd.DataFrame
    models: pd.DataFrame
    summary: ReconciliationSummary | None


def compute_billing(con: duckdb.DuckDBPyConnection, period: Period) -> Billing:
    """Return the Billing of the days of `period`."""
    return Billing(coverage_by_day(con, period), gap_by_model(con, period), period_summary(con, period))


def billing(source: DataSource, filters: Filters) -> Billing:
    """Return the Billing of the filters' days (the whole bill: no other filter applies)."""
    period = filters.period()
    return source.read(("billing", period.since, period.until), lambda con: compute_billing(con, period)).value
