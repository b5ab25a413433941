"""Input sources: files, directories, object-store URLs, gzip and standard input, read as blocks of whole lines.

Both engines list, open and split their inputs here (docs/metrics.md §3, §11): folders and object-store prefixes
recursively in name order, gzip told by its magic bytes (never by the name), byte ranges that end just after a
newline. Objects are read through fsspec (`fallbackscope.core.objectstore`); a `file://` URL names a local file.
An object's first bytes are read only when it is loaded: one whose version says it is unchanged is never read.
"""

from __future__ import annotations

import glob
import gzip
import hashlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from fallbackscope.core import objectstore
from fallbackscope.core.errors import FallbackscopeError
from fallbackscope.core.objectstore import is_url

BLOCK = 16 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Source:
    """One input: a file on disk, an object-store URL, or standard input (`-`)."""

    display: str
    path: Path | None  # None for stdin and URLs
    gzip_magic: bool | None = field(compare=False)  # gzip by its magic bytes; None: an object not looked into yet
    size: int | None
    mtime_ns: int | None
    url: str | None = None  # an object's URL, without credentials or query string
    version: str | None = None  # an object's ETag or generation (`objectstore.object_version`)

    @property
    def compressed(self) -> bool:
        """Return whether the source is gzip, by its magic bytes (an object's are read the first time this is
        asked, so an object skipped as unchanged is never read)."""
        if self.gzip_magic is None:
            magic = read_range(self.location, 0, 2) if self.size != 0 else b""
            object.__setattr__(self, "gzip_magic", magic == GZIP_MAGIC)
        return bool(self.gzip_magic)

    @property
    def is_stdin(self) -> bool:
        return self.path is None and self.url is None

    @property
    def location(self) -> str:
        """Return where the source is read from, as its ledger row names it: the resolved path, the URL, or `-`."""
        return self.url or (str(self.path) if self.path is not None else "-")

    @property
    def splittable(self) -> bool:
        """Whether workers can read byte ranges of the file themselves."""
        return not self.is_stdin and not self.compressed

    def head(self, size: int = 65536) -> bytes:
        """Return the first (decompressed) bytes of a file, for format detection."""
        if self.is_stdin:
            raise RuntimeError("stdin has no separate head")
        with open_stream(self.location, self.compressed, block_size=1 << 20) as stream:
            return stream.read(size)


def source_at(location: str, compressed: bool, size: int | None) -> Source:
    """Return the Source of a file already listed (a Spark executor's share of a load), from its location."""
    if is_url(location):
        return Source(location, None, compressed, size, None, location)
    return Source(location, Path(location), compressed, size, None)


def _file_url_path(name: str) -> str | None:
    """Return the local path a `file://` URL names; None for any other name."""
    return unquote(urlsplit(name).path) if is_url(name) and objectstore.scheme_of(name) == "file" else None


def open_raw(location: str | os.PathLike[str], block_size: int = BLOCK) -> BinaryIO:
    """Return a file's stored bytes as a stream (a local path, a `file://` URL or an object-store URL, read
    `block_size` bytes a request)."""
    name = str(location)
    local = _file_url_path(name) if is_url(name) else name
    if local is not None:
        return open(local, "rb")
    fs, inner = objectstore.filesystem(name)
    with objectstore.object_errors(name):
        return objectstore.ObjectReader(name, fs.open(inner, "rb", block_size=block_size))  # type: ignore[return-value]


def open_stream(location: str | os.PathLike[str], compressed: bool, block_size: int = BLOCK) -> BinaryIO:
    """Return a file's (decompressed) bytes as a stream."""
    raw = open_raw(location, block_size)
    return gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw  # type: ignore[return-value]


def read_range(location: str | os.PathLike[str], start: int, end: int) -> bytes:
    """Return bytes [start, end) of an uncompressed file (of an object: one ranged request)."""
    name = str(location)
    local = _file_url_path(name) if is_url(name) else name
    if local is not None:
        with open(local, "rb") as fh:
            fh.seek(start)
            return fh.read(end - start)
    fs, inner = objectstore.filesystem(name)
    with objectstore.object_errors(name):
        return fs.cat_file(inner, start=start, end=end)


def expand(paths: list[str]) -> list[Source]:
    """Return the sources named on the command line: directories (local or object-store prefixes)
    recursively in name order, hidden files and everything in hidden folders below them left out (`.git`, the
    sample's `.sample`); a name that is no file but a glob pattern, its matches."""
    out: list[Source] = []
    for name in paths:
        if name == "-":
            out.append(Source("-", None, False, None, None))
        elif is_url(name):
            out.extend(_file_url_sources(name) if _file_url_path(name) is not None else _object_sources(name))
        elif not Path(name).exists() and glob.has_magic(name):
            matches = sorted(glob.glob(name))
            if not matches:
                raise FallbackscopeError(f"{name}: no such file or directory.")
            for match in matches:
                out.extend(_local_sources(match))
        else:
            out.extend(_local_sources(name))
    return out


def _local_sources(name: str) -> list[Source]:
    path = Path(name)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path).parts))
        if not files:  # a scheduled job pointed at the wrong folder should hear of it
            raise FallbackscopeError(f"{name}: no files to load in this directory.")
        return [_source(p) for p in files]
    if path.exists():
        return [_source(path)]
    raise FallbackscopeError(f"{name}: no such file or directory.")


def _hidden(parts: tuple[str, ...] | list[str]) -> bool:
    """Return whether a path below a listed folder is hidden: it, or a folder on the way to it, starts with a dot."""
    return any(part.startswith(".") for part in parts)


def _source(path: Path) -> Source:
    try:
        stat = path.stat()
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise FallbackscopeError(f"{path}: cannot read the file ({exc.strerror or type(exc).__name__}).") from None
    return Source(str(path), path.resolve(), magic == GZIP_MAGIC, stat.st_size, stat.st_mtime_ns)


def _file_url_sources(name: str) -> list[Source]:
    """Return the files a `file://` URL names (a folder's, in name order), each located by its own URL."""
    local = _file_url_path(objectstore.checked_url(name)) or "/"
    base = name.rstrip("/")
    out = []
    for source in _local_sources(local):
        assert source.path is not None
        rel = Path(source.display).relative_to(local).as_posix() if source.display != local else ""
        url = f"{base}/{rel}" if rel and rel != "." else name
        out.append(Source(url, None, source.gzip_magic, source.size, source.mtime_ns, url))
    return out


def _object_sources(name: str) -> list[Source]:
    """Return the objects under an object-store URL (one object, or every object below a prefix in name order,
    hidden names and folder markers left out), each with its size and version. No object is read here."""
    fs, inner = objectstore.filesystem(name)
    with objectstore.object_errors(name, "list the objects"):
        fs.invalidate_cache(inner)  # a listing cached earlier in this process may be stale
        try:
            info = fs.info(inner)
        except FileNotFoundError:
            raise FallbackscopeError(f"{name}: no such object or prefix.") from None
        if info.get("type") != "directory":
            return [_object_source(name, info)]
        below = inner.rstrip("/") + "/"
        found = []
        for key, item in fs.find(inner, detail=True).items():
            rel = key.removeprefix(below)
            if item.get("type") == "file" and not key.endswith("/") and not _hidden(rel.split("/")):
                found.append((rel.split("/"), rel, item))
    if not found:
        raise FallbackscopeError(f"{name}: no objects to load under this prefix.")
    base = name.rstrip("/")
    return [_object_source(f"{base}/{rel}", item) for _, rel, item in sorted(found, key=lambda f: f[0])]


def _object_source(url: str, info: dict) -> Source:
    """Return the Source of one object, from its fsspec info (its URL rebuilt from the one given: no credentials,
    no query string)."""
    size = info.get("size")
    return Source(url, None, None, int(size) if size is not None else None, objectstore.object_mtime_ns(info), url,
                  objectstore.object_version(info))


def file_sha256(location: str | os.PathLike[str], limit: int | None = None) -> str:
    """Return the sha256 of a file's bytes as stored (of its first `limit` bytes when given)."""
    digest = hashlib.sha256()
    remaining = limit
    with open_raw(location) as fh:
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


def ends_inside_a_line(location: str | os.PathLike[str], start: int, end: int) -> bool:
    """Return whether bytes [start, end) of an uncompressed file end without a newline: whether their
    last line is unterminated (a writer may still be writing it)."""
    if end <= start:
        return False
    return read_range(location, end - 1, end) != b"\n"


class HashingReader:
    """Reads a source's (decompressed) stream in blocks of whole lines, hashing the stored bytes."""

    def __init__(self, source: Source, start: int = 0) -> None:
        self.source = source
        self.digest = hashlib.sha256()
        if source.is_stdin:
            self._raw = _HashingStream(sys.stdin.buffer, self.digest)
            # a gzip piped in is read like a gzip file (files are told by content too, not by name)
            piped_gzip = sys.stdin.buffer.peek(2)[:2] == GZIP_MAGIC
            self._stream = gzip.GzipFile(fileobj=self._raw, mode="rb") if piped_gzip else self._raw
        else:
            self._raw = _HashingStream(open_raw(source.location), self.digest)
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


def line_ranges(location: str | os.PathLike[str], start: int, end: int, block: int = BLOCK) -> list[tuple[int, int]]:
    """Split bytes [start, end) of an uncompressed file into ranges of about `block` bytes that each end
    just after a newline (the last at `end`): every line is read by exactly one range."""
    ranges = []
    pos = start
    while pos < end:
        target = pos + block
        if target >= end:
            ranges.append((pos, end))
            break
        cut = _next_line_start(location, target, end)
        ranges.append((pos, cut))
        pos = cut
    return ranges


def _next_line_start(location: str | os.PathLike[str], pos: int, end: int) -> int:
    """Return the offset just after the first newline at or after `pos` (at most `end`)."""
    step = 64 * 1024
    while pos < end:
        piece = read_range(location, pos, min(end, pos + step))
        cut = piece.find(b"\n")
        if cut >= 0:
            return pos + cut + 1
        pos += len(piece)
        step = min(step * 2, BLOCK)
    return end


def cpu_workers() -> int:
    """Return how many worker processes to parse with: the usable cores, at most 8."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:
        count = os.cpu_count() or 1
    return max(1, min(count, 8))
