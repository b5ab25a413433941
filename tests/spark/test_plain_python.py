"""Local Spark from a plain virtual environment (issue 19): no PYSPARK_PYTHON, and a `python3` on the PATH that has
none of fallbackscope's dependencies — as on a machine whose system Python is not the venv fallbackscope was
installed into. The workers must run the Python running fallbackscope, and the key must reach them as a broadcast
value, never in the Spark configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from builders import KEY
from engine_runs import SPARK_TUNING, assert_engines_agree, engine_results, user_env

pytestmark = pytest.mark.spark


def bare_python_first_on_path(folder: Path) -> str:
    """Write `python3` and `python` into `folder/bin` — this interpreter without its site-packages (`-S`), so
    without pyarrow, pandas or fallbackscope — and return a PATH that finds them first."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python3", "python"):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
        shim.chmod(0o755)
    probe = subprocess.run([str(bin_dir / "python3"), "-c", "import pyarrow"], capture_output=True, text=True)
    assert probe.returncode != 0 and "No module named 'pyarrow'" in probe.stderr  # the user's bare python3
    return f"{bin_dir}{os.pathsep}{user_env()['PATH']}"


@pytest.mark.slow
def test_local_spark_from_a_plain_venv_equals_duckdb_without_pyspark_python(tmp_path, duckdb_runs):
    duck, db = duckdb_runs
    env = user_env(PATH=bare_python_first_on_path(tmp_path))
    store = tmp_path / "store"
    spark = engine_results(tmp_path, str(store), env, ("--engine", "spark", "--spark-master", "local[2]",
                                                       *SPARK_TUNING))
    assert_engines_agree(duck, db, spark, store)


def test_workers_run_the_running_python_in_local_mode_unless_told_otherwise(monkeypatch):
    from fallbackscope.spark.session import workers_python

    monkeypatch.delenv("PYSPARK_PYTHON", raising=False)
    assert workers_python("local[*]", None) == sys.executable
    assert workers_python("local-cluster[2,1,1024]", None) == sys.executable
    assert workers_python("local[2]", "/opt/py/bin/python3") == "/opt/py/bin/python3"  # spark.pyspark.python
    assert workers_python("spark://10.0.0.5:7077", None) is None  # a cluster's nodes: the cluster's Python
    assert workers_python("yarn", "/opt/py/bin/python3") == "/opt/py/bin/python3"
    monkeypatch.setenv("PYSPARK_PYTHON", "/usr/bin/python3.12")
    assert workers_python("local[*]", "/opt/py/bin/python3") is None  # PySpark itself read PYSPARK_PYTHON


def test_the_tests_session_workers_run_this_interpreter(spark):
    assert spark.sparkContext.pythonExec == sys.executable
    ran = spark.sparkContext.parallelize([0], 1).map(lambda _: __import__("sys").executable).collect()
    assert ran == [sys.executable]


def test_the_key_reaches_the_executors_as_a_broadcast_never_in_the_spark_configuration(spark, tmp_path,
                                                                                         monkeypatch):
    from pyspark import cloudpickle

    from fallbackscope.spark import ingest as spark_ingest
    from ingest.message import Context

    sc = spark.sparkContext
    broadcast = []
    real = sc.broadcast

    def recording(value):
        broadcast.append(value)
        return real(value)

    monkeypatch.setattr(sc, "broadcast", recording)
    sample = Path(__file__).resolve().parents[2] / "sample_data" / "exchange-2026-11-02.jsonl.gz"
    [report] = spark_ingest.ingest_spark(spark, str(tmp_path / "store"), [str(sample)])
    assert report.attempts_loaded > 0
    [ctx] = [value for value in broadcast if isinstance(value, Context)]
    assert ctx.key == KEY.encode()
    secrets = (KEY, KEY.encode().hex())
    settings = [*sc.getConf().getAll(), *spark.conf.getAll.items()]
    assert settings and not [kv for kv in settings if any(s in str(kv) for s in secrets)]
    # the parsing function the executors receive holds the broadcast's id, not the key
    shared = real(ctx)
    pickled = cloudpickle.dumps(spark_ingest._parse_units(shared))
    shared.unpersist()  # not destroyed: pickling registered it for the session's next Python job
    sc._pickled_broadcast_vars.clear()
    assert KEY.encode() not in pickled and KEY.encode().hex().encode() not in pickled
