"""Format `otel` (docs/metrics.md §3.5): OTLP/JSON trace exports with GenAI semantic-convention attributes.

One export (`{"resourceSpans": [...]}`) per line, as the OpenTelemetry Collector's file exporter writes
it. A record is one span (docs/metrics.md §1): a line holding N model-call spans gives N records. Spans that are
not model calls (HTTP, database, tool, agent, embedding spans) are not records and are skipped. Two vocabularies
are read: GenAI semantic conventions (`gen_ai.*`, the SDK's own `anthropic.*`, OpenLLMetry, LiteLLM's callback)
and OpenInference (`llm.*`, `openinference.span.kind = LLM`: Arize Phoenix and the frameworks built on it). An
outer span around the one span of the same call is merged with it after parsing (`ingest.formats.otel_nesting`).

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
from ingest.formats import litellm
from ingest.formats.shared import (
    error_class_named,
    literal_object,
    quoted_api_error,
    set_stop,
    stop_reason_of,
    wrong_format,
)
from ingest.message import Context, error_class_for, outcome_for_error

NAME = "otel"
SHAPE = "an OTLP trace export"

# `gen_ai.operation.name` of a model call; LiteLLM's callback writes its own call types there (`acompletion`, …)
CALL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"}) | litellm.CHAT_CALLS
SURFACES = {"anthropic": "anthropic", "aws.bedrock": "bedrock", "gcp.vertex_ai": "vertex", "gcp.gen_ai": "vertex",
            "azure.ai.inference": "foundry", "azure.ai.foundry": "foundry",
            "vertex_ai": "vertex", "az.ai.inference": "foundry",  # older `gen_ai.system` values
            "aws": "bedrock", "google": "vertex", "azure": "foundry"}  # OpenInference `llm.provider` values
# OpenInference attribute → the GenAI attribute it stands for (docs/metrics.md §3.8); GenAI wins when both are given
OPENINFERENCE = {
    "llm.request.model_name": "gen_ai.request.model", "llm.response.model_name": "gen_ai.response.model",
    "llm.provider": "gen_ai.provider.name", "llm.system": "gen_ai.system",
    "llm.token_count.prompt": "gen_ai.usage.input_tokens", "llm.token_count.completion": "gen_ai.usage.output_tokens",
    "llm.token_count.prompt_details.cache_read": "gen_ai.usage.cache_read.input_tokens",
    "llm.token_count.prompt_details.cache_write": "gen_ai.usage.cache_creation.input_tokens",
    "llm.finish_reason": "gen_ai.response.finish_reasons",
}

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
# `hidden_params`: LiteLLM's callback writes the provider's usage there (as JSON text), the cache counts included
WANTED = frozenset(_INT_KEYS + _STR_KEYS + _FINGERPRINTED + tuple(OPENINFERENCE) + (
    "gen_ai.response.finish_reasons", "service.name", "openinference.span.kind", "llm.model_name", "hidden_params",
    "output.value", "output.mime_type", "metadata.usage_object"))


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
    if attrs.get("openinference.span.kind") == "LLM":
        return True
    operation = attrs.get("gen_ai.operation.name")
    if operation is not None:
        return isinstance(operation, str) and operation in CALL_OPERATIONS
    # instrumentations older than `gen_ai.operation.name` mark a call by its system and model
    has_model = attrs.get("gen_ai.request.model") is not None or attrs.get("gen_ai.response.model") is not None
    return has_model and (attrs.get("gen_ai.system") is not None or attrs.get("gen_ai.provider.name") is not None)


def split_records(obj: dict) -> list[Span]:
    """Return the model-call spans of one export line (a malformed layout rejects the whole line)."""
    if "resourceSpans" not in obj:  # another signal (`resourceLogs`, `resourceMetrics`) or another log
        raise wrong_format(obj, "not an OTLP trace export (no `resourceSpans`)", NAME)
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


_ALIASES = {genai: oi for oi, genai in OPENINFERENCE.items()}


def _key(attrs: dict, key: str) -> str:
    """Return the attribute that gives GenAI attribute `key`: itself, else its OpenInference twin when present."""
    if key in attrs:
        return key
    alias = _ALIASES.get(key)
    return alias if alias is not None and alias in attrs else key


def _error_type(span: dict, attrs: dict, path: str) -> str | None:
    """Return `error.type`, else the exception class an `exception` event names (OpenInference records no
    `error.type`); the event's message and stack trace are never read."""
    error_type = _str(attrs, "error.type", path)
    if error_type is not None:
        return error_type
    for event in span.get("events") or ():
        if type(event) is dict and event.get("name") == "exception":
            for item in event.get("attributes") or ():
                if type(item) is dict and item.get("key") == "exception.type":
                    value = item.get("value")
                    text = value.get("stringValue") if type(value) is dict else None
                    if type(text) is str:
                        return text
    return None


def _status_message(span: dict) -> str | None:
    """Return a span's status message (a failed call's error text, which may quote the API's error body)."""
    status = span.get("status")
    message = status.get("message") if type(status) is dict else None
    return message if type(message) is str else None


def _openinference_response_id(attrs: dict) -> str | None:
    """Return the Message id in OpenInference's `output.value` (the response body as JSON; its span has no
    response-id attribute), so its span and the SDK's of the same call have one attempt id; the body's content is
    never kept."""
    body = attrs.get("output.value")
    if attrs.get("output.mime_type") != "application/json" or type(body) is not str or not body.startswith("{"):
        return None
    try:
        message = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    found = message.get("id") if type(message) is dict and message.get("type") == "message" else None
    return found if type(found) is str and found else None


def _litellm_usage(attrs: dict) -> dict | None:
    """Return the provider usage LiteLLM's callback leaves in `hidden_params` (JSON text; older versions) or in
    `metadata.usage_object` (a Python dict's repr; 1.110), else None."""
    hidden = literal_object(attrs.get("hidden_params")) or {}
    usage = hidden.get("usage_object") or literal_object(attrs.get("metadata.usage_object"))
    return usage if type(usage) is dict and usage else None


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
    provider = (_str(attrs, _key(attrs, "gen_ai.provider.name"), path)
                or _str(attrs, _key(attrs, "gen_ai.system"), path))
    base["surface"] = SURFACES.get(provider or "anthropic", provider)
    base["session_id"] = _str(attrs, "gen_ai.conversation.id", path)
    named = _str(attrs, "llm.model_name", path)  # OpenInference: the response's model, else the one asked
    requested = _str(attrs, _key(attrs, "gen_ai.request.model"), path) or named
    served = _str(attrs, _key(attrs, "gen_ai.response.model"), path) or named
    base["requested_model"] = requested
    base["model"] = ctx.model(served or requested)
    response_id = _str(attrs, "gen_ai.response.id", path)
    trace_id, span_id = get_str(span, "traceId", path), get_str(span, "spanId", path)
    parent_id = get_str(span, "parentSpanId", path)
    if trace_id and span_id:
        base["span_key"] = f"{trace_id}:{span_id}"
        base["parent_key"] = f"{trace_id}:{parent_id}" if parent_id else None
    # the API's error body quoted in the status message (OpenLLMetry's and LiteLLM's spans of a failed call name no
    # request id and LiteLLM's its own error class): its error type and request id, nothing else (docs/metrics.md §3.8)
    quoted_type, quoted_id = quoted_api_error(_status_message(span))
    base["request_id"] = _str(attrs, "anthropic.request.id", path) or quoted_id
    response_id = response_id or _openinference_response_id(attrs)
    base["attempt_id"] = (response_id or base["request_id"]
                          or (f"otel:{trace_id}:{span_id}" if trace_id and span_id else None))
    if "gen_ai.input.messages" in attrs:
        base["prompt_fp"] = prompt_fingerprint(ctx.key, {
            "messages": _json_attr(attrs, "gen_ai.input.messages"),
            "system": _json_attr(attrs, "gen_ai.system_instructions"),
            "tools": _json_attr(attrs, "gen_ai.tool.definitions"),
        })

    total_input = _tokens(attrs, _key(attrs, "gen_ai.usage.input_tokens"), path)
    output = _tokens(attrs, _key(attrs, "gen_ai.usage.output_tokens"), path)
    provider_usage = _litellm_usage(attrs)
    if provider_usage is not None:  # LiteLLM: its span has no cache attributes, its hidden params do
        base.update(litellm.read_tokens({"prompt_tokens": total_input, "completion_tokens": output}, provider_usage))
    else:
        base.update(_usage(attrs, path, total_input, output))
        # spans carry no web-search count: unknown, so the cost is a lower bound (docs/metrics.md §3.8)
        base.update(web_search_requests=None, cost_complete=False)

    status = _int(attrs, "http.response.status_code", path)
    base["http_status"] = status
    error_type = _error_type(span, attrs, path)
    span_status = get_obj(span, "status", path) or {}
    failed = span_status.get("code") in (2, "STATUS_CODE_ERROR")
    if error_type is not None or (status is not None and status >= 400) or failed:
        type_status, error_class = error_class_named(error_type) if error_type else (None, "server_error")
        if status is not None and status >= 400:
            error_class = error_class_for(status, None)
        elif type_status is not None:
            base["http_status"] = type_status
        if quoted_type is not None:  # the API's own word over a proxy's re-mapping (LiteLLM: 529 overloaded → 500)
            error_class = error_class_named(quoted_type)[1]
        base.update(error_class=error_class, outcome=outcome_for_error(error_class), had_output=False)
        return [base]

    # the SDK's own stop reason, else the first finish reason (a list, or JSON text holding one), in Anthropic's words
    reasons = _key(attrs, "gen_ai.response.finish_reasons")
    own = "anthropic.message.stop_reason"
    stop = (stop_reason_of(attrs.get(own), f"{path}.attributes.{own}")
            or stop_reason_of(attrs.get(reasons), f"{path}.attributes.{reasons}"))
    base["had_output"] = base["output_tokens"] > 0
    return [set_stop(base, stop)]


def _usage(attrs: dict, path: str, total_input: int, output: int) -> dict[str, int]:
    """Return the token columns of a span: its input total includes cache reads and writes; the uncached part is
    stored (docs/metrics.md §3.5)."""
    read = _tokens(attrs, _key(attrs, "gen_ai.usage.cache_read.input_tokens"), path)
    write_5m = _tokens(attrs, "anthropic.usage.cache_creation.ephemeral_5m_input_tokens", path)
    write_1h = _tokens(attrs, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens", path)
    write = (_tokens(attrs, _key(attrs, "gen_ai.usage.cache_creation.input_tokens"), path)
             or _tokens(attrs, "gen_ai.usage.cache_write.input_tokens", path))
    if write > write_5m + write_1h:
        # the total is what was written; writes no TTL breakdown covers (none given, or one iteration's
        # only) are 5-minute writes (docs/metrics.md §3.6)
        write_5m = write - write_1h
    cached = read + write_5m + write_1h
    return {"input_tokens": total_input - cached if total_input >= cached else total_input, "output_tokens": output,
            "cache_read_tokens": read, "cache_write_5m_tokens": write_5m, "cache_write_1h_tokens": write_1h}
