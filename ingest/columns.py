"""The columns a parser fills for each attempt, with their Arrow types.

Linking (chain_id, attempt_index, trigger, fallback_mode) and pricing (cost_usd) come later, in
`ingest.linking` and the loader's SQL; `given_*` and `hop_mode` are the parser's inputs to them.
"""

from __future__ import annotations

import pyarrow as pa

TS_TYPE = pa.timestamp("us", tz="UTC")

EXTRACTED: list[tuple[str, pa.DataType]] = [
    ("attempt_id", pa.string()),
    ("ts", pa.int64()),
    ("surface", pa.string()),
    ("workload", pa.string()),
    ("session_id", pa.string()),
    ("given_chain_id", pa.string()),
    ("given_attempt", pa.int64()),
    ("given_trigger", pa.string()),
    ("request_id", pa.string()),
    ("requested_model", pa.string()),
    ("model", pa.string()),
    ("http_status", pa.int32()),
    ("error_class", pa.string()),
    ("outcome", pa.string()),
    ("stop_reason", pa.string()),
    ("refusal_category", pa.string()),
    ("recommended_model", pa.string()),
    ("accepted", pa.bool_()),
    ("disclosed", pa.bool_()),
    ("intended_model", pa.string()),
    ("hop_mode", pa.string()),
    ("is_batch", pa.bool_()),
    ("is_stream", pa.bool_()),
    ("service_tier", pa.string()),
    ("inference_geo", pa.string()),
    ("speed", pa.string()),
    ("latency_ms", pa.float64()),
    ("input_tokens", pa.int64()),
    ("output_tokens", pa.int64()),
    ("cache_write_5m_tokens", pa.int64()),
    ("cache_write_1h_tokens", pa.int64()),
    ("cache_read_tokens", pa.int64()),
    ("web_search_requests", pa.int64()),  # NULL when the format does not report searches (docs/metrics.md §3.8)
    ("cost_complete", pa.bool_()),  # false when part of the cost is unknown (web searches NULL)
    # tokens of non-hop iterations on another model (an advisor), already inside the token columns above and
    # priced at `side_model`'s prices (docs/metrics.md §3.8)
    ("side_model", pa.string()),
    ("side_input_tokens", pa.int64()),
    ("side_output_tokens", pa.int64()),
    ("side_cache_read_tokens", pa.int64()),
    ("side_cache_write_5m_tokens", pa.int64()),
    ("side_cache_write_1h_tokens", pa.int64()),
    ("had_output", pa.bool_()),
    ("credit_minted_fp", pa.string()),
    ("credit_presented_fp", pa.string()),
    ("prefill_claim", pa.bool_()),
    ("credit_status", pa.string()),
    ("credit_reason", pa.string()),
    ("prompt_fp", pa.string()),
    ("line_no", pa.int64()),
    ("hop", pa.int32()),
    ("batch_id", pa.string()),
    ("content_fp", pa.string()),
    ("record_no", pa.int32()),  # ordinal of the record in its line, for lines of several records (otel)
    # `traceId:spanId` of an OTel span and of its parent: nested spans of one call become one attempt
    # (`ingest.formats.otel_nesting`); never stored
    ("span_key", pa.string()),
    ("parent_key", pa.string()),
]

DICTIONARY_COLUMNS = frozenset({
    "surface", "workload", "given_trigger", "requested_model", "model", "error_class", "outcome", "stop_reason",
    "refusal_category", "recommended_model", "intended_model", "hop_mode", "service_tier", "inference_geo",
    "speed", "credit_status", "credit_reason", "batch_id", "side_model",
})
FIELD_NAMES = [name for name, _ in EXTRACTED]
SCHEMA = pa.schema(EXTRACTED)

_DEFAULTS = {
    "surface": "anthropic", "is_batch": False, "is_stream": False, "had_output": False, "hop": 0, "record_no": 0,
    "input_tokens": 0, "output_tokens": 0, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
    "cache_read_tokens": 0, "web_search_requests": 0, "cost_complete": True,
}


_TEMPLATE = dict.fromkeys(FIELD_NAMES)
_TEMPLATE.update(_DEFAULTS)


def blank_attempt() -> dict:
    """Return an attempt dict with every extracted field at its default."""
    return _TEMPLATE.copy()
