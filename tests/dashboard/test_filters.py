"""The shared filters and their place in the URL."""

from __future__ import annotations

import datetime as dt

from dashboard.filters import Filters
from fallbackscope.core.periods import UTC

D = dt.date


def test_filters_round_trip_through_the_url():
    f = Filters(D(2026, 10, 19), D(2026, 11, 15), ("support-chat", "code-assist"), ("claude-opus-4-8",),
                ("bedrock",))
    query = f.to_query()
    assert query == ("?from=2026-10-19&to=2026-11-15&workload=code-assist&workload=support-chat"
                     "&model=claude-opus-4-8&surface=bedrock")
    assert Filters.from_query(query) == f
    assert Filters.from_store(f.to_store()) == f


def test_no_filters_make_an_empty_query():
    assert Filters().to_query() == ""
    assert Filters.from_query("") == Filters()
    assert Filters.from_query(None) == Filters()


def test_unreadable_values_are_ignored_and_names_deduplicated():
    f = Filters.from_query("?from=yesterday&to=2026-11-15&workload=a&workload=a&workload=&color=red")
    assert f == Filters(None, D(2026, 11, 15), ("a",))


def test_names_with_url_characters_survive():
    f = Filters(workloads=("a&b=c", "é ü"))
    assert Filters.from_query(f.to_query()) == f


def test_a_range_given_backwards_is_turned_round():
    assert Filters(D(2026, 11, 15), D(2026, 10, 19)) == Filters(D(2026, 10, 19), D(2026, 11, 15))


def test_default_range_is_the_last_28_days_with_data():
    f = Filters().with_default_range(D(2026, 9, 1), D(2026, 11, 15))
    assert (f.since, f.until) == (D(2026, 10, 19), D(2026, 11, 15))


def test_default_range_does_not_start_before_the_data():
    f = Filters().with_default_range(D(2026, 11, 10), D(2026, 11, 15))
    assert (f.since, f.until) == (D(2026, 11, 10), D(2026, 11, 15))


def test_given_dates_are_kept():
    f = Filters(D(2026, 11, 1)).with_default_range(D(2026, 9, 1), D(2026, 11, 15))
    assert (f.since, f.until) == (D(2026, 11, 1), D(2026, 11, 15))


def test_period_includes_the_last_day_whole():
    p = Filters(D(2026, 11, 2), D(2026, 11, 8)).period()
    assert p.since == dt.datetime(2026, 11, 2, tzinfo=UTC)
    assert p.until == dt.datetime(2026, 11, 9, tzinfo=UTC)


def test_scope_is_models_and_surfaces():
    assert Filters(workloads=("w",), models=("m",), surfaces=("s",)).scope == (("m",), ("s",))
