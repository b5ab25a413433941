"""The synthetic database the analytics and dashboard benchmarks share (10,000,000 attempts by default).

Synthesised with DuckDB SQL straight into `attempts` (loading 10M log lines would take too long): 28 days
from Monday 2026-03-02, chains of 1–5 attempts (88% / 8% / 2.5% / 1% / 0.5%), five workloads (two with a
declared tier chain), three surfaces, refusals with credits that are redeemed, rejected or left, retries,
quality escalations, a few unpriced attempts, plus one `loads` row a day and some `rejects`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fallbackscope.core.store import connect  # noqa: E402

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
        ['anthropic', 'anthropic', 'anthropic', 'bedrock', 'vertex'][1 + ((u >> 56) % 5)::INTEGER] AS surface,
        ((u >> 20) % 3)::INTEGER AS t0,
        TIMESTAMPTZ '{start}' + to_microseconds((i * ({span} // {chains}))::BIGINT) AS cts
    FROM range({chains}) r(i)
), att AS (
    SELECT c, u, n, workload, surface, t0, cts, k, hash(c, k) AS v FROM chains, range(1, 6) k(k) WHERE k <= n
)
SELECT
    'a' || c || '-' || k AS attempt_id, 1 + (epoch_us(cts) - epoch_us(TIMESTAMPTZ '{start}')) // 86400000000 AS load_id,
    cts + to_seconds((k - 1) * 20) AS ts, surface, workload,
    CASE WHEN (u >> 30) % 10 < 7 THEN 's' || (c // 4) END AS session_id,
    'c' || c AS chain_id, k AS attempt_index,
    CASE WHEN (u >> 40) % 1000 = 0 THEN 'claude-mystery-9'
         ELSE ['claude-haiku-4-5', 'claude-sonnet-4-5', 'claude-opus-4-8'][
            1 + least(t0 + k - 1 - CASE WHEN k >= 2 AND (v >> 8) % 4 = 0 THEN 1 ELSE 0 END, 2)] END AS model,
    model AS requested_model,
    CASE WHEN k < n THEN (CASE WHEN v % 10 < 5 THEN 'refusal' WHEN v % 10 < 8 THEN 'error' ELSE 'ok' END)
         ELSE (CASE WHEN v % 100 < 2 THEN 'refusal' WHEN v % 100 < 4 THEN 'error' ELSE 'ok' END) END AS outcome,
    CASE WHEN outcome = 'error' THEN [529, 529, 500, 429][1 + ((v >> 52) % 4)::INTEGER] ELSE 200 END AS http_status,
    CASE http_status WHEN 529 THEN 'overloaded' WHEN 500 THEN 'server_error' WHEN 429 THEN 'rate_limit' END
        AS error_class,
    CASE WHEN outcome = 'refusal' THEN 'refusal' WHEN outcome = 'ok' THEN 'end_turn' END AS stop_reason,
    CASE WHEN outcome = 'refusal' THEN ['cyber', 'bio', NULL][1 + ((v >> 4) % 3)::INTEGER] END AS refusal_category,
    CASE WHEN k < n AND outcome = 'ok' THEN false END AS accepted,
    CASE WHEN k >= 2 THEN (CASE WHEN (v >> 12) % 3 = 0 THEN error_class_prev WHEN (v >> 12) % 3 = 1 THEN 'refusal'
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
    CASE WHEN credit_status = 'not_applied' THEN 'prompt_mismatch' END AS credit_reason,
    'p' || c AS prompt_fp,
    CASE WHEN model = 'claude-mystery-9' THEN NULL
         ELSE (input_tokens * 3 + output_tokens * 15 + cache_read_tokens * 0.3 + cache_write_5m_tokens * 3.75)
              / 1e6 END AS cost_usd,
    0 AS hop
FROM (SELECT *, 'overloaded' AS error_class_prev FROM att)
LIMIT {attempts}
"""

LOADS_SQL = """
INSERT INTO loads (load_id, path, sha256, format, started_at, finished_at, records, attempts_loaded, duplicates,
                   rejected, status)
SELECT load_id, 'logs/exchange-' || strftime(day, '%Y-%m-%d') || '.jsonl.gz', sha256(load_id::VARCHAR),
    'exchange', day + INTERVAL 1 DAY + INTERVAL 2 HOUR, day + INTERVAL 1 DAY + INTERVAL 2 HOUR + INTERVAL 40 SECOND,
    attempts + load_id % 7, attempts, 0, load_id % 7, 'ok'
FROM (SELECT load_id, min(date_trunc('day', ts)) AS day, count(*) AS attempts FROM attempts GROUP BY load_id)
"""

REJECTS_SQL = """
INSERT INTO rejects
SELECT l.load_id, l.path, 100 * r.i + 1, 2500 * 100 * r.i,
    ['invalid JSON', 'no timestamp', 'negative token count'][1 + (r.i % 3)::INTEGER]
FROM loads l, range(7) r(i) WHERE r.i < l.load_id % 7
"""


def build(db: Path, attempts: int) -> None:
    """Create the synthetic database of `attempts` rows (plus loads and rejects) at `db`."""
    db.parent.mkdir(parents=True, exist_ok=True)
    chains = int(attempts / 1.17) + 1000
    con = connect(db)
    started = time.perf_counter()
    con.execute(BUILD_SQL.format(start=START, span=DAYS * 86_400_000_000, chains=chains, attempts=attempts))
    con.execute(LOADS_SQL)
    con.execute(REJECTS_SQL)
    con.execute("INSERT INTO policy VALUES (now(), 'benchmark', ?)", [POLICY])
    n = con.execute("SELECT count(*) FROM attempts").fetchone()[0]
    con.execute("CHECKPOINT")
    con.close()
    print(f"built {n:,} attempts in {time.perf_counter() - started:.1f} s")
