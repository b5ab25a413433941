"""Format `exchange` (docs/metrics.md §3.1): one HTTP exchange with the model API per JSON line."""

from __future__ import annotations

from ingest.columns import blank_attempt
from ingest.fields import Reject, get_bool, get_int, get_list, get_number, get_obj, get_str, parse_ts
from ingest.formats.shared import wrong_format
from ingest.message import (
    Context,
    error_attempt,
    message_attempts,
    optional_id,
    rebuild_stream,
    request_fields,
)

NAME = "exchange"
SHAPE = "an exchange line"
_MARKERS = ("request", "response", "events", "http_status", "transport_error")


def looks_like(obj: dict) -> bool:
    """Return whether a decoded record has the shape of an exchange line."""
    return any(key in obj for key in _MARKERS) and obj.get("type") not in ("message", "error")


def record_ts(obj: dict, ctx: Context) -> int:
    """Return the record's send time in UTC microseconds, else `--default-ts`, else reject."""
    value = obj.get("ts")
    if value is None:
        if ctx.default_ts is None:
            raise Reject("no timestamp")
        return ctx.default_ts
    return parse_ts(value, "ts")


def parse(obj: dict, ctx: Context) -> list[dict]:
    """Return the attempt rows of one exchange record."""
    if not looks_like(obj):  # the lenient default of detection: say what the record is instead
        raise wrong_format(obj, "not an exchange line (no `request`, `response`, `events` or `http_status`)", NAME)
    base = blank_attempt()
    base["ts"] = record_ts(obj, ctx)
    base["workload"] = get_str(obj, "workload") or ctx.workload or "default"
    base["session_id"] = optional_id(obj, "session_id", "session_id")
    base["given_chain_id"] = optional_id(obj, "chain_id", "chain_id")
    base["given_attempt"] = get_int(obj, "attempt")
    base["given_trigger"] = get_str(obj, "trigger")
    base["accepted"] = get_bool(obj, "accepted")
    base["disclosed"] = get_bool(obj, "disclosed")
    base["surface"] = get_str(obj, "surface") or "anthropic"
    base["request_id"] = base["attempt_id"] = get_str(obj, "request_id")
    base["latency_ms"] = get_number(obj, "latency_ms")
    status = get_int(obj, "http_status")
    base["http_status"] = status
    transport = get_str(obj, "transport_error")
    request = get_obj(obj, "request")
    response = get_obj(obj, "response")
    events = get_list(obj, "events")
    base.update(request_fields(request, "request", ctx))
    base["intended_model"] = ctx.model(get_str(obj, "intended_model"))
    if events is not None:
        base["is_stream"] = True

    if transport is not None:
        if transport not in ("timeout", "connection"):
            raise Reject("field `transport_error` is neither `timeout` nor `connection`")
        base.update(error_class=transport, outcome=transport)
        return [base]
    if status is None:
        raise Reject("no `http_status` and no `transport_error`")
    if not 200 <= status < 300:
        return [error_attempt(base, ctx, status=status, body=response, path="response")]
    if events is not None:
        message, error, streamed = rebuild_stream(events, "events")
        canceled = get_bool(obj, "canceled")  # the app stopped reading before the stop reason (recorder)
        if error is not None:
            usage = message.get("usage") if message else None
            if message:
                base["attempt_id"] = get_str(message, "id", "events.message") or base["attempt_id"]
                if not base["requested_model"]:
                    base["model"] = ctx.model(get_str(message, "model", "events.message"))
            return [error_attempt(base, ctx, status=None, body=error, path="events", usage=usage,
                                  had_output=streamed)]
        if message is None:
            if canceled and not events:  # canceled before the first event arrived
                base.update(outcome="canceled", had_output=False)
                return [base]
            raise Reject("a streamed call without a `message_start` event")
        attempts = message_attempts(message, "events", ctx, base, hop_mode="server_side", stream=True)
        if canceled:
            attempts[-1]["outcome"] = "canceled"
        return attempts
    if response is None:
        raise Reject("a successful call without a `response` or `events`")
    if response.get("type") == "error":
        return [error_attempt(base, ctx, status=None, body=response, path="response")]
    return message_attempts(response, "response", ctx, base, hop_mode="server_side")
