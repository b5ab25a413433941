"""Ingest speed and memory against its baselines (BENCHMARKS.md), measured in one run.

    python benchmarks/ingest.py [--lines 1000000] [--repeat 3]

Prints, for a generated `exchange` file of realistic lines (~2.5 KB each):
- fallbackscope ingest (the CLI, a subprocess, fresh database each run), best of N, and its peak memory
  (the whole process tree, sampled, and /usr/bin/time's maximum resident set size);
- DuckDB alone: one CREATE TABLE … AS SELECT … FROM read_json(file, columns={…}) of the metadata columns
  plus sha256 of the messages as a stand-in for the prompt fingerprint;
- plain Python: a json.loads loop building a pandas DataFrame of the same columns.
Targets (issue 2): ingest ≤ 2× DuckDB alone, ≥ 5× faster than plain Python, peak memory ≤ 1.5 GB.

The nightly case (issue 20): `python benchmarks/ingest.py --nightly [--lines 100000] [--history 10000000]`
times one day's file into a database that already holds `--history` attempts (built once with SQL, all
earlier than the file, cached in benchmarks/out) against the same file into an empty database; target ≤ 1.5×
(linking against the store must stay cheap when files arrive in time order).
The other input formats' throughput against `exchange` (issue 6): `python benchmarks/ingest.py --formats
[--lines 50000]`, which runs `benchmarks/formats.py`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"

DUCKDB_BASELINE = r"""
import duckdb, sys
con = duckdb.connect(sys.argv[2])
con.execute('''CREATE TABLE t AS SELECT
  ts::TIMESTAMPTZ AS ts, workload, session_id, chain_id, attempt, "trigger", accepted, disclosed, intended_model,
  surface, request_id, http_status, transport_error, latency_ms,
  request->>'$.model' AS requested_model,
  response->>'$.id' AS message_id, response->>'$.model' AS model, response->>'$.stop_reason' AS stop_reason,
  response->>'$.stop_details.category' AS refusal_category,
  (response->>'$.usage.input_tokens')::BIGINT AS input_tokens,
  (response->>'$.usage.output_tokens')::BIGINT AS output_tokens,
  (response->>'$.usage.cache_read_input_tokens')::BIGINT AS cache_read_tokens,
  (response->>'$.usage.cache_creation.ephemeral_5m_input_tokens')::BIGINT AS cache_write_5m_tokens,
  (response->>'$.usage.cache_creation.ephemeral_1h_input_tokens')::BIGINT AS cache_write_1h_tokens,
  response->>'$.usage.service_tier' AS service_tier,
  sha256(json_extract(request, '$.messages')::VARCHAR) AS prompt_fp
FROM read_json(?, format='newline_delimited', columns={
  ts: 'VARCHAR', workload: 'VARCHAR', session_id: 'VARCHAR', chain_id: 'VARCHAR', attempt: 'BIGINT',
  "trigger": 'VARCHAR', accepted: 'BOOLEAN', disclosed: 'BOOLEAN', intended_model: 'VARCHAR', surface: 'VARCHAR',
  request_id: 'VARCHAR', http_status: 'INTEGER', transport_error: 'VARCHAR', latency_ms: 'DOUBLE',
  request: 'JSON', response: 'JSON'})''', [sys.argv[1]])
con.close()
"""

PYTHON_BASELINE = r"""
import hashlib, json, sys
import pandas as pd
names = ["ts", "workload", "session_id", "chain_id", "attempt", "trigger", "accepted", "disclosed", "intended_model",
         "surface", "request_id", "http_status", "transport_error", "latency_ms", "requested_model", "message_id",
         "model", "stop_reason", "refusal_category", "input_tokens", "output_tokens", "cache_read_tokens",
         "cache_write_5m_tokens", "cache_write_1h_tokens", "service_tier", "prompt_fp"]
cols = {n: [] for n in names}
with open(sys.argv[1], "rb") as fh:
    for line in fh:
        r = json.loads(line)
        for n in names[:14]:
            cols[n].append(r.get(n))
        req = r.get("request") or {}
        resp = r.get("response") or {}
        usage = resp.get("usage") or {}
        cache = usage.get("cache_creation") or {}
        cols["requested_model"].append(req.get("model"))
        cols["message_id"].append(resp.get("id"))
        cols["model"].append(resp.get("model"))
        cols["stop_reason"].append(resp.get("stop_reason"))
        cols["refusal_category"].append((resp.get("stop_details") or {}).get("category"))
        cols["input_tokens"].append(usage.get("input_tokens"))
        cols["output_tokens"].append(usage.get("output_tokens"))
        cols["cache_read_tokens"].append(usage.get("cache_read_input_tokens"))
        cols["cache_write_5m_tokens"].append(cache.get("ephemeral_5m_input_tokens"))
        cols["cache_write_1h_tokens"].append(cache.get("ephemeral_1h_input_tokens"))
        cols["service_tier"].append(usage.get("service_tier"))
        cols["prompt_fp"].append(hashlib.sha256(json.dumps(req.get("messages")).encode()).hexdigest())
df = pd.DataFrame(cols)
df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
print(len(df))
"""


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, int, int]:
    """Run a command; return (seconds, peak RSS of the whole process tree sampled, /usr/bin/time max RSS)."""
    timed = ["/usr/bin/time", "-v", *argv] if Path("/usr/bin/time").exists() else argv
    start = time.perf_counter()
    proc = subprocess.Popen(timed, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    peak = 0
    parent = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            tree = [parent, *parent.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    seconds = time.perf_counter() - start
    stderr = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed:\n{stderr[-2000:]}")
    max_rss = 0
    for line in stderr.splitlines():
        if "Maximum resident set size" in line:
            max_rss = int(line.rsplit(":", 1)[1]) * 1024
    return seconds, peak, max_rss


def best(label: str, repeat: int, make_argv) -> tuple[float, int, int]:
    results = []
    for i in range(repeat):
        argv, cleanup = make_argv(i)
        results.append(run_measured(argv))
        cleanup()
        print(f"  {label} run {i + 1}: {results[-1][0]:.2f} s", flush=True)
    seconds = min(r[0] for r in results)
    return seconds, max(r[1] for r in results), max(r[2] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-python", action="store_true", help="skip the slow plain-Python baseline")
    parser.add_argument("--formats", action="store_true",
                        help="instead: each other input format's throughput against exchange (issue 6, formats.py)")
    if "--formats" in sys.argv[1:]:  # the per-format benchmark takes its own options
        sys.argv = [str(HERE / "formats.py"), *(a for a in sys.argv[1:] if a != "--formats")]
        sys.path.insert(0, str(HERE))
        import formats

        formats.main()
        return
    parser.add_argument("--nightly", action="store_true", help="instead: the nightly case (issue 20)")
    parser.add_argument("--history", type=int, default=10_000_000, help="--nightly: attempts already stored")
    args = parser.parse_args()
    if args.nightly:
        nightly(args)
        return

    OUT.mkdir(exist_ok=True)
    log = OUT / f"exchange-{args.lines}.jsonl"
    if not log.exists():
        print(f"generating {args.lines:,} lines …", flush=True)
        subprocess.run([sys.executable, "-m", "fallbackscope.cli", "sample", str(OUT / "gen"), "--lines",
                        str(args.lines)], check=True, stdout=subprocess.DEVNULL)
        (OUT / "gen" / "exchange-bench.jsonl").rename(log)
        shutil.rmtree(OUT / "gen")
    size = log.stat().st_size
    with open(log, "rb") as fh:
        lines = sum(1 for _ in fh)
    mem = psutil.virtual_memory().total / 2**30
    print(f"input: {lines:,} lines, {size / 1e9:.2f} GB ({size / lines / 1e3:.2f} KB a line); "
          f"machine: {os.cpu_count()} cores, {mem:.0f} GiB")

    tmp = Path(tempfile.mkdtemp(prefix="fsbench-"))

    def fresh_db(i: int, name: str) -> Path:
        path = tmp / f"{name}-{i}.duckdb"
        for p in tmp.glob(f"{name}-{i}.duckdb*"):
            p.unlink()
        return path

    def ours(i: int):
        db = fresh_db(i, "ours")
        return [sys.executable, "-m", "fallbackscope.cli", "ingest", str(log), "--db", str(db)], \
            lambda: [p.unlink() for p in tmp.glob("ours-*")]

    def duck(i: int):
        db = fresh_db(i, "duck")
        return [sys.executable, "-c", DUCKDB_BASELINE, str(log), str(db)], \
            lambda: [p.unlink() for p in tmp.glob("duck-*")]

    def plain(i: int):
        return [sys.executable, "-c", PYTHON_BASELINE, str(log)], lambda: None

    os.environ.setdefault("FALLBACKSCOPE_KEY", "bench-key")
    t_duck, _, rss_duck = best("duckdb read_json", args.repeat, duck)
    t_ours, peak_ours, rss_ours = best("fallbackscope ingest", args.repeat, ours)
    print()
    print(f"fallbackscope ingest : {t_ours:8.2f} s   peak memory {peak_ours / 2**30:.2f} GiB (process tree), "
          f"max RSS {rss_ours / 2**30:.2f} GiB (largest process)")
    print(f"duckdb read_json     : {t_duck:8.2f} s   max RSS {rss_duck / 2**30:.2f} GiB")
    print(f"ratio ingest / duckdb: {t_ours / t_duck:8.2f}   (target ≤ 2.0)")
    if not args.skip_python:
        t_py, _, rss_py = best("python json.loads", min(args.repeat, 3), plain)
        print(f"python json.loads    : {t_py:8.2f} s   max RSS {rss_py / 2**30:.2f} GiB")
        print(f"speed-up vs python   : {t_py / t_ours:8.2f}×  (target ≥ 5.0)")
    print(f"lines per second     : {lines / t_ours:,.0f}")
    shutil.rmtree(tmp, ignore_errors=True)


HISTORY_SQL = """
INSERT INTO attempts (attempt_id, load_id, ts, surface, workload, session_id, chain_id, attempt_index, request_id,
  requested_model, model, http_status, outcome, stop_reason, fallback_mode, is_batch, is_stream, service_tier,
  latency_ms, input_tokens, output_tokens, cache_write_5m_tokens, cache_write_1h_tokens, cache_read_tokens,
  web_search_requests, had_output, credit_minted_fp, prompt_fp, cost_usd, line_no, hop)
SELECT 'msg_hist_' || i, 1 + i // ?, ?::TIMESTAMPTZ - to_microseconds((? - i) * ?), 'anthropic', 'bench',
  'sess_hist_' || (i // 8), 'ch_hist_' || (i // 2), 1 + i % 2, 'req_hist_' || i, 'claude-sonnet-4-5',
  'claude-sonnet-4-5', 200, CASE WHEN i % 25 = 0 THEN 'refusal' ELSE 'ok' END,
  CASE WHEN i % 25 = 0 THEN 'refusal' ELSE 'end_turn' END, 'none', false, false, 'standard', 900, 420, 95, 0, 0,
  130, 0, true, CASE WHEN i % 25 = 0 THEN md5('credit' || i) || md5('c' || i) END,
  md5('prompt' || (i // 2)) || md5('p' || (i // 2)), 0.002, 1 + i % ?, 0
FROM range(?) t(i)
"""


def build_history(path: Path, attempts: int, before: str) -> None:
    """Write a database of `attempts` attempts spread over the year before `before` (as a year of nightly loads
    would leave it: chain ids given, a refusal with a credit every 25th attempt, one load a day)."""
    sys.path.insert(0, str(HERE.parent))
    from fallbackscope.core import store
    from fallbackscope.core.config import key_check_value

    per_day = max(1, attempts // 365)
    step_us = 365 * 86_400_000_000 // max(1, attempts)
    con = store.connect(path)
    store.store_key_check(con, key_check_value(os.environ["FALLBACKSCOPE_KEY"].encode()))
    con.execute(HISTORY_SQL, [per_day, before, attempts, step_us, per_day, attempts])
    con.execute("INSERT INTO link_inputs SELECT attempt_id, load_id, chain_id, attempt_index, NULL, 0 FROM attempts")
    con.execute("INSERT INTO loads (load_id, path, sha256, format, started_at, finished_at, records, attempts_loaded,"
                " duplicates, rejected, status) SELECT load_id, 'history-' || load_id, md5(load_id::VARCHAR),"
                " 'exchange', now(), now(), count(*), count(*), 0, 0, 'ok' FROM attempts GROUP BY load_id")
    # the next load takes the next id, as after a year of loads
    con.execute("SELECT max(nextval('load_id_seq')) FROM range((SELECT max(load_id) FROM loads))")
    con.execute("CHECKPOINT")
    con.close()


def nightly(args) -> None:
    """The nightly case: a day's file into a database holding `--history` attempts against an empty one."""
    os.environ.setdefault("FALLBACKSCOPE_KEY", "bench-key")
    OUT.mkdir(exist_ok=True)
    day = OUT / f"nightly-{args.lines}.jsonl"
    if not day.exists():
        subprocess.run([sys.executable, "-m", "fallbackscope.cli", "sample", str(OUT / "gen"), "--lines",
                        str(args.lines)], check=True, stdout=subprocess.DEVNULL)
        (OUT / "gen" / "exchange-bench.jsonl").rename(day)
        shutil.rmtree(OUT / "gen")
    history = OUT / f"history-{args.history}.duckdb"
    if not history.exists():
        print(f"building a database of {args.history:,} attempts …", flush=True)
        started = time.perf_counter()
        build_history(history, args.history, "2026-10-19 00:00:00+00")  # the sample's first day
        print(f"  built in {time.perf_counter() - started:.1f} s, {history.stat().st_size / 1e9:.2f} GB", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="fsnightly-"))

    def into(copy_of: Path | None):
        def make(i: int):
            db = tmp / f"n-{i}.duckdb"
            if copy_of is not None:
                shutil.copyfile(copy_of, db)
            return [sys.executable, "-m", "fallbackscope.cli", "ingest", str(day), "--db", str(db)], \
                lambda: [p.unlink() for p in tmp.glob("n-*")]
        return make

    with open(day, "rb") as fh:
        lines = sum(1 for _ in fh)
    print(f"day file: {lines:,} lines; history: {args.history:,} attempts")
    t_empty, _, _ = best("into an empty database", args.repeat, into(None))
    t_full, _, _ = best(f"into {args.history:,} stored attempts", args.repeat, into(history))
    print(f"into an empty database   : {t_empty:8.2f} s")
    print(f"into {args.history:>12,} attempts: {t_full:8.2f} s")
    print(f"ratio                    : {t_full / t_empty:8.2f}   (target ≤ 1.5)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
