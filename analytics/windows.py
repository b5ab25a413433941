"""Session refusal rates over time windows that end at a moment (docs/metrics.md §9): the SLIs of the burn-rate
alerts, the OpenMetrics gauges and the dashboard's burn rates.

A window `w` ending at `at` is the half-open interval (at − w, at]: it includes its end, so the attempt that set
`at` (by default the latest one) counts, and two windows laid end to end share no instant. A session counts in a
window when it has a chain whose first attempt is in it, and as refused there when one of those chains had a
refused attempt — the rule of `analytics.sessions`, at timestamp precision. Every window here ends at the same
`at`, so they nest: a session is in window w exactly when its latest chain in the longest window started after
at − w, and refused there when its latest refused chain did. One pass over the longest window counts them all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from analytics.metrics import SESSION_KEY_SQL, burn_rate
from analytics.rates import Rate
from analytics.sessions import chain_refusals_sql
from fallbackscope.core.periods import UTC, Period

#: The error budget is spent over the last 28 days; the OpenMetrics day gauges cover the last 24 hours.
BUDGET = ("28d", dt.timedelta(days=28))
LAST_DAY = ("24h", dt.timedelta(hours=24))

SloSource = Literal["policy", "default"]


@dataclass(frozen=True)
class Window:
    """A window by its name (`1h`, as the policy writes it) and length; it ends at the evaluation time."""

    name: str
    length: dt.timedelta

    def since(self, at: dt.datetime) -> dt.datetime:
        """Return the window's (excluded) start when it ends at `at`."""
        return at - self.length


def window_period(since: dt.datetime, until: dt.datetime) -> Period:
    """Return the half-open Period [since, until) holding exactly the times of the window (since, until]:
    times are stored to the microsecond, so each bound moves on by one."""
    tick = dt.timedelta(microseconds=1)
    return Period(since + tick, until + tick)


def latest_attempt(con: duckdb.DuckDBPyConnection, until: dt.datetime | None = None) -> dt.datetime | None:
    """Return the time of the latest stored attempt (UTC) — of those at or before `until` when given —, None
    when there is none."""
    if until is None:
        value = con.execute("SELECT max(ts) FROM attempts").fetchone()[0]
    else:
        value = con.execute("SELECT max(ts) FROM attempts WHERE ts <= ?", [until]).fetchone()[0]
    return None if value is None else value.astimezone(UTC)


def window_counts(con: duckdb.DuckDBPyConnection, at: dt.datetime, windows: Sequence[Window],
                  workloads: Iterable[str] | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    """Return {(workload, window name): (sessions, refused sessions)} for each window ending at `at`, per
    workload (those of `workloads`, else every workload with a chain in the longest window); a workload
    without a chain in a window has no key for it."""
    if not windows:
        return {}
    names = list(workloads) if workloads is not None else None
    if names == []:
        return {}
    start = at - max(w.length for w in windows)
    first, params = "ts > ? AND ts <= ?", [start, at]
    if names is not None:
        first += " AND list_contains(?, workload)"
        params.append(names)
    # a chain's later attempts come after its first: `ts > start` only prunes, it drops none of them
    params.append(start)
    counts = ", ".join("count(*) FILTER (WHERE last > ?), count(*) FILTER (WHERE last_refused > ?)"
                       for _ in windows)
    for window in windows:
        params += [window.since(at)] * 2
    rows = con.execute(f"""
        WITH per AS (
            SELECT workload, max(ts) AS last, max(ts) FILTER (WHERE refused) AS last_refused
            FROM ({chain_refusals_sql(first, "ts > ?")}) GROUP BY workload, {SESSION_KEY_SQL}
        )
        SELECT workload, {counts} FROM per GROUP BY workload
    """, params).fetchall()
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for workload, *values in rows:
        for i, window in enumerate(windows):
            sessions, refused = int(values[2 * i]), int(values[2 * i + 1])
            if sessions:
                out[(workload, window.name)] = (sessions, refused)
    return out


def error_budget_remaining(burn: float | None) -> float | None:
    """Return the share of the error budget left after a window burnt at `burn`: 1 − refused sessions ÷
    (target × sessions) = 1 − burn (negative once overspent); None without a burn rate."""
    return None if burn is None else 1.0 - burn


@dataclass(frozen=True)
class WindowBurn:
    """One workload's session refusal rate over one window (since, until], against its refusal SLO."""

    workload: str
    window: str
    since: dt.datetime
    until: dt.datetime
    rate: Rate
    target: float
    slo_source: SloSource

    @property
    def sessions(self) -> int:
        """Sessions with a chain starting in the window."""
        return self.rate.denominator

    @property
    def refused_sessions(self) -> int:
        """Those of them with a refused chain in the window."""
        return self.rate.numerator

    @property
    def burn(self) -> float | None:
        """The burn rate, rate ÷ target (`analytics.metrics.burn_rate`); None over no sessions."""
        return burn_rate(self.rate.value, self.target)

    @property
    def burn_lower(self) -> float | None:
        """The Wilson 95% lower bound of the rate ÷ target: the burn the window proves."""
        return burn_rate(self.rate.ci95_low, self.target)

    @property
    def budget_remaining(self) -> float | None:
        """The error budget left, as if the window were the budget's period (`error_budget_remaining`)."""
        return error_budget_remaining(self.burn)

    def as_dict(self) -> dict[str, Any]:
        """Return the window as the alert object writes it (times in ISO 8601 UTC)."""
        return {
            "window": self.window, "since": iso(self.since), "until": iso(self.until),
            "sessions": self.sessions, "refused_sessions": self.refused_sessions,
            "session_refusal_rate": self.rate.as_dict(),
            "burn_rate": self.burn, "burn_rate_lower_bound": self.burn_lower,
        }

    def as_row(self) -> dict[str, Any]:
        """Return the window as one flat row (the dashboard's table)."""
        return {
            "workload": self.workload, "window": self.window, "since": self.since, "until": self.until,
            "sessions": self.sessions, "refused_sessions": self.refused_sessions,
            "session_refusal_rate": self.rate.value, "ci95_low": self.rate.ci95_low,
            "ci95_high": self.rate.ci95_high, "target": self.target, "slo_source": self.slo_source,
            "burn_rate": self.burn, "burn_rate_lower_bound": self.burn_lower,
            "error_budget_remaining": self.budget_remaining if self.window == BUDGET[0] else None,
        }


def window_burns(counts: dict[tuple[str, str], tuple[int, int]], at: dt.datetime, windows: Sequence[Window],
                 workload: str, target: float, slo_source: SloSource) -> dict[str, WindowBurn]:
    """Return {window name: WindowBurn} of one workload from `window_counts` (a window without a chain is a
    rate over nothing)."""
    out = {}
    for window in windows:
        sessions, refused = counts.get((workload, window.name), (0, 0))
        out[window.name] = WindowBurn(workload, window.name, window.since(at), at, Rate.of(refused, sessions),
                                      target, slo_source)
    return out


@dataclass(frozen=True)
class Category:
    """Refused attempts of one refusal category and their share of all refused attempts."""

    category: str
    refused_attempts: int
    share: float

    def as_dict(self) -> dict[str, Any]:
        """Return `{category, refused_attempts, share}`."""
        return {"category": self.category, "refused_attempts": self.refused_attempts, "share": self.share}


def top_categories(con: duckdb.DuckDBPyConnection, workload: str, since: dt.datetime, until: dt.datetime,
                   limit: int = 3) -> tuple[Category, ...]:
    """Return the `limit` commonest refusal categories of the workload's chains that started in (since, until],
    counted per refused attempt (null shown as `unspecified`) with their share of all its refused attempts —
    the rule of `analytics.refusals.refusals_by_category`; most refused first, then by name."""
    rows = con.execute("""
        SELECT coalesce(refusal_category, 'unspecified') AS category, count(*) AS n
        FROM attempts
        WHERE outcome = 'refusal' AND ts > ? AND chain_id IN (
            SELECT chain_id FROM attempts WHERE attempt_index = 1 AND workload = ? AND ts > ? AND ts <= ?)
        GROUP BY category ORDER BY n DESC, category
    """, [since, workload, since, until]).fetchall()
    total = sum(int(n) for _, n in rows)
    return tuple(Category(str(c), int(n), int(n) / total) for c, n in rows[:limit])


def iso(value: dt.datetime) -> str:
    """Return a time as ISO 8601 in UTC with a `Z` (microseconds only when there are any)."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")
