"""Helpers shared by the formats of other tools' logs (`bedrock`, `otel`, `litellm`)."""

from __future__ import annotations

import ast
import re
from typing import Any

import orjson

from ingest.fields import Reject, parse_ts
from ingest.message import ERROR_TYPES, Context, error_class_for, outcome_for_error


def record_time(obj: dict, key: str, ctx: Context) -> int:
    """Return a record's time field in UTC microseconds, else `--default-ts`, else reject."""
    value = obj.get(key)
    if value is None:
        if ctx.default_ts is None:
            raise Reject("no timestamp")
        return ctx.default_ts
    return parse_ts(value, key)


# The API's error body as other tools quote it inside their own error text (LiteLLM's `error_message`, OpenLLMetry's
# span status): `{"type": "error", "error": {"type": "overloaded_error", …}, "request_id": "req_…"}`, as JSON or as
# a Python dict's repr. Only the error type and the request id are taken; the rest of the text is never kept.
_QUOTED_ERROR_TYPE = re.compile(r"""['"]error['"]\s*:\s*\{\s*['"]type['"]\s*:\s*['"]([a-z_]{1,40})['"]""")
_QUOTED_REQUEST_ID = re.compile(r"""['"]request_id['"]\s*:\s*['"]([A-Za-z0-9_-]{1,128})['"]""")


def quoted_api_error(text: Any) -> tuple[str | None, str | None]:
    """Return (the API's error type, its request id) that an error text quotes, each None when it names none; a
    type outside the API's vocabulary (docs/metrics.md §3.6) is no type."""
    if type(text) is not str:
        return None, None
    found_type = _QUOTED_ERROR_TYPE.search(text)
    found_id = _QUOTED_REQUEST_ID.search(text)
    error_type = found_type.group(1) if found_type and found_type.group(1) in ERROR_TYPES else None
    return error_type, found_id.group(1) if found_id else None


def literal_object(text: Any, limit: int = 65536) -> dict | None:
    """Return a dict given as JSON text or as a Python dict's repr (LiteLLM's OTel callback writes its usage object
    so: single quotes, `None`), else None; literals only, never code, and no text longer than `limit`."""
    if type(text) is not str or not text.startswith("{") or len(text) > limit:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return None
    return value if type(value) is dict else None


_MARKERS = (
    ("ratelimit", "rate_limit"), ("throttl", "rate_limit"), ("overloaded", "overloaded"), ("timeout", "timeout"),
    ("connection", "connection"), ("authentication", "auth"), ("permission", "permission"),
    ("accessdenied", "permission"), ("notfound", "not_found"), ("badrequest", "invalid_request"),
    ("invalidrequest", "invalid_request"), ("validation", "invalid_request"), ("unprocessable", "invalid_request"),
    ("contextwindow", "invalid_request"), ("contentpolicy", "invalid_request"), ("conflict", "conflict"),
    ("serviceunavailable", "server_error"), ("requesttoolarge", "invalid_request"), ("deadlineexceeded", "timeout"),
)


def error_class_named(error_type: str) -> tuple[int | None, str]:
    """Return (HTTP status, error class) of an error name other tools give: a status code, an API
    error type or an exception class name (`RateLimitError`, `anthropic.APITimeoutError`)."""
    if error_type.isdigit():
        status = int(error_type)
        return status, error_class_for(status, None)
    if error_type in ERROR_TYPES:
        return None, ERROR_TYPES[error_type]
    name = error_type.rsplit(".", 1)[-1].lower().replace("_", "")
    for marker, error_class in _MARKERS:
        if marker in name:
            return None, error_class
    return None, "server_error"


# Finish reasons other tools write, in Anthropic's stop-reason vocabulary (docs/metrics.md §3.8)
FOREIGN_STOPS = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "tool_call": "tool_use",
    "function_call": "tool_use", "content_filter": "refusal", "content_filtered": "refusal",
}


def stop_reason_of(value: Any, path: str) -> str | None:
    """Return a stop or finish reason in Anthropic's vocabulary (docs/metrics.md §3.8): a list, or a string
    holding a JSON list, is read as its first element; foreign names are mapped (`stop` → `end_turn`,
    `content_filter` → `refusal`, …); any other value is kept lower-case. An empty value is no reason."""
    if type(value) is str and value[:1] == "[":
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # a string that merely starts with a bracket: kept as given
    if type(value) is list:
        value = value[0] if value else None
    if value is None:
        return None
    if type(value) is not str:
        raise Reject(f"field `{path}` has the wrong type (expected a string)")
    reason = value.strip().lower()
    return FOREIGN_STOPS.get(reason, reason) or None


def set_stop(attempt: dict, stop: str | None) -> dict:
    """Set an answered attempt's `stop_reason` and outcome from a stop reason in Anthropic's vocabulary:
    `refusal` is a refusal (its category unknown unless already set); the finish reason `error` makes the
    attempt an error, classed `server_error` unless its HTTP status says otherwise (docs/metrics.md §3.8)."""
    if stop == "error":
        status = attempt.get("http_status")
        error_class = error_class_for(status, None) if status is not None and status >= 400 else "server_error"
        attempt.update(stop_reason=None, error_class=error_class, outcome=outcome_for_error(error_class))
        return attempt
    attempt["stop_reason"] = stop
    attempt["outcome"] = "refusal" if stop == "refusal" else "ok"
    return attempt


CONVERSE_WITHOUT_ENVELOPE = ("a Bedrock Converse response without its invocation-log envelope: it names no model; "
                             "log the ModelInvocationLog record")


def looks_like_converse(obj: dict) -> bool:
    """Return whether a record is a bare Bedrock Converse response body (`output.message`, `stopReason`)."""
    return "stopReason" in obj and isinstance(obj.get("output"), dict) and "schemaType" not in obj


def wrong_format(obj: dict, claim: str, own: str) -> Reject:
    """Return the reject of a record that is not of the format it is read as (docs/metrics.md §3.8): `claim`
    says what it is not; a shape another format (or a known body) has is named, with the option to use."""
    from ingest.formats import shape_of  # the package imports every format module, this one's users included

    shape = shape_of(obj, own)
    if shape == CONVERSE_WITHOUT_ENVELOPE:
        return Reject(shape)
    return Reject(f"{claim} (it looks like {shape})" if shape else claim)
