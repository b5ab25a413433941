"""Shared pieces of the analytics: the analysed period, Wilson rates, day and ISO-week buckets.

Days and weeks are UTC; weeks start Monday 00:00 (docs/metrics.md §6). Inside SQL a day is an integer, the number of
days since 1970-01-01, computed from `epoch_us(ts)` so that nothing depends on the session's time zone.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd

from fallbackscope.core.errors import UsageError

Z95 = 1.959964
UTC = dt.UTC
EPOCH_DATE = dt.date(1970, 1, 1)
US_PER_DAY = 86_400_000_000

TimeKey = Literal["day", "week"]

#: SQL: the attempt succeeded (docs/metrics.md §1, "resolved"): outcome ok and not rejected by the app.
SUCCESS = "(outcome = 'ok' AND accepted IS DISTINCT FROM false)"
#: SQL: an attempt "got a 2xx"; an attempt that returned a message without a recorded status counts too.
GOT_2XX = "(http_status BETWEEN 200 AND 299 OR (http_status IS NULL AND outcome IN ('ok', 'refusal')))"


def day_sql(ts: str) -> str:
    """Return SQL for the UTC day number (days since 1970-01-01) of TIMESTAMPTZ expression `ts`."""
    return f"CAST(floor(epoch_us({ts}) / {US_PER_DAY}) AS INTEGER)"


# ---------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """A fraction with its counts and Wilson 95% interval; `value` is None over nothing."""

    value: float | None
    numerator: int
    denominator: int
    ci95_low: float | None
    ci95_high: float | None

    @classmethod
    def of(cls, numerator: int | float, denominator: int | float) -> Rate:
        """Return the rate numerator / denominator with its Wilson 95% interval (None when denominator is 0)."""
        num, den = int(numerator or 0), int(denominator or 0)
        if den <= 0:
            return cls(None, num, den, None, None)
        low, high = wilson(num, den)
        return cls(num / den, num, den, low, high)

    def as_dict(self) -> dict[str, Any]:
        """Return the rate as the report's `{value, numerator, denominator, ci95_low, ci95_high}`."""
        return asdict(self)


def wilson(numerator: int, denominator: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval (low, high) of numerator / denominator; denominator must be > 0."""
    n = float(denominator)
    p = numerator / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if numerator <= 0 else max(0.0, centre - half)
    high = 1.0 if numerator >= denominator else min(1.0, centre + half)
    return low, high


def add_rate(df: pd.DataFrame, name: str, numerator: str, denominator: str) -> pd.DataFrame:
    """Add the columns `name`, `name_numerator`, `name_denominator`, `name_ci95_low`, `name_ci95_high`.

    Vectorised Wilson intervals; NaN (shown as null) where the denominator is 0. Returns `df` itself.
    """
    num = pd.to_numeric(df[numerator], errors="coerce").fillna(0).astype("int64").to_numpy()
    den = pd.to_numeric(df[denominator], errors="coerce").fillna(0).astype("int64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        n = den.astype(float)
        p = np.where(den > 0, num / np.where(den > 0, n, 1.0), np.nan)
        z2 = Z95 * Z95
        safe_n = np.where(den > 0, n, 1.0)
        centre = (p + z2 / (2 * safe_n)) / (1 + z2 / safe_n)
        half = Z95 * np.sqrt(np.clip(p * (1 - p) / safe_n + z2 / (4 * safe_n * safe_n), 0, None)) / (1 + z2 / safe_n)
        low = np.where(den > 0, np.where(num <= 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
        high = np.where(den > 0, np.where(num >= den, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    df[name] = p
    df[f"{name}_numerator"] = num
    df[f"{name}_denominator"] = den
    df[f"{name}_ci95_low"] = low
    df[f"{name}_ci95_high"] = high
    return df


RATE_COLUMNS = ["value", "numerator", "denominator", "ci95_low", "ci95_high"]


def rate_frame(table: pd.DataFrame, keys: list[str], numerator: str, denominator: str) -> pd.DataFrame:
    """Return `keys` + value, numerator, denominator, ci95_low, ci95_high of a rate over `table`'s rows."""
    out = table[keys].copy()
    tmp = add_rate(pd.DataFrame({"_n": table[numerator].values, "_d": table[denominator].values}), "r", "_n", "_d")
    for col, src in zip(RATE_COLUMNS, ["r", "r_numerator", "r_denominator", "r_ci95_low", "r_ci95_high"],
                        strict=True):
        out[col] = tmp[src].values
    return out.reset_index(drop=True)


def rate_from_row(row: pd.Series | dict[str, Any], name: str) -> Rate:
    """Return the Rate stored in the `name*` columns of a row made by `add_rate`."""
    return Rate.of(row[f"{name}_numerator"], row[f"{name}_denominator"])


RATE_SUFFIXES = ("_numerator", "_denominator", "_ci95_low", "_ci95_high")


def rate_names(columns: Sequence[str]) -> list[str]:
    """Return the names of the rates stored in `columns` by `add_rate`."""
    present = set(columns)
    return [c for c in columns if all(f"{c}{s}" in present for s in RATE_SUFFIXES)]


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or _isnan(numerator) or _isnan(denominator):
        return None
    if denominator == 0:
        return None
    return float(numerator) / float(denominator)


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def clean(value: Any) -> Any:
    """Return `value` as a plain JSON-able Python value: NaN/NA → None, numpy scalars → Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def money(value: Any) -> float | None:
    """Return a USD amount rounded to the micro-dollar, None when unknown."""
    value = clean(value)
    return None if value is None else round(float(value), 6)


# ---------------------------------------------------------------- days and weeks


def day_to_date(day: int) -> dt.date:
    """Return the calendar date of a day number."""
    return EPOCH_DATE + dt.timedelta(days=int(day))


def date_to_day(date: dt.date) -> int:
    """Return the day number of a calendar date."""
    return (date - EPOCH_DATE).days


def week_start_day(day: int) -> int:
    """Return the day number of the Monday starting the ISO week of `day`."""
    return int(day) - (int(day) + 3) % 7  # 1970-01-01 was a Thursday


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


# ---------------------------------------------------------------- temporary tables


@contextmanager
def temp_names(con: duckdb.DuckDBPyConnection, *stems: str) -> Iterator[dict[str, str]]:
    """Yield unique TEMP table names for `stems` and drop those tables afterwards.

    Unique names let two analyses share a connection's catalog without clashing.
    """
    tag = uuid.uuid4().hex[:10]
    names = {stem: f"fs_{stem}_{tag}" for stem in stems}
    try:
        yield names
    finally:
        for name in names.values():
            try:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            except duckdb.Error:  # the connection may already be closed
                pass


def fetch_df(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run a query and return its result as a DataFrame (strings as Python objects)."""
    return con.execute(sql, list(params)).df()


def money_sum_sql(expr: str) -> str:
    """Return SQL summing a USD expression exactly (as DECIMAL), so totals do not depend on DuckDB's
    thread count or summation order; the result is DOUBLE again."""
    return f"sum(({expr})::DECIMAL(38, 12))::DOUBLE"
