"""Nested spans of one call (docs/metrics.md §3.8): an outer model-call span (an instrumentation library's, such as
OpenInference's) whose subtree holds exactly one model-call span for the same requested model (the SDK's own) is
the same call — one attempt, the inner span's fields winning, the outer's filling what the inner lacks. With
several inner spans (retries) the outer span is not an attempt.

Spans of one call are often exported on different lines (a span processor exports each span as it ends), so this
runs on a file's parsed rows, not per line: the rows of `otel` records carry `span_key` and `parent_key`
(`traceId:spanId`). A span that is not a model call (an HTTP span between two) is not a row, so only direct
parents are seen. The outer record of a merged call is then counted as a duplicate of the inner one.
"""

from __future__ import annotations

import pyarrow as pa

# Columns whose value in a row says nothing was reported when it is the default: the outer span fills them
_ZERO_FILLED = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
_VERDICT = ("outcome", "stop_reason", "refusal_category", "error_class")
# Where the merged row stands and who it is: always the inner span's
_INNER_ONLY = frozenset({"line_no", "record_no", "span_key", "parent_key", "content_fp"})


def merge_nested(table: pa.Table) -> pa.Table:
    """Return a file's attempt rows with each outer span merged into its single inner span of the same call,
    and outer spans around several calls dropped. Rows without a span key (every other format) pass as they
    are; a table with none is returned untouched (no per-row work)."""
    if "span_key" not in table.column_names or table.num_rows == 0:
        return table
    parents = table.column("parent_key")
    if parents.null_count == table.num_rows:
        return table
    keys = table.column("span_key").to_pylist()
    row_of = {key: i for i, key in enumerate(keys) if key is not None}
    children: dict[int, list[int]] = {}
    for i, parent in enumerate(parents.to_pylist()):
        at = row_of.get(parent) if parent is not None else None
        if at is not None and at != i:
            children.setdefault(at, []).append(i)
    if not children:
        return table
    rows = table.to_pylist()
    requested = [row["requested_model"] for row in rows]
    dropped: set[int] = set()
    calls: dict[int, list[int]] = {}  # the rows standing for the calls in each span's subtree

    def subtree_calls(i: int, seen: frozenset[int]) -> list[int]:
        if i in calls:
            return calls[i]
        inner = [c for child in children.get(i, ()) if child not in seen
                 for c in subtree_calls(child, seen | {child})]
        if not inner:
            found = [i]
        elif len(inner) == 1 and _same_model(requested[i], requested[inner[0]]):
            _fill(rows[inner[0]], rows[i])
            dropped.add(i)
            found = inner
        else:  # several calls below it (retries), or another model's: no attempt of its own
            if len(inner) > 1:
                dropped.add(i)
                found = inner
            else:
                found = [i, *inner]
        calls[i] = found
        return found

    for i in children:
        subtree_calls(i, frozenset({i}))
    if not dropped:
        return table
    kept = [row for i, row in enumerate(rows) if i not in dropped]
    return pa.Table.from_pylist(kept, schema=table.schema) if kept else table.slice(0, 0)


def _same_model(outer: str | None, inner: str | None) -> bool:
    """An outer span that names no requested model (or the same one as the inner) describes the same call."""
    return outer is None or inner is None or outer == inner


def _fill(inner: dict, outer: dict) -> None:
    """Complete the inner span's row with what only the outer span says."""
    if inner["stop_reason"] is None and inner["outcome"] == "ok" and outer["stop_reason"] is not None:
        for name in _VERDICT:  # the inner span says nothing of how the call ended: the outer's verdict
            inner[name] = outer[name]
    for name, value in outer.items():
        if name in _INNER_ONLY or value is None:
            continue
        if inner[name] is None or (name in _ZERO_FILLED and inner[name] == 0):
            inner[name] = value
    inner["had_output"] = bool(inner["had_output"] or outer["had_output"])
    inner["is_stream"] = bool(inner["is_stream"] or outer["is_stream"])
    if inner["web_search_requests"] is not None:
        inner["cost_complete"] = True


__all__ = ["merge_nested"]
