"""Rules both engines take from the same code (docs/metrics.md §2, §3, §11), each checked on both: the same
files give the same ledger rows, attempts and rejects. Every case is a place where the Spark engine once had
its own copy of a rule, and got it wrong: records counted by line on OTLP exports, gzip told by the name,
a grown file read whole again."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import duckdb
import pytest
from builders import exchange, message, request, write_jsonl
from test_otel_format import T0, TRACE, chat, export

from ingest.loader import LoadOptions, ingest_paths

RUN_COLUMNS = ("started_at", "finished_at")  # when a load ran: the only ledger columns that may differ


class DuckDBEngine:
    def __init__(self, folder: Path) -> None:
        self.db = folder / "t.duckdb"

    def load(self, paths: list[Path], **options) -> list:
        return ingest_paths(self.db, [str(p) for p in paths], LoadOptions(**options))

    def query(self, sql: str) -> list[tuple]:
        con = duckdb.connect(str(self.db), read_only=True)
        try:
            return con.execute(sql).fetchall()
        finally:
            con.close()


class SparkEngine:
    def __init__(self, spark, folder: Path) -> None:
        self.spark, self.store = spark, folder / "store"

    def load(self, paths: list[Path], **options) -> list:
        from fallbackscope.spark.ingest import SparkLoadOptions, ingest_spark

        return ingest_spark(self.spark, str(self.store), [str(p) for p in paths], SparkLoadOptions(**options))

    def query(self, sql: str) -> list[tuple]:
        """Run `sql` over the store's Parquet as its readers see it (views `attempts`, `loads`, `rejects`)."""
        from fallbackscope.spark.store import duckdb_views

        con = duckdb.connect()
        try:
            duckdb_views(con, self.store)
            return con.execute(sql).fetchall()
        finally:
            con.close()


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request, tmp_path):
    if request.param == "spark":
        return SparkEngine(request.getfixturevalue("spark"), tmp_path)
    return DuckDBEngine(tmp_path)


def counts(report) -> tuple:
    return report.status, report.records, report.attempts_loaded, report.duplicates, report.rejected


def ledger(engine) -> list[dict]:
    """The ledger's rows, in load order, without the columns that say when they ran."""
    names = [n for n in ("load_id", "path", "sha256", "format", "records", "attempts_loaded", "duplicates",
                         "rejected", "status", "file_size", "mtime_ns", "start_byte", "bytes_read", "lines_read",
                         "error")]
    rows = engine.query(f"SELECT {', '.join(names)} FROM loads ORDER BY load_id")
    return [dict(zip(names, row, strict=True)) for row in rows]


def good(i: int) -> dict:
    return exchange(f"2026-11-05T10:00:{i:02d}Z", request("claude-haiku-4-5", f"q {i}"),
                    message(f"msg_{i}", "claude-haiku-4-5"), session_id=f"s{i}")


# ---------------------------------------------------------------- records of an OTLP export line


def test_several_model_call_spans_on_one_line_are_records_each_deduplicated_on_its_own(engine, tmp_path):
    later = T0 + 5_000_000_000
    first = write_jsonl(tmp_path / "traces-1.jsonl", [
        export(chat("a1", "msg_o1"), chat("a2", "msg_o2"), chat("a3", None)),
        # a span repeated in the next export line, and an id twice in one line: the first record keeps it
        export(chat("a1", "msg_o1"), chat("a4", "msg_o4", start=later),
               chat("a5", "msg_o4", start=later, gen_ai__request__model="claude-opus-4-8")),
    ])
    [report] = engine.load([first])
    # 6 records (spans) on 2 lines: 4 loaded, 2 duplicates — never 2 loaded lines and 4 duplicates
    assert counts(report) == ("ok", 6, 4, 2, 0)
    assert (report.loaded, report.format) == (4, "otel")
    ids = engine.query("SELECT attempt_id, model FROM attempts ORDER BY attempt_id")
    assert [i for i, _ in ids] == ["msg_o1", "msg_o2", "msg_o4", f"otel:{TRACE}:a3"]
    assert dict(ids)["msg_o4"] == "claude-sonnet-4-5"  # record 2 of its line, not record 3
    second = write_jsonl(tmp_path / "traces-2.jsonl", [export(chat("a2", "msg_o2"), chat("a6", "msg_o6"))])
    [report] = engine.load([second])
    assert counts(report) == ("ok", 2, 1, 1, 0)
    assert [row["records"] for row in ledger(engine)] == [6, 2]


# ---------------------------------------------------------------- gzip, by its bytes


@pytest.mark.parametrize(("name", "compress"), [("exchange-log.jsonl", True), ("plain.jsonl.gz", False)],
                         ids=["gzip-without-.gz", "plain-named-.gz"])
def test_gzip_is_told_by_its_magic_bytes_not_by_its_name(engine, tmp_path, name, compress):
    text = b"".join(json.dumps(good(i)).encode() + b"\n" for i in range(4))
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if compress else text)
    [report] = engine.load([path])
    assert counts(report) == ("ok", 4, 4, 0, 0)
    assert engine.query("SELECT attempt_id FROM attempts ORDER BY 1") == [(f"msg_{i}",) for i in range(4)]
    [row] = ledger(engine)
    assert (row["format"], row["bytes_read"], row["lines_read"]) == ("exchange", len(text), 4)


# ---------------------------------------------------------------- a grown file


def test_a_grown_file_loads_only_its_new_records_and_the_ledger_says_where_it_stopped(engine, tmp_path):
    path = write_jsonl(tmp_path / "app.log", [good(0), good(1), good(2)])
    size = path.stat().st_size
    [first] = engine.load([path])
    assert counts(first) == ("ok", 3, 3, 0, 0)
    with open(path, "ab") as fh:  # two new records, a repeat of an old one, and a broken line
        fh.write(b"".join(json.dumps(r).encode() + b"\n" for r in (good(3), good(0), good(4))) + b"{broken\n")
    [second] = engine.load([path])
    assert counts(second) == ("ok", 4, 2, 1, 1)  # only the appended records: never the first three again
    assert engine.query("SELECT line_no, byte_offset, reason FROM rejects") == [
        (7, path.stat().st_size - len(b"{broken\n"), "invalid JSON")]
    assert engine.query("SELECT attempt_id, line_no FROM attempts ORDER BY line_no") == [
        ("msg_0", 1), ("msg_1", 2), ("msg_2", 3), ("msg_3", 4), ("msg_4", 6)]
    rows = ledger(engine)
    assert [(r["start_byte"], r["bytes_read"], r["lines_read"]) for r in rows] == [
        (0, size, 3), (size, path.stat().st_size, 7)]
    assert [r["status"] for r in rows] == ["ok", "ok"] and rows[0]["path"] == rows[1]["path"] == str(path.resolve())
    [third] = engine.load([path])
    assert counts(third) == ("skipped", 0, 0, 0, 0)


# ---------------------------------------------------------------- the ledger row


def test_both_engines_write_the_same_ledger_row(spark, tmp_path):
    """Every column of `loads`, equal in both engines (but when the loads ran), for a loaded file and a skip."""
    path = write_jsonl(tmp_path / "a.jsonl", [good(0), b"[1]", good(1)])
    copy = tmp_path / "b.jsonl"
    copy.write_bytes(path.read_bytes())
    duck, spark_engine = DuckDBEngine(tmp_path), SparkEngine(spark, tmp_path)
    for engine in (duck, spark_engine):
        engine.load([path, copy])
    columns = [row[0] for row in duck.query("DESCRIBE loads")]
    assert [row[0] for row in spark_engine.query("DESCRIBE loads")] == columns
    kept = [c for c in columns if c not in RUN_COLUMNS]
    sql = f"SELECT {', '.join(kept)} FROM loads ORDER BY load_id"
    assert spark_engine.query(sql) == duck.query(sql)
    assert [row[0] for row in duck.query("SELECT status FROM loads ORDER BY load_id")] == ["ok", "skipped"]
