"""Turn raw bytes of a line format into an Arrow batch of attempt rows plus rejects.

Runs in worker processes for large files, so it imports only what parsing needs.
"""

from __future__ import annotations

import ctypes
import gc
import operator
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson
import pyarrow as pa

from fallbackscope.core.fingerprint import hmac_hex
from ingest.columns import DICTIONARY_COLUMNS, EXTRACTED, FIELD_NAMES, SCHEMA, TS_TYPE
from ingest.fields import Reject
from ingest.formats import LINE_FORMATS, sse
from ingest.message import Context
from ingest.sources import read_range

BOM = b"\xef\xbb\xbf"


@dataclass
class Extracted:
    """What one chunk of a file gave: attempt rows (Arrow IPC bytes), rejects and counts.

    Line numbers are relative to the chunk (1-based); byte offsets are absolute.
    """

    ipc: bytes
    rows: int
    rejects: list[tuple[int, int, str]] = field(default_factory=list)
    records: int = 0
    lines: int = 0


def _decode_reason(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    return "invalid JSON"


def numbered_lines(data: bytes, start_offset: int) -> Iterator[tuple[int, int, bytes]]:
    """Yield (line number in `data`, byte offset in the stream, line) with a BOM at the stream's start
    and a trailing CR removed; the newline ending the last line makes no empty line."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    offset = start_offset
    for line_no, raw in enumerate(lines, start=1):
        line_offset = offset
        offset += len(raw) + 1
        if line_offset == 0 and raw.startswith(BOM):
            raw = raw[3:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        yield line_no, line_offset, raw


def line_count(data: bytes) -> int:
    """Return how many lines `numbered_lines` yields for `data`."""
    return data.count(b"\n") + (0 if not data or data.endswith(b"\n") else 1)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: parsing allocates millions of acyclic dicts and rows, and each
    collection would walk every row gathered so far (measured: about 40% of the parsing time)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_UNEXPECTED = (RecursionError, ValueError, TypeError, KeyError, AttributeError, IndexError)
_INT_RANGES = [(i, -(1 << (kind.bit_width - 1)), 1 << (kind.bit_width - 1))
               for i, (name, kind) in enumerate(EXTRACTED) if pa.types.is_signed_integer(kind)]


def _line_offset(data: bytes, start_offset: int, line_no: int) -> int:
    """Return the stream offset of line `line_no` (1-based) of `data`, which starts at `start_offset`."""
    position = 0
    for _ in range(line_no - 1):
        position = data.find(b"\n", position) + 1
        if position == 0:
            return start_offset
    return start_offset + position


class _Collector:
    """Attempt rows and rejects of one chunk, in FIELD_NAMES order, ready for `Extracted`."""

    def __init__(self, key: bytes, data: bytes = b"", start_offset: int = 0) -> None:
        self.key = key
        self.data, self.start_offset = data, start_offset  # to place a record rejected late (`_drop_unfit`)
        self.rows: list[tuple] = []
        self.rejects: list[tuple[int, int, str]] = []
        self.records = 0
        self._as_row = operator.itemgetter(*FIELD_NAMES)

    def parse(self, parse: Callable[[Any, Context], list[dict]], value: Any, ctx: Context, line_no: int,
              offset: int, content: bytes | Callable[[], bytes]) -> None:
        """Parse one record into rows, or record why it is rejected (never its content). `content` (or a
        function giving it, called only when a row has no id) is what a content id is computed from."""
        try:
            attempts = parse(value, ctx)
        except Reject as exc:
            self.rejects.append((line_no, offset, str(exc)))
            return
        except _UNEXPECTED as exc:
            self.rejects.append((line_no, offset, f"unreadable record ({type(exc).__name__})"))
            return
        content_fp = None
        for attempt in attempts:
            if attempt["attempt_id"] is None:
                if content_fp is None:
                    content_fp = hmac_hex(self.key, content() if callable(content) else content)[:32]
                attempt["content_fp"] = content_fp
            attempt["line_no"] = line_no
            self.rows.append(self._as_row(attempt))

    def extracted(self, lines: int) -> Extracted:
        try:
            ipc = rows_to_ipc(self.rows)
        except (OverflowError, pa.ArrowInvalid):
            if not self._drop_unfit():  # rare: a number beyond its column's type; checked only then
                raise
            ipc = rows_to_ipc(self.rows)
        return Extracted(ipc, len(self.rows), self.rejects, self.records, lines)

    def _drop_unfit(self) -> bool:
        """Reject the records whose rows hold an integer beyond its column's type (an `http_status` of
        2**40 in an int32 column), instead of failing the whole chunk; keep every other record.
        Returns whether any record was rejected."""
        at_line = FIELD_NAMES.index("line_no")
        at_record = FIELD_NAMES.index("record_no") if "record_no" in FIELD_NAMES else None
        unfit: dict[tuple[int, int], str] = {}
        for row in self.rows:
            for i, low, high in _INT_RANGES:
                if row[i] is not None and not low <= row[i] < high:
                    key = (row[at_line], row[at_record] if at_record is not None else 0)
                    unfit.setdefault(key, FIELD_NAMES[i])
        if not unfit:
            return False
        self.rows = [row for row in self.rows
                     if (row[at_line], row[at_record] if at_record is not None else 0) not in unfit]
        for (line_no, _), name in sorted(unfit.items()):
            self.rejects.append((line_no, _line_offset(self.data, self.start_offset, line_no),
                                 f"field `{name}` is out of range"))
        return True


def extract_lines(fmt: str, data: bytes, start_offset: int, ctx: Context) -> Extracted:
    """Parse the complete lines of `data` (which starts at byte `start_offset` of the stream)."""
    module = LINE_FORMATS[fmt]
    with gc_paused():
        if hasattr(module, "split_records"):
            return _extract_split_lines(module, data, start_offset, ctx)
        return _extract_lines(module.parse, data, start_offset, ctx)


def _extract_split_lines(module: Any, data: bytes, start_offset: int, ctx: Context) -> Extracted:
    """Parse lines that hold several records each (an OTLP export holds many spans): each record the
    format's `split_records` finds is parsed, counted and rejected on its own, at its line's position;
    a line that cannot be split is one rejected record."""
    out = _Collector(ctx.key, data, start_offset)
    for line_no, line_offset, raw in numbered_lines(data, start_offset):
        if not raw or raw.isspace():
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.records += 1
            out.rejects.append((line_no, line_offset, _decode_reason(raw)))
            continue
        if type(obj) is not dict:
            out.records += 1
            out.rejects.append((line_no, line_offset, "not a JSON object"))
            continue
        try:
            records = module.split_records(obj)
        except Reject as exc:
            out.records += 1
            out.rejects.append((line_no, line_offset, str(exc)))
            continue
        except _UNEXPECTED as exc:  # a layout no rule foresaw (found by fuzzing): the line is one reject
            out.records += 1
            out.rejects.append((line_no, line_offset, f"unreadable record ({type(exc).__name__})"))
            continue
        for record in records:
            out.records += 1
            out.parse(module.parse, record, ctx, line_no, line_offset, partial(module.record_bytes, record))
    return out.extracted(line_count(data))


def _extract_lines(parse: Callable[[Any, Context], list[dict]], data: bytes, start_offset: int,
                   ctx: Context) -> Extracted:
    out = _Collector(ctx.key, data, start_offset)
    loads = orjson.loads
    for line_no, line_offset, raw in numbered_lines(data, start_offset):
        if not raw or raw.isspace():
            continue
        out.records += 1
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            out.rejects.append((line_no, line_offset, _decode_reason(raw)))
            continue
        if type(obj) is not dict:
            out.rejects.append((line_no, line_offset, "not a JSON object"))
            continue
        out.parse(parse, obj, ctx, line_no, line_offset, raw)
    return out.extracted(line_count(data))


def extract_sse(data: bytes, start_offset: int, ctx: Context) -> Extracted:
    """Parse a captured SSE stream text: one record per stream, positioned at its first line."""
    out = _Collector(ctx.key, data, start_offset)
    with gc_paused():
        for stream in sse.split_streams(numbered_lines(data, start_offset)):
            out.records += 1
            content = b"\n".join(payload for _, payload in stream.data)
            out.parse(sse.parse_stream, stream, ctx, stream.line_no, stream.offset, content)
        return out.extracted(line_count(data))


def rows_to_ipc(rows: list[tuple]) -> bytes:
    """Return attempt rows (tuples in FIELD_NAMES order) as Arrow IPC bytes."""
    if rows:
        columns = dict(zip(FIELD_NAMES, map(list, zip(*rows, strict=True)), strict=True))
    else:
        columns = {name: [] for name in FIELD_NAMES}
    return to_ipc(columns)


def to_ipc(columns: dict[str, list]) -> bytes:
    """Return attempt columns as Arrow IPC stream bytes (cheap to send between processes)."""
    arrays = []
    for name, kind in zip(FIELD_NAMES, SCHEMA.types, strict=True):
        if name in DICTIONARY_COLUMNS:  # few distinct values: much less memory per row
            kind = pa.dictionary(pa.int32(), kind)
        arrays.append(pa.array(columns[name], type=TS_TYPE if name == "ts" else kind))
    schema = pa.schema([pa.field(name, array.type) for name, array in zip(FIELD_NAMES, arrays, strict=True)])
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    """Return the Arrow table sent by `to_ipc`."""
    return pa.ipc.open_stream(data).read_all()


# worker-process state: the context is sent once, when the pool starts
_WORKER_CTX: Context | None = None


def init_worker(ctx: Context, parent: int | None = None) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx
    # a worker whose ingest was killed (SIGKILL, OOM) would wait on its task queue for ever: it leaves instead
    # (the parent's pid is passed in: it may already be gone by the time a slow start reaches this point)
    watch = (parent or os.getppid(),)
    threading.Thread(target=_exit_when_orphaned, args=watch, daemon=True, name="orphan-watch").start()


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def extract_range(fmt: str, path: str, start: int, end: int, *, last: bool = False) -> Extracted:
    """Worker entry: read bytes [start, end) of an uncompressed file (a path or URL) and extract them.

    `last`: no more ranges of this file are coming, so the worker hands the memory it freed back to the
    system while the main process links and inserts (its peak).
    """
    data = read_range(path, start, end)
    assert _WORKER_CTX is not None
    out = extract_lines(fmt, data, start, _WORKER_CTX)
    if last:
        del data
        release_memory()
    return out


def release_memory() -> None:
    """Return freed memory to the system: Arrow's pool, then the C allocator's free lists (glibc only)."""
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


def extract_bytes(fmt: str, data: bytes, start: int) -> Extracted:
    """Worker entry: extract a block of a decompressed stream."""
    assert _WORKER_CTX is not None
    return extract_lines(fmt, data, start, _WORKER_CTX)
