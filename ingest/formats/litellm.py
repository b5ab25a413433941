"""Format `litellm` (docs/metrics.md §3.5): LiteLLM StandardLoggingPayload JSON lines and SpendLogs exports.

A StandardLoggingPayload (what LiteLLM's logging callbacks write) has `id`, `trace_id`, `call_type`,
`status`, `startTime`/`endTime` (epoch seconds), `model`, `model_group`, `custom_llm_provider`, token
counts, `metadata`/`hidden_params` with the raw `usage_object`, `error_information`, and the request and
response. A SpendLogs row (the proxy's `LiteLLM_SpendLogs` table, one JSON object per line) has
`request_id`, `startTime`/`endTime` (timestamps), `session_id` (the trace id) and `metadata` holding the
`usage_object` and `error_information` (as an object or as JSON text).

`trace_id` (`session_id` in SpendLogs) groups LiteLLM's retries and fallbacks of one request: it is the
chain. `prompt_tokens` includes cache reads and writes: the uncached part is stored. Only allow-listed
fields are read; messages feed the prompt fingerprint only, and the response only says whether there was
output and why it stopped.
"""

from __future__ import annotations

from typing import Any

import orjson

from fallbackscope.core.fingerprint import prompt_fingerprint
from ingest.columns import blank_attempt
from ingest.fields import Reject, get_bool, get_obj, get_str, get_tokens, parse_ts
from ingest.formats.shared import (
    error_class_named,
    quoted_api_error,
    record_time,
    set_stop,
    stop_reason_of,
    wrong_format,
)
from ingest.message import ZERO_USAGE, Context, error_class_for, message_attempts, optional_id, outcome_for_error

NAME = "litellm"
SHAPE = "a LiteLLM payload"

CHAT_CALLS = frozenset({
    "completion", "acompletion", "text_completion", "atext_completion", "anthropic_messages",
    "aanthropic_messages", "responses", "aresponses", "generate_content", "agenerate_content",
})
SURFACES = {"anthropic": "anthropic", "bedrock": "bedrock", "bedrock_converse": "bedrock", "vertex_ai": "vertex",
            "vertex_ai_beta": "vertex", "azure_ai": "foundry"}


def looks_like(obj: dict) -> bool:
    """Return whether a decoded line is a StandardLoggingPayload or a SpendLogs row."""
    return "call_type" in obj and "startTime" in obj and ("id" in obj or "request_id" in obj)

def looks_like_start(start: bytes) -> bool:
    """Return whether the opening bytes of a file (its first line cut short) are a LiteLLM payload."""
    return start.startswith(b"{") and b'"call_type"' in start and b'"startTime"' in start


def _maybe_json(obj: dict, key: str, path: str = "") -> Any:
    """Return a field that may be stored as JSON text (SpendLogs exports of JSON columns)."""
    value = obj.get(key)
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Reject(f"invalid JSON in `{path + '.' if path else ''}{key}`") from None
    return value


def _content(obj: dict, key: str) -> Any:
    """Return a content field (messages, response) as structure, None when it is not readable JSON:
    it only feeds the fingerprint and the stop reason, so a mangled copy does not reject the call."""
    try:
        return _maybe_json(obj, key)
    except Reject:
        return None


def _object(obj: dict, key: str, path: str = "") -> dict | None:
    value = _maybe_json(obj, key, path)
    if value is None or isinstance(value, dict):
        return value
    if isinstance(value, str):  # e.g. "redacted-by-litellm": nothing to read
        return None
    raise Reject(f"field `{path + '.' if path else ''}{key}` has the wrong type (expected an object)")


def read_tokens(obj: dict, usage: dict | None) -> dict[str, int]:
    """Return the token columns: `prompt_tokens` minus the cache reads and writes it includes."""
    prompt = get_tokens(obj, "prompt_tokens") if "prompt_tokens" in obj else get_tokens(usage, "prompt_tokens",
                                                                                        "usage_object")
    out = dict(ZERO_USAGE)
    out["output_tokens"] = (get_tokens(obj, "completion_tokens") if "completion_tokens" in obj
                            else get_tokens(usage, "completion_tokens", "usage_object"))
    if usage is None:
        out["input_tokens"] = prompt
        return out
    details = get_obj(usage, "prompt_tokens_details", "usage_object") or {}
    dpath = "usage_object.prompt_tokens_details"
    read = (get_tokens(usage, "cache_read_input_tokens", "usage_object") if "cache_read_input_tokens" in usage
            else get_tokens(details, "cached_tokens", dpath))
    write = (get_tokens(usage, "cache_creation_input_tokens", "usage_object") if "cache_creation_input_tokens" in usage
             else get_tokens(details, "cache_creation_tokens", dpath))
    breakdown = (get_obj(details, "cache_creation_token_details", dpath)
                 or get_obj(usage, "cache_creation", "usage_object") or {})
    write_5m = get_tokens(breakdown, "ephemeral_5m_input_tokens", "usage_object.cache_creation")
    write_1h = get_tokens(breakdown, "ephemeral_1h_input_tokens", "usage_object.cache_creation")
    if not (write_5m or write_1h):
        write_5m = write  # no TTL breakdown: all writes are 5-minute writes (docs/metrics.md §3.6)
    write = write_5m + write_1h
    # LiteLLM adds reads and writes to prompt_tokens; a total smaller than that sum left writes out
    if prompt >= read + write:
        out["input_tokens"] = prompt - read - write
    else:
        out["input_tokens"] = prompt - read if prompt >= read else prompt
    out.update(cache_read_tokens=read, cache_write_5m_tokens=write_5m, cache_write_1h_tokens=write_1h)
    tools = get_obj(usage, "server_tool_use", "usage_object")
    out["web_search_requests"] = get_tokens(tools, "web_search_requests", "usage_object.server_tool_use")
    return out


def parse(obj: dict, ctx: Context) -> list[dict]:
    """Return the attempt rows of one StandardLoggingPayload or SpendLogs row."""
    spend_log = "request_id" in obj and "id" not in obj
    if "call_type" not in obj:
        raise wrong_format(obj, "not a LiteLLM payload (no `call_type`)", NAME)
    call_type = get_str(obj, "call_type")
    if call_type not in CHAT_CALLS:
        raise Reject("not a chat or completion call (`call_type`)")
    if obj.get("cache_hit") in (True, "True", "true"):  # SpendLogs keep it as text
        raise Reject("a LiteLLM cache hit, not a model call (`cache_hit`)")
    base = blank_attempt()
    base["ts"] = record_time(obj, "startTime", ctx)
    if obj.get("startTime") is not None and obj.get("endTime") is not None:
        end = parse_ts(obj["endTime"], "endTime")
        if end >= base["ts"]:
            base["latency_ms"] = (end - base["ts"]) / 1000
    base["workload"] = ctx.workload or "default"
    base["request_id"] = base["attempt_id"] = optional_id(obj, "request_id" if spend_log else "id",
                                                          "request_id" if spend_log else "id")
    base["given_chain_id"] = optional_id(obj, "session_id" if spend_log else "trace_id",
                                         "session_id" if spend_log else "trace_id")
    provider = get_str(obj, "custom_llm_provider")
    base["surface"] = SURFACES.get(provider or "anthropic", provider)
    model = get_str(obj, "model")
    base["requested_model"] = get_str(obj, "model_group") or model
    base["model"] = ctx.model(model)
    base["is_stream"] = bool(get_bool(obj, "stream"))
    metadata = _object(obj, "metadata") or {}
    hidden = _object(obj, "hidden_params") or {}
    usage = (get_obj(hidden, "usage_object", "hidden_params") or get_obj(metadata, "usage_object", "metadata"))
    tokens = read_tokens(obj, usage)
    base.update(tokens)
    base["prompt_fp"] = _prompt_fp(obj, ctx)

    status = get_str(obj, "status") or get_str(metadata, "status", "metadata")
    error_info = (_object(obj, "error_information")
                  or get_obj(metadata, "error_information", "metadata"))
    # a success carries `error_information` too, its values empty: only a filled one tells of a failure
    if status == "failure" or (status is None and error_info and any(error_info.values())):
        return [_error(base, error_info or {}, obj.get("error_str"))]
    base["request_id"] = _provider_request_id(hidden) or base["request_id"]

    base["http_status"] = 200
    response = _content(obj, "response")
    if not isinstance(response, dict):  # not logged, redacted, or another API's shape: nothing to read
        response = None
    if response is not None and response.get("type") == "message":  # an Anthropic-format response
        # the body LiteLLM's own client received: fallback blocks in it came from the server
        attempts = message_attempts(response, "response", ctx, base, hop_mode="server_side")
        if response.get("usage") is None:  # a body logged without usage: the payload's counts stand
            attempts[-1].update(tokens)
        return attempts
    finish, had_output, own = _choice(response)
    # the provider's own stop reason, when the payload kept it, else the OpenAI-style finish reason, in Anthropic's
    # words: LiteLLM reports a Claude `refusal` as `content_filter`; its category only where the payload kept the
    # provider's `stop_details` (docs/metrics.md §3.8)
    stop = (stop_reason_of(obj.get("stop_reason"), "stop_reason") or stop_reason_of(own.get("stop_reason"), "")
            or stop_reason_of(finish, "response.choices[0]"))
    base["had_output"] = had_output if had_output is not None else base["output_tokens"] > 0
    set_stop(base, stop)
    details = own.get("stop_details")
    category = details.get("category") if type(details) is dict else None
    if base["outcome"] == "refusal" and type(category) is str and category:
        base["refusal_category"] = category
    return [base]


def _choice(response: dict | None) -> tuple[str | None, bool | None, dict]:
    """Return (finish_reason, had output, the provider's own fields) of an OpenAI-format response: LiteLLM keeps
    Anthropic's `stop_reason` and `stop_details` in the message's `provider_specific_fields`. The text itself is
    not kept; a response of another shape says nothing (it never rejects the call)."""
    choices = response.get("choices") if response is not None else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None, None, {}
    finish = choices[0].get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    message = choices[0].get("message")
    if not isinstance(message, dict):
        return finish, None, {}
    own = message.get("provider_specific_fields")
    return finish, bool(message.get("content") or message.get("tool_calls")), own if isinstance(own, dict) else {}


def _provider_request_id(hidden: dict) -> str | None:
    """Return the API's request id from the response headers LiteLLM keeps in `hidden_params`, else None."""
    headers = hidden.get("additional_headers")
    if not isinstance(headers, dict):
        return None
    found = headers.get("request-id") or headers.get("llm_provider-request-id")
    return found if isinstance(found, str) and found else None


def _prompt_fp(obj: dict, ctx: Context) -> str | None:
    """Return the fingerprint of the request's messages (with its tools), when they were logged."""
    messages = _content(obj, "messages")
    if not isinstance(messages, list) or not messages:
        return None  # not logged, redacted, or a bare prompt string shared by every redacted line
    params = _content(obj, "model_parameters")
    if not isinstance(params, dict):
        params = {}
    return prompt_fingerprint(ctx.key, {"messages": messages, "system": params.get("system"),
                                        "tools": params.get("tools")})


def _error(base: dict, info: dict, error_str: Any) -> dict:
    """Return the attempt of a failed call, classed by the API's own error type when LiteLLM's error text quotes the
    API's error body (LiteLLM reports an Anthropic `overloaded_error` as its 500 `InternalServerError`), else by
    its HTTP code, else its exception class. The API's request id: LiteLLM's `error_provider_request_id`, else the
    quoted body's."""
    code = optional_id(info, "error_code", "error_information.error_code")
    name = get_str(info, "error_class", "error_information")
    status = int(code) if code and code.isdigit() else None
    quoted_type, quoted_id = quoted_api_error(info.get("error_message") or error_str)
    provider_id = info.get("error_provider_request_id")
    base["request_id"] = (provider_id if isinstance(provider_id, str) else None) or quoted_id or base["request_id"]
    if status is not None and status >= 400:
        base["http_status"] = status
        error_class = error_class_for(status, None)
    else:
        named_status, error_class = error_class_named(name) if name else (None, "server_error")
        base["http_status"] = named_status
    if quoted_type is not None:
        error_class = error_class_named(quoted_type)[1]
    base.update(error_class=error_class, outcome=outcome_for_error(error_class), had_output=False)
    return base
