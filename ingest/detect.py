"""What a file is (docs/metrics.md §3): its format, told from its first bytes, and the options that say how
to read it (`--format`, `--default-ts`) checked once for both engines."""

from __future__ import annotations

import orjson

from fallbackscope.core.errors import UsageError
from ingest.fields import Reject, parse_ts
from ingest.formats import ALL_FORMATS, LINE_FORMATS, sse

HEAD_BYTES = 65536  # how much of a file's (decompressed) start detection reads


def check_format(name: str | None) -> str | None:
    """Return `--format` as given; raise UsageError when it names no format."""
    if name is not None and name not in ALL_FORMATS:
        raise UsageError(f"--format: unknown format {name!r} (one of {', '.join(ALL_FORMATS)}).")
    return name


def parse_default_ts(text: str | None) -> int | None:
    """Return `--default-ts` as UTC microseconds, or raise UsageError."""
    if text is None:
        return None
    try:
        return parse_ts(text, "--default-ts")
    except Reject:
        raise UsageError(f"--default-ts: not an RFC 3339 time: {text!r}.") from None


def detect_format(head: bytes) -> str:
    """Return the format of a file from its first bytes (SSE text, else the first JSON object)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if sse.looks_like_text(head):
        return sse.NAME
    for raw in head.split(b"\n")[:50]:
        raw = raw.strip()
        if not raw:
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        for module in LINE_FORMATS.values():
            if module.looks_like(obj):
                return module.NAME
    for module in LINE_FORMATS.values():  # a first line longer than the head: its opening keys
        sniff = getattr(module, "looks_like_start", None)
        if sniff is not None and sniff(head.lstrip()[:4096]):
            return module.NAME
    return "exchange"
