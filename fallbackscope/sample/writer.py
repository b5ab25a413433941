"""The log-line writer of the sample generator: request bodies, usage objects, Messages, SSE events and
the `exchange` lines (docs/metrics.md §3.1, §3.3, §3.7), drawn from one seeded random stream."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from fallbackscope.sample.spec import ALNUM, CATEGORIES, DATED, FABLE, OPUS, VOCAB, Ctx, Hop, Workload, iso_ms


def chunks(text: str, rng: random.Random) -> list[str]:
    n = rng.randint(40, 120)
    return [text[i : i + n] for i in range(0, len(text), n)] or [""]


def iteration(kind: str, model: str, usage: dict[str, Any]) -> dict[str, Any]:
    """One `usage.iterations` entry: a hop's token counts (docs/metrics.md §3.7)."""
    tokens = {k: v for k, v in usage.items() if k.endswith("tokens") or k in ("cache_creation", "server_tool_use")}
    return {"type": kind, "model": model, **tokens}



class LineWriter:
    """Renders attempts as log lines with one seeded random stream; `lines` collects (ts, order, line)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.lines: list[tuple[int, int, dict[str, Any]]] = []
        self.ids: set[str] = set()
        self.bags: dict[str, list[Any]] = {}

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
            s = prefix + "".join(self.rng.choices(ALNUM, k=n))
            if s not in self.ids:
                self.ids.add(s)
                return s

    def text(self, lo: int, hi: int) -> str:
        words = self.rng.choices(VOCAB, k=self.rng.randint(lo, hi))
        out, i = [], 0
        while i < len(words):
            n = self.rng.randint(6, 16)
            s = " ".join(words[i : i + n])
            out.append(s[0].upper() + s[1:] + ".")
            i += n
        return " ".join(out)

    def category(self, wl: Workload) -> str | None:
        if wl.tools == "code" and self.rng.random() < 0.5:
            return "cyber"
        return self.draw("category", ["cyber", "cyber", "general_harms", *CATEGORIES])

    # -- rendering -------------------------------------------------------------------------------------
    def model_id(self, c: Ctx, model: str) -> str:
        dated = DATED.get(model, model)
        if c.surface == "bedrock":
            return f"us.anthropic.{dated}-v1:0"
        if c.surface == "vertex" and model in DATED:
            return dated.replace(model + "-", model + "@")
        return dated if self.rng.random() < 0.5 else model

    def request(self, c: Ctx, model: str, present: str | None, prefill: str | None) -> dict[str, Any]:
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
        c: Ctx,
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

    def content(self, c: Ctx, model: str) -> tuple[list[dict[str, Any]], str]:
        rng, blocks = self.rng, []
        if model in (FABLE, OPUS) and rng.random() < 0.25:
            blocks.append(
                {"type": "thinking", "thinking": self.text(20, 80), "signature": "".join(rng.choices(ALNUM, k=48))}
            )
        if c.wl.tools == "code" and rng.random() < 0.3:
            path = f"src/{rng.choice(VOCAB)}/{rng.choice(VOCAB)}.py"
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

    def refusal_details(self, hop: Hop, mint: bool, prefill_claim: bool) -> dict[str, Any]:
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
                deltas = [{"type": f"{kind}_delta", kind: s} for s in chunks(b[kind], self.rng)]
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

    def emit(self, c: Ctx, ts: int, latency: int, fields: dict[str, Any], hops: list[Hop]) -> None:
        line: dict[str, Any] = {"ts": iso_ms(ts), "workload": c.wl.name}
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


def sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events)


def write_lines(path: Path, rows: list[bytes]) -> None:
    path.write_bytes(b"\n".join(rows) + b"\n" if rows else b"")


