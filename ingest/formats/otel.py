"""Format `otel` (docs/metrics.md §3.5): OTLP/JSON trace exports with GenAI semantic-convention attributes.

One export (`{"resourceSpans": [...]}`) per line, as the OpenTelemetry Collector's file exporter writes
it. A record is one span (docs/metrics.md §1): a line holding N model-call spans gives N records. Spans that are
not GenAI model calls (HTTP, database, tool, agent, embedding spans) are not records and are skipped.

Only allow-listed attributes are decoded; content attributes (`gen_ai.input.messages`,
`gen_ai.output.messages`, `gen_ai.system_instructions`, `gen_ai.prompt`, `gen_ai.completion`, events)
never leave this module — the input messages only feed the prompt fingerprint.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from fallbackscope.core.fingerprint import canonical_json, prompt_fingerprint
from ingest.columns import blank_attempt
from ingest.fields import TOKEN_LIMIT, Reject, get_list, get_obj, get_str
from ingest.formats.shared import error_class_named
from ingest.message import Context, error_class_for, outcome_for_error

NAME = "otel"

CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
SURFACES = {"anthropic": "anthropic", "aws.bedrock": "bedrock", "gcp.vertex_ai": "vertex", "gcp.gen_ai": "vertex",
            "azure.ai.inference": "foundry", "azure.ai.foundry": "foundry",
            "vertex_ai": "vertex", "az.ai.inference": "foundry"}  # the last two: older `gen_ai.system` values
REFUSAL_REASONS = frozenset({"refusal", "content_filter"})

_INT_KEYS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens", "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_write.input_tokens",
    "anthropic.usage.cache_creation.ephemeral_5m_input_tokens",
    "anthropic.usage.cache_creation.ephemeral_1h_input_tokens", "http.response.status_code",
)
_STR_KEYS = (
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.system", "gen_ai.request.model",
    "gen_ai.response.model", "gen_ai.response.id", "gen_ai.conversation.id", "anthropic.message.stop_reason",
    "anthropic.request.id", "error.type",
)
_FINGERPRINTED = ("gen_ai.input.messages", "gen_ai.system_instructions", "gen_ai.tool.definitions")
WANTED = frozenset(_INT_KEYS + _STR_KEYS + _FINGERPRINTED + ("gen_ai.response.finish_reasons", "service.name"))


class Span(NamedTuple):
    """One model-call span of an export line, with what its resource and position say."""

    index: int  # ordinal among the line's records
    path: str
    span: dict
    attributes: dict[str, Any]
    service: str | None


def looks_like(obj: dict) -> bool:
    """Return whether a decoded line is an OTLP/JSON trace export."""
    return "resourceSpans" in obj

def looks_like_start(start: bytes) -> bool:
    """Return whether the opening bytes of a file (its first line cut short) are an OTLP export."""
    return start.startswith(b"{") and b'"resourceSpans"' in start[:200]


def _decode(value: Any, path: str) -> Any:
    """Return the Python value of an OTLP AnyValue (int64 values may come as strings)."""
    if not isinstance(value, dict):
        raise Reject(f"field `{path}` has the wrong type (expected an object)")
    if "stringValue" in value:
        text = value["stringValue"]
        if not isinstance(text, str):
            raise Reject(f"field `{path}.stringValue` has the wrong type (expected a string)")
        return text
    if "intValue" in value:
        number = value["intValue"]
        if isinstance(number, str):
            try:
                return int(number)
            except ValueError:
                raise Reject(f"field `{path}.intValue` has the wrong type (expected an integer)") from None
        if type(number) is int:
            return number
        raise Reject(f"field `{path}.intValue` has the wrong type (expected an integer)")
    if "boolValue" in value:
        return value["boolValue"]
    if "doubleValue" in value:
        return value["doubleValue"]
    if "arrayValue" in value:
        values = get_list(get_obj(value, "arrayValue", path) or {}, "values", f"{path}.arrayValue") or []
        return [_decode(v, f"{path}.arrayValue.values[{i}]") for i, v in enumerate(values)]
    if "kvlistValue" in value:
        pairs = get_list(get_obj(value, "kvlistValue", path) or {}, "values", f"{path}.kvlistValue") or []
        return {p["key"]: _decode(p.get("value"), f"{path}.kvlistValue") for p in pairs
                if isinstance(p, dict) and isinstance(p.get("key"), str)}
    return None


def _attributes(items: Any, path: str) -> dict[str, Any]:
    """Return the allow-listed attributes of a span or resource; every other one is never decoded."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise Reject(f"field `{path}` has the wrong type (expected an array)")
    found: dict[str, Any] = {}
    for item in items:
        if type(item) is dict:
            key = item.get("key")
            if key in WANTED:
                value = item.get("value")
                # the common case first: one string value (int64 values are strings too)
                text = value.get("stringValue") if type(value) is dict and len(value) == 1 else None
                found[key] = text if type(text) is str else _decode(value, f"{path}.{key}")
    return found


def _is_model_call(attrs: dict[str, Any]) -> bool:
    operation = attrs.get("gen_ai.operation.name")
    if operation is not None:
        return isinstance(operation, str) and operation in CALL_OPERATIONS
    # instrumentations older than `gen_ai.operation.name` mark a call by its system and model
    has_model = attrs.get("gen_ai.request.model") is not None or attrs.get("gen_ai.response.model") is not None
    return has_model and (attrs.get("gen_ai.system") is not None or attrs.get("gen_ai.provider.name") is not None)


def split_records(obj: dict) -> list[Span]:
    """Return the model-call spans of one export line (a malformed layout rejects the whole line)."""
    if "resourceSpans" not in obj:  # another signal (`resourceLogs`, `resourceMetrics`) or another log
        raise Reject("not an OTLP trace export (no `resourceSpans`)")
    records: list[Span] = []
    for r, resource_spans in enumerate(get_list(obj, "resourceSpans") or []):
        rpath = f"resourceSpans[{r}]"
        if not isinstance(resource_spans, dict):
            raise Reject(f"field `{rpath}` has the wrong type (expected an object)")
        resource = get_obj(resource_spans, "resource", rpath) or {}
        service = _attributes(resource.get("attributes"), f"{rpath}.resource.attributes").get("service.name")
        if not isinstance(service, str) or service.startswith("unknown_service"):
            service = None
        for s, scope_spans in enumerate(get_list(resource_spans, "scopeSpans", rpath) or []):
            spath = f"{rpath}.scopeSpans[{s}]"
            if not isinstance(scope_spans, dict):
                raise Reject(f"field `{spath}` has the wrong type (expected an object)")
            for k, span in enumerate(get_list(scope_spans, "spans", spath) or []):
                path = f"{spath}.spans[{k}]"
                if not isinstance(span, dict):
                    raise Reject(f"field `{path}` has the wrong type (expected an object)")
                # a span whose attributes cannot be read is still a record: it is rejected on its own
                try:
                    attrs = _attributes(span.get("attributes"), f"{path}.attributes")
                except Reject:
                    attrs = None
                if attrs is None or _is_model_call(attrs):
                    records.append(Span(len(records), path, span, attrs or {}, service))
    return records


def record_bytes(record: Span) -> bytes:
    """Return the bytes a span's content id is computed from."""
    return canonical_json(record.span)


def _nanos(span: dict, key: str, path: str) -> int | None:
    value = span.get(key)
    if value is None or value in ("0", 0):
        return None
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise Reject(f"unparseable timestamp in `{path}.{key}`") from None
    if type(value) is not int or not 0 < value < 4_000_000_000 * 10**9:
        raise Reject(f"unparseable timestamp in `{path}.{key}`")
    return value


def _int(attrs: dict, key: str, path: str) -> int | None:
    value = attrs.get(key)
    if value is None:
        return None
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise Reject(f"field `{path}.attributes.{key}` has the wrong type (expected an integer)")
    return value


def _tokens(attrs: dict, key: str, path: str) -> int:
    value = _int(attrs, key, path) or 0
    if value < 0:
        raise Reject(f"negative token count in `{path}.attributes.{key}`")
    if value >= TOKEN_LIMIT:  # so no sum of an attempt's counts can overflow 64 bits
        raise Reject(f"field `{path}.attributes.{key}` is out of range")
    return value


def _str(attrs: dict, key: str, path: str) -> str | None:
    value = attrs.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Reject(f"field `{path}.attributes.{key}` has the wrong type (expected a string)")


def _json_attr(attrs: dict, key: str) -> Any:
    """Return a content attribute as structure (recorded as JSON text or as an OTLP array)."""
    value = attrs.get(key)
    if isinstance(value, str):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def parse(record: Span, ctx: Context) -> list[dict]:
    """Return the attempt row of one model-call span."""
    span, path, attrs = record.span, record.path, record.attributes
    if not attrs:  # the attributes failed to decode in split_records: read again for the reason
        _attributes(span.get("attributes"), f"{path}.attributes")
    base = blank_attempt()
    base["record_no"] = record.index
    start = _nanos(span, "startTimeUnixNano", path)
    end = _nanos(span, "endTimeUnixNano", path)
    if start is None:
        if ctx.default_ts is None:
            raise Reject("no timestamp")
        base["ts"] = ctx.default_ts
    else:
        base["ts"] = start // 1000
        if end is not None and end >= start:
            base["latency_ms"] = (end - start) / 1e6
    base["workload"] = ctx.workload or record.service or "default"
    provider = _str(attrs, "gen_ai.provider.name", path) or _str(attrs, "gen_ai.system", path)
    base["surface"] = SURFACES.get(provider or "anthropic", provider)
    base["session_id"] = _str(attrs, "gen_ai.conversation.id", path)
    requested = _str(attrs, "gen_ai.request.model", path)
    served = _str(attrs, "gen_ai.response.model", path)
    base["requested_model"] = requested
    base["model"] = ctx.model(served or requested)
    response_id = _str(attrs, "gen_ai.response.id", path)
    trace_id, span_id = get_str(span, "traceId", path), get_str(span, "spanId", path)
    base["request_id"] = _str(attrs, "anthropic.request.id", path)
    base["attempt_id"] = (response_id or base["request_id"]
                          or (f"otel:{trace_id}:{span_id}" if trace_id and span_id else None))
    if "gen_ai.input.messages" in attrs:
        base["prompt_fp"] = prompt_fingerprint(ctx.key, {
            "messages": _json_attr(attrs, "gen_ai.input.messages"),
            "system": _json_attr(attrs, "gen_ai.system_instructions"),
            "tools": _json_attr(attrs, "gen_ai.tool.definitions"),
        })

    # usage: gen_ai.usage.input_tokens includes cache reads and writes; store the uncached part
    total_input = _tokens(attrs, "gen_ai.usage.input_tokens", path)
    read = _tokens(attrs, "gen_ai.usage.cache_read.input_tokens", path)
    write_5m = _tokens(attrs, "anthropic.usage.cache_creation.ephemeral_5m_input_tokens", path)
    write_1h = _tokens(attrs, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens", path)
    write = (_tokens(attrs, "gen_ai.usage.cache_creation.input_tokens", path)
             or _tokens(attrs, "gen_ai.usage.cache_write.input_tokens", path))
    if write > write_5m + write_1h:
        # the total is what was written; writes no TTL breakdown covers (none given, or one iteration's
        # only) are 5-minute writes (docs/metrics.md §3.6)
        write_5m = write - write_1h
    cached = read + write_5m + write_1h
    base.update(
        input_tokens=total_input - cached if total_input >= cached else total_input,
        output_tokens=_tokens(attrs, "gen_ai.usage.output_tokens", path),
        cache_read_tokens=read, cache_write_5m_tokens=write_5m, cache_write_1h_tokens=write_1h,
    )

    status = _int(attrs, "http.response.status_code", path)
    base["http_status"] = status
    error_type = _str(attrs, "error.type", path)
    span_status = get_obj(span, "status", path) or {}
    failed = span_status.get("code") in (2, "STATUS_CODE_ERROR")
    if error_type is not None or (status is not None and status >= 400) or failed:
        type_status, error_class = error_class_named(error_type) if error_type else (None, "server_error")
        if status is not None and status >= 400:
            error_class = error_class_for(status, None)
        elif type_status is not None:
            base["http_status"] = type_status
        base.update(error_class=error_class, outcome=outcome_for_error(error_class), had_output=False)
        return [base]

    reasons = attrs.get("gen_ai.response.finish_reasons")
    if isinstance(reasons, str):
        reasons = [reasons]
    if reasons is not None and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        raise Reject(f"field `{path}.attributes.gen_ai.response.finish_reasons` has the wrong type "
                     "(expected an array of strings)")
    stop_reason = _str(attrs, "anthropic.message.stop_reason", path) or (reasons[0] if reasons else None)
    refused = stop_reason in REFUSAL_REASONS or any(r in REFUSAL_REASONS for r in reasons or ())
    base.update(stop_reason=stop_reason, outcome="refusal" if refused else "ok",
                had_output=base["output_tokens"] > 0)
    return [base]
