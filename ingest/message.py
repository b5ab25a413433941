"""Reading a Messages API response (docs/metrics.md §3.6) and splitting server-side fallbacks into hops (§3.7).

Every format ends here: it builds the fields it knows about a request (`base`) and hands the
response body to `message_attempts` or `error_attempt`. Only allow-listed fields are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fallbackscope.core.fingerprint import prompt_fingerprint, token_fingerprint
from fallbackscope.core.modelnames import normalise_model
from ingest.fields import Reject, get_bool, get_list, get_obj, get_str, get_tokens

ERROR_TYPES = {
    "invalid_request_error": "invalid_request",
    "request_too_large": "invalid_request",
    "authentication_error": "auth",
    "billing_error": "billing",
    "permission_error": "permission",
    "not_found_error": "not_found",
    "conflict_error": "conflict",
    "rate_limit_error": "rate_limit",
    "api_error": "server_error",
    "overloaded_error": "overloaded",
    "timeout_error": "timeout",
    "timeout": "timeout",
    "connection_error": "connection",
}

_STATUS_CLASSES = {
    400: "invalid_request", 413: "invalid_request", 422: "invalid_request", 401: "auth", 402: "billing",
    403: "permission", 404: "not_found", 409: "conflict", 429: "rate_limit", 500: "server_error",
    502: "server_error", 503: "server_error", 408: "timeout", 504: "timeout", 529: "overloaded",
}

def error_class_for(status: int | None, error_type: str | None) -> str:
    """Return the docs/metrics.md §5 error class of an HTTP status, else of an error body's `error.type`."""
    if status is not None and status >= 400:
        if status in _STATUS_CLASSES:
            return _STATUS_CLASSES[status]
        return "invalid_request" if status < 500 else "server_error"
    if error_type is not None:
        return ERROR_TYPES.get(error_type, "server_error")
    return "server_error"


def outcome_for_error(error_class: str) -> str:
    """Return the outcome of an attempt that failed with this error class."""
    if error_class in ("timeout", "connection"):
        return error_class
    return "error"


@dataclass
class Context:
    """What a parser needs beyond the record: the key, aliases and the command-line defaults."""

    key: bytes
    aliases: dict[str, str]
    workload: str | None = None
    default_ts: int | None = None
    batch_id: str | None = None

    def __post_init__(self) -> None:
        self._models: dict[str | None, str | None] = {}

    def model(self, name: str | None) -> str | None:
        """Return a model name normalised (cached: a log holds few distinct names)."""
        try:
            return self._models[name]
        except KeyError:
            value = self._models[name] = normalise_model(name, self.aliases)
            return value

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_models"] = {}
        return state


ZERO_USAGE = {
    "input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0, "cache_write_5m_tokens": 0,
    "cache_write_1h_tokens": 0, "web_search_requests": 0,
}


def read_usage(usage: dict | None, path: str) -> dict[str, int]:
    """Return the token counts of a usage object; cache-write breakdown is part of the total."""
    if usage is None:
        return dict(ZERO_USAGE)
    breakdown = get_obj(usage, "cache_creation", path)
    if breakdown is not None and (
        "ephemeral_5m_input_tokens" in breakdown or "ephemeral_1h_input_tokens" in breakdown
    ):
        write_5m = get_tokens(breakdown, "ephemeral_5m_input_tokens",
                              f"{path}.cache_creation")
        write_1h = get_tokens(breakdown, "ephemeral_1h_input_tokens",
                              f"{path}.cache_creation")
        get_tokens(usage, "cache_creation_input_tokens", path)
    else:
        write_5m = get_tokens(usage, "cache_creation_input_tokens", path)
        write_1h = 0
    server_tools = get_obj(usage, "server_tool_use", path)
    return {
        "input_tokens": get_tokens(usage, "input_tokens", path),
        "output_tokens": get_tokens(usage, "output_tokens", path),
        "cache_read_tokens": get_tokens(usage, "cache_read_input_tokens", path),
        "cache_write_5m_tokens": write_5m,
        "cache_write_1h_tokens": write_1h,
        "web_search_requests": get_tokens(server_tools, "web_search_requests",
                                          f"{path}.server_tool_use"),
    }


def _add_usage(total: dict[str, int], more: dict[str, int]) -> dict[str, int]:
    return {k: total[k] + more[k] for k in total}


def read_category(value: Any, path: str) -> str | None:
    """Return a refusal category as stored: null stays NULL (shown as `unspecified`)."""
    if value is None or isinstance(value, str):
        return value
    raise Reject(f"field `{path}` has the wrong type (expected a string)")


SIDE_KINDS = ("compaction", "advisor_message")  # iterations that are not hops (docs/metrics.md §3.7)


@dataclass
class SideUsage:
    """The tokens of a response's non-hop iterations: all of them (billed to the serving attempt), and those of
    each iteration naming a model (priced at that model when it is not the serving one, §3.8)."""

    total: dict[str, int]
    by_model: list[tuple[str, dict[str, int]]]


def _side_usage(iterations: list, kinds: list, path: str, ctx: Context) -> SideUsage:
    """Return the tokens of `compaction` and `advisor_message` iterations: not hops, billed to the serving
    attempt (docs/metrics.md §3.7); the top-level usage leaves them out."""
    total = dict(ZERO_USAGE)
    by_model: list[tuple[str, dict[str, int]]] = []
    for i, kind in enumerate(kinds):
        if kind in SIDE_KINDS:
            ipath = f"{path}.usage.iterations[{i}]"
            usage = read_usage(iterations[i], ipath)
            total = _add_usage(total, usage)
            model = ctx.model(get_str(iterations[i], "model", ipath))
            if model is not None:
                by_model.append((model, usage))
    return SideUsage(total, by_model)


_SIDE_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")


def _price_side(attempt: dict, side: SideUsage) -> None:
    """Set the attempt's part on another model (`side_*`): the non-hop iterations naming a model other than the
    one that served, priced at their own model (docs/metrics.md §3.8). Their tokens stay in the attempt's
    columns. Iterations on two other models are priced at the first ([**Advisor iterations**](DECISIONS.md))."""
    served = attempt.get("model")
    other = [(model, usage) for model, usage in side.by_model if model != served]
    if not other:
        return
    attempt["side_model"] = other[0][0]
    for column in _SIDE_COLUMNS:
        attempt["side_" + column] = sum(usage[column] for _, usage in other)


def block_has_output(block: dict) -> bool:
    """Return whether a content block is output (docs/metrics.md §3.8): text or thinking that is not empty, any
    other block (tool use, redacted thinking, results) but a `fallback` marker. A streamed block (`rebuild_stream`)
    is output when a delta with content arrived for it."""
    kind = block.get("type")
    if kind == "text":
        return bool(block.get("text")) or STREAMED in block
    if kind == "thinking":
        return bool(block.get("thinking")) or STREAMED in block
    return kind != "fallback"


def has_output(blocks: list) -> bool:
    """Return whether any of the content blocks is output."""
    return any(block_has_output(block) for block in blocks)


def _credit_status(usage: dict | None, path: str) -> tuple[str | None, str | None]:
    if usage is None:
        return None, None
    credit = get_obj(usage, "fallback_credit", path)
    if credit is None:
        return None, None
    status = credit.get("status")
    if status is None:
        return None, None
    if isinstance(status, str):  # tolerate a bare string status
        return status, None
    if not isinstance(status, dict):
        raise Reject(f"field `{path}.fallback_credit.status` has the wrong type (expected an object)")
    return (get_str(status, "type", f"{path}.fallback_credit.status"),
            get_str(status, "reason", f"{path}.fallback_credit.status"))


def _hop_error(trigger: dict, path: str) -> tuple[str, str | None, str | None]:
    """Return (outcome, error_class, category) of a declined hop from its `fallback` block trigger."""
    kind = get_str(trigger, "type", path)
    if kind == "refusal":
        return "refusal", None, read_category(trigger.get("category"), f"{path}.category")
    return "error", ERROR_TYPES.get(kind or "", "server_error"), None  # §3.7: `error`, whatever the class


def message_attempts(msg: dict, path: str, ctx: Context, base: dict, *, hop_mode: str,
                     stream: bool = False) -> list[dict]:
    """Return the attempt rows of a Message: one, or one per hop of a server-side fallback.

    `base` holds the request-side fields shared by every hop; `hop_mode` is the `fallback_mode` of
    hops (`server_side` or `unknown`).
    """
    content = get_list(msg, "content", path) or []
    usage = get_obj(msg, "usage", path)
    stop_details = get_obj(msg, "stop_details", path)
    message_id = get_str(msg, "id", path)
    response_model = get_str(msg, "model", path)
    stop_reason = get_str(msg, "stop_reason", path)

    serving = base  # a single attempt fills the request's row; hops copy it below
    serving["attempt_id"] = message_id or base.get("attempt_id")
    serving["stop_reason"] = stop_reason
    serving["outcome"] = "refusal" if stop_reason == "refusal" else "ok"
    if stop_details is not None:
        sd = f"{path}.stop_details"
        if stop_reason == "refusal":
            serving["refusal_category"] = read_category(stop_details.get("category"), f"{sd}.category")
        serving["recommended_model"] = ctx.model(get_str(stop_details, "recommended_model",
                                                         sd))
        token = get_str(stop_details, "fallback_credit_token", sd)
        if token:
            serving["credit_minted_fp"] = token_fingerprint(ctx.key, token)
        else:  # a recorder line carries the fingerprint instead of the token
            serving["credit_minted_fp"] = given_fingerprint(stop_details, "credit_minted_fp", sd)
        serving["prefill_claim"] = get_bool(stop_details, "fallback_has_prefill_claim",
                                            sd)
    upath = f"{path}.usage" if path else "usage"
    if usage is not None:
        serving["service_tier"] = get_str(usage, "service_tier", upath)
        serving["inference_geo"] = get_str(usage, "inference_geo", upath)
        serving["speed"] = get_str(usage, "speed", upath)
        serving["credit_status"], serving["credit_reason"] = _credit_status(usage, upath)
    if serving.get("service_tier") == "batch":
        serving["is_batch"] = True

    fallback_at = []
    for i, block in enumerate(content):
        if not isinstance(block, dict):
            raise Reject(f"field `{path}.content[{i}]` has the wrong type (expected an object)")
        if block.get("type") == "fallback":
            fallback_at.append(i)
    iterations = get_list(usage, "iterations", upath) if usage else None
    kinds = []
    for i, entry in enumerate(iterations or []):
        if not isinstance(entry, dict):
            raise Reject(f"field `{path}.usage.iterations[{i}]` has the wrong type (expected an object)")
        kinds.append(get_str(entry, "type", f"{path}.usage.iterations[{i}]"))
    has_fallback_message = "fallback_message" in kinds

    side = _side_usage(iterations or [], kinds, path, ctx)
    if not fallback_at and not has_fallback_message:
        serving.update(_add_usage(read_usage(usage, upath), side.total))
        serving["model"] = ctx.model(response_model) or base.get("model")
        serving["had_output"] = has_output(content)
        _price_side(serving, side)
        return [serving]

    return _split_hops(msg, path, ctx, base, serving, content, fallback_at, iterations or [], kinds, side,
                       hop_mode=hop_mode, stream=stream, response_model=response_model)


def _split_hops(msg: dict, path: str, ctx: Context, base: dict, serving: dict, content: list,
                fallback_at: list[int], iterations: list, kinds: list, side: SideUsage, *, hop_mode: str,
                stream: bool, response_model: str | None) -> list[dict]:
    usage = msg.get("usage")
    hops: list[dict] = []
    previous = -1
    serving_model = None
    for at in fallback_at:
        block = content[at]
        bpath = f"{path}.content[{at}]"
        source = get_obj(block, "from", bpath) or {}
        target = get_obj(block, "to", bpath) or {}
        trigger = get_obj(block, "trigger", bpath) or {}
        outcome, error_class, category = _hop_error(trigger, f"{bpath}.trigger")
        hop = dict(base)
        hop.update(ZERO_USAGE)
        hop.update(
            model=ctx.model(get_str(source, "model", f"{bpath}.from")) or base.get("model"),
            outcome=outcome, error_class=error_class, refusal_category=category,
            stop_reason="refusal" if outcome == "refusal" else None,
            had_output=has_output(content[previous + 1:at]), http_status=None, latency_ms=None,
        )
        serving_model = get_str(target, "model", f"{bpath}.to") or serving_model
        previous = at
        hops.append(hop)

    declined_usage: list[dict] = []
    if "fallback_message" in kinds:
        cut = kinds.index("fallback_message")
        before = [i for i in range(cut) if kinds[i] == "message"]
        if not fallback_at:
            # no `fallback` blocks: each `message` entry before the fallback is a declined hop
            for i in before:
                hop = dict(base)
                hop.update(ZERO_USAGE)
                entry_model = get_str(iterations[i], "model", f"{path}.usage.iterations[{i}]")
                hop.update(model=ctx.model(entry_model) or base.get("model"), outcome="refusal",
                           stop_reason="refusal", had_output=False, http_status=None, latency_ms=None)
                hops.append(hop)
        if len(before) == len(hops):
            declined_usage = [read_usage(iterations[i], f"{path}.usage.iterations[{i}]") for i in before]
        served = side.total
        for i in range(cut, len(kinds)):
            if kinds[i] in ("fallback_message", "message"):
                served = _add_usage(served, read_usage(iterations[i], f"{path}.usage.iterations[{i}]"))
        fallback_entry = iterations[cut]
        serving_model = get_str(fallback_entry, "model", f"{path}.usage.iterations[{cut}]") or serving_model
        serving.update(served)  # docs/metrics.md §3.7: top-level usage is then not used
    else:
        serving.update(_add_usage(read_usage(usage, f"{path}.usage"), side.total))
    for hop, hop_usage in zip(hops, declined_usage, strict=False):
        hop.update(hop_usage)

    if stream or not response_model:
        model = serving_model or response_model
    else:
        model = response_model
    serving["model"] = ctx.model(model) or base.get("model")
    tail = content[(fallback_at[-1] + 1) if fallback_at else 0:]
    serving["had_output"] = has_output(tail)
    _price_side(serving, side)
    hops.append(serving)

    first_id = serving.get("attempt_id")
    for index, hop in enumerate(hops, start=1):
        hop["hop"] = index
        hop["hop_mode"] = hop_mode
        hop["attempt_id"] = f"{first_id}#{index}" if first_id else None
        hop["credit_minted_fp"] = hop.get("credit_minted_fp") if hop is serving else None
        if hop is not serving:
            for key in ("credit_status", "credit_reason", "recommended_model", "prefill_claim"):
                hop[key] = None
        if index > 1:  # the line's trigger says why the request was sent: hop 1; later hops follow their own
            hop["given_trigger"] = None
    # the credit a request presents is judged on the response, which the serving hop carries
    for hop in hops[:-1]:
        hop["credit_presented_fp"] = None
    return hops


def error_attempt(base: dict, ctx: Context, *, status: int | None, body: dict | None, path: str,
                  usage: dict | None = None, had_output: bool = False) -> dict:
    """Return the attempt row of a failed call: an HTTP error, an error body, or an SSE error event
    (`had_output` when the stream had sent content blocks before it)."""
    attempt = dict(base)
    error = get_obj(body, "error", path) if body else None
    error_type = get_str(error, "type", f"{path}.error") if error else None
    if body is not None and not attempt.get("request_id"):
        attempt["request_id"] = get_str(body, "request_id", path)
    error_class = error_class_for(status, error_type)
    attempt["attempt_id"] = attempt.get("attempt_id") or attempt.get("request_id")
    attempt.update(read_usage(usage, f"{path}.usage"))
    attempt.update(error_class=error_class, outcome=outcome_for_error(error_class), had_output=had_output)
    return attempt


STREAMED = "fallbackscope_streamed"  # marks a rebuilt block for which a delta with content arrived
_DELTA_CONTENT = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


def rebuild_stream(events: list, path: str) -> tuple[dict | None, dict | None, bool]:
    """Rebuild the final Message of a stream from its SSE data objects (docs/metrics.md §3.3).

    Returns (message, error event body or None, whether output was streamed: `has_output` of its blocks).
    Usage in `message_delta` is cumulative: it overwrites field by field, never adds. Deltas are not
    gathered: a block that received one with content is marked (`STREAMED`), which is all `had_output` needs.
    """
    message: dict | None = None
    error: dict | None = None
    for i, event in enumerate(events):
        epath = f"{path}[{i}]"
        if not isinstance(event, dict):
            raise Reject(f"field `{epath}` has the wrong type (expected an object)")
        kind = event.get("type")
        if kind == "content_block_delta" and message is not None:
            delta = event.get("delta")
            index = event.get("index")
            blocks = message["content"]
            if (type(delta) is dict and type(index) is int and 0 <= index < len(blocks)
                    and delta.get(_DELTA_CONTENT.get(delta.get("type"), "")) and STREAMED not in blocks[index]):
                blocks[index] = {**blocks[index], STREAMED: True}
        elif kind == "message_start":
            start = get_obj(event, "message", epath) or {}
            message = dict(start)
            message["content"] = list(get_list(start, "content", f"{epath}.message") or [])
            message["usage"] = dict(get_obj(start, "usage", f"{epath}.message") or {})
        elif kind == "content_block_start" and message is not None:
            block = get_obj(event, "content_block", epath) or {}
            message["content"].append(block)
        elif kind == "message_delta" and message is not None:
            delta = get_obj(event, "delta", epath) or {}
            message.update(delta)
            delta_usage = get_obj(event, "usage", epath)
            if delta_usage:
                message["usage"].update(delta_usage)
        elif kind == "error":
            error = event
    return message, error, bool(message and has_output(message["content"]))


def request_fields(request: dict | None, path: str, ctx: Context) -> dict:
    """Return the request-side fields: requested model, prompt fingerprint, presented credit."""
    if request is None:
        return {"requested_model": None, "model": None, "prompt_fp": None, "credit_presented_fp": None,
                "is_stream": False}
    requested = get_str(request, "model", path)
    for key in ("messages", "tools"):
        get_list(request, key, path)
    token = request.get("fallback_credit_token")
    if isinstance(token, dict):
        token = token.get("token")
    if token is not None and not isinstance(token, str):
        raise Reject(f"field `{path}.fallback_credit_token` has the wrong type (expected a string)")
    # a recorder line (fallbackscope.recorder) carries fingerprints computed at capture instead of content
    prompt_fp = given_fingerprint(request, "prompt_fp", path)
    return {
        "requested_model": requested,
        "model": ctx.model(requested),
        "prompt_fp": prompt_fp or prompt_fingerprint(ctx.key, request),
        "credit_presented_fp": (token_fingerprint(ctx.key, token) if token
                                else given_fingerprint(request, "credit_presented_fp", path)),
        "is_stream": bool(get_bool(request, "stream", path)),
    }


def given_fingerprint(obj: dict, key: str, path: str) -> str | None:
    """Return a fingerprint given in a record (64 lower-case hex characters), else None."""
    value = get_str(obj, key, path)
    if value is not None and (len(value) != 64 or value.strip("0123456789abcdef")):
        raise Reject(f"field `{path}.{key}` is not a fingerprint (64 lower-case hex characters)")
    return value


def optional_id(obj: dict, key: str, path: str) -> str | None:
    """Return an id field given as a string or an integer."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise Reject(f"field `{path}` has the wrong type (expected a string)")


__all__ = [
    "Context", "Reject", "error_attempt", "error_class_for", "given_fingerprint", "has_output", "message_attempts",
    "optional_id", "read_usage", "rebuild_stream", "request_fields",
]
