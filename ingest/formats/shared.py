"""Helpers shared by the formats of other tools' logs (`bedrock`, `otel`, `litellm`)."""

from __future__ import annotations

from ingest.fields import Reject, parse_ts
from ingest.message import ERROR_TYPES, Context, error_class_for


def record_time(obj: dict, key: str, ctx: Context) -> int:
    """Return a record's time field in UTC microseconds, else `--default-ts`, else reject."""
    value = obj.get(key)
    if value is None:
        if ctx.default_ts is None:
            raise Reject("no timestamp")
        return ctx.default_ts
    return parse_ts(value, key)


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
