"""Turn raw bytes of a line format into an Arrow batch of attempt rows plus rejects.

Runs in worker processes for large files, so it imports only what parsing needs.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from fallbackscope.fingerprint import hmac_hex
from ingest.columns import DICTIONARY_COLUMNS, FIELD_NAMES, SCHEMA, TS_TYPE
from ingest.fields import Reject
from ingest.formats import LINE_FORMATS
from ingest.message import Context

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


def extract_lines(fmt: str, data: bytes, start_offset: int, ctx: Context) -> Extracted:
    """Parse the complete lines of `data` (which starts at byte `start_offset` of the stream)."""
    parse = LINE_FORMATS[fmt].parse
    rows: list[tuple] = []
    add_row = rows.append
    as_row = operator.itemgetter(*FIELD_NAMES)
    rejects: list[tuple[int, int, str]] = []
    records = 0
    offset = start_offset
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # the newline ending the last line
    line_no = 0
    key = ctx.key
    loads = orjson.loads
    for raw in lines:
        line_no += 1
        line_offset = offset
        offset += len(raw) + 1
        if line_offset == 0 and raw.startswith(BOM):
            raw = raw[3:]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if not raw or raw.isspace():
            continue
        records += 1
        try:
            obj = loads(raw)
        except orjson.JSONDecodeError:
            rejects.append((line_no, line_offset, _decode_reason(raw)))
            continue
        if type(obj) is not dict:
            rejects.append((line_no, line_offset, "not a JSON object"))
            continue
        try:
            attempts = parse(obj, ctx)
        except Reject as exc:
            rejects.append((line_no, line_offset, str(exc)))
            continue
        except (RecursionError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
            rejects.append((line_no, line_offset, f"unreadable record ({type(exc).__name__})"))
            continue
        content_fp = None
        for attempt in attempts:
            if attempt["attempt_id"] is None:
                if content_fp is None:
                    content_fp = hmac_hex(key, raw)[:32]
                attempt["content_fp"] = content_fp
            attempt["line_no"] = line_no
            add_row(as_row(attempt))
    return Extracted(rows_to_ipc(rows), len(rows), rejects, records, line_no)


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
        array = pa.array(columns[name], type=TS_TYPE if name == "ts" else kind)
        if name in DICTIONARY_COLUMNS:
            array = array.dictionary_encode()  # few distinct values: much less memory per row
        arrays.append(array)
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


def init_worker(ctx: Context) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def extract_range(fmt: str, path: str, start: int, end: int) -> Extracted:
    """Worker entry: read bytes [start, end) of an uncompressed file and extract them."""
    with open(path, "rb") as fh:
        fh.seek(start)
        data = fh.read(end - start)
    assert _WORKER_CTX is not None
    return extract_lines(fmt, data, start, _WORKER_CTX)


def extract_bytes(fmt: str, data: bytes, start: int) -> Extracted:
    """Worker entry: extract a block of a decompressed stream."""
    assert _WORKER_CTX is not None
    return extract_lines(fmt, data, start, _WORKER_CTX)
