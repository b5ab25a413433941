"""Format `bedrock` (docs/metrics.md §3.5): Amazon Bedrock model invocation log records, one JSON object per line.

A record (`schemaType: ModelInvocationLog`) holds one call: `operation` InvokeModel,
InvokeModelWithResponseStream, Converse or ConverseStream; the request and response bodies in
`input.inputBodyJson` / `output.outputBodyJson` (a list of chunk objects for streams), or only their S3
paths when Bedrock offloaded them; token counts in `input`/`output`; `errorCode` for a failed call.
InvokeModel bodies are Anthropic Messages bodies and are read like any Message (§3.6, §3.7); Converse
bodies have their own shape. Only allow-listed fields are read: never message text.
"""

from __future__ import annotations

import orjson

from ingest.columns import blank_attempt
from ingest.fields import Reject, get_int, get_list, get_number, get_obj, get_str, get_tokens
from ingest.formats.shared import record_time, set_stop, stop_reason_of, wrong_format
from ingest.message import (
    ZERO_USAGE,
    Context,
    error_attempt,
    message_attempts,
    optional_id,
    rebuild_stream,
    request_fields,
)

NAME = "bedrock"
SHAPE = "a Bedrock model invocation log record"

# errorCode (or a ConverseStream exception event) → the HTTP status the Bedrock runtime API documents for
# it; the error class follows from the status by docs/metrics.md §5's table, as for every format
ERROR_STATUS = {
    "ValidationException": 400,
    "ServiceQuotaExceededException": 400,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408,
    "ModelErrorException": 424,
    "ModelStreamErrorException": 424,
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "InternalServerException": 500,
    "ServiceUnavailableException": 503,
}

def looks_like(obj: dict) -> bool:
    """Return whether a decoded record is a Bedrock model invocation log record."""
    return obj.get("schemaType") == "ModelInvocationLog"

def looks_like_start(start: bytes) -> bool:
    """Return whether the opening bytes of a file (its first line cut short) are an invocation log record."""
    return start.startswith(b"{") and b'"ModelInvocationLog"' in start


def _body(part: dict, key: str, path: str):
    """Return an inline body (object or list; a JSON string is decoded), else None."""
    value = part.get(key)
    if value is None or type(value) in (dict, list):
        return value
    if type(value) is str:
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise Reject(f"invalid JSON in `{path}.{key}`") from None
        if type(value) in (dict, list):
            return value
    raise Reject(f"field `{path}.{key}` has the wrong type (expected an object)")


def record_usage(record: dict, inp: dict, out: dict) -> dict[str, int]:
    """Return usage from the record's own token counts (Bedrock's `inputTokenCount` excludes cache)."""
    usage = dict(ZERO_USAGE)
    usage["input_tokens"] = get_tokens(inp, "inputTokenCount", "input")
    usage["output_tokens"] = get_tokens(out, "outputTokenCount", "output")
    for key, column in (("cacheReadInputTokenCount", "cache_read_tokens"),
                        ("cacheWriteInputTokenCount", "cache_write_5m_tokens")):
        usage[column] = (get_tokens(inp, key, "input") if key in inp else get_tokens(record, key))
    return usage


def _metrics_usage(metrics: dict, path: str) -> dict[str, int]:
    """Return usage from `amazon-bedrock-invocationMetrics` (same meaning as the record's counts)."""
    usage = dict(ZERO_USAGE)
    usage["input_tokens"] = get_tokens(metrics, "inputTokenCount", path)
    usage["output_tokens"] = get_tokens(metrics, "outputTokenCount", path)
    usage["cache_read_tokens"] = get_tokens(metrics, "cacheReadInputTokenCount", path)
    usage["cache_write_5m_tokens"] = get_tokens(metrics, "cacheWriteInputTokenCount", path)
    return usage


def parse(obj: dict, ctx: Context) -> list[dict]:
    """Return the attempt rows of one model invocation log record."""
    if obj.get("schemaType") != "ModelInvocationLog":
        raise wrong_format(obj, "not a model invocation log record (`schemaType`)", NAME)
    base = blank_attempt()
    base["ts"] = record_time(obj, "timestamp", ctx)
    base["surface"] = "bedrock"
    # requestMetadata is the caller's own tags: only these three keys are read
    tags = get_obj(obj, "requestMetadata") or {}
    base["workload"] = get_str(tags, "workload", "requestMetadata") or ctx.workload or "default"
    base["session_id"] = optional_id(tags, "session_id", "requestMetadata.session_id")
    base["given_chain_id"] = optional_id(tags, "chain_id", "requestMetadata.chain_id")
    base["request_id"] = base["attempt_id"] = get_str(obj, "requestId") or get_str(obj, "request_id")
    operation = get_str(obj, "operation") or ""
    model_id = get_str(obj, "modelId")
    inp = get_obj(obj, "input") or {}
    out = get_obj(obj, "output") or {}
    request = _body(inp, "inputBodyJson", "input")
    converse = operation.startswith("Converse")
    if isinstance(request, dict):
        if converse:
            base.update(_converse_request(request, ctx))
        else:
            base.update(request_fields(request, "input.inputBodyJson", ctx))
            if request.get("messages") is None:  # another provider's body (Titan, Llama…): no prompt to link
                base["prompt_fp"] = None
    elif request is not None:
        raise Reject("field `input.inputBodyJson` has the wrong type (expected an object)")
    base["requested_model"] = model_id
    base["model"] = ctx.model(model_id)
    base["is_stream"] = operation.endswith("Stream")

    error_code = get_str(obj, "errorCode")
    if error_code is not None:
        return [_failed(base, ctx, error_code)]

    base["http_status"] = 200
    response = _body(out, "outputBodyJson", "output")
    counts = record_usage(obj, inp, out)
    if response is None:  # offloaded to S3, or body logging off: the record's counts are all there is
        return [_from_counts(base, counts)]
    if converse:
        return [_converse_attempt(response, base, counts, ctx)]
    if isinstance(response, list):
        return _invoke_stream(response, base, counts, ctx)
    if response.get("type") == "error":
        return [error_attempt(base, ctx, status=None, body=response, path="output.outputBodyJson")]
    if response.get("type") != "message" and "content" not in response:
        return [_from_counts(base, counts)]  # another provider's body (Titan, Nova…): its usage is not Anthropic's
    attempts = message_attempts(response, "output.outputBodyJson", ctx, base, hop_mode="server_side")
    if response.get("usage") is None:
        attempts[-1].update(counts)
    return attempts


def _from_counts(base: dict, counts: dict[str, int]) -> dict:
    """Return a successful attempt known only by the record's token counts."""
    base.update(counts)
    base["outcome"] = "ok"
    base["had_output"] = counts["output_tokens"] > 0
    return base


def _failed(base: dict, ctx: Context, error_code: str) -> dict:
    """Return the attempt of a call that failed with a Bedrock exception (`errorCode`, or an exception event
    of a ConverseStream): the exception's documented status, its docs/metrics.md §5 class; an unknown one is a
    server error."""
    status = ERROR_STATUS.get(error_code)
    base["http_status"] = status
    return error_attempt(base, ctx, status=status if status is not None else 500, body=None, path="")


def _converse_request(body: dict, ctx: Context) -> dict:
    """Return the prompt fingerprint of a Converse request: its messages, system and tool specs."""
    from fallbackscope.core.fingerprint import prompt_fingerprint

    path = "input.inputBodyJson"
    get_list(body, "messages", path)
    tool_config = get_obj(body, "toolConfig", path)
    tools = get_list(tool_config, "tools", f"{path}.toolConfig") if tool_config else None
    return {"prompt_fp": prompt_fingerprint(ctx.key, {"messages": body.get("messages"), "system": body.get("system"),
                                                      "tools": tools})}


def _converse_usage(usage: dict | None, path: str) -> dict[str, int] | None:
    if usage is None:
        return None
    out = dict(ZERO_USAGE)
    out["input_tokens"] = get_tokens(usage, "inputTokens", path)
    out["output_tokens"] = get_tokens(usage, "outputTokens", path)
    out["cache_read_tokens"] = get_tokens(usage, "cacheReadInputTokens", path)
    write = get_tokens(usage, "cacheWriteInputTokens", path)
    details = get_list(usage, "cacheDetails", path) or []
    by_ttl = {"5m": 0, "1h": 0}
    for i, detail in enumerate(details):  # the writes by TTL: part of the total, never added to it (§3.6)
        dpath = f"{path}.cacheDetails[{i}]"
        if not isinstance(detail, dict):
            raise Reject(f"field `{dpath}` has the wrong type (expected an object)")
        ttl = get_str(detail, "ttl", dpath)
        by_ttl["1h" if ttl == "1h" else "5m"] += get_tokens(detail, "inputTokens", dpath)
    if details:
        out["cache_write_5m_tokens"], out["cache_write_1h_tokens"] = by_ttl["5m"], by_ttl["1h"]
    else:
        out["cache_write_5m_tokens"] = write
    return out


def _converse_attempt(response, base: dict, counts: dict[str, int], ctx: Context) -> dict:
    """Return the attempt of a Converse (object body) or ConverseStream (list of events) call."""
    path = "output.outputBodyJson"
    if isinstance(response, dict):
        output = get_obj(response, "output", path) or {}
        message = get_obj(output, "message", f"{path}.output") or {}
        had_output = _converse_output(get_list(message, "content", f"{path}.output.message") or [])
        stop_reason = stop_reason_of(response.get("stopReason"), f"{path}.stopReason")
        usage = _converse_usage(get_obj(response, "usage", path), f"{path}.usage")
        metrics = get_obj(response, "metrics", path) or {}
        latency = get_number(metrics, "latencyMs", f"{path}.metrics")
    else:
        had_output, stop_reason, usage, latency = False, None, None, None
        for i, event in enumerate(response):
            epath = f"{path}[{i}]"
            if not isinstance(event, dict):
                raise Reject(f"field `{epath}` has the wrong type (expected an object)")
            delta = event.get("contentBlockDelta")
            if "contentBlockStart" in event or (type(delta) is dict and _converse_output([delta.get("delta")])):
                had_output = True
            failure = next((key for key in event if key.endswith("Exception")), None)
            if failure is not None:  # an exception event ends the stream: the call failed
                attempt = _failed(base, ctx, failure[0].upper() + failure[1:])
                attempt.update(counts)  # what the record says was used, as for any stream it reports
                attempt.update(http_status=200, had_output=had_output)
                return attempt
            stop = get_obj(event, "messageStop", epath)
            if stop is not None:
                stop_reason = stop_reason_of(stop.get("stopReason"), f"{epath}.messageStop.stopReason")
            meta = get_obj(event, "metadata", epath)
            if meta is not None:
                usage = _converse_usage(get_obj(meta, "usage", f"{epath}.metadata"), f"{epath}.metadata.usage")
                metrics = get_obj(meta, "metrics", f"{epath}.metadata") or {}
                latency = get_number(metrics, "latencyMs", f"{epath}.metadata.metrics")
    attempt = base
    attempt.update(usage if usage is not None else counts)
    attempt["had_output"] = had_output
    # `content_filtered` is a refusal; `guardrail_intervened` is kept as given, no refusal (docs/metrics.md §3.8)
    set_stop(attempt, stop_reason)
    if latency is not None:
        attempt["latency_ms"] = latency
    return attempt


def _converse_output(blocks: list) -> bool:
    """Return whether Converse content blocks (or stream deltas) are output (docs/metrics.md §3.8): text that is
    not empty, a tool use, reasoning."""
    for block in blocks:
        if type(block) is dict and any(value for key, value in block.items() if key != "citation"):
            return True
    return False


def _invoke_stream(chunks: list, base: dict, counts: dict[str, int], ctx: Context) -> list[dict]:
    """Return the attempts of InvokeModelWithResponseStream: its chunks are Anthropic stream events."""
    path = "output.outputBodyJson"
    events = []
    metrics = None
    for i, chunk in enumerate(chunks):
        if not isinstance(chunk, dict):
            raise Reject(f"field `{path}[{i}]` has the wrong type (expected an object)")
        inner = get_obj(chunk, "chunk", f"{path}[{i}]")
        event = inner if inner is not None else chunk
        found = get_obj(event, "amazon-bedrock-invocationMetrics", f"{path}[{i}]")
        if found is not None:
            metrics = found
        events.append(event)
    message, error, streamed = rebuild_stream(events, path)
    if metrics is not None:
        latency = get_int(metrics, "invocationLatency", f"{path}.amazon-bedrock-invocationMetrics")
        if latency is not None:
            base["latency_ms"] = float(latency)
    if error is not None:
        usage = message.get("usage") if message else None
        if message:
            base["attempt_id"] = get_str(message, "id", f"{path}.message") or base["attempt_id"]
        return [error_attempt(base, ctx, status=None, body=error, path=path, usage=usage, had_output=streamed)]
    if message is None:
        return [_from_counts(base, counts)]
    attempts = message_attempts(message, path, ctx, base, hop_mode="server_side", stream=True)
    if not message.get("usage"):
        attempts[-1].update(_metrics_usage(metrics, path) if metrics is not None else counts)
    return attempts
