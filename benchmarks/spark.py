"""The price of the cluster path: the Spark engine on one machine against the DuckDB engine (issue 8).

    python benchmarks/spark.py [--input benchmarks/out/exchange-1000000.jsonl] [--lines N] [--repeat 1]

Both sides run as a user runs them — `fallbackscope ingest FILE` and `fallbackscope report weekly
--format json` as subprocesses — on the same input, into a fresh store each run: a DuckDB file for
`--engine duckdb`, a Parquet folder for `--engine spark --spark-master local[*]`. Prints both times, the
ratios (Spark / DuckDB; Spark is expected to be slower on one machine), the input size and the machine.
Without the 1,000,000-line file, `--lines N` generates one with the project's generator.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE / "out" / "exchange-1000000.jsonl"


def run(args: list[str], env: dict[str, str]) -> float:
    """Run a fallbackscope command; return its wall time in seconds (raises when it fails)."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], env=env, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    return elapsed


def measure(engine: str, source: Path, work: Path, env: dict[str, str], spark_args: list[str]) -> tuple[float, float]:
    """Return (ingest seconds, weekly report seconds) of one engine on a fresh store."""
    store = work / ("db.duckdb" if engine == "duckdb" else "store")
    for leftover in (store, work / "db.duckdb.key", work / "store.key", work / "db.duckdb.wal"):
        if leftover.is_dir():
            shutil.rmtree(leftover)
        elif leftover.exists():
            leftover.unlink()
    extra = spark_args if engine == "spark" else []
    ingest = run(["ingest", str(source), "--db", str(store), "--engine", engine, *extra], env)
    report = run(["report", "weekly", "--db", str(store), "--format", "json", "--out", str(work / f"{engine}.json"),
                  "--engine", engine, *extra], env)
    return ingest, report


def generated(lines: int, folder: Path) -> Path:
    """Return an exchange file of `lines` realistic lines written by `fallbackscope sample --lines`."""
    subprocess.run([sys.executable, "-m", "fallbackscope.cli", "sample", str(folder / "gen"), "--lines", str(lines)],
                   check=True, stdout=subprocess.DEVNULL)
    return folder / "gen" / "exchange-bench.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT)
    parser.add_argument("--lines", type=int, default=None, help="generate this many lines instead of --input")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--spark-master", default="local[*]")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fs-spark-bench-"))
    env = dict(os.environ, FALLBACKSCOPE_KEY=os.environ.get("FALLBACKSCOPE_KEY", "benchmark-key"))
    source = generated(args.lines, work) if args.lines else args.input
    if not source.exists():
        raise SystemExit(f"{source}: no such file (run benchmarks/ingest.py first, or pass --lines N)")
    lines = sum(1 for _ in open(source, "rb"))
    spark_args = ["--spark-master", args.spark_master, "--spark-conf", "spark.driver.memory=4g",
                  "--spark-conf", f"spark.local.dir={work / 'spark-local'}"]
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.repeat):
            for engine in ("duckdb", "spark"):  # interleaved, so load swings hit both sides
                ingest, report = measure(engine, source, work, env, spark_args)
                old = best.get(engine, (float("inf"), float("inf")))
                best[engine] = (min(old[0], ingest), min(old[1], report))
                print(f"  {engine}: ingest {ingest:.1f} s, report {report:.1f} s", flush=True)
        reports = [json.loads((work / f"{engine}.json").read_text()) for engine in ("duckdb", "spark")]
        same = _same_report(*reports)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    mem = psutil.virtual_memory().total / 2**30
    print(f"input: {source} ({lines:,} lines, {source.stat().st_size / 2**20:,.0f} MiB)")
    print(f"machine: {os.cpu_count()} cores, {mem:.0f} GiB; load average {os.getloadavg()[0]:.1f}; "
          f"best of {args.repeat}")
    (d_in, d_rep), (s_in, s_rep) = best["duckdb"], best["spark"]
    print(f"ingest:        duckdb {d_in:8.1f} s   spark {s_in:8.1f} s   spark/duckdb {s_in / d_in:5.2f}×")
    print(f"report weekly: duckdb {d_rep:8.1f} s   spark {s_rep:8.1f} s   spark/duckdb {s_rep / d_rep:5.2f}×")
    print("weekly JSON reports of the two engines: " + ("equal (counts exactly, numbers to 1e-9)" if same is None
                                                        else f"DIFFER at {same}"))


def _same_report(a, b, path: str = "") -> str | None:
    """Return None when two reports are equal (floats to 1e-9), else the path of the first difference."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return path or "."
        return next((d for k in a if (d := _same_report(a[k], b[k], f"{path}.{k}")) is not None), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return path
        pairs = enumerate(zip(a, b, strict=True))
        return next((d for i, (x, y) in pairs if (d := _same_report(x, y, f"{path}[{i}]")) is not None), None)
    if isinstance(a, float) and isinstance(b, float | int) and not isinstance(b, bool):
        return None if abs(a - b) <= 1e-9 else path
    return None if (type(a) is type(b) and a == b) else path


if __name__ == "__main__":
    main()
