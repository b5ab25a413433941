"""`fallbackscope reconcile` against a fake Admin API on loopback (docs/metrics.md §10): pages followed, 429 and
5xx retried (retry-after waited for), errors in one sentence, no redirects, the admin key in no output or
database byte, saved pages giving the same table, re-runs replacing their days, the weekly report's key.

The fake serves the public shapes (API reference: Get Messages Usage Report, Get Cost Report; cited in
`fallbackscope/adminapi.py`), computed from the test's own logs.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

sys.path.insert(0, str(Path(__file__).parent / "analytics"))
from analytics_db import AttemptDB  # noqa: E402

KEY = "sk-ant-admin01-CANARY-4d7e9b1f0c2a"  # the canary: must appear in no output and no database byte
USAGE, COST = "/v1/organizations/usage_report/messages", "/v1/organizations/cost_report"
SONNET = "claude-sonnet-4-5-20250929"


def usage_result(model, tier="standard", *, uncached=0, output=0, read=0, w5=0, w1=0, searches=0, workspace=None):
    return {"uncached_input_tokens": uncached, "cache_read_input_tokens": read, "output_tokens": output,
            "cache_creation": {"ephemeral_1h_input_tokens": w1, "ephemeral_5m_input_tokens": w5},
            "server_tool_use": {"web_search_requests": searches}, "model": model, "service_tier": tier,
            "context_window": "0-200k", "inference_geo": "global", "workspace_id": workspace, "api_key_id": None}


def cost_result(cents, model=None, token_type=None, cost_type="tokens", description=None, workspace=None):
    return {"amount": cents, "currency": "USD", "cost_type": cost_type, "description": description,
            "model": model, "service_tier": "standard" if cost_type == "tokens" else None,
            "token_type": token_type, "context_window": "0-200k" if cost_type == "tokens" else None,
            "workspace_id": workspace}


def bucket(day, results):
    return {"starting_at": f"{day}T00:00:00Z", "ending_at": f"{day[:8]}{int(day[8:]) + 1:02d}T00:00:00Z",
            "results": results}


#: Day 1 the logs match the bill; day 2 the bill holds 25% more sonnet than the logs (coverage 0.8).
USAGE_BUCKETS = [
    bucket("2026-03-02", [usage_result(SONNET, uncached=100_000, output=20_000, w1=40_000, searches=2)]),
    bucket("2026-03-03", [usage_result(SONNET, uncached=125_000, output=25_000)]),
]
COST_BUCKETS = [
    bucket("2026-03-02", [cost_result("30", SONNET, "uncached_input_tokens"),
                          cost_result("30", SONNET, "output_tokens"),
                          cost_result("24", SONNET, "cache_creation.ephemeral_1h_input_tokens"),
                          cost_result("2", cost_type="web_search", description="Web Search Usage"),
                          cost_result("12.5", cost_type="code_execution", description="Code Execution Usage")]),
    bucket("2026-03-03", [cost_result("37.5", SONNET, "uncached_input_tokens"),
                          cost_result("37.5", SONNET, "output_tokens")]),
]


def pages_of(buckets, per_page=1):
    """Return the report as pages of `per_page` buckets, chained by has_more / next_page."""
    chunks = [buckets[i:i + per_page] for i in range(0, len(buckets), per_page)] or [[]]
    return [{"data": chunk, "has_more": i + 1 < len(chunks), "next_page": f"page_{i + 1}" if i + 1 < len(chunks)
             else None} for i, chunk in enumerate(chunks)]


class FakeAdminAPI:
    """An Admin API on 127.0.0.1: serves `pages[path]` (page n for `page=page_n`), after the scripted answers
    `before[path]` (status, headers, body); records every request."""

    def __init__(self, pages, before=None):
        self.pages, self.before, self.requests = pages, {k: list(v) for k, v in (before or {}).items()}, []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                fake.requests.append({"path": parts.path, "query": query, "headers": dict(self.headers),
                                      "at": time.monotonic()})
                if fake.before.get(parts.path):
                    status, headers, body = fake.before[parts.path].pop(0)
                else:
                    pages = fake.pages.get(parts.path)
                    if pages is None:
                        status, headers, body = 404, {}, {"type": "error", "error": {"type": "not_found_error",
                                                                                       "message": "no route"}}
                    else:
                        n = int(query.get("page", ["page_0"])[0].split("_")[1])
                        status, headers, body = 200, {}, pages[n]
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def to(self, path):
        return [r for r in self.requests if r["path"] == path]


@pytest.fixture
def api():
    fakes = []

    def make(pages=None, before=None):
        fake = FakeAdminAPI(pages or {USAGE: pages_of(USAGE_BUCKETS), COST: pages_of(COST_BUCKETS)}, before)
        fakes.append(fake)
        return fake

    yield make
    for fake in fakes:
        fake.close()


@pytest.fixture
def db(tmp_path) -> Path:
    """The logs behind the fake's reports: day 1 as billed, day 2 four fifths of the bill."""
    adb = AttemptDB(tmp_path / "fs.duckdb")
    adb.add("a", 1, "2026-03-02 09:00", "claude-sonnet-4-5", input_tokens=100_000, output_tokens=20_000,
            cache_write_1h_tokens=40_000, web_search_requests=2)
    adb.add("b", 1, "2026-03-03 09:00", "claude-sonnet-4-5", input_tokens=100_000, output_tokens=20_000)
    adb.close()
    return adb.path


def cli(*args, key: str | None = KEY, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_ADMIN_KEY"}
    env |= {"COLUMNS": "200", **({"ANTHROPIC_ADMIN_KEY": key} if key else {})}
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", "reconcile", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def rows(db: Path):
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT day, model, token_type, billed, logged, billed_usd, computed_usd "
                           "FROM reconciliation ORDER BY ALL").fetchall()
    finally:
        con.close()


RANGE = ("--since", "2026-03-02", "--until", "2026-03-09")


def test_reconcile_follows_pages_and_waits_out_a_429_and_a_500(api, db):
    fake = api(before={USAGE: [(429, {"retry-after": "2"}, {"type": "error", "error": {
        "type": "rate_limit_error", "message": "slow down"}})],
        COST: [(500, {}, {"type": "error", "error": {"type": "api_error", "message": "oops"}})]})
    proc = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert proc.returncode == 0, proc.stderr
    usage, cost = fake.to(USAGE), fake.to(COST)
    assert len(usage) == 3 and len(cost) == 3  # the refused try, then two pages each
    assert usage[1]["at"] - usage[0]["at"] >= 1.95  # retry-after: 2 was waited for (not the 1 s backoff)
    assert [r["query"].get("page") for r in usage] == [None, None, ["page_1"]]
    first = usage[0]
    assert first["headers"]["x-api-key"] == KEY and first["headers"]["anthropic-version"] == "2023-06-01"
    assert first["query"]["starting_at"] == ["2026-03-02T00:00:00Z"]
    assert first["query"]["ending_at"] == ["2026-03-09T00:00:00Z"]
    assert first["query"]["bucket_width"] == ["1d"] and int(first["query"]["limit"][0]) <= 31
    assert first["query"]["group_by[]"] == ["model", "service_tier", "context_window", "inference_geo"]
    assert cost[0]["query"]["group_by[]"] == ["description"]
    table = {(str(d), m, t): (b, lg, bu, cu) for d, m, t, b, lg, bu, cu in rows(db)}
    assert table[("2026-03-02", "claude-sonnet-4-5", "cache_write_1h")] == (40_000, 40_000, pytest.approx(0.24),
                                                                           pytest.approx(0.24))
    assert table[("2026-03-03", "claude-sonnet-4-5", "output")] == (25_000, 20_000, pytest.approx(0.375),
                                                                   pytest.approx(0.30))
    lines = proc.stdout.splitlines()
    day2 = next(line for line in lines if line.startswith("2026-03-03  claude-sonnet-4-5"))
    # billed $0.75, computed $0.60, coverage 80%, all $0.15 explained by coverage, no price gap
    assert day2.split()[2:7] == ["$0.75", "$0.60", "80.0%", "$0.15", "$0.00"]
    assert "apart (code_execution): 2026-03-02 Code Execution Usage: $0.12." in proc.stdout


def test_a_401_is_one_sentence_with_the_status_and_the_apis_message(api, db):
    fake = api(before={USAGE: [(401, {}, {"type": "error", "error": {
        "type": "authentication_error", "message": f"invalid x-api-key {KEY}"}, "request_id": "req_1"})]})
    proc = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("fallbackscope: the Admin API's usage report: HTTP 401 (authentication_error: "
                                   "invalid x-api-key [the admin key]).")
    assert proc.stdout == "" and rows(db) == []


def test_a_5xx_that_does_not_end_fails_after_the_retries(api, db, monkeypatch):
    error = (503, {"retry-after": "0"}, {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    fake = api(before={COST: [error] * 6})
    proc = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("fallbackscope: the Admin API's cost report: HTTP 503 (overloaded_error: busy) "
                                   "after 6 tries.")


def test_a_redirect_is_not_followed(api, db):
    elsewhere = api()
    fake = api(before={USAGE: [(307, {"location": elsewhere.url + USAGE}, {})]})
    proc = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert proc.returncode == 1
    assert "HTTP 307, a redirect, which the client does not follow" in proc.stderr
    assert elsewhere.requests == []


def test_a_page_out_of_shape_is_one_sentence(api, db):
    page = copy.deepcopy(pages_of(USAGE_BUCKETS, per_page=2)[0])
    page["data"][0]["results"][0]["output_tokens"] = "many"
    fake = api(pages={USAGE: [page], COST: pages_of(COST_BUCKETS)})
    proc = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "fallbackscope: the Admin API's usage report: not the documented shape of the Admin API's usage report "
        "(data.0.results.0.output_tokens: Input should be a valid integer, unable to parse string as an integer).")


def test_the_admin_key_is_in_no_output_log_or_database_byte(api, db, tmp_path):
    fake = api(before={USAGE: [(429, {"retry-after": "0"}, {"type": "error", "error": {
        "type": "rate_limit_error", "message": f"key {KEY} is too quick"}})]})
    ok = cli("--db", str(db), "--api-url", fake.url, *RANGE)
    assert ok.returncode == 0, ok.stderr
    failing = api(before={COST: [(403, {}, {"type": "error", "error": {"type": "permission_error",
                                                                       "message": f"{KEY} may not"}})]})
    bad = cli("--db", str(db), "--api-url", failing.url, *RANGE)
    assert bad.returncode == 1
    report = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "report", "weekly", "--db", str(db),
                             "--week", "2026-W10", "--format", "json"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    for text in (ok.stdout, ok.stderr, bad.stdout, bad.stderr, report.stdout, report.stderr):
        assert KEY not in text and KEY[-12:] not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
            assert KEY[-12:].encode() not in path.read_bytes(), path


def test_saved_pages_give_the_same_table_as_the_api(api, db, tmp_path):
    import shutil

    fake = api()
    assert cli("--db", str(db), "--api-url", fake.url, *RANGE).returncode == 0
    saved = tmp_path / "pages"
    saved.mkdir()
    for name, pages in (("usage", pages_of(USAGE_BUCKETS)), ("cost", pages_of(COST_BUCKETS))):
        for n, page in enumerate(pages):
            (saved / f"{name}-{n}.json").write_text(json.dumps(page))
    copy = tmp_path / "copy.duckdb"
    shutil.copy(db, copy)
    conn = __import__("duckdb").connect(str(copy))
    conn.execute("DELETE FROM reconciliation")
    conn.close()
    proc = cli("--db", str(copy), "--from-file", str(saved), *RANGE, key=None)
    assert proc.returncode == 0, proc.stderr
    assert rows(copy) == rows(db) and rows(db)
    # without --since / --until the pages' own days are reconciled
    again = cli("--db", str(copy), "--from-file", str(saved / "usage-0.json"), "--from-file",
                str(saved / "usage-1.json"), "--from-file", str(saved / "cost-0.json"), "--from-file",
                str(saved / "cost-1.json"), key=None)
    assert again.returncode == 0, again.stderr
    assert "Reconciled 2026-03-02 – 2026-03-03 (2 UTC days" in again.stdout
    assert rows(copy) == rows(db)


def test_a_rerun_replaces_the_same_days_without_duplicating_rows(api, db):
    fake = api()
    assert cli("--db", str(db), "--api-url", fake.url, *RANGE).returncode == 0
    first = rows(db)
    assert cli("--db", str(db), "--api-url", fake.url, *RANGE).returncode == 0
    assert rows(db) == first


def test_the_weekly_report_gains_the_weeks_reconciliation(api, db):
    fake = api()
    assert cli("--db", str(db), "--api-url", fake.url, *RANGE).returncode == 0
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "report", "weekly", "--db", str(db),
                           "--week", "2026-W10", "--format", "json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    part = json.loads(proc.stdout)["reconciliation"]
    # billed 0.30 + 0.30 + 0.24 + 0.02 + 0.375 + 0.375; computed the same less the day-2 fifth of sonnet (0.15)
    assert part["billed_usd"] == pytest.approx(1.61)
    assert part["computed_usd"] == pytest.approx(1.46)
    assert part["coverage"] == pytest.approx((1.61 - 0.15) / 1.61)
    assert part["price_gap_usd"] == pytest.approx(0.0, abs=1e-9)


def test_workspace_id_keeps_that_workspace_and_asks_for_it(api, db):
    usage = [bucket("2026-03-02", [usage_result(SONNET, uncached=100_000, workspace="wrkspc_a"),
                                   usage_result(SONNET, uncached=900_000, workspace="wrkspc_b")])]
    costs = [bucket("2026-03-02", [cost_result("30", SONNET, "uncached_input_tokens", workspace="wrkspc_a"),
                                   cost_result("270", SONNET, "uncached_input_tokens", workspace="wrkspc_b")])]
    fake = api(pages={USAGE: pages_of(usage), COST: pages_of(costs)})
    proc = cli("--db", str(db), "--api-url", fake.url, "--workspace-id", "wrkspc_a", "--since", "2026-03-02",
               "--until", "2026-03-03")
    assert proc.returncode == 0, proc.stderr
    query = fake.to(USAGE)[0]["query"]
    assert query["workspace_ids[]"] == ["wrkspc_a"] and "workspace_id" in query["group_by[]"]
    assert "workspace_id" in fake.to(COST)[0]["query"]["group_by[]"]
    table = {(m, t): (b, bu) for _, m, t, b, _, bu, _ in rows(db)}
    assert table[("claude-sonnet-4-5", "uncached_input")] == (100_000, pytest.approx(0.30))


@pytest.mark.parametrize(("args", "key", "message"), [
    (("--api-url", "http://api.example.com"), KEY, "--api-url must be https unless it is a loopback address"),
    ((), None, "set ANTHROPIC_ADMIN_KEY to an Admin API key"),
    (("--since", "2026-03-09", "--until", "2026-03-02"), KEY, "--since must be before --until"),
    (("--since", "2026-03-02T10:00"), KEY, "is not a day"),
])
def test_bad_options_are_usage_errors(db, args, key, message):
    proc = cli("--db", str(db), *args, key=key)
    assert proc.returncode == 2
    assert message in proc.stderr and proc.stderr.count("\n") == 1


def test_a_busy_database_is_waited_for_then_one_sentence(api, db):
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(30)", str(db)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fake = api()
        started = time.monotonic()
        proc = cli("--db", str(db), "--api-url", fake.url, *RANGE, "--lock-timeout", "1")
        assert proc.returncode == 1
        assert "locked by another fallbackscope process" in proc.stderr
        assert time.monotonic() - started >= 1
    finally:
        holder.kill()
        holder.wait()


def test_reconcile_has_a_help_text():
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "reconcile", "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0 and "Anthropic's bill" in proc.stdout
