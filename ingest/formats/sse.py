"""Format `sse` (docs/metrics.md §3.3): captured `event:`/`data:` streams, one record per stream.

A stream ends at `message_stop`, at the next `message_start`, after an `error` event, or at the end
of the file. Its record position is the line of its first `event:`/`data:` line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from ingest.columns import blank_attempt
from ingest.fields import Reject, get_obj, get_str
from ingest.message import Context, error_attempt, message_attempts, rebuild_stream

NAME = "sse"


def looks_like_text(head: bytes) -> bool:
    """Return whether the start of a file looks like a captured SSE stream."""
    for raw in head.splitlines()[:20]:
        line = raw.strip()
        if not line or line.startswith(b":"):
            continue
        return line.startswith(b"event:") or line.startswith(b"data:")
    return False


@dataclass
class Stream:
    """The raw pieces of one captured stream, before decoding."""

    line_no: int
    offset: int
    data: list[tuple[int, bytes]] = field(default_factory=list)
    junk: int | None = None


def split_streams(lines: Iterator[tuple[int, int, bytes]]) -> Iterator[Stream]:
    """Group (line_no, offset, line) into streams; a line that is no SSE field is its own junk record."""
    current: Stream | None = None
    for line_no, offset, line in lines:
        text = line.strip()
        if not text or text.startswith(b":") or text.startswith(b"id:") or text.startswith(b"retry:"):
            continue
        if text.startswith(b"event:"):
            kind = text[6:].strip()
            if kind == b"message_start" and current is not None and current.data:
                yield current
                current = None
            if current is None:
                current = Stream(line_no, offset)
            continue
        if not text.startswith(b"data:"):
            yield Stream(line_no, offset, junk=line_no)
            continue
        payload = text[5:].strip()
        if current is None:
            current = Stream(line_no, offset)
        elif b'"message_start"' in payload[:40] and current.data:
            yield current
            current = Stream(line_no, offset)
        current.data.append((line_no, payload))
        if b'"message_stop"' in payload[:40] or b'"type":"error"' in payload[:20].replace(b" ", b""):
            yield current
            current = None
    if current is not None and (current.data or current.junk):
        yield current


def parse_stream(stream: Stream, ctx: Context) -> list[dict]:
    """Return the attempt rows of one captured stream."""
    if stream.junk is not None:
        raise Reject("not an SSE `event:` or `data:` line")
    if ctx.default_ts is None:
        raise Reject("no timestamp")
    events = []
    for line_no, payload in stream.data:
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise Reject(f"invalid JSON in the `data:` line at line {line_no}") from None
        if not isinstance(event, dict):
            raise Reject(f"the `data:` line at line {line_no} is not a JSON object")
        if event.get("type") == "ping":
            continue
        events.append(event)
    base = blank_attempt()
    base.update(ts=ctx.default_ts, workload=ctx.workload or "default", is_stream=True, http_status=200)
    message, error, streamed = rebuild_stream(events, "data")
    if message is not None:
        base["requested_model"] = get_str(message, "model", "message_start.message")
        base["model"] = ctx.model(base["requested_model"])
    if error is not None:
        usage = get_obj(message, "usage", "message") if message else None
        if message is not None:
            base["attempt_id"] = get_str(message, "id", "message_start.message")
        return [error_attempt(base, ctx, status=None, body=error, path="error", usage=usage,
                              had_output=streamed)]
    if message is None:
        raise Reject("a stream without a `message_start` event")
    return message_attempts(message, "data", ctx, base, hop_mode="server_side", stream=True)
