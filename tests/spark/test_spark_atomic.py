"""Spark loads are atomic per file (issue 20 item 7): a run's rows become visible only with its ledger rows,
written last as the commit marker; readers and re-runs leave out rows whose load has no ledger row."""

from __future__ import annotations

import duckdb
import pytest
from builders import exchange, message, request, write_jsonl

from fallbackscope.core.errors import FallbackscopeError
from fallbackscope.spark import store as sstore

pytestmark = pytest.mark.spark


def read(store, sql: str) -> list[tuple]:
    con = duckdb.connect()
    try:
        sstore.duckdb_views(con, store)
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_run_that_fails_before_its_ledger_leaves_nothing_readers_or_the_rerun_see(spark, tmp_path, monkeypatch):
    from fallbackscope.spark.ingest import ingest_spark

    log = write_jsonl(tmp_path / "a.jsonl", [
        exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"), message("m1", "claude-haiku-4-5")),
        b"{not json"])
    store = tmp_path / "store"

    def crash(self, rows):
        raise RuntimeError("the driver died before the ledger was written")

    with monkeypatch.context() as patch:
        patch.setattr(sstore.Store, "append_loads", crash)
        with pytest.raises(RuntimeError):
            ingest_spark(spark, str(store), [str(log)])
    assert list((store / "attempts").rglob("*.parquet")) and list((store / "rejects").glob("*.parquet"))  # written
    assert read(store, "SELECT count(*) FROM attempts") == [(0,)]  # … but not committed: nobody reads them
    assert read(store, "SELECT count(*) FROM rejects") == [(0,)]
    assert sstore.Store(spark, store).attempts().count() == 0

    [report] = ingest_spark(spark, str(store), [str(log)])
    assert (report.status, report.attempts_loaded, report.duplicates, report.rejected) == ("ok", 1, 0, 1)
    assert read(store, "SELECT attempt_id, load_id FROM attempts") == [("m1", report.load_id)]
    assert read(store, "SELECT load_id, line_no, reason FROM rejects") == [(report.load_id, 2, "invalid JSON")]
    assert read(store, "SELECT load_id, status FROM loads") == [(report.load_id, "ok")]


def test_a_store_written_with_another_key_is_refused_before_anything_is_written(spark, tmp_path, monkeypatch):
    from fallbackscope.spark.ingest import ingest_spark

    log = write_jsonl(tmp_path / "a.jsonl", [exchange("2026-11-02T00:00:00Z", request("claude-haiku-4-5"),
                                                      message("m1", "claude-haiku-4-5"))])
    store = tmp_path / "store"
    ingest_spark(spark, str(store), [str(log)])
    before = sorted(p.relative_to(store) for p in store.rglob("*"))
    monkeypatch.setenv("FALLBACKSCOPE_KEY", "another key")
    with pytest.raises(FallbackscopeError, match="written with another fingerprint key"):
        ingest_spark(spark, str(store), [str(log)])
    assert sorted(p.relative_to(store) for p in store.rglob("*")) == before
