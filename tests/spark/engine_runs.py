"""The command line on both engines as a user runs it — `ingest`, `metrics` and `report weekly` in subprocesses
on the same inputs — and the comparison of what the two store and print, field by field (the helpers of
test_spark_engine). Used by the plain-Python test (local mode) and the standalone-cluster test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import spark_tuning
from builders import KEY
from test_spark_engine import SAMPLE, assert_same, assert_same_rows

# the week 2026-W45 of the committed sample and the day after it: every format path of the exchange files, small
INPUTS = [str(p) for p in sorted(SAMPLE.glob("exchange-2026-11-0[2-9].jsonl.gz"))]
WEEK = "2026-W45"
SPARK_TUNING = spark_tuning.SPARK_TUNING


def user_env(**extra: str) -> dict[str, str]:
    """Return the environment of a user's shell: no PYSPARK_PYTHON (nothing chooses the workers' Python for
    fallbackscope), the tests' fingerprint key (both engines' fingerprints comparable)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                                                            "FALLBACKSCOPE_DB")}
    env["FALLBACKSCOPE_KEY"] = KEY
    env.update(extra)
    return env


def fallbackscope(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    """Run the command line (the running interpreter's fallbackscope); return its stdout, or fail with its
    stderr's tail."""
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=timeout)
    assert proc.returncode == 0, f"fallbackscope {' '.join(args[:2])} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    return proc.stdout


def engine_results(folder: Path, db: str, env: dict[str, str], engine: tuple[str, ...] = ()) -> dict:
    """Run `ingest` of INPUTS, `metrics --by week` and `report weekly --week WEEK` (JSON) on one engine (`engine`:
    its options, none for DuckDB); return what each printed."""
    ingest = fallbackscope(["ingest", *INPUTS, "--db", db, *engine], env, folder)
    metrics = fallbackscope(["metrics", "--db", db, "--by", "week", "--format", "json", *engine], env, folder)
    report = fallbackscope(["report", "weekly", "--db", db, "--week", WEEK, "--format", "json", *engine], env, folder)
    return {"ingest": ingest.splitlines(), "metrics": json.loads(metrics), "report": json.loads(report)}


def assert_engines_agree(duck: dict, db: Path, spark: dict, store: Path) -> None:
    """The two engines stored the same attempt rows and printed the same file reports, metrics and report."""
    assert assert_same_rows(db, store) > 300
    assert spark["ingest"] == duck["ingest"] and len(duck["ingest"]) == len(INPUTS)
    assert duck["report"]["totals"]["chains"] > 100
    assert_same(duck["metrics"], spark["metrics"], "metrics")
    assert_same(duck["report"], spark["report"], "report")
