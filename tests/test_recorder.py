"""The SDK recorder end to end: the real `anthropic` SDK (its refusal-fallback middleware and retry loop)
talks to a fake Messages API on 127.0.0.1; the recorder writes exchange lines; `fallbackscope ingest` and
the weekly report give back exactly what the fake server knows it served; no canary reaches disk.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

anthropic = pytest.importorskip("anthropic")

from anthropic import AsyncAnthropic, BetaFallbackState, BetaRefusalFallbackMiddleware  # noqa: E402

from fallbackscope.core.config import load_key  # noqa: E402
from fallbackscope.core.fingerprint import prompt_fingerprint, token_fingerprint  # noqa: E402
from fallbackscope.recorder import Recorder, reduce_request, tags  # noqa: E402

FABLE, OPUS = "claude-fable-5", "claude-opus-4-8"
MARK = "CANARY_"


def canary(name: str) -> str:
    return f"{MARK}{name}_Zq7"


# --- the fake Messages API ----------------------------------------------------------------------------------


@dataclass
class Served:
    """One response the server sent (or withheld, for a timeout): the ground truth of one attempt."""

    sid: str
    model: str
    outcome: str  # ok | refusal | error | timeout
    prompt_fp: str
    stream: bool = False
    status: int | None = 200
    error_class: str | None = None
    category: str | None = None
    minted: str | None = None
    presented: str | None = None
    credit_status: str | None = None
    declined: list = field(default_factory=list)  # server-side hops: [(model, category)]


class Tally:
    def __init__(self, key: bytes) -> None:
        self.key = key
        self.lock = threading.Lock()
        self.served: list[Served] = []
        self.calls: collections.Counter = collections.Counter()
        self.tokens = 0

    def mint(self) -> str:
        with self.lock:
            self.tokens += 1
            return canary(f"credit_token_{self.tokens}")


def text_blocks() -> list[dict]:
    return [{"type": "thinking", "thinking": canary("thinking"), "signature": canary("signature")},
            {"type": "text", "text": canary("completion")},
            {"type": "tool_use", "id": "toolu_1", "name": canary("tool_name_out"),
             "input": {"q": canary("tool_input_out")}}]


def message(mid: str, model: str, *, stop: str = "end_turn", details: dict | None = None,
            credit: dict | None = None, content: list | None = None, iterations: list | None = None) -> dict:
    usage = {"input_tokens": 120, "output_tokens": 40, "cache_creation_input_tokens": 30,
             "cache_read_input_tokens": 500, "cache_creation": {"ephemeral_5m_input_tokens": 30,
                                                                 "ephemeral_1h_input_tokens": 0},
             "service_tier": "standard"}
    if credit:
        usage["fallback_credit"] = {"status": credit}
    if iterations:
        usage["iterations"] = iterations
    return {"id": mid, "type": "message", "role": "assistant", "model": model,
            "content": text_blocks() if content is None else content, "stop_reason": stop,
            "stop_sequence": None, "stop_details": details, "usage": usage}


def refusal_details(category: str, token: str, prefill: bool = False) -> dict:
    return {"type": "refusal", "category": category, "explanation": canary("explanation"),
            "fallback_credit_token": token, "fallback_has_prefill_claim": prefill, "recommended_model": OPUS}


def plan(kind: str, model: str, token: str | None, n: int) -> tuple:
    """What the server does for the n-th request of a scenario: the scenarios' script."""
    if kind in ("plain", "async_stream", "readme"):
        return ("ok",)
    if kind in ("refuse_fallback", "stream_refuse", "pinned"):
        category = {"refuse_fallback": "cyber", "stream_refuse": "frontier_llm", "pinned": "cyber"}[kind]
        return ("refusal", category) if model == FABLE else ("ok",)
    if kind == "async_refuse":
        return ("refusal", "general_harms") if model == FABLE else ("ok",)
    if kind == "overloaded_then_ok":
        return ("error", 529, "overloaded_error") if n == 1 else ("ok",)
    if kind == "hop_529_restart":  # the fallback hop fails once: the SDK's retry loop restarts the chain
        if model == FABLE:
            return ("refusal", "bio")
        return ("error", 529, "overloaded_error") if n == 2 else ("ok",)
    if kind == "rate_limited":
        return ("error", 429, "rate_limit_error")
    if kind == "timeout_then_ok":
        return ("timeout",) if n == 1 else ("ok",)
    if kind == "server_side":
        return ("server_side",)
    if kind == "stream_error":
        return ("stream_error",)
    raise AssertionError(kind)


class Handler(BaseHTTPRequestHandler):
    tally: Tally

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        assert self.path.split("?")[0] == "/v1/messages"
        assert canary("api_key") in (self.headers["x-api-key"] or self.headers["authorization"] or "")
        tally = self.tally
        sid = self.headers["x-scenario"] or "readme#1"
        kind = sid.split("#")[0]
        with tally.lock:
            tally.calls[sid] += 1
            n = tally.calls[sid]
        token = body.get("fallback_credit_token")
        token = token.get("token") if isinstance(token, dict) else token
        model, stream = body["model"], bool(body.get("stream"))
        served = Served(sid=sid, model=model, outcome="ok", prompt_fp=prompt_fingerprint(tally.key, body),
                        stream=stream, presented=token)
        mid = f"msg_{sid.replace('#', '_')}_{n}"
        step = plan(kind, model, token, n)
        if step[0] == "timeout":
            served.outcome, served.status, served.error_class = "timeout", None, "timeout"
            tally.served.append(served)
            time.sleep(1.0)  # the client gave up after 0.4 s
            return self._send_json(200, message(mid, model))
        if step[0] == "error":
            served.outcome, served.status, served.error_class = "error", step[1], step[2].split("_error")[0]
            tally.served.append(served)
            err = {"type": "error", "error": {"type": step[2], "message": canary("error_message")},
                   "request_id": f"req_{mid}"}
            return self._send_json(step[1], err, extra={"retry-after-ms": "5", "x-should-retry": "true"})
        credit = None
        if token:
            credit = {"type": "not_applied", "reason": "expired"} if kind == "async_refuse" else {"type": "redeemed"}
            served.credit_status = credit["type"]
        if step[0] == "refusal":
            served.outcome, served.category, served.minted = "refusal", step[1], tally.mint()
            msg = message(mid, model, stop="refusal", credit=credit,
                          details=refusal_details(step[1], served.minted, prefill=stream),
                          content=[{"type": "text", "text": canary("refused_partial")}])
        elif step[0] == "server_side":
            served.declined = [(FABLE, "cyber")]
            msg = message(mid, OPUS, content=[
                {"type": "fallback", "from": {"model": FABLE}, "to": {"model": OPUS},
                 "trigger": {"type": "refusal", "category": "cyber"}}, *text_blocks()],
                iterations=[{"type": "message", "model": FABLE, "input_tokens": 100, "output_tokens": 0,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
                            {"type": "fallback_message", "model": OPUS, "input_tokens": 100, "output_tokens": 40,
                             "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}])
        elif step[0] == "stream_error":
            served.outcome, served.error_class = "error", "overloaded"
            msg = None
        else:
            msg = message(mid, model, credit=credit)
        tally.served.append(served)
        if not stream:
            return self._send_json(200, msg)
        return self._send_stream(mid, model, msg)

    def _send_json(self, status: int, obj: dict, extra: dict | None = None) -> None:
        data = json.dumps(obj).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", obj.get("request_id") or f"req_{obj.get('id')}")
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left

    def _send_stream(self, mid: str, model: str, msg: dict | None) -> None:
        events: list[tuple[str, dict]] = []
        start = message(mid, model, stop=None, content=[])
        start["stop_reason"] = None
        start["usage"] = {"input_tokens": 120, "output_tokens": 1, "cache_read_input_tokens": 500}
        events.append(("message_start", {"type": "message_start", "message": start}))
        events.append(("ping", {"type": "ping"}))
        events.append(("content_block_start", {"type": "content_block_start", "index": 0,
                                               "content_block": {"type": "text", "text": ""}}))
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": canary("stream_text")}}))
        if msg is None:
            events.append(("error", {"type": "error", "error": {"type": "overloaded_error",
                                                                "message": canary("stream_error")}}))
        else:
            events.append(("content_block_stop", {"type": "content_block_stop", "index": 0}))
            events.append(("message_delta", {"type": "message_delta",
                                             "delta": {"stop_reason": msg["stop_reason"], "stop_sequence": None,
                                                       "stop_details": msg["stop_details"]},
                                             "usage": {**msg["usage"], "output_tokens": 40}}))
            events.append(("message_stop", {"type": "message_stop"}))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("request-id", f"req_{mid}")
        self.send_header("connection", "close")
        self.end_headers()
        for name, data in events:
            self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()


@contextlib.contextmanager
def fake_api(tally: Tally) -> Iterator[str]:
    """Serve the fake Messages API on 127.0.0.1 in a thread; yield its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("BoundHandler", (Handler,), {"tally": tally}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# --- the app ------------------------------------------------------------------------------------------------


def params(sid: str, model: str = FABLE) -> dict:
    """A request with a canary in every text field."""
    return dict(
        model=model, max_tokens=256,
        system=[{"type": "text", "text": canary("system")}],
        messages=[
            {"role": "user", "content": f"{canary('user_text')} scenario {sid}"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": canary("tool_name"),
                                               "input": {"q": canary("tool_input")}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0",
                                          "content": canary("tool_result")}]},
        ],
        tools=[{"name": canary("tool_name"), "description": canary("tool_description"),
                "input_schema": {"type": "object", "properties": {canary("tool_schema"): {"type": "string"}}}}],
        metadata={"user_id": canary("user_id")},
        stop_sequences=[canary("stop_sequence")],
        extra_headers={"x-scenario": sid},
    )


def run_sync_app(base_url: str, rec: Recorder) -> None:
    middleware = [rec.middleware(), BetaRefusalFallbackMiddleware([{"model": OPUS}])]
    client = rec.instrument(anthropic.Anthropic(api_key=canary("api_key"), base_url=base_url,
                                                middleware=middleware, max_retries=2))
    with tags(workload="support-chat"):
        with tags(session_id="s-plain", chain_id="c-plain"):
            client.beta.messages.create(**params("plain#1"))
        with tags(session_id="s-refuse", chain_id="c-refuse"):
            client.beta.messages.create(**params("refuse_fallback#1"))
        with tags(session_id="s-overload"):  # no chain id: linked by prompt fingerprint
            client.beta.messages.create(**params("overloaded_then_ok#1"))
        with tags(session_id="s-hop529"):  # no chain id: linked by credit tokens and prompt fingerprint
            client.beta.messages.create(**params("hop_529_restart#1"))
        with tags(session_id="s-stream"):
            with client.beta.messages.stream(**params("stream_refuse#1")) as stream:
                stream.until_done()
        with tags(session_id="s-stream-error", chain_id="c-stream-error"):
            with pytest.raises(anthropic.APIStatusError):
                with client.beta.messages.stream(**params("stream_error#1")) as stream:
                    stream.until_done()
        with tags(session_id="s-timeout"):
            client.beta.messages.create(**params("timeout_then_ok#1"), timeout=0.4)
    with tags(workload="batch-extract", session_id="s-ratelimit"):
        with pytest.raises(anthropic.RateLimitError):
            client.messages.create(**params("rate_limited#1"))
        # server-side fallback: the API itself tries the fallbacks (no client middleware on this call)
        plain = rec.instrument(anthropic.Anthropic(api_key=canary("api_key"), base_url=base_url))
        plain.beta.messages.create(**params("server_side#1"), fallbacks=[{"model": OPUS}],
                                   betas=["server-side-fallback-2026-07-01"])
    # a pinned conversation: turn 2 goes straight to the fallback model the state remembers
    state = BetaFallbackState()
    with state, tags(workload="support-chat", session_id="s-pinned"):
        with tags(chain_id="c-pinned-1"):
            client.beta.messages.create(**params("pinned#1"))
        with tags(chain_id="c-pinned-2"):
            client.beta.messages.create(**params("pinned#2"))


async def run_async_app(base_url: str, rec: Recorder) -> None:
    client = rec.instrument(AsyncAnthropic(api_key=canary("api_key"), base_url=base_url,
                                           middleware=[BetaRefusalFallbackMiddleware([{"model": OPUS}])]))
    with tags(workload="support-chat", session_id="s-async", chain_id="c-async"):
        await client.beta.messages.create(**params("async_refuse#1"))
    with tags(workload="support-chat", session_id="s-async-stream"):
        stream = await client.messages.create(**params("async_stream#1"), stream=True)
        async for _ in stream:
            pass
    await client.close()


# --- the test -----------------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "FALLBACKSCOPE_KEY"}
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def expected_report(served: list[Served]) -> dict:
    """The report's numbers, from what the server served alone."""
    attempts = len(served) + sum(len(s.declined) for s in served)
    categories = collections.Counter(s.category for s in served if s.outcome == "refusal")
    categories.update(category for s in served for _, category in s.declined)
    errors = collections.Counter(s.error_class for s in served if s.error_class)
    minted = [s.minted for s in served if s.minted]
    on_2xx = {s.presented: s.credit_status for s in served if s.presented and s.status == 200 and s.credit_status}
    return {
        "attempts": attempts,
        "chains": len({s.sid for s in served}),
        "refused_chains": len({s.sid for s in served if s.outcome == "refusal" or s.declined}),
        "categories": dict(categories),
        "errors": dict(errors),
        "minted": len(minted),
        "redeemed": sum(on_2xx.get(t) == "redeemed" for t in minted),
        "rejected": sum(on_2xx.get(t) == "not_applied" for t in minted),
        # every scenario that minted a credit sent more requests right after, so a credit never presented
        # on a 2xx was forfeited, not expired
        "forfeited": sum(t not in on_2xx for t in minted),
    }


def summed_report(weeks: list[dict]) -> dict:
    """The same numbers from the weekly reports (summed, in case the run straddled a week boundary)."""
    categories: collections.Counter = collections.Counter()
    errors: collections.Counter = collections.Counter()
    out = collections.Counter()
    for week in weeks:
        out["attempts"] += week["totals"]["attempts"]
        out["chains"] += week["totals"]["chains"]
        out["refused_chains"] += week["refusal_rate"]["numerator"]
        for row in week["refusals_by_category"]:
            categories[row["category"]] += row["refused_attempts"]
        for row in week["errors"]:
            errors[row["error_class"]] += row["attempts"]
        for key in ("minted", "redeemed", "rejected", "forfeited"):
            out[key] += week["cache_credit"]["credits_minted" if key == "minted" else key]
    return {**out, "categories": dict(categories), "errors": dict(errors)}


@pytest.mark.slow
def test_sdk_traffic_recorded_ingested_and_reported_as_served_without_content(tmp_path, monkeypatch, caplog,
                                                                               capfd):
    monkeypatch.delenv("FALLBACKSCOPE_KEY")  # the recorder and ingest share the key file beside the db
    db = tmp_path / "fs.duckdb"
    log_path = tmp_path / "logs" / "exchange.jsonl"
    rec = Recorder(log_path, db=db)
    tally = Tally(load_key(db, create=False))
    caplog.set_level(logging.DEBUG, logger="fallbackscope")
    try:
        with fake_api(tally) as base_url:
            run_sync_app(base_url, rec)
            asyncio.run(run_async_app(base_url, rec))
    finally:
        rec.close()
    app_out = capfd.readouterr()

    served = tally.served
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert rec.failures == 0
    assert len(lines) == len(served) == rec.lines_written  # one line per real HTTP exchange
    assert {s.sid.split("#")[0] for s in served} >= {"hop_529_restart", "stream_refuse", "server_side"}

    ingest = cli("ingest", str(log_path), "--db", str(db))
    assert "0 rejected" in ingest.stdout + ingest.stderr
    report = cli("report", "weekly", "--db", str(db), "--format", "json", "--all-weeks")
    weeks = json.loads(report.stdout)
    assert summed_report(weeks) == expected_report(served)

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("SELECT chain_id, prompt_fp, fallback_mode, is_stream, trigger, credit_minted_fp, "
                           "credit_presented_fp, intended_model FROM attempts").fetchall()
    finally:
        con.close()
    # chains as the server saw them: the attempts of each scenario, keyed by the prompts they carried
    by_sid: dict[str, list[Served]] = collections.defaultdict(list)
    for s in served:
        by_sid[s.sid].append(s)
    want_chains = sorted((sorted({s.prompt_fp for s in group}), sum(1 + len(s.declined) for s in group))
                         for group in by_sid.values())
    got: dict[str, list] = collections.defaultdict(list)
    for row in rows:
        got[row[0]].append(row)
    got_chains = sorted((sorted({r[1] for r in group}), len(group)) for group in got.values())
    assert got_chains == want_chains
    # fingerprints computed at capture equal the ones the server computes from the bodies it received
    key = tally.key
    assert {r[5] for r in rows if r[5]} == {token_fingerprint(key, s.minted) for s in served if s.minted}
    assert {r[6] for r in rows if r[6]} == {token_fingerprint(key, s.presented) for s in served if s.presented}
    assert sum(r[2] == "server_side" for r in rows) == sum(len(s.declined) + 1 for s in served if s.declined)
    assert sum(bool(r[3]) for r in rows) == sum(s.stream for s in served)
    # turn 2 of the pinned conversation went straight to the fallback model: counted as a fallback
    first_of_chain = {s.sid: s for s in reversed(served)}
    assert sum(r[4] == "pinned" for r in rows) == sum(s.model != FABLE for s in first_of_chain.values()) == 1

    # no canary anywhere on disk or in any output
    outputs = {
        "recorder file": log_path.read_bytes(),
        "database file": db.read_bytes(),
        "cli output": (ingest.stdout + ingest.stderr + report.stdout + report.stderr).encode(),
        "fallbackscope log": caplog.text.encode(),
    }
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".key":
            outputs[str(path)] = path.read_bytes()
    for name, data in outputs.items():
        assert MARK.encode() not in data, f"a canary reached the {name}"
    assert MARK not in app_out.out  # the recorder printed nothing of the traffic


def test_reduced_request_keeps_settings_and_fingerprints_only():
    key = b"k" * 64
    body = params("unit#1")
    body.pop("extra_headers")
    body.update(stream=True, speed="fast", fallback_credit_token={"token": canary("token"), "mode": "best_effort"},
                fallbacks=[{"model": OPUS, "output_config": {"format": {"schema": canary("schema")}}}])
    reduced = reduce_request(body, key)
    assert reduced == {
        "model": FABLE, "max_tokens": 256, "stream": True, "speed": "fast", "fallbacks": [{"model": OPUS}],
        "prompt_fp": prompt_fingerprint(key, body), "fallback_credit_mode": "best_effort",
        "credit_presented_fp": token_fingerprint(key, canary("token")),
    }


def test_recorder_module_imports_neither_the_sdk_nor_the_dashboard():
    code = ("import sys, fallbackscope.recorder; "
            "print(sorted(m for m in ('anthropic', 'httpx2', 'dash', 'duckdb') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_broken_log_path_never_breaks_the_request(tmp_path):
    import httpx2

    rec = Recorder(tmp_path / "missing-dir-is-a-file" / "x.jsonl", key="k" * 64)
    (tmp_path / "missing-dir-is-a-file").write_text("not a directory")
    seen = []

    class Ok(httpx2.BaseTransport):
        def handle_request(self, request):
            seen.append(request)
            body = json.dumps(message("msg_1", FABLE)).encode()
            return httpx2.Response(200, stream=httpx2.ByteStream(body), headers={"request-id": "req_1"})

    with httpx2.Client(transport=rec.transport(Ok()), base_url="http://x") as http:
        response = http.post("/v1/messages", json={"model": FABLE, "messages": []})
    assert response.json()["id"] == "msg_1" and seen
    assert rec.failures == 1 and rec.lines_written == 0


def test_exchange_lines_carrying_fingerprints_ingest_them_as_given():
    from ingest.fields import Reject
    from ingest.formats.exchange import parse
    from ingest.message import Context

    ctx = Context(key=b"k" * 64, aliases={})
    fps = {name: format(i, "x") * 64 for i, name in enumerate(("prompt", "presented", "minted"), start=10)}
    line = {"ts": "2026-11-20T10:00:00Z", "http_status": 200,
            "request": {"model": FABLE, "prompt_fp": fps["prompt"], "credit_presented_fp": fps["presented"]},
            "response": {"id": "msg_1", "type": "message", "model": FABLE, "stop_reason": "refusal",
                         "stop_details": {"type": "refusal", "category": "bio", "credit_minted_fp": fps["minted"]},
                         "content": [], "usage": {"input_tokens": 3, "output_tokens": 0}}}
    [row] = parse(line, ctx)
    assert (row["prompt_fp"], row["credit_presented_fp"], row["credit_minted_fp"]) == (
        fps["prompt"], fps["presented"], fps["minted"])
    assert (row["outcome"], row["refusal_category"]) == ("refusal", "bio")
    line["request"]["prompt_fp"] = canary("not_a_fingerprint")
    with pytest.raises(Reject, match=r"^field `request.prompt_fp` is not a fingerprint") as err:
        parse(line, ctx)
    assert MARK not in str(err.value)


def test_the_readme_recorder_example_records_one_exchange(tmp_path, monkeypatch):
    from builders import KEY_BYTES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Record from the Anthropic SDK\n", 1)[1].split("\n## ", 1)[0]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ANTHROPIC_API_KEY", canary("api_key"))
    tally = Tally(KEY_BYTES)
    with fake_api(tally) as base_url:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", base_url)
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)
    namespace["recorder"].close()
    [line] = [json.loads(x) for x in (tmp_path / "logs" / "exchange.jsonl").read_text().splitlines()]
    assert {k: line[k] for k in ("workload", "session_id", "chain_id", "http_status")} == {
        "workload": "support-chat", "session_id": "conv-81", "chain_id": "req-4411", "http_status": 200}
    assert line["request"]["prompt_fp"] == tally.served[0].prompt_fp
    assert line["response"]["stop_reason"] == "end_turn"


class ScriptedTransport:
    """An `httpx2` transport answering from a function: for the recorder's own edge cases."""

    def __init__(self, answer) -> None:
        self.answer = answer

    def handle_request(self, request):
        return self.answer(request)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        pass


def record_with(tmp_path, answer, *, threads: int = 1, stream: bool = False) -> tuple[Recorder, list, list]:
    import httpx2

    rec = Recorder(tmp_path / "x.jsonl", key="k" * 64)
    errors: list = []

    def send(i: int) -> None:
        with httpx2.Client(transport=rec.transport(ScriptedTransport(answer)), base_url="http://x") as http:
            try:
                with tags(chain_id=f"c-{i}"):
                    request = http.build_request("POST", "/v1/messages", json={"model": FABLE, "stream": stream})
                    response = http.send(request, stream=stream)
                    for _ in response.iter_bytes():
                        pass
                    response.close()
            except Exception as exc:
                errors.append(type(exc).__name__)

    workers = [threading.Thread(target=send, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    rec.close()
    path = tmp_path / "x.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []
    return rec, lines, errors


def test_threads_each_get_one_whole_line_with_their_own_tags(tmp_path):
    import httpx2

    body = json.dumps(message("msg_t", FABLE)).encode()
    rec, lines, errors = record_with(tmp_path, lambda r: httpx2.Response(200, stream=httpx2.ByteStream(body)),
                                     threads=16)
    assert not errors and rec.failures == 0
    assert sorted(line["chain_id"] for line in lines) == sorted(f"c-{i}" for i in range(16))


def test_a_gzip_body_is_decoded_before_it_is_reduced(tmp_path):
    import gzip

    import httpx2

    body = gzip.compress(json.dumps(message("msg_gz", FABLE, stop="refusal",
                                            details=refusal_details("bio", canary("token")))).encode())
    _, [line], _ = record_with(tmp_path, lambda r: httpx2.Response(
        200, headers={"content-encoding": "gzip"}, stream=httpx2.ByteStream(body)))
    assert line["response"]["stop_details"]["category"] == "bio"
    assert MARK not in json.dumps(line)


def test_a_connection_failure_is_a_line_and_still_raises(tmp_path):
    import httpx2

    def refuse(request):
        raise httpx2.ConnectError("refused")

    _, [line], errors = record_with(tmp_path, refuse)
    assert errors == ["ConnectError"]
    assert line["transport_error"] == "connection" and "http_status" not in line


def test_a_stream_that_times_out_midway_keeps_its_status_and_events_so_far(tmp_path):
    import httpx2

    start = {"type": "message_start", "message": message("msg_s", FABLE, stop=None, content=[])}

    class Breaks(httpx2.SyncByteStream):
        def __iter__(self):
            yield f"event: message_start\ndata: {json.dumps(start)}\n\n".encode()
            raise httpx2.ReadTimeout("slow")

    _, [line], errors = record_with(tmp_path, lambda r: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Breaks()), stream=True)
    assert errors == ["ReadTimeout"]
    assert (line["http_status"], line["transport_error"]) == (200, "timeout")
    assert [e["type"] for e in line["events"]] == ["message_start"]


def test_an_error_page_that_is_not_json_still_gives_its_status_line(tmp_path):
    import httpx2

    page = f"<html>{canary('proxy_page')}</html>".encode()
    rec, [line], _ = record_with(tmp_path, lambda r: httpx2.Response(502, stream=httpx2.ByteStream(page)))
    assert line["http_status"] == 502 and "response" not in line
    assert rec.failures == 0 and MARK not in json.dumps(line)


def test_a_stream_in_tiny_chunks_is_rebuilt_the_same(tmp_path):
    import httpx2

    start = {"type": "message_start", "message": message("msg_c", FABLE, stop=None, content=[])}
    delta = {"type": "message_delta", "delta": {"stop_reason": "refusal",
                                                "stop_details": refusal_details("cyber", canary("token"))},
             "usage": {"output_tokens": 7}}
    wire = "".join(f"event: {e['type']}\r\ndata: {json.dumps(e)}\r\n\r\n" for e in (start, delta)).encode()

    class Tiny(httpx2.SyncByteStream):
        def __iter__(self):
            for i in range(0, len(wire), 3):
                yield wire[i:i + 3]

    _, [line], _ = record_with(tmp_path, lambda r: httpx2.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Tiny()), stream=True)
    assert [e["type"] for e in line["events"]] == ["message_start", "message_delta"]
    details = line["events"][1]["delta"]["stop_details"]
    assert details["credit_minted_fp"] == token_fingerprint(b"k" * 64, canary("token"))
    assert "explanation" not in details and MARK not in json.dumps(line)


def stream_in_three_chunks() -> list[bytes]:
    """A streamed answer as three reads off the wire, its `message_delta` split between the first two."""
    events = [{"type": "message_start", "message": message("msg_a", FABLE, stop=None, content=[])},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
              {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 40}},
              {"type": "message_stop"}]
    wire = [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
    return [wire[0] + wire[1] + wire[2][:30], wire[2][30:], wire[3]]


def read_stream(rec: Recorder, chunks: list[bytes], *, stop_after: int | None, asynchronous: bool) -> None:
    """Send one streamed request through `rec`; read `stop_after` chunks of the answer (all for None), close."""
    import httpx2

    headers = {"content-type": "text/event-stream"}
    request = {"method": "POST", "url": "http://x/v1/messages", "json": {"model": FABLE, "stream": True}}

    class Body(httpx2.SyncByteStream, httpx2.AsyncByteStream):
        def __iter__(self):
            yield from chunks

        async def __aiter__(self):
            for chunk in chunks:
                yield chunk

    if not asynchronous:
        with httpx2.Client(transport=rec.transport(ScriptedTransport(
                lambda r: httpx2.Response(200, headers=headers, stream=Body())))) as http:
            response = http.send(http.build_request(**request), stream=True)
            for n, _ in enumerate(response.iter_raw(), start=1):
                if n == stop_after:
                    break
            response.close()
        return

    class Answer(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request):
            return httpx2.Response(200, headers=headers, stream=Body())

    async def read() -> None:
        async with httpx2.AsyncClient(transport=rec.transport(Answer())) as http:
            response = await http.send(http.build_request(**request), stream=True)
            n = 0
            async for _ in response.aiter_raw():
                n += 1
                if n == stop_after:
                    break
            await response.aclose()

    asyncio.run(read())


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(("stop_after", "outcome", "stop_reason"),
                         [(1, "canceled", None), (2, "ok", "end_turn"), (None, "ok", "end_turn")],
                         ids=["before-the-stop-reason", "after-the-stop-reason", "to-the-end"])
def test_a_stream_the_app_stops_reading_before_its_stop_reason_ingests_as_canceled(
        tmp_path, asynchronous, stop_after, outcome, stop_reason):
    from ingest.formats.exchange import parse
    from ingest.message import Context

    rec = Recorder(tmp_path / "x.jsonl", key="k" * 64)
    read_stream(rec, stream_in_three_chunks(), stop_after=stop_after, asynchronous=asynchronous)
    rec.close()
    [line] = [json.loads(x) for x in (tmp_path / "x.jsonl").read_text().splitlines()]
    assert rec.failures == 0  # the event cut off by the close is dropped, not a failure
    assert line.get("canceled", False) is (outcome == "canceled")
    [row] = parse(line, Context(key=b"k" * 64, aliases={}))
    assert (row["outcome"], row["stop_reason"], row["http_status"]) == (outcome, stop_reason, 200)
    assert row["input_tokens"] == 120  # the usage `message_start` reported is kept
