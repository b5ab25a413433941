"""`fallbackscope alert` and `export openmetrics` as a user runs them (docs/metrics.md §9): delivery to a real HTTP
receiver on loopback, the alerts state, exit codes, the webhook URL kept secret, OpenMetrics that parses."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).parent / "analytics"))
from alert_scenarios import POLICY, SPIKE_AT, WORKLOAD, M, add_sessions, build_slow_burn, build_spike  # noqa: E402
from analytics_db import AttemptDB  # noqa: E402

from fallbackscope.alerting import DASHBOARD_ENV, WEBHOOK_ENV, post, run_alert  # noqa: E402

SECRET = "T0CANARY9/B0CANARY7/xoxSECRETCANARY42"
TOKEN = "tokCANARY-0f3a"


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request and answers from a script (then 200)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes, float]] = []
        self.script: list[tuple[int, dict[str, str]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append((self.command, self.path, self.rfile.read(length), time.monotonic()))
                status, headers = receiver.script.pop(0) if receiver.script else (200, {})
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_POST = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/services/{SECRET}?token={TOKEN}"

    @property
    def posts(self) -> list[dict]:
        return [json.loads(body) for method, _, body, _ in self.requests if method == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def spike_template(tmp_path_factory) -> Path:
    db = AttemptDB(tmp_path_factory.mktemp("tpl") / "spike.duckdb")
    build_spike(db)
    db.set_policy(POLICY)
    db.close()
    return db.path


@pytest.fixture
def spike_db(spike_template, tmp_path) -> Path:
    path = tmp_path / "fs.duckdb"
    shutil.copy(spike_template, path)
    return path


OUTPUTS: list[str] = []


def alert(db: Path, *args: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in (WEBHOOK_ENV, DASHBOARD_ENV)}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    if url is not None:
        env[WEBHOOK_ENV] = url
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "alert", "--db", str(db), *args],
                          capture_output=True, text=True, env=env, timeout=180)
    OUTPUTS.extend([proc.stdout, proc.stderr])
    return proc


def state(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT workload, severity, rule, first_fired, resolved FROM alerts ORDER BY first_fired"
                           ).fetchall()
    finally:
        con.close()


def recover(db: Path) -> None:
    """Twenty answered sessions in the hour after the spike: the 1h and 5m windows are healthy again."""
    adb = AttemptDB(db)
    add_sessions(adb, [SPIKE_AT + 61 * M + i * 3 * M for i in range(20)], [None] * 20, tag="after")
    adb.close()


def test_one_post_per_new_alert_nothing_resent_then_one_resolved(spike_db, receiver):
    first = alert(spike_db, url=receiver.url)
    assert first.returncode == 3, first.stderr
    (posted,) = receiver.posts
    assert posted["status"] == "firing" and posted["workload"] == WORKLOAD and posted["rule"] == "1h/5m ×14.4"
    assert json.loads(first.stdout) == [posted]  # printed what it posted
    assert [(w, s, r, f, res) for w, s, r, f, res in state(spike_db)] == [
        (WORKLOAD, "page", "1h/5m ×14.4", SPIKE_AT, None)]

    again = alert(spike_db, url=receiver.url)
    assert again.returncode == 3 and len(receiver.posts) == 1  # still firing, already notified: not sent again

    recover(spike_db)
    healed = alert(spike_db, "--format", "slack", url=receiver.url)
    assert healed.returncode == 0, healed.stderr
    assert len(receiver.posts) == 2
    text = receiver.posts[1]["text"]
    assert text.startswith(f"[RESOLVED] {WORKLOAD}: page 1h/5m ×14.4 — session refusal rate 0.0% over 1h")
    ((*_, resolved),) = state(spike_db)
    assert resolved == SPIKE_AT + 61 * M + 19 * 3 * M  # the latest attempt: the run that found it stopped

    quiet = alert(spike_db, url=receiver.url)
    assert quiet.returncode == 0 and len(receiver.posts) == 2 and quiet.stdout.strip() == "[]"


def test_a_receiver_answering_500_gets_the_alert_on_the_next_run(spike_db, receiver):
    receiver.script = [(500, {})] * 3
    failed = alert(spike_db, url=receiver.url)
    assert failed.returncode == 1  # a failed post (1) comes before a firing alert (3)
    assert len(receiver.posts) == 3  # three tries
    assert "webhook post to 127.0.0.1 failed (HTTP 500) after 3 tries" in failed.stderr
    assert state(spike_db) == []  # state unchanged: the next run sends it
    delivered = alert(spike_db, url=receiver.url)
    assert delivered.returncode == 3
    assert len(receiver.posts) == 4 and receiver.posts[3] == receiver.posts[0]
    assert len(state(spike_db)) == 1


def test_a_429_with_retry_after_is_waited_for(spike_db, receiver):
    receiver.script = [(429, {"Retry-After": "2"})]
    proc = alert(spike_db, url=receiver.url)
    assert proc.returncode == 3, proc.stderr
    (_, _, _, t1), (_, _, _, t2) = receiver.requests
    assert t2 - t1 >= 1.9  # the 2 s asked for, not the 1 s backoff
    assert len(state(spike_db)) == 1


def test_redirects_are_not_followed(spike_db, receiver):
    receiver.script = [(302, {"Location": "/elsewhere"})]
    proc = alert(spike_db, url=receiver.url)
    assert proc.returncode == 1
    assert [path for _, path, _, _ in receiver.requests] == [f"/services/{SECRET}?token={TOKEN}"]
    assert "HTTP 302 (redirects are not followed)" in proc.stderr and state(spike_db) == []


def test_dry_run_neither_posts_nor_writes(spike_db, receiver):
    before = spike_db.read_bytes()
    proc = alert(spike_db, "--dry-run", "--dashboard-url", "http://dash.example", url=receiver.url)
    assert proc.returncode == 3
    (printed,) = json.loads(proc.stdout)
    assert printed["dashboard_url"].startswith("http://dash.example/refusals?from=2026-03-02&to=2026-03-02")
    assert receiver.requests == [] and spike_db.read_bytes() == before


def test_without_a_webhook_url_and_without_dry_run_is_a_usage_error(spike_db):
    before = spike_db.read_bytes()
    proc = alert(spike_db)
    assert proc.returncode == 2
    assert f"set ${WEBHOOK_ENV}, or use --dry-run" in proc.stderr and spike_db.read_bytes() == before


def test_nothing_to_watch_is_a_usage_error(spike_db, tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text("[workloads.chat]\nrequire_disclosure = true\n")
    proc = alert(spike_db, "--dry-run", "--policy", str(policy))
    assert proc.returncode == 2 and "no workload has a refusal_slo: nothing to watch" in proc.stderr


def test_a_period_without_chains_exits_4(spike_db, tmp_path):
    later = alert(spike_db, "--dry-run", "--at", "2026-03-06T12:00:00Z")  # 3d windows after every chain
    assert later.returncode == 4 and "no data: no chain of a watched workload (chat) started in the 3d" in later.stderr
    assert later.stdout == ""
    empty = AttemptDB(tmp_path / "empty.duckdb")
    empty.set_policy(POLICY)
    empty.close()
    nothing = alert(empty.path, "--dry-run")
    assert nothing.returncode == 4 and "holds no attempts" in nothing.stderr


def test_a_stale_database_exits_4_whatever_fires(spike_db, receiver):
    proc = alert(spike_db, "--max-staleness", "26h", url=receiver.url)
    assert proc.returncode == 4  # the spike fires, but its data is months old: no data (4) before firing (3)
    assert "no data since 2026-03-02T12:00:00Z" in proc.stderr
    assert receiver.requests == [] and state(spike_db) == []
    fresh = alert(spike_db, "--dry-run", "--max-staleness", f"{(dt.datetime.now(dt.UTC) - SPIKE_AT).days + 2}d")
    assert fresh.returncode == 3


def test_a_ticket_goes_out_as_slack_text_a_person_reads_at_a_glance(tmp_path, receiver):
    adb = AttemptDB(tmp_path / "slow.duckdb")
    build_slow_burn(adb)
    adb.set_policy(POLICY)
    adb.close()
    proc = alert(adb.path, "--format", "slack", "--dashboard-url", "http://dash:8050/", url=receiver.url)
    assert proc.returncode == 3, proc.stderr
    (posted,) = receiver.posts
    # 3d: 29 of 288 = 10.1%, burn 2.01×; 6h: 2.5×; budget: 1 − 2.0139 = −1.0139 → overspent by 101%
    assert posted == {"text": "[TICKET] chat: session refusal rate 10.1% — 2.01× budget burn over 3d, 2.5× over 6h; "
                              "target 5% (policy); the 28-day budget is overspent by 101%; top: cyber 100% "
                              "<http://dash:8050/refusals?from=2026-03-06&to=2026-03-09&workload=chat|dashboard>"}
    assert proc.stdout.strip() == posted["text"]


def test_the_webhook_url_appears_in_no_output_log_or_database_byte(spike_db, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.script = [(500, {})] * 3 + [(302, {"Location": f"/{SECRET}/again"})]
    env = {WEBHOOK_ENV: receiver.url}
    runs = [run_alert(spike_db, environ=env) for _ in range(3)]  # 500 ×3, then a redirect, then delivered
    assert [r.exit_code for r in runs] == [1, 1, 3]
    recover(spike_db)
    runs.append(run_alert(spike_db, environ=env))
    assert runs[-1].resolved == 1 and len(receiver.posts) == 6
    texts = [caplog.text, *OUTPUTS] + [t for r in runs for t in (r.output, *r.errors, *r.warnings)]
    for path in spike_db.parent.iterdir():
        texts.append(path.read_bytes().decode("latin-1"))
    for canary in ("CANARY", SECRET, TOKEN):
        assert not [t for t in texts if canary in t]
    assert any("127.0.0.1" in e for r in runs for e in r.errors)  # errors name the host alone


def test_post_honours_retry_after_and_gives_up_on_an_answer_that_cannot_change(receiver):
    waits: list[float] = []
    receiver.script = [(503, {"Retry-After": "7"}), (503, {})]
    post(receiver.url, b"{}", sleep=waits.append)
    assert waits == [7.0, 2.0]  # Retry-After first, then the second backoff step
    receiver.script = [(400, {})]
    with pytest.raises(Exception, match=r"HTTP 400\) after 1 try"):
        post(receiver.url, b"{}", sleep=waits.append)
    receiver.script = [(429, {"Retry-After": "3600"})]
    with pytest.raises(Exception, match="Retry-After 3600 s is longer than 60 s"):
        post(receiver.url, b"{}", sleep=waits.append)


# ---------------------------------------------------------------- OpenMetrics


def export(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fallbackscope.cli", "export", "openmetrics", *args, "--db", str(db)],
                          capture_output=True, text=True, timeout=180)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge"
        for s in family.samples:
            assert s.timestamp is None
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_openmetrics_parses_with_the_scenarios_values(spike_db):
    proc = export(spike_db, "-")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.endswith("# EOF\n") and "# UNIT" not in proc.stdout
    got = samples(proc.stdout)

    def value(name: str, **labels: str) -> float:
        return got[(f"fallbackscope_{name}", tuple(sorted(labels.items())))]

    w = {"workload": WORKLOAD}
    assert value("sessions", **w, window="1h") == 40 and value("refused_sessions", **w, window="1h") == 38
    assert value("session_refusal_ratio", **w, window="1h") == pytest.approx(0.95)
    assert value("refusal_burn_rate", **w, window="1h", source="policy") == pytest.approx(19.0)
    assert value("refusal_burn_rate", **w, window="5m", source="policy") == pytest.approx(20.0)
    assert value("sessions", **w, window="24h") == 780  # 440 + 340 of the 800 (see the scenario)
    assert value("refusal_slo_target", **w, source="policy") == 0.05
    assert value("error_budget_remaining", **w, window="28d", source="policy") == pytest.approx(1 - 38 / 62)
    assert value("chain_refusal_ratio", **w, window="24h") == pytest.approx(38 / 780)
    assert value("fallback_ratio", **w, window="24h") == 0
    assert value("cost_usd", **w, window="24h") == 0
    assert value("last_attempt_timestamp_seconds") == SPIKE_AT.timestamp()
    assert ("fallbackscope_sessions", (("window", "28d"), ("workload", WORKLOAD))) not in got


def test_openmetrics_file_is_written_atomically_readable_by_the_collector(spike_db, tmp_path):
    target = tmp_path / "collector" / "fallbackscope.prom"
    target.parent.mkdir()
    old = os.umask(0o077)
    try:
        proc = export(spike_db, str(target), "--at", "2026-03-02T11:00:00Z")
    finally:
        os.umask(old)
    assert proc.returncode == 0 and proc.stdout == ""
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert sorted(p.name for p in target.parent.iterdir()) == ["fallbackscope.prom"]  # no .tmp left behind
    got = samples(target.read_text())
    # at 11:00 the 1h window (10:00, 11:00] holds only answered sessions: the spike began at 11:05
    assert got[("fallbackscope_refused_sessions", (("window", "1h"), ("workload", WORKLOAD)))] == 0
    if shutil.which("promtool"):
        check = subprocess.run(["promtool", "check", "metrics"], input=target.read_text(), capture_output=True,
                               text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_openmetrics_escapes_labels_and_leaves_out_ratios_over_nothing(tmp_path):
    hostile = 'we"ird\\name\nwith newline'
    adb = AttemptDB(tmp_path / "h.duckdb")
    adb.add("h1", 1, SPIKE_AT - dt.timedelta(hours=2), outcome="refusal", workload=hostile)
    adb.add("later", 1, SPIKE_AT, workload="other")  # the latest attempt: the windows end here
    adb.close()
    proc = export(adb.path, "-")
    assert proc.returncode == 0, proc.stderr
    got = samples(proc.stdout)
    assert got[("fallbackscope_sessions", (("window", "6h"), ("workload", hostile)))] == 1
    assert got[("fallbackscope_sessions", (("window", "1h"), ("workload", hostile)))] == 0
    # no sessions in the last hour: no ratio, no burn rate for that window
    assert ("fallbackscope_session_refusal_ratio", (("window", "1h"), ("workload", hostile))) not in got
    assert ("fallbackscope_refusal_burn_rate", (("source", "default"), ("window", "1h"), ("workload", hostile))
            ) not in got
    assert got[("fallbackscope_refusal_burn_rate", (("source", "default"), ("window", "6h"), ("workload", hostile)))
               ] == pytest.approx(20.0)


def test_openmetrics_over_an_empty_database_says_no_data(tmp_path):
    adb = AttemptDB(tmp_path / "e.duckdb")
    adb.close()
    proc = export(adb.path, "-")
    assert proc.returncode == 4 and proc.stdout == "# EOF\n" and "no data" in proc.stderr


@pytest.mark.parametrize("command", [["alert"], ["export", "openmetrics"]])
def test_help_describes_the_command_and_shows_no_type_after_flags(command):
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", *command, "--help"], capture_output=True,
                          text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60)
    assert proc.returncode == 0
    assert "OpenMetrics" in proc.stdout if command[0] == "export" else "burn rates" in proc.stdout
    assert "<bool>" not in proc.stdout


def test_a_bad_format_or_duration_is_a_usage_error(spike_db):
    assert alert(spike_db, "--dry-run", "--format", "xml").returncode == 2
    proc = alert(spike_db, "--dry-run", "--max-staleness", "26 hours")
    assert proc.returncode == 2 and "--max-staleness `26 hours` is not a duration" in proc.stderr


def test_each_post_saves_its_own_state_and_a_failed_one_leaves_its_alert_as_it_was(spike_db):
    from fallbackscope.alerting import DeliveryFailed

    con = duckdb.connect(str(spike_db))  # a ticket notified yesterday, which no longer fires
    con.execute("INSERT INTO alerts VALUES (?, 'ticket', '3d/6h ×1', ?, now(), NULL, 0.05, 1.2, 1.5)",
                [WORKLOAD, SPIKE_AT - dt.timedelta(days=1)])
    con.close()
    sent: list[dict] = []

    def poster(url: str, data: bytes) -> None:
        message = json.loads(data)
        if message["status"] == "resolved":
            raise DeliveryFailed("webhook post to example.invalid failed (HTTP 503) after 3 tries")
        sent.append(message)

    run = run_alert(spike_db, environ={WEBHOOK_ENV: "https://example.invalid/hook"}, poster=poster)
    assert run.exit_code == 1 and run.sent == 1 and run.resolved == 0
    assert [m["rule"] for m in sent] == ["1h/5m ×14.4"]
    assert "resolution of ticket alert 3d/6h ×1 for `chat`" in run.errors[0]
    rows = {(s, r): res for _, s, r, _, res in state(spike_db)}
    assert rows == {("ticket", "3d/6h ×1"): None, ("page", "1h/5m ×14.4"): None}  # the page saved, the ticket open
    again = run_alert(spike_db, environ={WEBHOOK_ENV: "https://example.invalid/hook"},
                      poster=lambda url, data: sent.append(json.loads(data)))
    assert again.exit_code == 3 and again.resolved == 1 and [m["status"] for m in sent] == ["firing", "resolved"]
