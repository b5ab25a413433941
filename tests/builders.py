"""Small builders for hand-made log records (Messages API shapes), shared by the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from fallbackscope.core.fingerprint import canonical_json, hmac_hex, normalise_messages

KEY = "0123456789abcdef" * 4
KEY_BYTES = KEY.encode()


def fp(value: Any) -> str:
    """The fingerprint the tool must compute for a prompt object, written out independently."""
    return hmac_hex(KEY_BYTES, canonical_json(value))


def prompt_fp(request: dict) -> str:
    return fp({"messages": normalise_messages(request.get("messages")), "system": request.get("system"),
               "tools": request.get("tools")})


def token_fp(token: str) -> str:
    return hmac_hex(KEY_BYTES, token.encode())


def usage(inp: int = 0, out: int = 0, read: int = 0, w5: int = 0, w1: int = 0, **extra: Any) -> dict:
    u = {"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": read,
         "cache_creation_input_tokens": w5 + w1,
         "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1}}
    u.update(extra)
    return u


def message(mid: str, model: str, *, stop_reason: str = "end_turn", content: list | None = None,
            usage_: dict | None = None, stop_details: dict | None = None) -> dict:
    return {"id": mid, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": "an answer"}] if content is None else content,
            "stop_reason": stop_reason, "stop_sequence": None, "stop_details": stop_details,
            "usage": usage_ or usage(10, 5)}


def request(model: str, text: str = "hello", **extra: Any) -> dict:
    body = {"model": model, "max_tokens": 512, "system": "be brief",
            "messages": [{"role": "user", "content": text}], "metadata": {"user_id": "u-1"}}
    body.update(extra)
    return body


def exchange(ts: str, req: dict | None, resp: dict | None = None, status: int | None = 200, **extra: Any) -> dict:
    record: dict[str, Any] = {"ts": ts, "workload": "wl", "request": req}
    if status is not None:
        record["http_status"] = status
    if resp is not None:
        record["response"] = resp
    record.update(extra)
    return record


def write_jsonl(path: Path, records: list) -> Path:
    with open(path, "wb") as fh:
        for record in records:
            fh.write(record if isinstance(record, bytes) else json.dumps(record).encode())
            fh.write(b"\n")
    return path


def rows(db: Path, where: str = "true") -> list[dict]:
    """Return stored attempts as dicts (ts as epoch seconds), in chain and attempt order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"SELECT * REPLACE (epoch(ts) AS ts) FROM attempts WHERE {where}"
                          " ORDER BY ts, chain_id, attempt_index")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def query(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
