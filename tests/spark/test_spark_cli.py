"""`--engine` on the command line: bad values are usage errors (exit 2, one line) before Spark starts."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.spark


def fallbackscope(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True)


def test_unknown_engine_is_a_usage_error(tmp_path):
    proc = fallbackscope("report", "weekly", "--engine", "flink", "--db", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--engine `flink`" in proc.stderr


def test_prices_with_spark_engine_is_refused_in_one_line(tmp_path):
    log = tmp_path / "x.jsonl"
    log.write_text("")
    proc = fallbackscope("ingest", str(log), "--engine", "spark", "--db", str(tmp_path / "store"),
                         "--prices", str(tmp_path / "p.toml"))
    assert proc.returncode == 2
    assert "--prices is not supported with --engine spark" in proc.stderr
    assert not (tmp_path / "store").exists()


def test_spark_conf_must_be_key_value(tmp_path):
    proc = fallbackscope("metrics", "--engine", "spark", "--db", str(tmp_path / "store"), "--spark-conf", "oops")
    assert proc.returncode == 2 and "--spark-conf `oops` is not key=value" in proc.stderr


def test_store_location_keeps_uris_and_defaults(monkeypatch):
    from fallbackscope.engines import store_location

    monkeypatch.delenv("FALLBACKSCOPE_DB", raising=False)
    assert store_location(None) == "fallbackscope-store"
    from pathlib import Path

    assert store_location(Path("s3://bucket/prefix")) == "s3://bucket/prefix"
    monkeypatch.setenv("FALLBACKSCOPE_DB", "gs://b/s")
    assert store_location(None) == "gs://b/s"


def test_the_duckdb_path_never_imports_spark():
    code = ("import sys, fallbackscope.cli, ingest.loader, fallbackscope.render.report, fallbackscope.render.files; "
            "print(sorted(m for m in ('pyspark', 'sqlglot', 'py4j') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr
