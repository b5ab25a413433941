"""Alert speed (issue 17): `fallbackscope alert --dry-run` on 10,000,000 attempts against a bare count of the
last three days, both as subprocesses.

    python benchmarks/alert.py [--attempts 10000000] [--repeat 3] [--db PATH] [--keep]

The database is the analytics benchmarks' synthetic table (benchmarks/synthetic.py: 28 days, five workloads,
the policy giving `support-chat` a refusal_slo of 0.05, so one workload is watched), built once with DuckDB SQL.
Interleaved, best of `--repeat` each:

- baseline: `python -c` opening the file read-only with DuckDB and running
  `SELECT count(*) FROM attempts WHERE ts > (SELECT max(ts) FROM attempts) - INTERVAL 3 DAY`;
- alert:    `fallbackscope alert --db DB --dry-run` (every rule's windows, and for a firing alert the 28-day
            error budget and the top categories; exit 3 or 0 both count).

Target: alert ≤ 10× the baseline. Prints both times, the ratio, peak memory of the alert (maximum resident set
size, `/usr/bin/time -v`), the input size and the machine's cores and memory.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import build  # noqa: E402

TARGET = 10.0
BASELINE = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("SELECT count(*) FROM attempts WHERE ts > (SELECT max(ts) FROM attempts) - INTERVAL 3 DAY")
      .fetchone()[0])
"""


def alert_command(db: Path) -> list[str]:
    """Return the alert command as a user runs it."""
    cli = shutil.which("fallbackscope")
    base = [cli] if cli else [sys.executable, "-m", "fallbackscope.cli"]
    return [*base, "alert", "--db", str(db), "--dry-run"]


def timed(command: list[str], ok: tuple[int, ...] = (0,)) -> tuple[float, str]:
    """Run `command`; return its wall time and stdout (exits when it fails)."""
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if result.returncode not in ok:
        sys.exit(f"{command[0]} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return seconds, result.stdout


def peak_memory_mib(command: list[str]) -> float | None:
    """Return the maximum resident set size of `command` under /usr/bin/time -v, None without it."""
    if not Path("/usr/bin/time").exists():
        return None
    result = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr)
    return int(match.group(1)) / 1024 if match else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or create) this database instead of a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="fallbackscope-alert-bench-"))
    try:
        db = args.db or folder / "bench.duckdb"
        if not db.exists():
            build(db, args.attempts)
        from fallbackscope.core.store import connect

        con = connect(db)  # bring an older file's schema up to date (the alerts table), outside the timings
        n = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
        con.close()
        baseline = [sys.executable, "-c", BASELINE, str(db)]
        alert = alert_command(db)
        timed(baseline)  # warm the page cache for both sides alike
        times: dict[str, list[float]] = {"baseline": [], "alert": []}
        for _ in range(args.repeat):  # interleaved, so that a burst of load on the machine hits both sides
            seconds, window = timed(baseline)
            times["baseline"].append(seconds)
            seconds, printed = timed(alert, ok=(0, 3))
            times["alert"].append(seconds)
        memory = peak_memory_mib(alert)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)

    t_base, t_alert = min(times["baseline"]), min(times["alert"])
    ratio = t_alert / t_base
    firing = printed.count('"status": "firing"')
    print(f"attempts: {n:,} ({int(window):,} in the last 3 days)   cores: {os.cpu_count()}   "
          f"memory: {psutil.virtual_memory().total / 2**30:.1f} GiB")
    print(f"baseline count(*) over 3 days (subprocess): {t_base:7.3f} s")
    print(f"alert --dry-run (subprocess):               {t_alert:7.3f} s   peak RSS "
          f"{f'{memory:.0f} MiB' if memory else 'n/a'}")
    print(f"ratio {ratio:.1f}x (target <= {TARGET:g}x: {'met' if ratio <= TARGET else 'missed'}); "
          f"alerts firing: {firing}")
    print(f"(best of {args.repeat}, interleaved; load average now {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
