"""Analytics benchmark (issue 3): all metrics of one week plus all metrics of the whole range, on a
synthetic table of 10,000,000 attempts, as a ratio to one bare GROUP BY scan of the same table.

    python benchmarks/analytics.py [--attempts 10000000] [--db PATH] [--keep] [--repeat 3]

The table is built directly with DuckDB SQL (28 days from Monday 2026-03-02; chains of 1–5 attempts:
88% / 8% / 2.5% / 1% / 0.5%; five workloads, two with a declared tier chain; refusals with credits that
are redeemed, rejected or left; retries, quality escalations, a few unpriced attempts). Both sides run
in the same process on the same read-only connection, best of `--repeat`:

- baseline: `SELECT date_trunc('day', ts) AS day, count(*), sum(cost_usd) FROM attempts GROUP BY 1`
- metrics:  `weekly_report(con, <the third week>)` + every metric of the whole range (the same report
            built over all chains), i.e. two full `analytics.facts.collect` passes and their rollups.

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

from analytics.common import Period, Rate  # noqa: E402
from analytics.facts import collect  # noqa: E402
from analytics.report import build_report, weekly_report  # noqa: E402
from fallbackscope.store import connect  # noqa: E402

START = "2026-03-02 00:00:00+00"
DAYS = 28
POLICY = """
[workloads.support-chat]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]
require_disclosure = true
refusal_slo = 0.05

[workloads.code-assist]
chain = ["claude-sonnet-4-5", "claude-opus-4-8"]
fallback_on = ["refusal", "overloaded", "server_error"]
"""

BUILD_SQL = """
INSERT INTO attempts BY NAME
WITH chains AS (
    SELECT i AS c, hash(i) AS u,
        CASE WHEN u % 1000 < 880 THEN 1 WHEN u % 1000 < 960 THEN 2 WHEN u % 1000 < 985 THEN 3
             WHEN u % 1000 < 995 THEN 4 ELSE 5 END AS n,
        ['support-chat', 'code-assist', 'research-agent', 'batch-extract', 'doc-summarise'][
            1 + ((u >> 10) % 5)::INTEGER] AS workload,
        ((u >> 20) % 3)::INTEGER AS t0,
        TIMESTAMPTZ '{start}' + to_microseconds((i * ({span} // {chains}))::BIGINT) AS cts
    FROM range({chains}) r(i)
), att AS (
    SELECT c, u, n, workload, t0, cts, k, hash(c, k) AS v FROM chains, range(1, 6) k(k) WHERE k <= n
)
SELECT
    'a' || c || '-' || k AS attempt_id, 1 AS load_id,
    cts + to_seconds((k - 1) * 20) AS ts, 'anthropic' AS surface, workload,
    CASE WHEN (u >> 30) % 10 < 7 THEN 's' || workload || '-' || (c // 20) END AS session_id,
    'c' || c AS chain_id, k AS attempt_index,
    CASE WHEN (u >> 40) % 1000 = 0 THEN 'claude-mystery-9'
         ELSE ['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-8'][
            1 + least(t0 + k - 1 - CASE WHEN k >= 2 AND (v >> 8) % 4 = 0 THEN 1 ELSE 0 END, 2)] END AS model,
    CASE WHEN k < n THEN (CASE WHEN v % 10 < 5 THEN 'refusal' WHEN v % 10 < 8 THEN 'error' ELSE 'ok' END)
         ELSE (CASE WHEN v % 100 < 2 THEN 'refusal' WHEN v % 100 < 4 THEN 'error' ELSE 'ok' END) END AS outcome,
    CASE WHEN outcome = 'error' THEN 529 ELSE 200 END AS http_status,
    CASE WHEN outcome = 'error' THEN 'overloaded' END AS error_class,
    CASE WHEN outcome = 'refusal' THEN ['cyber', 'bio', NULL][1 + ((v >> 4) % 3)::INTEGER] END AS refusal_category,
    CASE WHEN k < n AND outcome = 'ok' THEN false END AS accepted,
    CASE WHEN k >= 2 THEN (CASE WHEN (v >> 12) % 3 = 0 THEN 'overloaded' WHEN (v >> 12) % 3 = 1 THEN 'refusal'
                                ELSE 'quality' END) END AS "trigger",
    CASE WHEN k >= 2 AND (v >> 16) % 2 = 0 THEN true END AS disclosed,
    CASE WHEN k >= 2 THEN 'client' ELSE 'none' END AS fallback_mode,
    workload = 'batch-extract' AND (u >> 50) % 10 = 0 AS is_batch, false AS is_stream,
    (200 + (v >> 20) % 2800)::BIGINT AS input_tokens, (50 + (v >> 32) % 750)::BIGINT AS output_tokens,
    ((v >> 44) % 2000)::BIGINT AS cache_read_tokens, ((v >> 24) % 1000)::BIGINT AS cache_write_5m_tokens,
    0::BIGINT AS cache_write_1h_tokens, 0::BIGINT AS web_search_requests, true AS had_output,
    CASE WHEN outcome = 'refusal' AND (v >> 28) % 5 < 3 THEN 'cr' || c || '-' || k END AS credit_minted_fp,
    CASE WHEN k >= 2 AND (v >> 36) % 2 = 0 THEN 'cr' || c || '-' || (k - 1) END AS credit_presented_fp,
    CASE WHEN credit_presented_fp IS NOT NULL AND outcome <> 'error' THEN
         ['redeemed', 'redeemed', 'not_applied', NULL][1 + ((v >> 48) % 4)::INTEGER] END AS credit_status,
    'p' || c AS prompt_fp,
    CASE WHEN model = 'claude-mystery-9' THEN NULL
         ELSE (input_tokens * 3 + output_tokens * 15 + cache_read_tokens * 0.3 + cache_write_5m_tokens * 3.75)
              / 1e6 END AS cost_usd,
    0 AS hop
FROM att
LIMIT {attempts}
"""


def build(db: Path, attempts: int) -> None:
    """Create the synthetic database of `attempts` rows."""
    chains = int(attempts / 1.17) + 1000
    con = connect(db)
    started = time.perf_counter()
    con.execute(BUILD_SQL.format(start=START, span=DAYS * 86_400_000_000, chains=chains, attempts=attempts))
    con.execute("INSERT INTO policy VALUES (now(), 'benchmark', ?)", [POLICY])
    n = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
    con.execute("CHECKPOINT")
    con.close()
    print(f"built {n:,} attempts in {time.perf_counter() - started:.1f} s")


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
