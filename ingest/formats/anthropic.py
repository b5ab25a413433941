"""Format `anthropic` (docs/metrics.md §3.2): one bare Message or error body per line, as `to_json()` writes it."""

from __future__ import annotations

from ingest.columns import blank_attempt
from ingest.fields import Reject
from ingest.formats.shared import wrong_format
from ingest.message import Context, error_attempt, message_attempts

NAME = "anthropic"
SHAPE = "a Message or error body"


def looks_like(obj: dict) -> bool:
    """Return whether a decoded record is a bare Message or error body."""
    return obj.get("type") in ("message", "error") and ("content" in obj or "error" in obj)


def parse(obj: dict, ctx: Context) -> list[dict]:
    """Return the attempt rows of one bare response body (time from `--default-ts`).

    `--format anthropic` is a claim that is checked (docs/metrics.md §3.8): a Message has `type: message` (or
    `role: assistant` and `content`) and `usage`; an error body has `type: error`. Anything else is rejected,
    never stored as an empty successful attempt.
    """
    is_error = obj.get("type") == "error"
    if not is_error and not (
            (obj.get("type") == "message" or (obj.get("role") == "assistant" and "content" in obj)) and "usage" in obj):
        raise wrong_format(obj, "not a Message or error body", NAME)
    if ctx.default_ts is None:
        raise Reject("no timestamp")
    base = blank_attempt()
    base["ts"] = ctx.default_ts
    base["workload"] = ctx.workload or "default"
    if is_error:
        return [error_attempt(base, ctx, status=None, body=obj, path="")]
    base["http_status"] = 200
    return message_attempts(obj, "", ctx, base, hop_mode="unknown")
