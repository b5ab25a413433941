"""Input sources: files, directories, gzip and standard input, read as blocks of whole lines."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fallbackscope.core.errors import FallbackscopeError

BLOCK = 16 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Source:
    """One input: a file on disk or standard input (`-`)."""

    display: str
    path: Path | None  # None for stdin
    compressed: bool
    size: int | None
    mtime_ns: int | None

    @property
    def is_stdin(self) -> bool:
        return self.path is None

    @property
    def splittable(self) -> bool:
        """Whether workers can read byte ranges of the file themselves."""
        return self.path is not None and not self.compressed

    def head(self, size: int = 65536) -> bytes:
        """Return the first (decompressed) bytes of a file, for format detection."""
        if self.path is None:
            raise RuntimeError("stdin has no separate head")
        with open(self.path, "rb") as fh:
            if self.compressed:
                with gzip.GzipFile(fileobj=fh) as gz:
                    return gz.read(size)
            return fh.read(size)


def expand(paths: list[str]) -> list[Source]:
    """Return the sources named on the command line: directories recursively, in name order."""
    out: list[Source] = []
    for name in paths:
        if name == "-":
            out.append(Source("-", None, False, None, None))
            continue
        path = Path(name)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not files:  # a scheduled job pointed at the wrong folder should hear of it
                raise FallbackscopeError(f"{name}: no files to load in this directory.")
            out.extend(_source(p) for p in files)
        elif path.exists():
            out.append(_source(path))
        else:
            raise FallbackscopeError(f"{name}: no such file or directory.")
    return out


def _source(path: Path) -> Source:
    try:
        stat = path.stat()
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise FallbackscopeError(f"{path}: cannot read the file ({exc.strerror or type(exc).__name__}).") from None
    return Source(str(path), path.resolve(), magic == GZIP_MAGIC, stat.st_size, stat.st_mtime_ns)


def file_sha256(path: Path, limit: int | None = None) -> str:
    """Return the sha256 of a file's bytes as stored (of its first `limit` bytes when given)."""
    digest = hashlib.sha256()
    remaining = limit
    with open(path, "rb") as fh:
        while True:
            want = BLOCK if remaining is None else min(BLOCK, remaining)
            if want == 0:
                break
            block = fh.read(want)
            if not block:
                break
            digest.update(block)
            if remaining is not None:
                remaining -= len(block)
    return digest.hexdigest()


def ends_inside_a_line(path: Path, start: int, end: int) -> bool:
    """Return whether bytes [start, end) of an uncompressed file end without a newline: whether their
    last line is unterminated (a writer may still be writing it)."""
    if end <= start:
        return False
    with open(path, "rb") as fh:
        fh.seek(end - 1)
        return fh.read(1) != b"\n"


class HashingReader:
    """Reads a source's (decompressed) stream in blocks of whole lines, hashing the stored bytes."""

    def __init__(self, source: Source, start: int = 0) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        if source.path is None:
            self._raw = _HashingStream(sys.stdin.buffer, self.digest)
            # a gzip piped in is read like a gzip file (files are told by content too, not by name)
            piped_gzip = sys.stdin.buffer.peek(2)[:2] == GZIP_MAGIC
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb") if piped_gzip else self._raw
        else:
            self._raw = _HashingStream(open(source.path, "rb"), self.digest)
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb") if source.compressed else self._raw
        if start:
            self._skip(start)
        self.position = start

    def _skip(self, count: int) -> None:
        while count:
            block = self._stream.read(min(BLOCK, count))
            if not block:
                break
            count -= len(block)

    def blocks(self) -> Iterator[tuple[int, bytes]]:
        """Yield (start offset, bytes) blocks that end at a newline (the last may not)."""
        carry = b""
        while True:
            block = self._stream.read(BLOCK)
            if not block:
                break
            data = carry + block
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            yield self.position, data[: cut + 1]
            self.position += cut + 1
            carry = data[cut + 1:]
        if carry:
            yield self.position, carry
            self.position += len(carry)

    def finish(self) -> str:
        """Read what is left of the stored bytes (so the hash covers the file) and return the hash."""
        while self._raw.read(BLOCK):
            pass
        self._raw.close()
        return self.digest.hexdigest()


class _HashingStream:
    def __init__(self, fh, digest) -> None:
        self._fh = fh
        self._digest = digest

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self._digest.update(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self._fh is not sys.stdin.buffer:
            self._fh.close()


def line_ranges(path: Path, start: int, end: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """Split bytes [start, end) of a file into ranges that each end just after a newline."""
    ranges = []
    with open(path, "rb") as fh:
        pos = start
        while pos < end:
            target = pos + block
            if target >= end:
                ranges.append((pos, end))
                break
            fh.seek(target)
            fh.readline()
            cut = min(fh.tell(), end)
            ranges.append((pos, cut))
            pos = cut
    return ranges


def cpu_workers() -> int:
    """Return how many worker processes to parse with: the usable cores, at most 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:
        count = os.cpu_count() or 1
    return max(1, min(count, 8))
