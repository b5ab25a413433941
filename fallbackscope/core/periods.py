"""UTC days and ISO weeks, once, in Python, numpy and SQL (docs/metrics.md §6).

Days and weeks are UTC; weeks start Monday 00:00. A day is an integer, the number of days since
1970-01-01; inside SQL it is computed from `epoch_us(ts)` so that nothing depends on the session's time
zone. 1970-01-01 was a Thursday, so the Monday of day `d` is `d - (d + 3) % 7` — the one rule every
week bucket (SQL, numpy, Python) is written from.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from fallbackscope.core.errors import UsageError

UTC = dt.UTC
EPOCH_DATE = dt.date(1970, 1, 1)
US_PER_DAY = 86_400_000_000

TimeKey = Literal["day", "week"]

#: the offset of the week rule: Monday of day d = d - (d + WEEK_SHIFT) % 7
WEEK_SHIFT = 3


def day_sql(ts: str) -> str:
    """Return SQL for the UTC day number (days since 1970-01-01) of TIMESTAMPTZ expression `ts`."""
    return f"CAST(floor(epoch_us({ts}) / {US_PER_DAY}) AS INTEGER)"


def week_sql(day: str) -> str:
    """Return SQL for the Monday (a day number) of the ISO week of day-number expression `day`."""
    # SQL's % keeps the dividend's sign (Python's and numpy's do not): fold it back for days before 1970
    return f"({day} - (({day} + {WEEK_SHIFT}) % 7 + 7) % 7)"


def bucket_sql(day: str, key: TimeKey | None) -> str:
    """Return SQL for the bucket of a day-number expression: the day itself, its week's Monday, or 0."""
    if key == "day":
        return day
    if key == "week":
        return week_sql(day)
    return "0"


def week_start_days(days: Any) -> np.ndarray:
    """Return the Monday (day number) of each day number of an array-like, as int64."""
    d = np.asarray(days, dtype=np.int64)
    return d - (d + WEEK_SHIFT) % 7


def bucket_days(days: Any, key: TimeKey | None) -> np.ndarray:
    """Return the bucket of each day number (see `bucket_sql`) as an int64 array."""
    d = np.asarray(days, dtype=np.int64)
    if key == "day":
        return d
    if key == "week":
        return week_start_days(d)
    return np.zeros(len(d), dtype=np.int64)


def day_to_date(day: int) -> dt.date:
    """Return the calendar date of a day number."""
    return EPOCH_DATE + dt.timedelta(days=int(day))


def date_to_day(date: dt.date) -> int:
    """Return the day number of a calendar date."""
    return (date - EPOCH_DATE).days


def week_start_day(day: int) -> int:
    """Return the day number of the Monday starting the ISO week of `day`."""
    return int(day) - (int(day) + WEEK_SHIFT) % 7


def week_label(monday: dt.date) -> str:
    """Return the ISO week name of a date, e.g. `2026-W47`."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


_WEEK = re.compile(r"^(\d{4})-?W(\d{2})$", re.IGNORECASE)


def parse_week(text: str) -> dt.date:
    """Return the Monday of an ISO week given as `2026-W47`; raises UsageError naming the value otherwise."""
    match = _WEEK.match(text.strip())
    if not match:
        raise UsageError(f"`{text}` is not an ISO week; write it like 2026-W47.")
    try:
        return dt.date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
    except ValueError:
        raise UsageError(f"`{text}` is not an ISO week of that year.") from None


def to_utc(value: str | dt.date | dt.datetime | None, what: str = "time") -> dt.datetime | None:
    """Return a time bound as an aware UTC datetime.

    Accepts a datetime (naive means UTC), a date (midnight UTC), an ISO 8601 date or time string, or an
    ISO week (`2026-W47`, its Monday). Raises UsageError in one line for anything else.
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), UTC)
    text = str(value).strip()
    if _WEEK.match(text):
        return dt.datetime.combine(parse_week(text), dt.time(), UTC)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"--{what} `{text}` is not a date (2026-03-02), a time (2026-03-02T10:00Z) "
                         "or an ISO week (2026-W10).") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@dataclass(frozen=True)
class Period:
    """The analysed period: chains whose first attempt is in [since, until); None leaves a side open."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None

    @classmethod
    def of(cls, since: str | dt.date | dt.datetime | None = None,
           until: str | dt.date | dt.datetime | None = None) -> Period:
        """Return the period of two user-given bounds (see `to_utc`); raises UsageError when since ≥ until."""
        start, end = to_utc(since, "since"), to_utc(until, "until")
        if start is not None and end is not None and start >= end:
            raise UsageError("--since must be before --until (--until is exclusive).")
        return cls(start, end)

    @classmethod
    def week(cls, monday: dt.date) -> Period:
        """Return the ISO week starting on `monday`."""
        start = dt.datetime.combine(monday, dt.time(), UTC)
        return cls(start, start + dt.timedelta(days=7))

    @property
    def whole(self) -> bool:
        """True when the period is unbounded on both sides."""
        return self.since is None and self.until is None

    def where(self, ts: str) -> tuple[str, list[Any]]:
        """Return (SQL condition on TIMESTAMPTZ column `ts`, its bound parameters); `TRUE` when unbounded."""
        parts, params = [], []
        if self.since is not None:
            parts.append(f"{ts} >= ?")
            params.append(self.since)
        if self.until is not None:
            parts.append(f"{ts} < ?")
            params.append(self.until)
        return (" AND ".join(parts) or "TRUE"), params

    def where_since(self, ts: str) -> tuple[str, list[Any]]:
        """Return (SQL condition `ts >= since`, parameters): the bound that holds for every attempt of a chain."""
        if self.since is None:
            return "TRUE", []
        return f"{ts} >= ?", [self.since]


def week_of(date: dt.date) -> dt.date:
    """Return the Monday of the ISO week of a calendar date."""
    return day_to_date(week_start_day(date_to_day(date)))
