"""The Spark engine links like the DuckDB engine whatever the load order (docs/metrics.md §4, issue 20 item 2),
and a run's rows become visible only with its ledger rows (issue 20 item 7). Few examples: Spark is slow."""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relink_support import assert_same, attempts, chains, day_files, load_one_by_one, snapshot

from fallbackscope.spark import store as sstore

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> list[Path]:
    return day_files(tmp_path_factory.mktemp("days"))


@pytest.fixture(scope="module")
def in_time_order(days, tmp_path_factory):
    return snapshot(load_one_by_one(tmp_path_factory.mktemp("ref") / "t.duckdb", days))


def spark_snapshot(store: Path):
    con = duckdb.connect()
    try:
        sstore.duckdb_views(con, store)
        return attempts(con), chains(con)
    finally:
        con.close()


def load(spark, store: Path, paths: list[Path]) -> list:
    from fallbackscope.spark.ingest import ingest_spark

    return ingest_spark(spark, str(store), [str(p) for p in paths])


# one random order a run (Spark is slow); the DuckDB engine's test tries many
@settings(max_examples=1, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(4)).filter(lambda order: order != [0, 1, 2, 3]))
def test_spark_links_day_files_in_any_order_as_duckdb_in_time_order(spark, days, in_time_order, order):
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "store"
        for i in order:
            load(spark, store, [days[i]])
        got_rows, got_chains = spark_snapshot(store)
    assert_same(got_rows, in_time_order[0])
    assert got_chains == in_time_order[1]


def test_spark_links_several_files_of_one_run_as_in_time_order(spark, days, in_time_order, tmp_path):
    store = tmp_path / "store"
    load(spark, store, [days[2], days[0]])
    load(spark, store, [days[3], days[1]])
    got_rows, got_chains = spark_snapshot(store)
    assert_same(got_rows, in_time_order[0])
    assert got_chains == in_time_order[1]
