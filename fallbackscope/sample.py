"""Seeded synthetic LLM API logs, and a ground truth of what was planted in them.

`generate` writes one `exchange` JSON-lines file per UTC day (docs/metrics.md §3.1), a Message Batches results file
(§3.4), optionally a wire capture of the streamed calls (§3.3), and `ground_truth.json`: the counts that
ingest and analytics must find, computed from the planted scenarios (§1, §4, §6), never by reading the
files back. `generate_lines` writes one large file fast, for benchmarks.

All text is random words: nothing here is personal data. The same seed gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import random
import string
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

FABLE, OPUS, SONNET, HAIKU = "claude-fable-5", "claude-opus-4-8", "claude-sonnet-4-5", "claude-haiku-4-5"
DATED = {SONNET: "claude-sonnet-4-5-20250929", HAIKU: "claude-haiku-4-5-20251001"}  # ids as served
ALT = {FABLE: OPUS, OPUS: SONNET, SONNET: OPUS, HAIKU: SONNET}  # where a reliability retry may go
CATEGORIES: tuple[str | None, ...] = ("cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms", None)
OUTCOMES = ("ok", "refusal", "error", "timeout", "connection", "canceled", "expired")
CREDIT_OUTCOMES = ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")
BATCH_WORKLOAD = "batch-extract"
_ALNUM = string.ascii_letters + string.digits
_VOCAB = """account action address adjust agent alert allow amount answer apply approve archive assign
attach audit balance batch billing branch budget buffer build cache calendar campaign cancel capture
carrier change channel charge check claim client cluster column commit config confirm contact contract
convert copy cost country credit customer cycle daily dashboard data deadline default delay delivery
deploy design detail device discount dispatch document domain draft driver due edit email engine entry
error estimate event export factor feature field filter finance flag folder forecast format freight
function gateway group handle header history import incident index invoice issue item job journal key
label latency layer ledger level limit line list load local lock log manager margin market match member
merge message method metric migrate mobile module monthly network node note notice number offer order
owner package page parcel partner patch payment pending period plan policy portal price primary priority
process product profile project query queue quota quote range rate record refund region release renewal
report request resolve resource response retry return review route rule sample schedule schema scope
search season segment server service session setting shipment signal source stage status step stock
storage store supplier support sync table target task team template tenant test ticket tier token total
track transfer trend update upgrade usage user value vendor version volume warehouse webhook weekly
window workflow""".split()
# (error_class, HTTP status or transport error, error.type, message), docs/metrics.md §5
_ERRORS: dict[str, tuple[str, int | str, str, str]] = {
    "400": ("invalid_request", 400, "invalid_request_error", "messages: text content blocks must be non-empty"),
    "413": ("invalid_request", 413, "request_too_large", "Request exceeds the maximum allowed number of bytes."),
    "401": ("auth", 401, "authentication_error", "invalid x-api-key"),
    "402": ("billing", 402, "billing_error", "Your credit balance is too low to access the API."),
    "403": ("permission", 403, "permission_error", "Your API key does not have permission to use this model."),
    "404": ("not_found", 404, "not_found_error", "model: requested model was not found"),
    "409": ("conflict", 409, "invalid_request_error", "A request with this idempotency key is in progress."),
    "429": ("rate_limit", 429, "rate_limit_error", "Number of request tokens has exceeded your rate limit."),
    "500": ("server_error", 500, "api_error", "Internal server error"),
    "502": ("server_error", 502, "api_error", "Bad gateway"),
    "503": ("server_error", 503, "api_error", "Service temporarily unavailable"),
    "408": ("timeout", 408, "timeout_error", "Request timed out"),
    "504": ("timeout", 504, "timeout_error", "Upstream request timed out"),
    "529": ("overloaded", 529, "overloaded_error", "Overloaded"),
    "t/o": ("timeout", "timeout", "", ""),
    "conn": ("connection", "connection", "", ""),
}
_RETRYABLE = {"conflict", "rate_limit", "server_error", "timeout", "overloaded", "connection"}
_ERROR_BAG = list(_ERRORS) + ["429"] * 4 + ["529"] * 4 + ["500", "conn"]
# what the app does after a refusal; `refusal_chain` plants each, the ground truth applies docs/metrics.md §6.5
_CREDIT_FATES = ["redeemed"] * 4 + ["redeemed_after_error", "rejected", "rejected", "unconfirmed", "forfeited"]
_CREDIT_FATES += ["forfeited_failed", "expired", "expired", "expired_late", "no_token", "loop"]
# server-side fallback (docs/metrics.md §3.7): the declined hops (model, trigger type) before the serving one, weighted
_SERVER_PLANS: list[tuple[list[tuple[str, str]], float]] = [
    ([], 0.80),  # answered by the first model although the request carried `fallbacks`
    ([(FABLE, "refusal")], 0.10),
    ([(FABLE, "overloaded_error")], 0.06),
    ([(FABLE, "refusal"), (OPUS, "overloaded_error")], 0.04),
]
_NOT_APPLIED = ("prompt_mismatch", "model_not_eligible", "token_expired")


@dataclass(frozen=True)
class SampleSpec:
    """What to generate: seed, span (UTC days from `start`), traffic and optional extra files."""

    seed: int = 7
    days: int = 28
    start: dt.date = dt.date(2026, 10, 19)  # a Monday; days are UTC
    chains_per_day: int = 60  # logical requests per day, across all workloads
    prompt_words: tuple[int, int] = (150, 450)  # realistic prompt size (words) of the user message
    with_batch: bool = True  # also write a Message Batches results file
    with_sse: bool = False  # also write a wire capture of the streamed calls (all duplicates)


@dataclass(frozen=True)
class _Workload:
    name: str
    weight: float
    start: str  # the model the app asks first
    chain_id: bool  # the app logs chain_id/attempt/trigger; else chains are linked by docs/metrics.md §4 rules
    session: tuple[int, int] | None  # chains per session; None: no session_id
    stream: float = 0.0  # share of streamed chains
    cache_ttl: str | None = None  # prompt caching of system prompt and history
    legacy_usage: bool = False  # usage without the cache_creation breakdown
    sdk: bool = False  # refusal fallback by the SDK middleware: token object, disclosure, pinning
    quality: bool = False  # the app grades answers (`accepted`)
    tools: str | None = None  # "code" or "web"
    fallbacks: tuple[str, ...] = ()  # server-side fallback models (§3.7)
    max_tokens: int = 2048


# scenario weights per workload (see `_Gen.run`)
_SCENARIOS = {
    "support-chat": {"ok": 0.80, "refusal": 0.08, "error": 0.09, "stream_error": 0.03},
    "code-assist": {"ok": 0.78, "refusal": 0.10, "error": 0.09, "stream_error": 0.03},
    "research-agent": {"server": 0.88, "error": 0.12},
    BATCH_WORKLOAD: {"ok": 0.60, "quality": 0.32, "error": 0.08},
    "doc-summarise": {"ok": 0.62, "error": 0.28, "reask": 0.10},
}
WORKLOADS = (
    _Workload("support-chat", 0.34, FABLE, False, (2, 5), stream=0.5, cache_ttl="5m", sdk=True),
    _Workload("code-assist", 0.20, FABLE, True, (1, 4), stream=0.3, cache_ttl="1h", tools="code", max_tokens=8192),
    _Workload("research-agent", 0.14, FABLE, False, (1, 3), tools="web", fallbacks=(OPUS, SONNET), max_tokens=4096),
    _Workload(BATCH_WORKLOAD, 0.16, HAIKU, True, None, quality=True, max_tokens=1024),
    _Workload("doc-summarise", 0.16, SONNET, False, None, cache_ttl="5m", legacy_usage=True, max_tokens=1024),
)
_BY_NAME = {w.name: w for w in WORKLOADS}


@dataclass
class _Hop:
    """One planted attempt: the facts the ground truth is computed from."""

    ts: int  # ms since the epoch, the send time
    model: str | None  # normalised
    outcome: str = "ok"
    error_class: str | None = None
    category: str | None = None
    accepted: bool | None = None
    intended: str | None = None
    minted: str | None = None
    presented: str | None = None
    credit_status: str | None = None
    http_2xx: bool = False
    batch: bool = False
    cache_total: int = 0  # generation bookkeeping below, not ground truth
    partial: str | None = None


@dataclass
class _Chain:
    workload: str
    session: str  # session_id, or a key of its own when the chain has none
    hops: list[_Hop] = field(default_factory=list)
    loop: bool = False


@dataclass
class _Ctx:
    """One chain being generated: its prompt, clock and identity."""

    wl: _Workload
    chain: _Chain
    t: int
    session_id: str | None
    chain_id: str | None
    user: str
    system: Any
    messages: list[dict[str, Any]]
    prompt_tokens: int
    cacheable: int
    surface: str = "anthropic"
    geo: str | None = None
    intended: str | None = None
    stream: bool = False
    boost: float = 1.0


def _iso(ms: int) -> str:
    return f"{dt.datetime.fromtimestamp(ms // 1000, dt.UTC):%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _week(ms: int) -> str:
    iso = dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def _chunks(text: str, rng: random.Random) -> list[str]:
    n = rng.randint(40, 120)
    return [text[i : i + n] for i in range(0, len(text), n)] or [""]


def _iteration(kind: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    """One `usage.iterations` entry: a hop's token counts (docs/metrics.md §3.7)."""
    tokens = {k: v for k, v in usage.items() if k.endswith("tokens") or k in ("cache_creation", "server_tool_use")}
    return {"type": kind, "model": model, **tokens}


class _Gen:
    """Plants chains scenario by scenario, recording each line and each attempt it stands for."""

    def __init__(self, seed: int, prompt_words: tuple[int, int]) -> None:
        self.rng = random.Random(seed)
        self.prompt_words = prompt_words
        self.lines: list[tuple[int, int, dict[str, Any]]] = []
        self.chains: list[_Chain] = []
        self.ids: set[str] = set()
        self.bags: dict[str, list[Any]] = {}
        self.reask: list[tuple[int, list[dict[str, Any]]]] = []  # (day, messages) of doc-summarise
        self.systems = {w.name: self.text(60, 140) for w in WORKLOADS}

    # -- small helpers ---------------------------------------------------------------------------------
    def draw(self, bag: str, items: list[Any]) -> Any:
        """Draw without replacement, refilling when empty: every item shows up once per round."""
        left = self.bags.setdefault(bag, [])
        if not left:
            left.extend(items)
            self.rng.shuffle(left)
        return left.pop()

    def uid(self, prefix: str, n: int = 24) -> str:
        while True:
            s = prefix + "".join(self.rng.choices(_ALNUM, k=n))
            if s not in self.ids:
                self.ids.add(s)
                return s

    def text(self, lo: int, hi: int) -> str:
        words = self.rng.choices(_VOCAB, k=self.rng.randint(lo, hi))
        out, i = [], 0
        while i < len(words):
            n = self.rng.randint(6, 16)
            s = " ".join(words[i : i + n])
            out.append(s[0].upper() + s[1:] + ".")
            i += n
        return " ".join(out)

    def category(self, wl: _Workload) -> str | None:
        if wl.tools == "code" and self.rng.random() < 0.5:
            return "cyber"
        return self.draw("category", ["cyber", "cyber", "general_harms", *CATEGORIES])

    # -- rendering -------------------------------------------------------------------------------------
    def model_id(self, c: _Ctx, model: str) -> str:
        dated = DATED.get(model, model)
        if c.surface == "bedrock":
            return f"us.anthropic.{dated}-v1:0"
        if c.surface == "vertex" and model in DATED:
            return dated.replace(model + "-", model + "@")
        return dated if self.rng.random() < 0.5 else model

    def request(self, c: _Ctx, model: str, present: str | None, prefill: str | None) -> dict[str, Any]:
        wl = c.wl
        messages = c.messages + ([{"role": "assistant", "content": prefill}] if prefill else [])
        body: dict[str, Any] = {
            "model": self.model_id(c, model),
            "max_tokens": wl.max_tokens,
            "system": c.system,
            "messages": messages,
        }
        if wl.tools == "code":
            body["tools"] = [
                {
                    "name": "run_tests",
                    "description": "Run the project's tests under a path.",
                    "input_schema": {
                        "type": "object",
                        "properties": {"path": {"type": "string"}},
                        "required": ["path"],
                    },
                },
                {
                    "name": "read_file",
                    "description": "Read a file of the repository.",
                    "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
                },
            ]
        elif wl.tools == "web":
            body["tools"] = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}]
        body["metadata"] = {"user_id": c.user}
        if c.stream:
            body["stream"] = True
        if wl.fallbacks:
            body["fallbacks"] = [{"model": m} for m in wl.fallbacks]
        if present:
            body["fallback_credit_token"] = {"token": present, "mode": "best_effort"} if wl.sdk else present
        if c.geo:
            body["inference_geo"] = c.geo
        return body

    def usage(
        self,
        c: _Ctx,
        out: int,
        read: int | None = None,
        status: dict[str, str] | None = None,
        web: int = 0,
        tier: str | None = None,
    ) -> tuple[dict[str, Any], int]:
        """Return a Message usage object and the prompt tokens it read from or wrote to the cache."""
        rng, ttl = self.rng, c.wl.cache_ttl
        if ttl:
            read = (c.cacheable if rng.random() < 0.55 else 0) if read is None else read
            write = max(0, c.cacheable - read)
        else:
            read = write = 0
        u: dict[str, Any] = {
            "input_tokens": max(1, c.prompt_tokens - read - write),
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
        }
        if not c.wl.legacy_usage:
            u["cache_creation"] = {
                "ephemeral_5m_input_tokens": write if ttl == "5m" else 0,
                "ephemeral_1h_input_tokens": write if ttl == "1h" else 0,
            }
        u["output_tokens"] = out
        if web:
            u["server_tool_use"] = {"web_search_requests": web}
        u["service_tier"] = tier or ("priority" if c.wl.tools == "code" and rng.random() < 0.3 else "standard")
        if c.geo:
            u["inference_geo"] = c.geo
        if c.wl.tools == "code" and rng.random() < 0.1:
            u["speed"] = "fast"
        if status:
            u["fallback_credit"] = {"status": status}
        return u, read + write

    def content(self, c: _Ctx, model: str) -> tuple[list[dict[str, Any]], str]:
        rng, blocks = self.rng, []
        if model in (FABLE, OPUS) and rng.random() < 0.25:
            blocks.append(
                {"type": "thinking", "thinking": self.text(20, 80), "signature": "".join(rng.choices(_ALNUM, k=48))}
            )
        if c.wl.tools == "code" and rng.random() < 0.3:
            path = f"src/{rng.choice(_VOCAB)}/{rng.choice(_VOCAB)}.py"
            blocks += [
                {"type": "text", "text": self.text(8, 30)},
                {"type": "tool_use", "id": self.uid("toolu_"), "name": "run_tests", "input": {"path": path}},
            ]
            return blocks, "tool_use"
        blocks.append({"type": "text", "text": self.text(40, 220)})
        return blocks, ("max_tokens" if rng.random() < 0.03 else "end_turn")

    def message(
        self,
        model: str,
        content: list[dict[str, Any]],
        stop: str,
        usage: dict[str, Any],
        stop_details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        msg = dict(id=self.uid("msg_01"), type="message", role="assistant", model=model, content=content)
        msg.update(stop_reason=stop, stop_sequence=None)
        if stop_details:
            msg["stop_details"] = stop_details
        msg["usage"] = usage
        return msg

    def refusal_details(self, hop: _Hop, mint: bool, prefill_claim: bool) -> dict[str, Any]:
        """Return `stop_details` for a refusal; a minted credit token is recorded on the hop."""
        details = {"type": "refusal", "category": hop.category, "explanation": self.text(12, 30)}
        details["recommended_model"] = OPUS
        if mint:
            hop.minted = details["fallback_credit_token"] = self.uid("fct_", 32)
            details["fallback_has_prefill_claim"] = prefill_claim
        return details

    def events(self, msg: dict[str, Any], error: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Render a Message as the SSE data objects of a stream; usage in message_delta is cumulative."""
        head = {k: v for k, v in msg.items() if k not in ("stop_details", "usage")}
        head.update(content=[], stop_reason=None, stop_sequence=None)
        head["usage"] = {k: v for k, v in msg["usage"].items() if k != "fallback_credit"} | {"output_tokens": 1}
        ev: list[dict[str, Any]] = [{"type": "message_start", "message": head}, {"type": "ping"}]
        for i, b in enumerate(msg["content"]):
            kind = b["type"]
            if kind in ("text", "thinking"):
                start = {"type": kind, kind: ""} | ({"signature": ""} if kind == "thinking" else {})
                deltas = [{"type": f"{kind}_delta", kind: s} for s in _chunks(b[kind], self.rng)]
                if kind == "thinking":
                    deltas.append({"type": "signature_delta", "signature": b["signature"]})
            else:  # tool_use: its input arrives as JSON text
                start = b | {"input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": orjson.dumps(b["input"]).decode()}]
            ev.append({"type": "content_block_start", "index": i, "content_block": start})
            ev += [{"type": "content_block_delta", "index": i, "delta": d} for d in deltas]
            ev.append({"type": "content_block_stop", "index": i})
        if error:
            return ev + [{"type": "error", "error": error}]
        delta: dict[str, Any] = {"stop_reason": msg["stop_reason"], "stop_sequence": None}
        if "stop_details" in msg:
            delta["stop_details"] = msg["stop_details"]
        return ev + [{"type": "message_delta", "delta": delta, "usage": msg["usage"]}, {"type": "message_stop"}]

    def emit(self, c: _Ctx, ts: int, latency: int, fields: dict[str, Any], hops: list[_Hop]) -> None:
        line: dict[str, Any] = {"ts": _iso(ts), "workload": c.wl.name}
        if c.session_id:
            line["session_id"] = c.session_id
        if c.chain_id:
            line["chain_id"] = c.chain_id
            line["attempt"] = len(c.chain.hops) + 1
        bodies = ("request", "response", "events")
        line.update({k: v for k, v in fields.items() if k not in bodies})
        if c.surface != "anthropic":
            line["surface"] = c.surface
        line["latency_ms"] = latency
        line.update({k: fields[k] for k in bodies if k in fields})  # the big fields last
        self.lines.append((ts, len(self.lines), line))
        c.chain.hops += hops
        c.t = ts + latency

    # -- one call --------------------------------------------------------------------------------------
    def call(
        self,
        c: _Ctx,
        model: str,
        result: str = "ok",
        *,
        err: str | None = None,
        gap: float = 0.0,
        trigger: str | None = None,
        accepted: bool | None = None,
        disclosed: bool | None = None,
        present: str | None = None,
        status: dict[str, str] | None = None,
        read: int | None = None,
        mint: bool = True,
        partial: bool = False,
        prefill: str | None = None,
    ) -> _Hop:
        """Plant one exchange line of one attempt; `result` is ok, refusal, error or stream_error."""
        rng = self.rng
        c.t += int(gap * 1000)
        ts = c.t
        hop = _Hop(ts, model, intended=c.intended, presented=present)
        f: dict[str, Any] = {}
        if c.chain_id and c.chain.hops and trigger:
            f["trigger"] = trigger
        if c.intended:
            f["intended_model"] = c.intended
        if disclosed is not None:
            f["disclosed"] = disclosed
        if c.wl.quality and result == "ok":
            hop.accepted = True if accepted is None else accepted
            f["accepted"] = hop.accepted
        request = self.request(c, model, present, prefill)
        if result == "error":
            cls, status_code, etype, text = _ERRORS[err or "529"]
            hop.error_class, hop.outcome = cls, cls if cls in ("timeout", "connection") else "error"
            if isinstance(status_code, str):
                latency = rng.randint(60_000, 120_000) if cls == "timeout" else rng.randint(5, 3_000)
                f["transport_error"] = status_code
                f["request"] = request
            else:
                rid = self.uid("req_")
                latency = rng.randint(30_000, 90_000) if cls == "timeout" else rng.randint(40, 900)
                f.update(
                    request_id=rid,
                    http_status=status_code,
                    request=request,
                    response={"type": "error", "error": {"type": etype, "message": text}, "request_id": rid},
                )
            self.emit(c, ts, latency, f, [hop])
            return hop
        hop.http_2xx = result != "stream_error"
        served = DATED.get(model, model)
        if result == "refusal":
            hop.outcome, hop.category = "refusal", self.category(c.wl)
            content = [{"type": "text", "text": self.text(10, 60)}] if partial else []
            out = sum(len(b["text"]) // 4 for b in content) + rng.randint(0, 3)
            usage, hop.cache_total = self.usage(c, out)
            details = self.refusal_details(hop, mint, partial)
            hop.partial = content[0]["text"] if partial else None
            msg = self.message(served, content, "refusal", usage, details)
            latency = rng.randint(250, 1_500) + out * 20
        else:
            content, stop = self.content(c, model)
            out = sum(len(str(b.get("text") or b.get("thinking") or b.get("input"))) // 4 for b in content)
            if status:
                hop.credit_status = status["type"]
            usage, _ = self.usage(c, out, read=read, status=status)
            msg = self.message(served, content, stop, usage)
            latency = rng.randint(400, 1_500) + out * rng.randint(12, 30)
        f.update(request_id=self.uid("req_"), http_status=200, request=request)
        if result == "stream_error":
            hop.outcome, hop.error_class = "error", "overloaded"
            msg["content"] = [{"type": "text", "text": self.text(10, 40)}]
            f["events"] = self.events(msg, error={"type": "overloaded_error", "message": "Overloaded"})
        elif c.stream:
            f["events"] = self.events(msg)
        else:
            f["response"] = msg
        self.emit(c, ts, latency, f, [hop])
        return hop

    def server_call(self, c: _Ctx) -> None:
        """Plant one request with `fallbacks` answered by one response holding its hops (docs/metrics.md §3.7)."""
        rng, ts = self.rng, c.t
        weights = [w * (c.boost if any(t == "refusal" for _, t in plan) else 1) for plan, w in _SERVER_PLANS]
        plan = rng.choices([p for p, _ in _SERVER_PLANS], weights)[0]
        serving = [FABLE, OPUS, SONNET][len(plan)]
        content: list[dict[str, Any]] = []
        iterations: list[dict[str, Any]] = []
        hops: list[_Hop] = []
        for i, (model, trigger_type) in enumerate(plan):
            hop = _Hop(ts, model, outcome="refusal" if trigger_type == "refusal" else "error", http_2xx=True)
            trigger: dict[str, Any] = {"type": trigger_type}
            if trigger_type == "refusal":
                hop.category = trigger["category"] = self.category(c.wl)
                if rng.random() < 0.2:  # output before the model declined: that hop is billed
                    content.append({"type": "text", "text": self.text(10, 40)})
            else:
                hop.error_class = "overloaded"
            content.append(
                {
                    "type": "fallback",
                    "from": {"model": model},
                    "to": {"model": ([m for m, _ in plan] + [serving])[i + 1]},
                    "trigger": trigger,
                }
            )
            hops.append(hop)
            usage, _ = self.usage(c, rng.randint(0, 40) if trigger_type == "refusal" else 0)
            iterations.append(_iteration("message", model, usage))
        web = rng.choice([0, 1, 1, 2, 3])
        for _ in range(web):
            tid = self.uid("srvtoolu_")
            content += [
                {"type": "server_tool_use", "id": tid, "name": "web_search", "input": {"query": self.text(3, 8)}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": tid,
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": f"https://example.com/{rng.choice(_VOCAB)}",
                            "title": self.text(3, 8),
                            "encrypted_content": "".join(rng.choices(_ALNUM, k=64)),
                        }
                    ],
                },
            ]
        body, stop = self.content(c, serving)
        content += body
        out = sum(len(b.get("text", "")) // 4 for b in body)
        usage, _ = self.usage(c, out, web=web)
        hops.append(_Hop(ts, serving, http_2xx=True))
        if plan and rng.random() < 0.75:
            iterations.append(_iteration("fallback_message", serving, usage))
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                usage[key] = sum(it[key] for it in iterations)
            usage["iterations"] = iterations
        elif not plan and rng.random() < 0.2:  # a lone `message` iteration: one attempt
            usage["iterations"] = [
                {"type": "message", "model": serving, "input_tokens": usage["input_tokens"], "output_tokens": out}
            ]
        msg = self.message(DATED.get(serving, serving), content, stop, usage)
        rid = self.uid("req_")
        latency = rng.randint(2_000, 9_000) * (1 + len(plan)) + out * 15
        self.emit(
            c,
            ts,
            latency,
            {"request_id": rid, "http_status": 200, "request": self.request(c, FABLE, None, None), "response": msg},
            hops,
        )

    # -- scenarios -------------------------------------------------------------------------------------
    def refusal_chain(self, c: _Ctx) -> None:
        """A refusal on the first model, then what the app does with its credit (docs/metrics.md §6.5)."""
        rng, wl = self.rng, c.wl
        fate = self.draw("credit", _CREDIT_FATES)
        h = self.call(c, c.wl.start, "refusal", mint=fate != "no_token", partial=c.stream and rng.random() < 0.6)
        if fate == "loop":  # the refused turn is resent as is, twice more (a refusal loop, §5)
            c.chain.loop = True
            for _ in range(2):
                h = self.call(c, c.wl.start, "refusal", gap=rng.uniform(5, 40), trigger="refusal")
            fate = "redeemed"
        tok, quick = h.minted, rng.uniform(0.05, 0.6)
        prefill = h.partial if wl.sdk else None
        fb: dict[str, Any] = {"trigger": "refusal", "prefill": prefill}
        if wl.sdk:
            fb["disclosed"] = rng.random() < 0.7
        if fate == "redeemed":
            self.call(c, OPUS, gap=quick, present=tok, status={"type": "redeemed"}, read=h.cache_total, **fb)
        elif fate == "redeemed_after_error":
            self.call(c, OPUS, "error", err="529", gap=quick, present=tok, **fb)
            fb["trigger"] = "overloaded"
            self.call(
                c, OPUS, gap=rng.uniform(1, 8), present=tok, status={"type": "redeemed"}, read=h.cache_total, **fb
            )
        elif fate == "rejected":
            status = {"type": "not_applied", "reason": rng.choice(_NOT_APPLIED)}
            self.call(c, OPUS, gap=quick, present=tok, status=status, **fb)
        elif fate == "unconfirmed":
            self.call(c, OPUS, gap=quick, present=tok, **fb)
        elif fate == "forfeited":
            self.call(c, OPUS, gap=rng.uniform(20, 200), **fb)
        elif fate == "forfeited_failed":
            self.call(c, OPUS, "error", err="529", gap=quick, present=tok, **fb)
            fb["trigger"] = "overloaded"
            self.call(c, OPUS, gap=rng.uniform(5, 60), **fb)
        elif fate == "expired_late":  # retried after 6-9 minutes: still the same chain (< 10 min, §4)
            self.call(c, OPUS, gap=rng.uniform(360, 540), **fb)
        elif fate == "no_token":
            self.call(c, OPUS, gap=quick, **fb)
        # "expired": the user gave up
        if wl.sdk and fate != "expired" and rng.random() < 0.5:
            c.intended = FABLE  # the SDK's fallback state pins this session's next turns (§8)

    def error_chain(self, c: _Ctx, model: str) -> None:
        """An API or transport error, then reliability retries (same or another model) or giving up."""
        rng = self.rng
        err = self.draw("error", _ERROR_BAG)
        trigger: str | None = None
        for k in range(3):
            cls = _ERRORS[err][0]
            self.call(c, model, "error", err=err, trigger=trigger)
            if cls not in _RETRYABLE:
                return  # not retryable: the chain stays unresolved
            trigger = cls
            c.t += int((rng.uniform(5, 60) if cls == "rate_limit" else rng.uniform(0.5, 10)) * 1000)
            if cls != "conflict" and not c.wl.fallbacks and rng.random() < 0.35:
                model = ALT[model]
            if k < 2 and rng.random() < 0.2:
                err = self.draw("retry_error", ["429", "529", "503", "conn", "t/o"])
                continue
            if c.wl.fallbacks:
                self.server_call(c)
            else:
                self.call(c, model, trigger=trigger)
            return

    def run(self, c: _Ctx, scenario: str) -> None:
        rng, start = self.rng, c.wl.start
        if c.intended:  # pinned to the fallback model: the SDK skips the intended one
            start = OPUS
        if scenario == "refusal":
            self.refusal_chain(c)
        elif scenario == "error":
            self.error_chain(c, start)
        elif scenario == "stream_error":
            c.stream = True
            self.call(c, start, "stream_error")
            self.call(c, start, gap=rng.uniform(1, 10), trigger="overloaded")
        elif scenario == "server":
            self.server_call(c)
        elif scenario == "quality":  # cost tiers: the app's check rejects an answer and escalates
            self.call(c, HAIKU, accepted=False)
            if rng.random() < 0.65:
                self.call(c, SONNET, gap=rng.uniform(0.2, 3), trigger="quality")
            else:
                self.call(c, SONNET, gap=rng.uniform(0.2, 3), trigger="quality", accepted=False)
                self.call(c, OPUS, gap=rng.uniform(0.2, 3), trigger="quality", accepted=rng.random() < 0.9)
        else:
            self.call(c, start, disclosed=(rng.random() < 0.7) if c.intended else None)

    # -- traffic ---------------------------------------------------------------------------------------
    def session(self, wl: _Workload, day: int, t: int, n: int, boost: float) -> None:
        """Plant one session of n chains (or n chains of their own when the workload has no session)."""
        rng = self.rng
        sid = self.uid("sess_", 16) if wl.session else None
        user = f"user_{''.join(rng.choices(string.hexdigits.lower()[:16], k=16))}"
        system: Any = self.systems[wl.name]
        if wl.cache_ttl:
            control = {"type": "ephemeral"} | ({"ttl": "1h"} if wl.cache_ttl == "1h" else {})
            system = [{"type": "text", "text": system, "cache_control": control}]
        history: list[dict[str, Any]] = []
        surface = rng.choices(["anthropic", "bedrock", "vertex"], [6, 2, 2])[0] if wl.legacy_usage else "anthropic"
        geo = ("us" if rng.random() < 0.5 else "global") if wl.tools == "web" else None
        intended = None
        for _ in range(n):
            chain = _Chain(wl.name, sid or f"~{len(self.chains)}")
            weights = {k: v * (boost if k == "refusal" else 1) for k, v in _SCENARIOS[wl.name].items()}
            if intended:
                weights = {k: v for k, v in weights.items() if k in ("ok", "error")}
            scenario = rng.choices(list(weights), list(weights.values()))[0]
            messages = history + [{"role": "user", "content": self.text(*self.prompt_words)}]
            if scenario == "reask":  # the same document again, after an earlier chain: a new chain
                earlier = [m for d, m in self.reask if d < day]
                messages, scenario = (rng.choice(earlier) if earlier else messages), "ok"
            elif wl.name == "doc-summarise":
                self.reask.append((day, messages))
            sys_tokens = len(self.systems[wl.name]) // 4 + (300 if wl.tools else 0)
            hist_tokens = sum(len(m["content"]) // 4 for m in history)
            chain_id = self.uid("ch_", 16) if wl.chain_id else None
            prompt_tokens = sys_tokens + hist_tokens + len(messages[-1]["content"]) // 4
            cacheable = (sys_tokens + hist_tokens) if wl.cache_ttl else 0
            c = _Ctx(wl, chain, t, sid, chain_id, user, system, messages, prompt_tokens, cacheable)
            c.surface, c.geo, c.intended, c.stream, c.boost = surface, geo, intended, rng.random() < wl.stream, boost
            self.run(c, scenario)
            intended = c.intended
            self.chains.append(chain)
            history = messages + [{"role": "assistant", "content": self.text(20, 80)}]
            t = c.t + rng.randint(60_000, 720_000)

    def batch(self, ts: int, n: int) -> tuple[str, list[dict[str, Any]]]:
        """Plant a Message Batches results file: one chain per result, all at `ts` (the --default-ts)."""
        rng = self.rng
        bid = self.uid("msgbatch_")
        kinds = ["errored", "errored", "canceled", "canceled", "expired", "expired", "refusal+credit", "refusal"]
        kinds += ["succeeded"] * max(0, n - len(kinds))
        rng.shuffle(kinds)
        wl = _BY_NAME[BATCH_WORKLOAD]
        rows = []
        for i, kind in enumerate(kinds):
            chain = _Chain(BATCH_WORKLOAD, f"~batch{i}")
            model = FABLE if kind.startswith("refusal") else rng.choice([HAIKU, SONNET])
            hop = _Hop(ts, model, batch=True, http_2xx=kind != "errored")
            c = _Ctx(wl, chain, ts, None, None, "", "", [], rng.randint(300, 900), 0)
            result: dict[str, Any] = {"type": kind.split("+")[0]}
            if kind.startswith("refusal"):
                hop.outcome, hop.category = "refusal", self.category(wl)
                details = self.refusal_details(hop, kind == "refusal+credit", False)
                usage, _ = self.usage(c, 0, tier="batch")
                result = {"type": "succeeded", "message": self.message(FABLE, [], "refusal", usage, details)}
            elif kind == "succeeded":
                content, stop = self.content(c, model)
                usage, _ = self.usage(c, len(content[-1].get("text", "")) // 4, tier="batch")
                result["message"] = self.message(DATED[model], content, stop, usage)
            elif kind == "errored":
                etype = rng.choice(["invalid_request_error", "overloaded_error"])
                hop.model, hop.outcome = None, "error"
                hop.error_class = "invalid_request" if etype == "invalid_request_error" else "overloaded"
                result["error"] = {
                    "type": "error",
                    "error": {"type": etype, "message": "Request failed."},
                    "request_id": self.uid("req_"),
                }
            else:
                hop.model, hop.outcome = None, kind
            chain.hops.append(hop)
            self.chains.append(chain)
            rows.append({"custom_id": f"extract-{i + 1:04d}", "result": result})
        return bid, rows


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def _write_lines(path: Path, rows: list[bytes]) -> None:
    path.write_bytes(b"\n".join(rows) + b"\n" if rows else b"")


def _truth(chains: list[_Chain]) -> dict[str, Any]:
    """Count what was planted with the definitions of docs/metrics.md (§1, §4, §6.1, §6.2, §6.5)."""
    hops = [h for ch in chains for h in ch.hops]
    refused = [h for h in hops if h.outcome == "refusal"]
    by_category = Counter(h.category or "unspecified" for h in refused)
    credits = Counter({k: 0 for k in ("minted", "unredeemable", *CREDIT_OUTCOMES)})
    presented: dict[str, list[_Hop]] = defaultdict(list)
    for h in hops:
        if h.presented:
            presented[h.presented].append(h)
    for ch in chains:
        for i, h in enumerate(ch.hops):
            if not h.minted:
                continue
            credits["minted"] += 1
            if h.batch:
                credits["unredeemable"] += 1
                continue
            ok = [p for p in presented[h.minted] if p.http_2xx]
            if any(p.credit_status == "redeemed" for p in ok):
                credits["redeemed"] += 1
            elif any(p.credit_status == "not_applied" for p in ok):
                credits["rejected"] += 1
            elif ok:
                credits["unconfirmed"] += 1
            elif any(later.ts - h.ts <= 300_000 for later in ch.hops[i + 1 :]):
                credits["forfeited"] += 1
            else:
                credits["expired"] += 1
    zero = {"chains": 0, "refused_chains": 0, "sessions": 0, "refused_sessions": 0}
    weeks: dict[str, dict[str, int]] = {}
    workloads: dict[str, dict[str, int]] = {}
    sessions: dict[tuple[str, ...], bool] = {}  # (scope, session) -> refused there
    for ch in chains:
        first = ch.hops[0]
        resolver = next((h for h in ch.hops if h.outcome == "ok" and h.accepted is not False), None)
        is_refused = any(h.outcome == "refusal" for h in ch.hops)
        week = _week(first.ts)
        w = weeks.setdefault(week, zero | {"fallback_chains": 0, "escalated_chains": 0, "unresolved_chains": 0})
        wl = workloads.setdefault(ch.workload, dict(zero))
        for scope, row in ((("week", week), w), (("workload", ch.workload), wl)):
            row["chains"] += 1
            row["refused_chains"] += is_refused
            key = (*scope, ch.workload, ch.session)
            sessions[key] = sessions.get(key, False) or is_refused
        pinned = first.intended is not None and first.intended != first.model
        w["fallback_chains"] += pinned or (resolver is not None and resolver.model != first.model)
        w["escalated_chains"] += any(h.model != first.model for h in ch.hops[1:])
        w["unresolved_chains"] += resolver is None
    for (kind, scope, *_), was_refused in sessions.items():
        row = weeks[scope] if kind == "week" else workloads[scope]
        row["sessions"] += 1
        row["refused_sessions"] += was_refused
    totals = {
        k: sum(w[k] for w in weeks.values()) for k in ("fallback_chains", "escalated_chains", "unresolved_chains")
    }
    return {
        "attempts": len(hops),
        "chains": len(chains),
        "sessions": len({(ch.workload, ch.session) for ch in chains}),
        "refused_attempts": len(refused),
        "refused_chains": sum(any(h.outcome == "refusal" for h in ch.hops) for ch in chains),
        "refusals_by_category": {c: by_category[c] for c in (c or "unspecified" for c in CATEGORIES)},
        "credits": dict(credits),
        "errors_by_class": dict(sorted(Counter(h.error_class for h in hops if h.error_class).items())),
        "outcomes": {o: sum(h.outcome == o for h in hops) for o in OUTCOMES},
        "refusal_loops": sum(ch.loop for ch in chains),
        **totals,
        "weeks": dict(sorted(weeks.items())),
        "workloads": dict(sorted(workloads.items())),
    }


def generate(out_dir: Path, spec: SampleSpec = SampleSpec()) -> dict:  # noqa: B008 (frozen, immutable)
    """Write the logs and `ground_truth.json` into out_dir; return the ground truth dict.

    Files: `exchange-YYYY-MM-DD.jsonl` per day (lines in time order), `batch-results.jsonl` when
    `with_batch`, `stream-capture.sse` when `with_sse` (the streamed calls again, as on the wire: every
    stream is a duplicate of an exchange line). The batch results carry no time, workload or batch id:
    the ground truth counts them as ingested with its `ingest_options` (`--batch-id`, `--workload`,
    `--default-ts`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    g = _Gen(spec.seed, spec.prompt_words)
    epoch = dt.datetime.combine(spec.start, dt.time(), dt.UTC)
    for day in range(spec.days):
        day_ms = int((epoch + dt.timedelta(days=day)).timestamp() * 1000)
        boost = 2.0 if spec.days >= 14 and day >= spec.days - 7 else 1.0  # a refusal drift in the last week
        left = spec.chains_per_day
        while left > 0:
            wl = g.rng.choices(WORKLOADS, [w.weight for w in WORKLOADS])[0]
            n = min(left, g.rng.randint(*wl.session) if wl.session else 1)
            left -= n
            g.session(wl, day, day_ms + g.rng.randint(20 * 60_000, 20 * 3_600_000 + 30 * 60_000), n, boost)
    g.lines.sort(key=lambda x: (x[0], x[1]))
    by_day: dict[str, list[bytes]] = defaultdict(list)
    for _, _, line in g.lines:
        by_day[line["ts"][:10]].append(orjson.dumps(line))
    files: dict[str, dict[str, int]] = {}
    for day_str, rows in sorted(by_day.items()):
        _write_lines(out_dir / f"exchange-{day_str}.jsonl", rows)
        files[f"exchange-{day_str}.jsonl"] = {"lines": len(rows)}
    truth: dict[str, Any] = {"seed": spec.seed, "batch_id": None, "batch_ts": None, "batch_workload": None}
    if spec.with_batch:
        batch_ts = int((epoch + dt.timedelta(days=spec.days // 2, hours=2)).timestamp() * 1000)
        bid, rows = g.batch(batch_ts, max(12, spec.chains_per_day // 2))
        _write_lines(out_dir / "batch-results.jsonl", [orjson.dumps(r) for r in rows])
        files["batch-results.jsonl"] = {"lines": len(rows)}
        truth.update(batch_id=bid, batch_ts=_iso(batch_ts), batch_workload=BATCH_WORKLOAD)
        truth["ingest_options"] = {"--batch-id": bid, "--workload": BATCH_WORKLOAD, "--default-ts": _iso(batch_ts)}
    if spec.with_sse:
        streams = [line["events"] for _, _, line in g.lines if "events" in line]
        (out_dir / "stream-capture.sse").write_bytes(b"".join(_sse(e) for e in streams))
        files["stream-capture.sse"] = {
            "lines": sum(3 * len(e) for e in streams),
            "records": len(streams),
            "duplicates": len(streams),
        }
    truth["files"] = files
    truth["exchange_workloads"] = {
        w.name: {"chain_id": w.chain_id, "session_id": w.session is not None} for w in WORKLOADS
    }
    truth |= _truth(g.chains)
    (out_dir / "ground_truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2) + b"\n")
    return truth


def generate_lines(n_lines: int, path: Path, seed: int = 7) -> dict:
    """Benchmark helper: write n_lines `exchange` lines (~2.5 KB each: system prompt, user prompt and
    completion text) to ONE file, fast; return its ground truth (the same top-level counts as `generate`).

    Every chain carries `chain_id`: 92% one ok attempt, 4% a cyber refusal then a retry on
    claude-opus-4-8 that redeems its credit, 4% a 429 then a same-model retry; four chains per session.
    """
    path = Path(path)
    rng = random.Random(seed)
    rand = rng.random
    words = rng.choices(_VOCAB, k=400_000)
    pool = " ".join(words)  # text is sliced out of one long string: no per-word work per line
    offs = [0]
    for w in words:
        offs.append(offs[-1] + len(w) + 1)
    top = len(words) - 400

    def piece(n: int) -> str:
        i = int(rand() * top)
        return pool[offs[i] : offs[i + n] - 1]

    t0 = int(dt.datetime.combine(SampleSpec.start, dt.time(), dt.UTC).timestamp() * 1000)
    step = max(1, 28 * 86_400_000 // max(1, n_lines))
    mask = (1 << 88) - 1  # ids: counter x odd constant mod 2**88 is a bijection, so unique yet random-looking
    usage = {"input_tokens": 420, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 130}
    rate_limited = {"type": "rate_limit_error", "message": "Number of request tokens has exceeded your rate limit."}
    counts: Counter[str] = Counter()
    written = chains = 0
    buf: list[bytes] = []

    def line(i: int, ts: int, k: int, model: str, kind: str, tok: str | None) -> bytes:
        rid = f"req_01{(i * 0x9E3779B97F4A7C15 + seed) & mask:022x}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) + f".{ts % 1000:03d}Z"
        messages = [{"role": "user", "content": prompt}]
        body = {"model": model, "max_tokens": 2048, "system": system, "messages": messages, "metadata": user}
        row = {"ts": stamp, "workload": "bench", "session_id": session, "chain_id": chain, "attempt": k}
        row["request_id"] = rid
        if kind == "429":
            error = {"type": "error", "error": rate_limited, "request_id": rid}
            row.update(http_status=429, latency_ms=120, request=body, response=error)
            return orjson.dumps(row)
        msg = {
            "id": f"msg_01{(i * 0xBF58476D1CE4E5B9 + seed) & mask:022x}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": "refusal",
            "stop_sequence": None,
        }
        if kind == "refusal":
            msg["stop_details"] = {
                "type": "refusal",
                "category": "cyber",
                "explanation": piece(12),
                "recommended_model": OPUS,
                "fallback_credit_token": tok,
            }
            msg["usage"] = usage | {"output_tokens": 0}
        else:
            msg.update(content=[{"type": "text", "text": piece(60)}], stop_reason="end_turn")
            msg["usage"] = usage | {"output_tokens": 95}
            if tok:
                body["fallback_credit_token"] = tok
                msg["usage"]["fallback_credit"] = {"status": {"type": "redeemed"}}
        row.update(http_status=200, latency_ms=900, request=body, response=msg)
        return orjson.dumps(row)

    with path.open("wb") as fh:
        while written < n_lines:
            ts = t0 + chains * step
            chain, session = f"ch_{seed:04d}{chains:012d}", f"sess_{seed:04d}{chains // 4:010d}"
            user = {"user_id": f"user_{seed:04d}{chains // 4:010d}"}
            system, prompt = piece(50), piece(175)
            r = rand() if n_lines - written > 1 else 0.0
            if r < 0.92:
                buf.append(line(written, ts, 1, SONNET, "ok", None))
                counts["ok"] += 1
            else:
                tok = f"fct_{seed:04d}{chains:028d}" if r < 0.96 else None
                first = (FABLE, "refusal") if tok else (SONNET, "429")
                buf.append(line(written, ts, 1, *first, tok))
                buf.append(line(written + 1, ts + step // 2, 2, OPUS if tok else SONNET, "ok", tok))
                counts.update(["refusal" if tok else "rate_limit", "ok"])
            written += 1 if r < 0.92 else 2
            chains += 1
            if len(buf) >= 20_000:
                fh.write(b"\n".join(buf) + b"\n")
                buf.clear()
        if buf:
            fh.write(b"\n".join(buf) + b"\n")
    refusals, limited = counts["refusal"], counts["rate_limit"]
    return {
        "seed": seed,
        "batch_id": None,
        "files": {path.name: {"lines": written}},
        "attempts": written,
        "chains": chains,
        "sessions": (chains + 3) // 4,
        "refused_attempts": refusals,
        "refused_chains": refusals,
        "refusals_by_category": dict.fromkeys((c or "unspecified" for c in CATEGORIES), 0) | {"cyber": refusals},
        "credits": dict.fromkeys(("minted", "unredeemable", *CREDIT_OUTCOMES), 0)
        | {"minted": refusals, "redeemed": refusals},
        "errors_by_class": {"rate_limit": limited} if limited else {},
        "outcomes": dict.fromkeys(OUTCOMES, 0) | {"ok": counts["ok"], "refusal": refusals, "error": limited},
    }
