"""Coverage of a period (docs/metrics.md §6.1): how many of its UTC days hold data, and the partial-week flag."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import duckdb

from fallbackscope.core.periods import Period, day_sql


@dataclass(frozen=True)
class Coverage:
    """`days_with_data` (UTC days holding at least one attempt) out of the period's `days`."""

    days_with_data: int
    days: int

    def as_dict(self) -> dict[str, Any]:
        """Return the report's `{days_with_data, days}`."""
        return asdict(self)


def period_coverage(con: duckdb.DuckDBPyConnection, period: Period) -> Coverage:
    """Return the coverage of a bounded period (both bounds at UTC midnight): its days holding attempts."""
    if period.since is None or period.until is None:
        raise ValueError("coverage needs a bounded period")
    where, params = period.where("ts")
    (with_data,) = con.execute(f"SELECT count(DISTINCT {day_sql('ts')}) FROM attempts WHERE {where}",
                               params).fetchone()
    return Coverage(int(with_data), (period.until - period.since).days)


def partial_week(current: Coverage, previous: Coverage | None) -> str | None:
    """Return the flag of a comparison of two weeks when one holds fewer days of data than the other
    ("partial week: 1 of 7 days"), naming which week; None when both cover as many days."""
    if previous is None or current.days_with_data == previous.days_with_data:
        return None
    which, short = ("this week", current) if current.days_with_data < previous.days_with_data \
        else ("the previous week", previous)
    return f"partial week: {which} has data on {short.days_with_data} of {short.days} days"
