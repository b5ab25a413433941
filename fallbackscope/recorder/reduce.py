"""Reduce Messages API bodies to the metadata an `exchange` line keeps (docs/metrics.md §3.1): no text of any kind.

Pure functions of a decoded JSON body and the fingerprint key, used by `fallbackscope.recorder` as bodies
pass: models, stop reasons, refusal categories, token counts, block types and the `fallback` blocks'
models stay; the prompt becomes `prompt_fp` and every credit token its fingerprint.
"""

from __future__ import annotations

from typing import Any

from fallbackscope.core.fingerprint import prompt_fingerprint, token_fingerprint

_USAGE_STRINGS = ("service_tier", "inference_geo", "speed")
_REQUEST_SCALARS = ("model", "stream", "max_tokens", "service_tier", "speed", "inference_geo")


def _ints(obj: Any) -> dict[str, int]:
    if not isinstance(obj, dict):
        return {}
    return {k: v for k, v in obj.items() if type(v) is int}


def reduce_usage(usage: Any) -> dict | None:
    """Return a usage object with token counts, tier/geo/speed, iterations and the credit status only."""
    if not isinstance(usage, dict):
        return None
    out: dict[str, Any] = _ints(usage)
    for key in _USAGE_STRINGS:
        if isinstance(usage.get(key), str):
            out[key] = usage[key]
    for key in ("cache_creation", "server_tool_use", "output_tokens_details"):
        if isinstance(usage.get(key), dict):
            out[key] = _ints(usage[key])
    if isinstance(usage.get("iterations"), list):
        out["iterations"] = [_reduce_iteration(entry) for entry in usage["iterations"]]
    credit = usage.get("fallback_credit")
    if isinstance(credit, dict):
        status = credit.get("status")
        if isinstance(status, dict):
            status = {k: status[k] for k in ("type", "reason") if isinstance(status.get(k), str)}
        elif not isinstance(status, str):
            status = None
        out["fallback_credit"] = {"status": status}
    return out


def _reduce_iteration(entry: Any) -> dict:
    if not isinstance(entry, dict):
        return {}
    out: dict[str, Any] = _ints(entry)
    for key in ("type", "model"):
        if isinstance(entry.get(key), str):
            out[key] = entry[key]
    if isinstance(entry.get("cache_creation"), dict):
        out["cache_creation"] = _ints(entry["cache_creation"])
    return out


def _reduce_block(block: Any) -> dict:
    """Return a content block as its type; a `fallback` block keeps its models and trigger."""
    if not isinstance(block, dict):
        return {}
    kind = block.get("type")
    out: dict[str, Any] = {"type": kind if isinstance(kind, str) else None}
    if kind == "fallback":
        for side in ("from", "to"):
            info = block.get(side)
            if isinstance(info, dict) and isinstance(info.get("model"), str):
                out[side] = {"model": info["model"]}
        trigger = block.get("trigger")
        if isinstance(trigger, dict):
            out["trigger"] = {k: trigger[k] for k in ("type", "category")
                              if trigger.get(k) is None or isinstance(trigger[k], str)}
    return out


def _reduce_stop_details(details: Any, key: bytes) -> dict | None:
    """Return stop details without `explanation`, the credit token replaced by its fingerprint."""
    if not isinstance(details, dict):
        return None
    out = {k: details[k] for k in ("type", "category", "recommended_model")
           if details.get(k) is None or isinstance(details[k], str)}
    if isinstance(details.get("fallback_has_prefill_claim"), bool):
        out["fallback_has_prefill_claim"] = details["fallback_has_prefill_claim"]
    return _with_token_fp(out, "credit_minted_fp", details.get("fallback_credit_token"), key)


def _with_token_fp(out: dict, name: str, token: Any, key: bytes) -> dict:
    """Return `out` with the fingerprint of a credit token under `name` (nothing for a missing token)."""
    if isinstance(token, str) and token:
        out[name] = token_fingerprint(key, token)
    return out


def reduce_message(message: Any, key: bytes) -> dict | None:
    """Return a Message (or an error body) reduced to what ingest reads: no text of any kind."""
    if not isinstance(message, dict):
        return None
    if message.get("type") == "error":
        error = message.get("error")
        out: dict[str, Any] = {"type": "error"}
        if isinstance(error, dict) and isinstance(error.get("type"), str):
            out["error"] = {"type": error["type"]}
        if isinstance(message.get("request_id"), str):
            out["request_id"] = message["request_id"]
        return out
    out = {k: message[k] for k in ("id", "type", "role", "model", "stop_reason") if isinstance(message.get(k), str)}
    if "stop_reason" in message and message["stop_reason"] is None:
        out["stop_reason"] = None
    details = _reduce_stop_details(message.get("stop_details"), key)
    if details is not None:
        out["stop_details"] = details
    usage = reduce_usage(message.get("usage"))
    if usage is not None:
        out["usage"] = usage
    if isinstance(message.get("content"), list):
        out["content"] = [_reduce_block(block) for block in message["content"]]
    return out


def reduce_event(event: Any, key: bytes) -> dict | None:
    """Return a streamed event reduced, or None for events ingest does not need (deltas, pings)."""
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    if kind == "message_start":
        return {"type": kind, "message": reduce_message(event.get("message"), key) or {}}
    if kind == "content_block_start":
        out: dict[str, Any] = {"type": kind, "content_block": _reduce_block(event.get("content_block"))}
        if type(event.get("index")) is int:
            out["index"] = event["index"]
        return out
    if kind == "message_delta":
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        reduced: dict[str, Any] = {}
        if "stop_reason" in delta and (delta["stop_reason"] is None or isinstance(delta["stop_reason"], str)):
            reduced["stop_reason"] = delta["stop_reason"]
        details = _reduce_stop_details(delta.get("stop_details"), key)
        if details is not None:
            reduced["stop_details"] = details
        out = {"type": kind, "delta": reduced}
        usage = reduce_usage(event.get("usage"))
        if usage is not None:
            out["usage"] = usage
        return out
    if kind == "error":
        return reduce_message(event, key)
    if kind == "message_stop":
        return {"type": kind}
    return None


def reduce_request(body: Any, key: bytes) -> dict | None:
    """Return a Messages request reduced to its model settings, `prompt_fp` and the presented credit's fp."""
    if not isinstance(body, dict):
        return None
    out: dict[str, Any] = {k: body[k] for k in _REQUEST_SCALARS
                           if isinstance(body.get(k), (str, int, bool)) and body[k] is not None}
    fallbacks = body.get("fallbacks")
    if isinstance(fallbacks, list):
        out["fallbacks"] = [
            {k: entry[k] for k in ("model", "speed", "max_tokens") if isinstance(entry.get(k), (str, int))}
            for entry in fallbacks if isinstance(entry, dict)
        ]
    out["prompt_fp"] = prompt_fingerprint(key, body)
    token = body.get("fallback_credit_token")
    if isinstance(token, dict):
        if isinstance(token.get("mode"), str):
            out["fallback_credit_mode"] = token["mode"]
        token = token.get("token")
    return _with_token_fp(out, "credit_presented_fp", token, key)


__all__ = ["reduce_event", "reduce_message", "reduce_request", "reduce_usage"]
