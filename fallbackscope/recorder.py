"""Record the traffic of the official `anthropic` Python SDK as `exchange` lines (SPEC §3.1), metadata only.

The recorder wraps the `httpx2` transport under the SDK's client, so it sees every real HTTP exchange:
each hop of the SDK's refusal-fallback middleware and each retry of its retry loop is its own line
(SPEC §8: log at the transport). Request and response bodies are reduced as they pass: models,
stop reasons, refusal categories, token counts, block types and the `fallback` blocks' models;
the prompt (messages, system, tools) becomes `prompt_fp` and every credit token its fingerprint,
computed here with the database's key, so no text, token, key or header is ever written.

    rec = Recorder("logs/exchange.jsonl", db="fs.duckdb", workload="support-chat")
    client = rec.instrument(anthropic.Anthropic())
    with tags(session_id="s-1", chain_id="c-42"):
        client.messages.create(...)

Neither `anthropic` nor `httpx2` is imported until a client is instrumented; nothing here imports
`dash`. A failure of the recorder never fails the app's request: it is counted (`Recorder.failures`)
and logged as a warning naming only the exception type.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from fallbackscope.config import load_key, resolve_db_path
from fallbackscope.fingerprint import prompt_fingerprint, token_fingerprint

log = logging.getLogger("fallbackscope.recorder")

_TAGS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("fallbackscope_recorder_tags",
                                                                            default=None)
_INTENDED: contextvars.ContextVar[str | None] = contextvars.ContextVar("fallbackscope_intended_model",
                                                                      default=None)

_MAX_BODY = 64 * 1024 * 1024  # a non-streamed response body larger than this is not reduced
_SKIPPED_EVENTS = frozenset((b"content_block_delta", b"content_block_stop", b"ping"))
_USAGE_STRINGS = ("service_tier", "inference_geo", "speed")
_REQUEST_SCALARS = ("model", "stream", "max_tokens", "service_tier", "speed", "inference_geo")


@contextlib.contextmanager
def tags(*, workload: str | None = None, session_id: str | None = None,
         chain_id: str | None = None) -> Iterator[None]:
    """Tag every exchange sent inside the block (threads and asyncio tasks each see their own tags).

    Nested blocks inherit and override. Consume a stream inside the block: the SDK's fallback
    middleware sends a streamed fallback hop while the stream is read.
    """
    given = {"workload": workload, "session_id": session_id, "chain_id": chain_id}
    token = _TAGS.set({**(_TAGS.get() or {}), **{k: v for k, v in given.items() if v is not None}})
    try:
        yield
    finally:
        _TAGS.reset(token)


# --- reducing bodies to allow-listed metadata -------------------------------------------------------------


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


# --- one exchange ------------------------------------------------------------------------------------------


def _is_messages_call(request: Any) -> bool:
    return request.method == "POST" and request.url.path.endswith("/v1/messages")


def _transport_error(exc: BaseException) -> str:
    import httpx2

    return "timeout" if isinstance(exc, httpx2.TimeoutException) else "connection"


class _Exchange:
    """The reduced record of one HTTP exchange, written once when its response ends or fails."""

    def __init__(self, recorder: Recorder, line: dict) -> None:
        self.recorder = recorder
        self.line = line
        self.started = time.perf_counter()
        self.done = False
        self.sse = False
        self.decoder: Any = None
        self.chunks: list[bytes] | None = []
        self.size = 0
        self.buffer: list[bytes] = []  # the pieces of an unfinished SSE line
        self.event_name = b""
        self.data: list[bytes] = []
        self.events: list[dict] = []

    def on_response(self, response: Any) -> None:
        self.line["http_status"] = response.status_code
        request_id = response.headers.get("request-id")
        if request_id:
            self.line["request_id"] = request_id
        self.sse = response.headers.get("content-type", "").startswith("text/event-stream")
        from httpx2._decoders import SUPPORTED_DECODERS, MultiDecoder

        codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",") if c.strip()]
        if any(c not in SUPPORTED_DECODERS for c in codings):
            self.chunks = None  # an encoding we cannot read: record the status only
        elif codings and codings != ["identity"]:
            self.decoder = MultiDecoder(codings)

    def feed(self, chunk: bytes) -> None:
        if self.done or self.chunks is None:
            return
        try:
            data = b"".join(self.decoder.decode(chunk)) if self.decoder else chunk
            self._take(data)
        except Exception as exc:
            self.chunks = None
            self.recorder._failed(exc)

    def _take(self, data: bytes) -> None:
        if not self.sse:
            self.size += len(data)
            if self.size > _MAX_BODY:
                self.chunks = None
            else:
                self.chunks.append(data)
            return
        if b"\n" not in data:  # part of a long line: keep the pieces, join once
            self.buffer.append(data)
            return
        lines = b"".join((*self.buffer, data)).split(b"\n")
        self.buffer = [lines.pop()]
        for raw in lines:
            self._sse_line(raw.rstrip(b"\r"))

    def _sse_line(self, raw: bytes) -> None:
        if not raw:
            self._dispatch()
            return
        if raw.startswith(b":"):
            return
        field, _, value = raw.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"event":
            self.event_name = value
        elif field == b"data":
            self.data.append(value)

    def _dispatch(self) -> None:
        name, data = self.event_name, self.data
        self.event_name, self.data = b"", []
        if not data or name in _SKIPPED_EVENTS:
            return
        try:
            event = reduce_event(orjson.loads(b"\n".join(data)), self.recorder.key)
        except orjson.JSONDecodeError as exc:  # one unreadable event; the rest of the stream still counts
            self.recorder._failed(exc)
            return
        if event is not None:
            self.events.append(event)

    def abandon(self) -> None:
        """Drop the exchange unwritten: the app cancelled it before any response."""
        self.done = True
        self.recorder._pending.discard(self)

    def finish(self, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.recorder._pending.discard(self)
        try:
            line = self.line
            line["latency_ms"] = round((time.perf_counter() - self.started) * 1000, 1)
            if error is not None:
                line["transport_error"] = _transport_error(error)
            if self.chunks is not None:
                try:
                    self._reduce_body(line)
                except Exception as exc:  # the line still goes out, without its body
                    if 200 <= line.get("http_status", 0) < 300:
                        self.recorder._failed(exc)
            self.chunks = None
            self.recorder._write(line)
        except Exception as exc:
            self.recorder._failed(exc)

    def _reduce_body(self, line: dict) -> None:
        if self.decoder is not None:
            self._take(b"".join(self.decoder.flush()))
        if self.sse:
            if self.buffer:
                self._sse_line(b"".join(self.buffer).rstrip(b"\r"))
            self._dispatch()
            line["events"] = self.events
        elif self.chunks:
            reduced = reduce_message(orjson.loads(b"".join(self.chunks)), self.recorder.key)
            if reduced is not None:
                line["response"] = reduced


# --- httpx2 transports and streams --------------------------------------------------------------------------

_STREAM_CLASSES: tuple[type, type] | None = None


def _stream_classes() -> tuple[type, type]:
    """Build the response-stream wrappers on first use, so `httpx2` is imported only when recording."""
    global _STREAM_CLASSES
    if _STREAM_CLASSES is not None:
        return _STREAM_CLASSES
    import httpx2

    class RecordingStream(httpx2.SyncByteStream):
        def __init__(self, inner: Any, exchange: _Exchange) -> None:
            self._inner = inner
            self._exchange = exchange

        def __iter__(self) -> Iterator[bytes]:
            try:
                for chunk in self._inner:
                    self._exchange.feed(chunk)
                    yield chunk
            except Exception as exc:
                self._exchange.finish(exc)
                raise
            self._exchange.finish()

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._exchange.finish()

    class AsyncRecordingStream(httpx2.AsyncByteStream):
        def __init__(self, inner: Any, exchange: _Exchange) -> None:
            self._inner = inner
            self._exchange = exchange

        async def __aiter__(self):
            try:
                async for chunk in self._inner:
                    self._exchange.feed(chunk)
                    yield chunk
            except Exception as exc:
                self._exchange.finish(exc)
                raise
            self._exchange.finish()

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._exchange.finish()

    _STREAM_CLASSES = (RecordingStream, AsyncRecordingStream)
    return _STREAM_CLASSES


class RecordingTransport:
    """An `httpx2` transport that records each Messages API exchange it carries, then hands it on."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    def handle_request(self, request: Any) -> Any:
        exchange = self.recorder._begin(request)
        if exchange is None:
            return self.inner.handle_request(request)
        try:
            response = self.inner.handle_request(request)
        except Exception as exc:
            exchange.finish(exc)
            raise
        except BaseException:  # cancelled or interrupted: not an exchange with the API
            exchange.abandon()
            raise
        self.recorder._attach(exchange, response, asynchronous=False)
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RecordingTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.inner.__exit__(*exc_info)


class AsyncRecordingTransport:
    """The `httpx2.AsyncClient` counterpart of `RecordingTransport`."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder

    async def handle_async_request(self, request: Any) -> Any:
        exchange = self.recorder._begin(request)
        if exchange is None:
            return await self.inner.handle_async_request(request)
        try:
            response = await self.inner.handle_async_request(request)
        except Exception as exc:
            exchange.finish(exc)
            raise
        except BaseException:  # cancelled or interrupted: not an exchange with the API
            exchange.abandon()
            raise
        self.recorder._attach(exchange, response, asynchronous=True)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncRecordingTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.inner.__aexit__(*exc_info)


# --- the recorder ------------------------------------------------------------------------------------------


class Recorder:
    """Appends one `exchange` line per Messages API exchange to `path` (thread-safe, one write per line).

    The fingerprint key is resolved like the database's (`$FALLBACKSCOPE_KEY`, else the key file
    beside `db`, created once), so `prompt_fp` and credit fingerprints link with ingested data; or
    pass `key` itself. `workload` and `session_id` are defaults for lines without those tags.
    """

    def __init__(self, path: str | os.PathLike[str], *, db: str | os.PathLike[str] | None = None,
                 key: bytes | str | None = None, workload: str | None = None, session_id: str | None = None,
                 surface: str | None = None) -> None:
        self.path = Path(path)
        if key is None:
            key = load_key(resolve_db_path(db))
        self.key = key.strip().encode("utf-8") if isinstance(key, str) else key
        self.defaults = {k: v for k, v in (("workload", workload), ("session_id", session_id)) if v}
        self.surface = surface
        self.lines_written = 0
        self.failures = 0
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._pending: set[_Exchange] = set()  # exchanges whose response has not ended yet

    # public API

    def instrument(self, client: Any) -> Any:
        """Wrap the transports of an `anthropic` client (sync or async) or an `httpx2` client; return it.

        Clients derived with `with_options()` share the HTTP client, so they are recorded too.
        """
        http = getattr(client, "_client", client)
        if not hasattr(http, "_transport") or not hasattr(http, "_mounts"):
            raise TypeError("Recorder.instrument() takes an anthropic client or an httpx2 client")
        http._transport = self.transport(http._transport)
        http._mounts = {pattern: None if t is None else self.transport(t) for pattern, t in http._mounts.items()}
        return client

    def transport(self, inner: Any) -> Any:
        """Return `inner` (an `httpx2` transport) wrapped to record through this recorder."""
        if isinstance(inner, (RecordingTransport, AsyncRecordingTransport)) and inner.recorder is self:
            return inner
        if hasattr(inner, "handle_async_request"):
            return AsyncRecordingTransport(inner, self)
        return RecordingTransport(inner, self)

    def middleware(self) -> Any:
        """Return SDK middleware that notes the model the app asked for, written as `intended_model`.

        Place it first (outermost) in the client's `middleware` list: with a `BetaFallbackState`
        pin, follow-up turns go straight to the fallback model, and this keeps them counted as
        fallbacks (trigger `pinned`, SPEC §4).
        """
        from anthropic import Middleware

        def model_of(request: Any) -> str | None:
            body = request.json
            model = body.get("model") if isinstance(body, dict) else None
            return model if isinstance(model, str) else None

        class IntendedModel(Middleware):
            def handle(self, request: Any, call_next: Any) -> Any:
                token = _INTENDED.set(model_of(request))
                try:
                    return call_next(request)
                finally:
                    _INTENDED.reset(token)

            async def handle_async(self, request: Any, call_next: Any) -> Any:
                token = _INTENDED.set(model_of(request))
                try:
                    return await call_next(request)
                finally:
                    _INTENDED.reset(token)

        return IntendedModel()

    def close(self) -> None:
        """Write the exchanges whose responses were never closed, then close the file."""
        for exchange in list(self._pending):
            if "http_status" in exchange.line:
                exchange.finish()
            else:
                exchange.abandon()
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # used by the transports

    def _begin(self, request: Any) -> _Exchange | None:
        try:
            if not _is_messages_call(request):
                return None
            line: dict[str, Any] = {"ts": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")}
            line.update(self.defaults)
            line.update(_TAGS.get() or {})
            if self.surface:
                line["surface"] = self.surface
            reduced = reduce_request(orjson.loads(request.content), self.key) if request.content else None
            if reduced is not None:
                line["request"] = reduced
                intended = _INTENDED.get()
                if intended and intended != reduced.get("model"):
                    line["intended_model"] = intended
            exchange = _Exchange(self, line)
            self._pending.add(exchange)
            return exchange
        except Exception as exc:
            self._failed(exc)
            return None

    def _attach(self, exchange: _Exchange, response: Any, *, asynchronous: bool) -> None:
        try:
            exchange.on_response(response)
            sync_cls, async_cls = _stream_classes()
            response.stream = (async_cls if asynchronous else sync_cls)(response.stream, exchange)
        except Exception as exc:
            exchange.done = True
            self._pending.discard(exchange)
            self._failed(exc)

    def _write(self, line: dict) -> None:
        data = orjson.dumps(line) + b"\n"
        with self._lock:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            self.lines_written += 1

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            count = self.failures
        if count == 1 or count % 100 == 0:
            # the exception type only: a message could quote the body it failed on
            log.warning("fallbackscope recorder: an exchange was not recorded (%s); %d so far",
                        type(exc).__name__, count)


__all__ = ["AsyncRecordingTransport", "Recorder", "RecordingTransport", "reduce_event", "reduce_message",
           "reduce_request", "reduce_usage", "tags"]
