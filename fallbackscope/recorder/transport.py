"""Record the traffic of the official `anthropic` Python SDK as `exchange` lines (docs/metrics.md §3.1), metadata only.

The recorder wraps the `httpx2` transport under the SDK's client, so it sees every real HTTP exchange:
each hop of the SDK's refusal-fallback middleware and each retry of its retry loop is its own line
(docs/metrics.md §8: log at the transport). Request and response bodies are reduced as they pass
(`fallbackscope.recorder.reduce`): models, stop reasons, refusal categories, token counts, block types
and the `fallback` blocks' models; the prompt (messages, system, tools) becomes `prompt_fp` and every
credit token its fingerprint, computed here with the database's key, so no text, token, key or header
is ever written.

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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson

from fallbackscope.core.config import load_key, resolve_db_path
from fallbackscope.recorder.reduce import reduce_event, reduce_message, reduce_request

log = logging.getLogger("fallbackscope.recorder")

_TAGS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("fallbackscope_recorder_tags",
                                                                            default=None)
_INTENDED: contextvars.ContextVar[str | None] = contextvars.ContextVar("fallbackscope_intended_model",
                                                                      default=None)

_MAX_BODY = 64 * 1024 * 1024  # a non-streamed response body larger than this is not reduced
_SKIPPED_EVENTS = frozenset((b"content_block_delta", b"content_block_stop", b"ping"))


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
        self.ended = False  # the response body was read to its end
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

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Watch the reading of the response body: its end or its error writes the line.

        If the app stops reading instead, nothing happens here: closing the response writes the line.
        """
        try:
            yield
        except Exception as exc:
            self.finish(exc)
            raise
        self.ended = True
        self.finish()

    def finish(self, error: BaseException | None = None) -> None:
        """Write the line once: at the body's end, at its `error`, or when the app closes it unread."""
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
                    self._reduce_body(line, stopped_early=error is None and not self.ended)
                except Exception as exc:  # the line still goes out, without its body
                    if 200 <= line.get("http_status", 0) < 300:
                        self.recorder._failed(exc)
            self.chunks = None
            self.recorder._write(line)
        except Exception as exc:
            self.recorder._failed(exc)

    def _reduce_body(self, line: dict, *, stopped_early: bool) -> None:
        # the events of a stream the app stopped reading are the ones it could have read: no unfinished last one
        if self.decoder is not None and not stopped_early:
            self._take(b"".join(self.decoder.flush()))
        if self.sse:
            if not stopped_early:
                if self.buffer:
                    self._sse_line(b"".join(self.buffer).rstrip(b"\r"))
                self._dispatch()
            elif not any(e["type"] in ("message_delta", "error") for e in self.events):
                line["canceled"] = True  # stopped before the stop reason: no success (outcome `canceled`)
            line["events"] = self.events
        elif self.chunks:
            reduced = reduce_message(orjson.loads(b"".join(self.chunks)), self.recorder.key)
            if reduced is not None:
                line["response"] = reduced


# --- httpx2 transports and streams --------------------------------------------------------------------------


@contextlib.contextmanager
def _handing_on(exchange: _Exchange | None) -> Iterator[None]:
    """Watch the inner transport handle a request, for both transports (only their awaiting differs).

    An exception is the exchange's transport error; a cancellation before any response drops the
    exchange unwritten. Either is raised on to the app.
    """
    try:
        yield
    except Exception as exc:
        if exchange is not None:
            exchange.finish(exc)
        raise
    except BaseException:  # cancelled or interrupted: not an exchange with the API
        if exchange is not None:
            exchange.abandon()
        raise


class _BodyWrapper:
    """The part both response-stream wrappers share: the wrapped stream and its exchange."""

    def __init__(self, inner: Any, exchange: _Exchange) -> None:
        self._inner = inner
        self._exchange = exchange


_STREAM_CLASSES: tuple[type, type] | None = None


def _stream_classes() -> tuple[type, type]:
    """Build the response-stream wrappers on first use, so `httpx2` is imported only when recording."""
    global _STREAM_CLASSES
    if _STREAM_CLASSES is not None:
        return _STREAM_CLASSES
    import httpx2

    class RecordingStream(_BodyWrapper, httpx2.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            with self._exchange.reading():
                for chunk in self._inner:
                    self._exchange.feed(chunk)
                    yield chunk

        def close(self) -> None:
            try:
                self._inner.close()
            finally:
                self._exchange.finish()

    class AsyncRecordingStream(_BodyWrapper, httpx2.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            with self._exchange.reading():
                async for chunk in self._inner:
                    self._exchange.feed(chunk)
                    yield chunk

        async def aclose(self) -> None:
            try:
                await self._inner.aclose()
            finally:
                self._exchange.finish()

    _STREAM_CLASSES = (RecordingStream, AsyncRecordingStream)
    return _STREAM_CLASSES


class _TransportWrapper:
    """The part both transports share: the wrapped transport and the recorder."""

    def __init__(self, inner: Any, recorder: Recorder) -> None:
        self.inner = inner
        self.recorder = recorder


class RecordingTransport(_TransportWrapper):
    """An `httpx2` transport that records each Messages API exchange it carries, then hands it on."""

    def handle_request(self, request: Any) -> Any:
        exchange = self.recorder._begin(request)
        with _handing_on(exchange):
            response = self.inner.handle_request(request)
        return self.recorder._attach(exchange, response, asynchronous=False)

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> RecordingTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.inner.__exit__(*exc_info)


class AsyncRecordingTransport(_TransportWrapper):
    """The `httpx2.AsyncClient` counterpart of `RecordingTransport`."""

    async def handle_async_request(self, request: Any) -> Any:
        exchange = self.recorder._begin(request)
        with _handing_on(exchange):
            response = await self.inner.handle_async_request(request)
        return self.recorder._attach(exchange, response, asynchronous=True)

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
        fallbacks (trigger `pinned`, docs/metrics.md §4).
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

    def _attach(self, exchange: _Exchange | None, response: Any, *, asynchronous: bool) -> Any:
        """Return `response`, its body wrapped to feed `exchange` (as it is when there is no exchange)."""
        if exchange is None:
            return response
        try:
            exchange.on_response(response)
            sync_cls, async_cls = _stream_classes()
            response.stream = (async_cls if asynchronous else sync_cls)(response.stream, exchange)
        except Exception as exc:
            exchange.done = True
            self._pending.discard(exchange)
            self._failed(exc)
        return response

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
