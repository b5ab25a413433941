"""Object-store inputs with the Spark engine (docs/metrics.md §11): the DuckDB engine's rules from the same code,
against moto's S3 server on loopback. The driver lists and hashes the objects; the executors (Python workers)
read their byte ranges with the credentials of their own environment — here the session's worker environment,
as a cluster gives its executors theirs.

One scenario, few tiny objects (Spark is slow): a prefix loads like the same files in a local folder (gzip told
by content); a second run reads no object; a new object loads alone and a rewritten one only its new records;
the ledger names each object by its URL; no credential reaches the store, the Spark log or a report.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
pytest.importorskip("moto")

from s3server import ACCESS_KEY, SECRET_KEY, inputs, jsonl, new_bucket, put, records, s3_server

pytestmark = pytest.mark.spark


@pytest.fixture
def s3(spark, monkeypatch):
    """The S3 server, its credentials in the driver's environment and in the executors' (the session's worker
    environment: the Python functions of a run carry it to their workers)."""
    server = s3_server()
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
        monkeypatch.setitem(spark.sparkContext.environment, name, value)
    return server


def ledger(spark, store: Path, since: int = 0) -> list[tuple]:
    """(path, status, records, attempts_loaded, duplicates, sha256, object_version) of the loads after `since`."""
    from fallbackscope.spark.store import Store

    rows = Store(spark, str(store)).loads().where(f"load_id > {since}").orderBy("load_id").collect()
    return [(r.path, r.status, r.records, r.attempts_loaded, r.duplicates, r.sha256, r.object_version) for r in rows]


def attempts(spark, store: Path) -> list[tuple]:
    from fallbackscope.spark.store import Store

    frame = Store(spark, str(store)).attempts().drop("load_id").orderBy("attempt_id")
    return [tuple(row) for row in frame.collect()]


def test_an_s3_prefix_loads_like_a_local_folder_and_only_what_changed_is_read_again(spark, s3, tmp_path):
    from fallbackscope.spark.ingest import ingest_spark

    bucket = f"spark-{uuid.uuid4().hex[:12]}"
    new_bucket(s3, bucket)
    files = inputs()
    put(s3, bucket, files)
    url = f"s3://{bucket}/logs/"
    local = tmp_path / "logs"
    for name, body in files.items():
        (local / name).parent.mkdir(parents=True, exist_ok=True)
        (local / name).write_bytes(body)
    store, local_store = tmp_path / "store", tmp_path / "local-store"
    reports = ingest_spark(spark, str(store), [url])
    ingest_spark(spark, str(local_store), [str(local)])

    # the same attempts as the local folder's, and the same ledger but for the names
    assert [r.status for r in reports] == ["ok"] * 3
    from_s3 = attempts(spark, store)
    assert len(from_s3) > 50 and from_s3 == attempts(spark, local_store)
    first = ledger(spark, store)
    assert [row[1:6] for row in first] == [row[1:6] for row in ledger(spark, local_store)]
    assert [row[0] for row in first] == [url + name for name in ("a.jsonl", "day.log", "sub/day2.jsonl.gz")]
    assert [row[5] for row in first] == [hashlib.sha256(files[row[0].removeprefix(url)]).hexdigest() for row in first]
    assert all(row[6] for row in first)  # each object's ETag
    assert first[1][2] > 10  # day.log, a gzip without `.gz` in its name, read as gzip

    # a second run reads no object: every one skipped by its size and ETag
    reads = len(s3.object_reads(bucket))
    assert [r.status for r in ingest_spark(spark, str(store), [url])] == ["skipped"] * 3
    assert s3.object_reads(bucket)[reads:] == []

    # a new object loads alone; a rewritten one only its new records, the rest duplicates; the others unread
    put(s3, bucket, {"b.jsonl": jsonl(records("b", 4)),
                     "a.jsonl": jsonl(records("a", 6)[::-1] + records("a", 3, start=6))})
    before, reads = max(row[0] for row in _load_ids(spark, store)), len(s3.object_reads(bucket))
    ingest_spark(spark, str(store), [url])
    assert set(s3.object_reads(bucket)[reads:]) == {"logs/a.jsonl", "logs/b.jsonl"}
    third = {row[0].removeprefix(url): row[1:5] for row in ledger(spark, store, before)}
    assert third == {"a.jsonl": ("ok", 9, 3, 6), "b.jsonl": ("ok", 4, 4, 0), "day.log": ("skipped", 0, 0, 0),
                     "sub/day2.jsonl.gz": ("skipped", 0, 0, 0)}
    assert len(attempts(spark, store)) == len(from_s3) + 3 + 4

    # the canary: no credential in any file of the store, in Spark's files and log, or in what the runs returned
    written = [p for p in [*store.rglob("*"), *_spark_files(spark)] if p.is_file()]
    assert any(p.name == "spark.log" for p in written)  # Spark's own log is among them
    for canary in (ACCESS_KEY, SECRET_KEY):
        assert not [p for p in written if canary.encode() in p.read_bytes()], canary
        assert canary not in repr(reports)


def _load_ids(spark, store: Path) -> list[tuple]:
    from fallbackscope.spark.store import Store

    return [(r.load_id,) for r in Store(spark, str(store)).loads().select("load_id").collect()]


def _spark_files(spark) -> list[Path]:
    """The files under the session's local dirs' parent: its temp files, checkpoints and log (tests/spark/conftest.py
    puts them under one root)."""
    local_dir = spark.sparkContext.getConf().get("spark.local.dir", "")
    root = Path(local_dir).parent if local_dir else None
    return list(root.rglob("*")) if root is not None and root.exists() else []


def test_a_store_written_before_object_versions_still_opens_and_skips_what_it_loaded(spark, tmp_path):
    import duckdb
    import pyarrow.parquet as pq

    from fallbackscope.spark.ingest import ingest_spark
    from fallbackscope.spark.store import Store, duckdb_views

    log = tmp_path / "a.jsonl"
    log.write_bytes(jsonl(records("old", 3)))
    store = tmp_path / "store"
    ingest_spark(spark, str(store), [str(log)])
    for part in (store / "loads").iterdir():  # the ledger as a fallbackscope before migration 007 wrote it
        if part.suffix == ".crc":
            part.unlink()
        elif part.suffix == ".parquet":
            pq.write_table(pq.read_table(part).drop(["object_version"]), part)
    assert Store(spark, str(store)).loads().first().object_version is None
    assert [r.status for r in ingest_spark(spark, str(store), [str(log)])] == ["skipped"]
    con = duckdb.connect()
    try:
        duckdb_views(con, store)  # old and new ledger files together, read by column name
        assert con.execute("SELECT status, object_version FROM loads ORDER BY load_id").fetchall() == [
            ("ok", None), ("skipped", None)]
    finally:
        con.close()


def test_an_executors_own_sentence_reaches_the_user_as_it_was_said():
    """An object that vanished between listing and reading fails in an executor with our one sentence, which Spark
    passes back inside a Python traceback: the user reads that sentence, not `the Spark job failed (…Error)`."""
    from fallbackscope.spark.ingest import _own_sentence

    trace = ("Job aborted due to stage failure: Task 0 in stage 3.0 failed\nTraceback (most recent call last):\n"
             '  File "/x/ingest/sources.py", line 90, in read_range\n'
             "fallbackscope.core.errors.FallbackscopeError: s3://logs/day/b.jsonl: cannot read the object (no such "
             "object or bucket).\n\tat org.apache.spark.api.python.BasePythonRunner")
    said = "s3://logs/day/b.jsonl: cannot read the object (no such object or bucket)."
    assert _own_sentence(Exception(trace)) == said
    assert _own_sentence(Exception("Traceback\nValueError: bad value in record")) is None
    assert _own_sentence(Exception("a line: FallbackscopeError: quoted in prose")) is None
