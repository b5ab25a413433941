"""`fallbackscope export parquet`: the attempts table as Parquet partitioned by UTC day (Hive layout), read
back with DuckDB and compared row by row and column by column with the table."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from fallbackscope.core import store
from fallbackscope.core.errors import UsageError
from fallbackscope.export import day_bounds, export_parquet

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from dashboard_support import load_sample  # noqa: E402


def read_back(folder: Path) -> str:
    """The SQL source of an export as any Hive-aware reader sees it."""
    glob = str(folder / "attempts" / "**" / "*.parquet").replace("'", "''")
    return f"read_parquet('{glob}', hive_partitioning = true)"


def day_dirs(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "attempts").iterdir())


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("export") / "sample.duckdb"
    load_sample(db)
    return db


def assert_same_rows(db: Path, folder: Path, where: str = "TRUE") -> int:
    """Compare the export with the table: same columns in order, same rows (as multisets), the day folder
    of each row its UTC day. Returns the row count."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        columns = store.attempt_columns(con)
        source = read_back(folder)
        described = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()]
        assert described == [*columns, "day"]  # every column in table order, then the partition key
        ts_type = con.execute(f"SELECT typeof(ts) FROM {source} LIMIT 1").fetchone()[0]
        assert ts_type == "TIMESTAMP WITH TIME ZONE"
        table = f"(SELECT * FROM attempts WHERE {where})"
        exported = f"(SELECT * EXCLUDE (day) FROM {source})"
        assert con.execute(f"SELECT count(*) FROM ({table} EXCEPT ALL {exported})").fetchone()[0] == 0
        assert con.execute(f"SELECT count(*) FROM ({exported} EXCEPT ALL {table})").fetchone()[0] == 0
        n_table = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert con.execute(f"SELECT count(*) FROM {exported}").fetchone()[0] == n_table
        wrong_day = con.execute(f"SELECT count(*) FROM {source} WHERE day <> CAST(timezone('UTC', ts) AS DATE)")
        assert wrong_day.fetchone()[0] == 0
        days = con.execute(f"SELECT DISTINCT strftime(timezone('UTC', ts), '%Y-%m-%d') FROM {table}").fetchall()
        assert day_dirs(folder) == sorted(f"day={d}" for (d,) in days)
        return n_table
    finally:
        con.close()


def test_export_holds_every_row_and_column_of_the_table_partitioned_by_day(sample_db, tmp_path):
    before = hashlib.sha256(sample_db.read_bytes()).hexdigest()
    result = export_parquet(sample_db, tmp_path / "out")
    rows = assert_same_rows(sample_db, tmp_path / "out")
    assert result.rows == rows > 1000 and len(result.days) == 28
    assert hashlib.sha256(sample_db.read_bytes()).hexdigest() == before  # opened read-only
    for day in (tmp_path / "out" / "attempts").iterdir():
        assert all(f.suffix == ".parquet" and f.name.startswith("attempts_") for f in day.iterdir())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["attempts"]  # no staging left behind


def test_exporting_again_into_the_same_folder_duplicates_nothing(sample_db, tmp_path):
    out = tmp_path / "out"
    export_parquet(sample_db, out)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet"))
    export_parquet(sample_db, out)
    export_parquet(sample_db, out, since="2026-10-25", until="2026-10-27")  # a part of it again
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.parquet")) == files
    assert_same_rows(sample_db, out)


def test_bounds_select_whole_utc_days_and_leave_other_days_alone(sample_db, tmp_path):
    out = tmp_path / "out"
    result = export_parquet(sample_db, out, since="2026-11-02T13:00:00Z", until="2026-11-04T00:30:00+00:00")
    # widened to whole days: 2026-11-02 up to (not including) 2026-11-05
    assert [d.isoformat() for d in result.days] == ["2026-11-02", "2026-11-03", "2026-11-04"]
    assert_same_rows(sample_db, out, "ts >= TIMESTAMPTZ '2026-11-02 00:00:00+00'"
                                     " AND ts < TIMESTAMPTZ '2026-11-05 00:00:00+00'")
    week = export_parquet(sample_db, out, since="2026-W44", until="2026-W45")  # 2026-10-26 .. 2026-11-01
    assert len(week.days) == 7
    assert len(day_dirs(out)) == 10


def test_a_day_of_the_range_without_attempts_loses_its_stale_folder(sample_db, tmp_path):
    out = tmp_path / "out"
    export_parquet(sample_db, out)
    stale_in, stale_out = out / "attempts" / "day=2026-11-20", out / "attempts" / "day=2020-01-01"
    for stale in (stale_in, stale_out):
        stale.mkdir()
        (stale / "attempts_0.parquet").write_bytes(b"not a parquet file")
    result = export_parquet(sample_db, out, since="2026-11-15", until="2026-11-30")
    assert [d.isoformat() for d in result.removed] == ["2026-11-20"]
    assert not stale_in.exists() and stale_out.exists()  # outside the range: not ours to judge
    export_parquet(sample_db, out)  # unbounded: the folder mirrors the table
    assert not stale_out.exists()
    assert_same_rows(sample_db, out)


def test_day_bounds():
    utc = dt.UTC
    assert day_bounds(None, None) == (None, None)
    assert day_bounds("2026-11-02", "2026-11-04") == (dt.datetime(2026, 11, 2, tzinfo=utc),
                                                      dt.datetime(2026, 11, 4, tzinfo=utc))
    assert day_bounds("2026-11-02T23:59:59+02:00", "2026-11-03T00:00:01Z") == (
        dt.datetime(2026, 11, 2, tzinfo=utc), dt.datetime(2026, 11, 4, tzinfo=utc))
    with pytest.raises(UsageError):
        day_bounds("2026-11-04", "2026-11-04")
    with pytest.raises(UsageError):
        day_bounds("yesterday", None)


def test_cli_export_prints_one_line_and_fails_cleanly(sample_db, tmp_path):
    proc = cli("export", "parquet", str(tmp_path / "out"), "--db", str(sample_db), "--since", "2026-11-01")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == [
        f"wrote {proc.stdout.split()[1]} attempts in 15 day partitions to {tmp_path / 'out' / 'attempts'}"]
    bad = cli("export", "parquet", str(tmp_path / "x"), "--db", str(sample_db), "--until", "soon")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--until" in bad.stderr
    missing = cli("export", "parquet", str(tmp_path / "x"), "--db", str(tmp_path / "none.duckdb"))
    assert missing.returncode == 1 and "no such database" in missing.stderr and "Traceback" not in missing.stderr
    blocked = tmp_path / "file"
    blocked.write_text("a file where the folder should be")
    proc = cli("export", "parquet", str(blocked), "--db", str(sample_db))
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def _privacy_module():
    path = ROOT / "tests" / "ingest" / "test_privacy_canaries.py"
    spec = importlib.util.spec_from_file_location("privacy_canaries", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_an_export_of_the_canary_database_holds_no_canary(tmp_path):
    privacy = _privacy_module()
    folder = tmp_path / "logs"
    inputs = privacy.write_inputs(folder)
    canaries = privacy.planted(folder)
    db = tmp_path / "p.duckdb"
    for path, options in inputs:
        proc = cli("ingest", str(path), "--db", str(db), *options)
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out"
    result = export_parquet(db, out)
    assert result.rows >= 8
    con = duckdb.connect()
    values = con.execute(f"SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), ' ') FROM {read_back(out)}").fetchone()
    blobs = {"values": " ".join(str(v) for v in values).encode()}
    blobs.update({str(f): f.read_bytes() for f in out.rglob("*") if f.is_file()})
    for name, blob in blobs.items():
        for c in canaries:
            assert c.encode() not in blob, f"{c} leaked into {name}"
