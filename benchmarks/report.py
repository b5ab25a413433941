"""Weekly report speed: the html report of a 10M-attempt week against the json report of the same week.

    python benchmarks/report.py [--attempts 10000000] [--repeat 3] [--db PATH] [--keep]

Builds a database with DuckDB SQL directly (no ingest): `--attempts` attempts in ISO week 2026-W45 plus a
tenth as many in the week before (so drift has a previous week), in chains of one or two attempts over
five workloads, with refusals, errors, client fallbacks and redeemed credits. Then times
`fallbackscope report weekly --format html` and `--format json` (subprocesses, best of `--repeat`) and
prints both and their ratio. Target (issue 5): html ≤ 5 s for 10,000,000 attempts.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WEEK, WEEK_START, PREVIOUS_START = "2026-W45", "2026-11-02 00:00:00+00", "2026-10-26 00:00:00+00"
TARGET_SECONDS = 5.0

# Rows in blocks of five: chains 4k, 4k+1, 4k+2 have one attempt, chain 4k+3 has two (positions 3 and 4).
BUILD_SQL = """
INSERT INTO attempts
WITH rows AS (
    SELECT i, {first_chain} + (i // 5) * 4 + least(i % 5, 3) AS chain, CASE WHEN i % 5 = 4 THEN 2 ELSE 1 END AS k,
           i % 5 >= 3 AS two
    FROM range({n}) r(i)
), h AS (
    SELECT *, CAST(hash(chain) % 1000 AS BIGINT) AS hc, {n_chains} AS n_chains FROM rows
), a AS (
    SELECT *,
      CASE WHEN k = 2 THEN 'ok' WHEN two AND hc % 3 = 0 THEN 'error' WHEN two THEN 'refusal'
           WHEN hc < 20 THEN 'refusal' ELSE 'ok' END AS outcome,
      ['support-chat', 'code-assist', 'batch-extract', 'research-agent', 'doc-summarise'][1 + chain % 5]
        AS workload
    FROM h
)
SELECT
  'bench-' || {first_chain} || '-' || i, 1,
  CAST('{start}' AS TIMESTAMPTZ) + to_microseconds(CAST((chain - {first_chain}) * (604790000000.0 / n_chains)
                                                        AS BIGINT) + (k - 1) * 2000000),
  'anthropic', workload, 'sess-' || (chain // 3), 'chain-' || chain, k, NULL,
  CASE WHEN k = 2 THEN 'claude-opus-4-8' WHEN chain % 2 = 0 THEN 'claude-haiku-4-5' ELSE 'claude-sonnet-4-5' END,
  CASE WHEN k = 2 THEN 'claude-opus-4-8' WHEN chain % 2 = 0 THEN 'claude-haiku-4-5' ELSE 'claude-sonnet-4-5' END,
  CASE WHEN outcome = 'error' THEN 529 ELSE 200 END,
  CASE WHEN outcome = 'error' THEN 'overloaded' END,
  outcome,
  CASE WHEN outcome = 'refusal' THEN 'refusal' WHEN outcome = 'ok' THEN 'end_turn' END,
  CASE WHEN outcome = 'refusal' THEN ['cyber', 'bio', 'general_harms', 'frontier_llm', NULL][1 + hc % 5] END,
  NULL,
  CASE WHEN k = 2 AND hc % 3 = 0 THEN 'overloaded' WHEN k = 2 THEN 'refusal' END,
  NULL, NULL, NULL,
  CASE WHEN k = 2 THEN 'client' ELSE 'none' END,
  false, false, 'standard', NULL, NULL, 800 + hc,
  CASE WHEN outcome = 'error' THEN 0 ELSE 1000 + hc END,
  CASE WHEN outcome = 'ok' THEN 200 + hc ELSE 0 END,
  CASE WHEN outcome = 'error' THEN 0 ELSE 500 END, 0,
  CASE WHEN k = 2 THEN 400 ELSE 0 END, 0,
  outcome = 'ok',
  CASE WHEN outcome = 'refusal' AND two THEN 'credit-' || chain END,
  CASE WHEN k = 2 AND hc % 3 <> 0 THEN 'credit-' || chain END,
  NULL,
  CASE WHEN k = 2 AND hc % 3 <> 0 THEN 'redeemed' END, NULL,
  'prompt-' || chain,
  CASE WHEN outcome = 'ok' THEN (1000 + hc) * 3e-6 + (200 + hc) * 15e-6 ELSE 0 END,
  i, 0, NULL
FROM a
"""

def build(db: Path, attempts: int) -> None:
    """Create `db` with `attempts` attempts in WEEK and a tenth as many in the week before."""
    from fallbackscope.core import store

    con = store.connect(db)
    try:
        previous = max(attempts // 10 // 5 * 5, 5)
        con.execute("BEGIN")
        for start, n, first_chain in ((WEEK_START, attempts, 0), (PREVIOUS_START, previous, 10 * attempts)):
            n_chains = max(n // 5 * 4, 1)
            con.execute(BUILD_SQL.format(n=n, n_chains=n_chains, first_chain=first_chain, start=start))
        con.execute("COMMIT")
        count = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
    finally:
        con.close()
    print(f"built {db}: {count:,} attempts ({attempts:,} in {WEEK})")


def report_command(db: Path, fmt: str, out: Path) -> list[str]:
    """Return the command that writes the weekly report of WEEK in format `fmt` to `out`."""
    cli = shutil.which("fallbackscope")
    base = [cli] if cli else [sys.executable, "-m", "fallbackscope.cli"]
    return [*base, "report", "weekly", "--db", str(db), "--week", WEEK, "--format", fmt, "--out", str(out)]


def best_of(command: list[str], repeat: int) -> float:
    """Return the best wall time of `repeat` runs of `command`; exits when a run fails."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if result.returncode not in (0, 3):  # 3: an SLO missed, still a report
            sys.exit(f"report failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, help="reuse (or create) this database instead of a temporary one")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="fallbackscope-report-bench-"))
    try:
        db = args.db or folder / "bench.duckdb"
        if not db.exists():
            started = time.perf_counter()
            build(db, args.attempts)
            print(f"build: {time.perf_counter() - started:.1f} s")
        seconds = {}
        for fmt in ("json", "html"):
            out = folder / f"weekly.{fmt}"
            seconds[fmt] = best_of(report_command(db, fmt, out), args.repeat)
            print(f"report weekly --format {fmt}: {seconds[fmt]:.2f} s (best of {args.repeat}); "
                  f"{out.stat().st_size / 1e6:.1f} MB")
        ratio = seconds["html"] / seconds["json"]
        verdict = "ok" if seconds["html"] <= TARGET_SECONDS else "over"
        print(f"html / json: {ratio:.2f}x; html {seconds['html']:.2f} s vs target {TARGET_SECONDS:.0f} s "
              f"for {args.attempts:,} attempts: {verdict}")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
