"""`generate_lines`: one large `exchange` file written fast, for benchmarks."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import orjson

from fallbackscope.core.outcomes import OUTCOMES
from fallbackscope.sample.spec import CREDIT_KEYS, FABLE, OPUS, SONNET, VOCAB, SampleSpec, iso_ms
from fallbackscope.sample.truth import category_counts


def generate_lines(n_lines: int, path: Path, seed: int = 7) -> dict:
    """Benchmark helper: write n_lines `exchange` lines (~2.5 KB each: system prompt, user prompt and
    completion text) to ONE file, fast; return its ground truth (the same top-level counts as `generate`).

    Every chain carries `chain_id`: 92% one ok attempt, 4% a cyber refusal then a retry on
    claude-opus-4-8 that redeems its credit, 4% a 429 then a same-model retry; four chains per session.
    """
    path = Path(path)
    rng = random.Random(seed)
    rand = rng.random
    words = rng.choices(VOCAB, k=400_000)
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
        messages = [{"role": "user", "content": prompt}]
        body = {"model": model, "max_tokens": 2048, "system": system, "messages": messages, "metadata": user}
        row = {"ts": iso_ms(ts), "workload": "bench", "session_id": session, "chain_id": chain, "attempt": k}
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
        "refusals_by_category": category_counts({"cyber": refusals}),
        "credits": dict.fromkeys(CREDIT_KEYS, 0) | {"minted": refusals, "redeemed": refusals},
        "errors_by_class": {"rate_limit": limited} if limited else {},
        "outcomes": dict.fromkeys(OUTCOMES, 0) | {"ok": counts["ok"], "refusal": refusals, "error": limited},
    }
