"""Fingerprints (docs/metrics.md §2): HMAC-SHA256 of canonical JSON, so links never need the content itself.

Kept free of heavy imports: ingest worker processes and the SDK recorder import it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

_SORTED = orjson.OPT_SORT_KEYS


def canonical_json(value: Any) -> bytes:
    """Return canonical JSON: keys sorted, no whitespace, UTF-8 unescaped.

    orjson is the fast path; values it cannot encode (integers beyond 64 bits) fall back to the
    standard library with the same layout, so equal values always give equal bytes.
    """
    try:
        return orjson.dumps(value, option=_SORTED)
    except TypeError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _Keyed:
    """HMAC-SHA256 with the key's inner and outer states computed once (RFC 2104).

    `hmac.digest` sets up an OpenSSL context per call, which costs more than hashing a whole prompt;
    copying two prepared hashlib states does not.
    """

    __slots__ = ("inner", "outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self.inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self.outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, data: bytes) -> str:
        inner = self.inner.copy()
        inner.update(data)
        outer = self.outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


_KEYED: dict[bytes, _Keyed] = {}


def hmac_hex(key: bytes, data: bytes) -> str:
    """Return HMAC-SHA256(key, data) as lower-case hex."""
    keyed = _KEYED.get(key)
    if keyed is None:
        keyed = _KEYED[key] = _Keyed(key)
    return keyed.hexdigest(data)


def normalise_messages(messages: Any) -> Any:
    """Return messages with string contents as text blocks and a trailing assistant message removed."""
    if not isinstance(messages, list):
        return messages
    out = []
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message = {**message, "content": [{"type": "text", "text": message["content"]}]}
        out.append(message)
    if out and isinstance(out[-1], dict) and out[-1].get("role") == "assistant":
        out.pop()
    return out


def prompt_fingerprint(key: bytes, request: dict[str, Any]) -> str:
    """Return `prompt_fp` of a Messages API request body (docs/metrics.md §2)."""
    obj = {
        "messages": normalise_messages(request.get("messages")),
        "system": request.get("system"),
        "tools": request.get("tools"),
    }
    return hmac_hex(key, canonical_json(obj))


def token_fingerprint(key: bytes, token: str) -> str:
    """Return the fingerprint of a raw fallback credit token (of its UTF-8 bytes, not its JSON form)."""
    return hmac_hex(key, token.encode("utf-8"))
