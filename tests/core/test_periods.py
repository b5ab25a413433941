"""UTC days and ISO weeks (docs/metrics.md §6): one rule, written in Python, numpy and SQL, that agree."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fallbackscope.core.errors import UsageError
from fallbackscope.core.periods import (
    Period,
    bucket_days,
    bucket_sql,
    day_sql,
    day_to_date,
    parse_week,
    to_utc,
    week_label,
    week_of,
    week_start_day,
    week_start_days,
)


def test_iso_weeks_start_on_monday_utc():
    monday = dt.date(2026, 11, 16)
    for offset in range(7):
        day = (monday + dt.timedelta(days=offset) - dt.date(1970, 1, 1)).days
        assert day_to_date(week_start_day(day)) == monday
    assert week_label(monday) == "2026-W47"
    assert parse_week("2026-W47") == monday
    assert week_label(dt.date(2026, 12, 28)) == "2026-W53"  # 2026 has 53 ISO weeks
    assert parse_week("2027-W01") == dt.date(2027, 1, 4)


def test_bad_week_and_bad_bounds_are_usage_errors():
    with pytest.raises(UsageError, match="2026-W47"):
        parse_week("week 47")
    with pytest.raises(UsageError, match="--since"):
        Period.of("2026-03-09", "2026-03-02")
    with pytest.raises(UsageError, match="yesterday"):
        to_utc("yesterday", "since")


def test_period_bounds_accept_dates_times_and_weeks_as_utc():
    assert to_utc("2026-03-02") == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert to_utc("2026-03-02T10:00:00+02:00") == dt.datetime(2026, 3, 2, 8, tzinfo=dt.UTC)
    assert to_utc("2026-W10") == dt.datetime(2026, 3, 2, tzinfo=dt.UTC)
    assert to_utc(dt.datetime(2026, 3, 2, 10)) == dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)
    week = Period.week(dt.date(2026, 3, 2))
    assert (week.since, week.until) == (dt.datetime(2026, 3, 2, tzinfo=dt.UTC), dt.datetime(2026, 3, 9, tzinfo=dt.UTC))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.datetimes(min_value=dt.datetime(1969, 12, 1), max_value=dt.datetime(2100, 1, 1),
                             timezones=st.just(dt.UTC)), min_size=1, max_size=20))
def test_sql_numpy_and_python_agree_on_days_and_weeks(times):
    con = duckdb.connect()
    con.execute("CREATE TABLE t (i INTEGER, ts TIMESTAMPTZ)")
    con.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(times)))
    day = day_sql("ts")
    got = con.execute(f"SELECT {day}, {bucket_sql(day, 'week')}, {bucket_sql(day, 'day')}, {bucket_sql(day, None)}"
                      " FROM t ORDER BY i").fetchall()
    days = [(t.date() - dt.date(1970, 1, 1)).days for t in times]
    mondays = [week_of(t.date()) for t in times]
    assert [g[0] for g in got] == days
    assert [day_to_date(g[1]) for g in got] == mondays
    assert all(m.weekday() == 0 for m in mondays)
    assert [week_label(m) for m in mondays] == [t.strftime("%G-W%V") for t in times]
    assert list(week_start_days(days)) == [g[1] for g in got] == [week_start_day(d) for d in days]
    assert list(bucket_days(days, "week")) == [g[1] for g in got]
    assert list(bucket_days(days, "day")) == [g[2] for g in got] == days
    assert list(bucket_days(np.array(days), None)) == [g[3] for g in got]


def test_a_session_time_zone_does_not_move_a_day():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
    ts = "TIMESTAMPTZ '2026-03-01 23:30:00+00'"
    day = con.execute(f"SELECT {day_sql(ts)}").fetchone()[0]
    assert day_to_date(day) == dt.date(2026, 3, 1)


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
