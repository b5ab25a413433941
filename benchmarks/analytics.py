"""Analytics benchmark (issue 3): all metrics of one week plus all metrics of the whole range, on a
synthetic table of 10,000,000 attempts, as a ratio to one bare GROUP BY scan of the same table.

    python benchmarks/analytics.py [--attempts 10000000] [--db PATH] [--keep] [--repeat 3]

The table is built directly with DuckDB SQL (28 days from Monday 2026-03-02; chains of 1–5 attempts:
88% / 8% / 2.5% / 1% / 0.5%; five workloads, two with a declared tier chain; refusals with credits that
are redeemed, rejected or left; retries, quality escalations, a few unpriced attempts). Both sides run
in the same process on the same read-only connection, best of `--repeat`:

- baseline: `SELECT date_trunc('day', ts) AS day, count(*), sum(cost_usd) FROM attempts GROUP BY 1`
- metrics:  `weekly_report(con, <the third week>)` + every metric of the whole range (the same report
            built over all chains), i.e. two full `analytics.collect.collect` passes and their rollups.

Target: ratio ≤ 25×; absolute under 3 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthetic import build  # noqa: E402

from analytics.collect import collect  # noqa: E402
from analytics.common import Rate  # noqa: E402
from fallbackscope.core.periods import Period
from fallbackscope.core.store import connect  # noqa: E402
from fallbackscope.render.report import build_report, weekly_report  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary database")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    folder = None
    if args.db is None:
        folder = Path(tempfile.mkdtemp(prefix="fs-bench-"))
        db = folder / "bench.duckdb"
    else:
        db = args.db
    try:
        if not db.exists():
            build(db, args.attempts)
        con = connect(db, read_only=True)
        n = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
        week = dt.date(2026, 3, 16)

        def baseline() -> None:
            con.execute("SELECT date_trunc('day', ts) AS day, count(*), sum(cost_usd) FROM attempts GROUP BY 1"
                        ).fetchall()

        def one_week() -> None:
            weekly_report(con, week)

        def whole_range() -> None:
            facts = collect(con, Period())
            build_report(facts, week, Rate.of(0, 0))

        baseline()  # warm the buffer pool for both sides alike
        times: dict[str, list[float]] = {"baseline": [], "week": [], "whole": []}
        for _ in range(args.repeat):  # interleaved, so that a burst of load on the machine hits both sides
            for name, fn in (("baseline", baseline), ("week", one_week), ("whole", whole_range)):
                started = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - started)
        con.close()
    finally:
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
        elif folder is not None:
            print(f"kept {db}")

    t_base, t_week, t_all = (min(times[k]) for k in ("baseline", "week", "whole"))
    t_both = t_week + t_all
    memory = _memory_gib()
    print(f"attempts: {n:,}   cores: {os.cpu_count()}   memory: {memory:.1f} GiB")
    print(f"baseline GROUP BY day scan:          {t_base:7.3f} s")
    print(f"all metrics, one week (report):      {t_week:7.3f} s")
    print(f"all metrics, whole range:            {t_all:7.3f} s")
    print(f"one week + whole range:              {t_both:7.3f} s   ratio {t_both / t_base:5.1f}x  (target <= 25x;"
          f" absolute target < 3 s: {'met' if t_both < 3 else 'missed'})")
    print(f"(best of {args.repeat}, interleaved; load average now {os.getloadavg()[0]:.1f})")


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


if __name__ == "__main__":
    main()
