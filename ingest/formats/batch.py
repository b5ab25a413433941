"""Format `batch` (docs/metrics.md §3.4): Message Batches results, `{"custom_id", "result": {...}}` per line."""

from __future__ import annotations

from ingest.columns import blank_attempt
from ingest.fields import Reject, get_obj, get_str
from ingest.formats.shared import wrong_format
from ingest.message import Context, error_attempt, message_attempts

NAME = "batch"
SHAPE = "a Message Batches result"


def looks_like(obj: dict) -> bool:
    """Return whether a decoded record is a batch result."""
    return "custom_id" in obj and isinstance(obj.get("result"), dict)


def parse(obj: dict, ctx: Context) -> list[dict]:
    """Return the attempt row of one batch result."""
    if "custom_id" not in obj and "result" not in obj:
        raise wrong_format(obj, "not a Message Batches result", NAME)
    if ctx.default_ts is None:
        raise Reject("no timestamp")
    custom_id = get_str(obj, "custom_id")
    result = get_obj(obj, "result")
    if result is None:
        raise Reject("no `result`")
    kind = get_str(result, "type", "result")
    base = blank_attempt()
    base.update(ts=ctx.default_ts, workload=ctx.workload or "default", is_batch=True, batch_id=ctx.batch_id)
    if ctx.batch_id and custom_id is not None:
        base["attempt_id"] = f"{ctx.batch_id}:{custom_id}"
    if kind == "succeeded":
        message = get_obj(result, "message", "result")
        if message is None:
            raise Reject("a succeeded batch result without `result.message`")
        base["http_status"] = 200
        attempts = message_attempts(message, "result.message", ctx, base, hop_mode="unknown")
        for attempt in attempts:
            attempt["is_batch"] = True
        return attempts
    if kind == "errored":
        error = get_obj(result, "error", "result")
        # the error may be wrapped as {"type": "error", "error": {...}} or given bare
        body = error if error is not None and "error" in error else {"error": error}
        attempt = error_attempt(base, ctx, status=None, body=body, path="result.error")
        attempt["attempt_id"] = base.get("attempt_id")  # docs/metrics.md §2: never the error's request id
        return [attempt]
    if kind in ("canceled", "expired"):
        base.update(outcome=kind)
        return [base]
    raise Reject("field `result.type` is not succeeded, errored, canceled or expired")
