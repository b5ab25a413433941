"""The Spark engine merges nested spans of one call as the DuckDB engine does (docs/metrics.md §3.8): with the
same function (`ingest.formats.otel_nesting.merge_nested`), per file."""

from __future__ import annotations

import duckdb
import pytest
from builders import write_jsonl
from test_foreign_vocabularies_format import export, nested_spans

from fallbackscope.spark import store as sstore
from ingest.loader import ingest_paths

pytestmark = pytest.mark.spark


def test_spark_merges_an_outer_span_into_its_inner_one_and_drops_one_around_retries(spark, tmp_path):
    from fallbackscope.spark.ingest import ingest_spark

    outer, inner, retries, tries = nested_spans()
    path = write_jsonl(tmp_path / "spans.jsonl", [export(outer, inner), export(retries, *tries)])
    [duck] = ingest_paths(tmp_path / "t.duckdb", [str(path)])
    [spark_report] = ingest_spark(spark, str(tmp_path / "store"), [str(path)])
    counts = ("records", "attempts_loaded", "duplicates", "rejected")
    assert [getattr(spark_report, c) for c in counts] == [getattr(duck, c) for c in counts] == [5, 3, 2, 0]
    sql = "SELECT * EXCLUDE (load_id) FROM attempts ORDER BY attempt_id"
    con = duckdb.connect(str(tmp_path / "t.duckdb"), read_only=True)
    expected = con.execute(sql).fetchall()
    con.close()
    con = duckdb.connect()
    sstore.duckdb_views(con, tmp_path / "store")
    assert con.execute(sql).fetchall() == expected
    con.close()
