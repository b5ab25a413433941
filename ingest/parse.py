"""Parse one source into Arrow tables of attempt rows plus rejects, in this process or a pool of workers.

Uncompressed files larger than `POOL_THRESHOLD` are split into line-aligned byte ranges the workers read
themselves (`ingest.sources.line_ranges`); gzip and stdin are read here in blocks of whole lines and sent to
them. Line numbers come back relative to the bytes read: the loader shifts them past a grown file's old lines.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from ingest.detect import HEAD_BYTES, detect_format
from ingest.extract import Extracted, extract_bytes, extract_lines, extract_range, extract_sse, from_ipc, init_worker
from ingest.fields import take_naive_timestamps
from ingest.formats import sse
from ingest.message import Context
from ingest.sources import HashingReader, Source, file_sha256, line_ranges
from ingest.trace import trace

POOL_THRESHOLD = 24 * 1024 * 1024  # smaller files parse in this process: no pool start-up cost
ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class Parsed:
    """What parsing a source gave: its attempt rows (tables in file order), rejects (line relative to the
    bytes read, byte offset, reason), counts, the offset where reading ended and the file's sha256 (a future
    when the file is hashed beside the rest of the load)."""

    format: str
    parts: list[pa.Table]
    rejects: list[tuple[int, int, str]]
    records: int
    lines: int
    end: int
    sha: str | cf.Future[str]
    naive_ts: int = 0  # timestamps without an offset, read as UTC


def counted(extract: Callable[..., Extracted], *args, **kwargs) -> tuple[Extracted, int]:
    """Run an extraction (in this process or a worker); return its output and how many timestamps without an
    offset it read (`ingest.fields.take_naive_timestamps`)."""
    take_naive_timestamps()
    out = extract(*args, **kwargs)
    return out, take_naive_timestamps()


class Parser:
    """Parses sources, starting a pool of worker processes the first time a source is large enough
    (never with `workers=0`: a Spark executor parses its share of the files in its own process)."""

    def __init__(self, ctx: Context, workers: int, progress: ProgressFn | None = None) -> None:
        self.ctx = ctx
        self.workers = workers
        self.progress = progress
        self._pool: cf.ProcessPoolExecutor | None = None

    def close(self) -> None:
        """Stop the worker processes, if any were started."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            trace("workers stopped")

    def parse(self, source: Source, fmt: str | None, start_byte: int) -> Parsed:
        """Parse `source` from `start_byte` as `fmt` (None: detect it from the stream's start, for stdin)."""
        if self.workers and source.splittable and source.size is not None and source.size - start_byte > POOL_THRESHOLD:
            assert fmt is not None
            return self._parse_ranges(source, fmt, start_byte)  # the workers read it; hashed after parsing
        return self._parse_stream(source, HashingReader(source, start=start_byte), fmt, start_byte)

    def _pool_for(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_worker,
                                                initargs=(self.ctx, os.getpid()))
        return self._pool

    def _parse_ranges(self, source: Source, fmt: str, start_byte: int) -> Parsed:
        assert source.size is not None
        pool = self._pool_for()
        ranges = line_ranges(source.location, start_byte, source.size)
        # the last range each worker takes (in practice the last `workers` ranges) ends its part of the file
        futures = [pool.submit(counted, extract_range, fmt, source.location, a, b,
                               last=i >= len(ranges) - self.workers) for i, (a, b) in enumerate(ranges)]
        done_bytes = 0
        outputs = []
        naive = 0
        for (a, b), future in zip(ranges, futures, strict=True):
            out, n = future.result()
            outputs.append(out)
            naive += n
            done_bytes += b - a
            if self.progress:
                self.progress(source.display, done_bytes, source.size - start_byte)
        # hashed while the main process links and inserts, not while the workers need both cores
        hasher = cf.ThreadPoolExecutor(1)
        sha = hasher.submit(file_sha256, source.location)
        hasher.shutdown(wait=False)
        return Parsed(fmt, *gather(outputs), source.size, sha, naive)

    def _parse_stream(self, source: Source, reader: HashingReader, fmt: str | None, start_byte: int) -> Parsed:
        outputs: list[Extracted] = []
        blocks = reader.blocks()
        pending: list[tuple[int, bytes]] = []
        if fmt is None:  # stdin: detect from its first block
            first = next(blocks, None)
            fmt = detect_format(first[1][:HEAD_BYTES] if first else b"")
            pending = [first] if first else []
        naive = 0
        if fmt == sse.NAME:
            data = b"".join(block for _, block in pending) + b"".join(block for _, block in blocks)
            out, naive = counted(extract_sse, data, start_byte, self.ctx)
            return Parsed(fmt, *gather([out]), reader.position, reader.finish(), naive)
        use_pool = self.workers and (source.size is None or source.size > POOL_THRESHOLD)
        futures = []
        for offset, data in _chain(pending, blocks):
            if use_pool:
                futures.append(self._pool_for().submit(counted, extract_bytes, fmt, data, offset))
            else:
                out, n = counted(extract_lines, fmt, data, offset, self.ctx)
                outputs.append(out)
                naive += n
            if self.progress:
                self.progress(source.display, reader.position - start_byte, (source.size or 0) - start_byte
                              if not source.compressed and source.size else None)
        for future in futures:
            out, n = future.result()
            outputs.append(out)
            naive += n
        sha = reader.finish()
        return Parsed(fmt, *gather(outputs), reader.position, sha, naive)


def _chain(first: Iterable, rest: Iterable) -> Iterator:
    yield from first
    yield from rest


def shift_lines(table: pa.Table, by: int) -> pa.Table:
    """Return attempt rows with `by` added to their line numbers."""
    if not by:
        return table
    i = table.schema.get_field_index("line_no")
    return table.set_column(i, "line_no", pc.add(table.column("line_no"), by))


def gather(outputs: list[Extracted]) -> tuple[list[pa.Table], list[tuple[int, int, str]], int, int]:
    """Combine chunk outputs, in order: (tables, rejects, records, lines), chunk-relative line numbers shifted
    to numbers relative to the first chunk's start."""
    parts: list[pa.Table] = []
    rejects: list[tuple[int, int, str]] = []
    records = lines = 0
    for out in outputs:
        if out.rows:
            parts.append(shift_lines(from_ipc(out.ipc), lines))
        rejects.extend((line + lines, offset, reason) for line, offset, reason in out.rejects)
        records += out.records
        lines += out.lines
    return parts, rejects, records, lines
