"""Property-based fuzzing of every input format (issue 7): bytes of any kind never crash a load, and every
record is accounted for — loaded (its attempt rows) or rejected once, with its line and a reason.

The formats come from the registry (`ingest.formats.ALL_FORMATS`), so a format added there is fuzzed
too. Most examples go through the extraction functions in-process (fast); a few go through the real
loader into a real DuckDB file, where `loads.records = loaded + duplicates + rejected` is checked.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fallbackscope.core import store
from ingest.columns import FIELD_NAMES
from ingest.extract import extract_lines, extract_sse, from_ipc, line_count, numbered_lines
from ingest.formats import ALL_FORMATS, LINE_FORMATS, sse
from ingest.loader import IngestFailed, LoadOptions, ingest_paths
from ingest.message import Context

FORMATS = sorted(ALL_FORMATS)
DEFAULT_TS = 1_793_779_200_000_000  # 2026-11-04T08:00:00Z in microseconds
FUZZ = settings(max_examples=60, deadline=None, derandomize=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])
OUTCOMES = {"ok", "refusal", "error", "timeout", "connection", "canceled", "expired"}
TOKEN_COLUMNS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
                 "cache_write_1h_tokens", "web_search_requests")


def _not_null_columns() -> list[str]:
    """The columns of `attempts` that may not be NULL and that the parser fills (the rest come later)."""
    con = duckdb.connect()
    store.migrate(con)
    names = {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns"
                                       " WHERE table_name = 'attempts' AND is_nullable = 'NO'").fetchall()}
    con.close()
    return [n for n in FIELD_NAMES if n in names and n not in ("attempt_id", "line_no")]


NOT_NULL = _not_null_columns()

# ------------------------------------------------------------------------------------------- valid seeds

MESSAGE = {
    "id": "msg_seed", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
    "content": [{"type": "text", "text": "x"},
                {"type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-8"},
                 "trigger": {"type": "refusal", "category": "cyber"}},
                {"type": "text", "text": "y"}],
    "stop_reason": "end_turn",
    "stop_details": {"type": "refusal", "category": None, "recommended_model": "claude-opus-4-8",
                     "fallback_credit_token": "tok", "fallback_has_prefill_claim": False},
    "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 100,
              "cache_creation_input_tokens": 20,
              "cache_creation": {"ephemeral_5m_input_tokens": 15, "ephemeral_1h_input_tokens": 5},
              "server_tool_use": {"web_search_requests": 1}, "service_tier": "standard", "inference_geo": "us",
              "speed": "fast", "fallback_credit": {"status": {"type": "redeemed", "reason": None}},
              "iterations": [{"type": "message", "model": "claude-fable-5", "input_tokens": 3, "output_tokens": 1},
                             {"type": "fallback_message", "model": "claude-opus-4-8", "input_tokens": 7,
                              "output_tokens": 4},
                             {"type": "compaction", "input_tokens": 1, "output_tokens": 1}]},
}
REQUEST = {"model": "claude-fable-5", "max_tokens": 100, "system": "s", "stream": False,
           "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "p"}],
           "tools": [{"name": "t", "input_schema": {"type": "object"}}],
           "fallback_credit_token": {"token": "tok", "mode": "best_effort"}}
ERROR = {"type": "error", "error": {"type": "overloaded_error", "message": "m"}, "request_id": "req_e"}
EVENTS = [
    {"type": "message_start", "message": {**MESSAGE, "content": [], "stop_reason": None,
                                          "usage": {"input_tokens": 10, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "z"}},
    {"type": "ping"},
    {"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_details": {"category": "bio"}},
     "usage": {"output_tokens": 9}},
    {"type": "message_stop"},
]
SEEDS: dict[str, list[Any]] = {
    "exchange": [
        {"ts": "2026-11-04T08:00:00Z", "workload": "w", "session_id": "s", "chain_id": "c", "attempt": 2,
         "trigger": "refusal", "accepted": True, "disclosed": False, "intended_model": "claude-opus-4-8",
         "surface": "anthropic", "request_id": "req_1", "http_status": 200, "latency_ms": 12.5,
         "request": REQUEST, "response": MESSAGE},
        {"ts": 1793779200, "http_status": 529, "request": REQUEST, "response": ERROR},
        {"ts": "2026-11-04T08:00:00+01:00", "transport_error": "timeout", "request": REQUEST},
        {"ts": "2026-11-04T08:00:00Z", "http_status": 200, "request": {**REQUEST, "stream": True}, "events": EVENTS},
    ],
    "anthropic": [MESSAGE, ERROR],
    "batch": [
        {"custom_id": "a", "result": {"type": "succeeded", "message": MESSAGE}},
        {"custom_id": "b", "result": {"type": "errored", "error": ERROR}},
        {"custom_id": "c", "result": {"type": "expired"}},
    ],
    "sse": [EVENTS, [*EVENTS[:3], {"type": "error", "error": {"type": "overloaded_error", "message": "m"}}]],
    "bedrock": [
        {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-04T08:00:00Z",
         "requestId": "breq", "operation": "InvokeModel", "modelId": "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
         "input": {"inputContentType": "application/json", "inputTokenCount": 10,
                   "inputBodyJson": {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5,
                                     "messages": [{"role": "user", "content": "q"}]}},
         "output": {"outputContentType": "application/json", "outputTokenCount": 5, "outputBodyJson": MESSAGE}},
    ],
    "otel": [
        {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}]},
                            "scopeSpans": [{"spans": [{
                                "traceId": "t", "spanId": "s", "name": "chat",
                                "startTimeUnixNano": "1793779200000000000", "endTimeUnixNano": "1793779201000000000",
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.system", "value": {"stringValue": "anthropic"}},
                                    {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4-5"}},
                                    {"key": "gen_ai.response.id", "value": {"stringValue": "msg_o"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "100"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "5"}},
                                    {"key": "gen_ai.response.finish_reasons",
                                     "value": {"arrayValue": {"values": [{"stringValue": "end_turn"}]}}}],
                                "status": {}}]}]}]},
    ],
    "litellm": [
        {"id": "ll1", "call_type": "acompletion", "model": "claude-sonnet-4-5", "startTime": 1793779200.0,
         "endTime": 1793779201.0, "status": "success", "prompt_tokens": 10, "completion_tokens": 5,
         "total_tokens": 15, "metadata": {}, "response": {}},
    ],
}


def seeds_for(fmt: str) -> list[Any]:
    """The seeds of a format; a format without its own gets every other format's records (still fuzz)."""
    if fmt in SEEDS:
        return SEEDS[fmt]
    return [seed for name, seeds in SEEDS.items() if name != "sse" for seed in seeds]


# ------------------------------------------------------------------------------------------- strategies

ODD_STRINGS = [
    "", " ", "\x00", "a\x00b", "\u202e\u200fRTL", "\u200b", "😀" * 50, "é" * 3, "\ufeff", "x" * 100_000,
    "<script>alert(1)</script>", "'; DROP TABLE attempts; --", "\u2019 OR \u20181\u2019=\u20181",
    "2026-11-04T08:00:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "refusal", "fallback",
    "fallback_message", "message", "error", "succeeded", "errored", "timeout", "message_start", "batch", "null",
]
ODD_NUMBERS = [0, -1, 1, 2**31, 2**31 - 1, -(2**31), 2**40, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64, 2**70,
               -(2**70), 10**30, 0.5, -0.0, 1e308, -1e308, 1e-308, 4e9, float("nan"), float("inf"),
               float("-inf")]
SCALARS = st.one_of(st.none(), st.booleans(), st.sampled_from(ODD_NUMBERS), st.sampled_from(ODD_STRINGS),
                    st.integers(), st.floats(), st.text(max_size=20))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3), st.dictionaries(st.text(max_size=8), SCALARS, max_size=3))


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Every (container, key) of a JSON tree, depth first."""
    if isinstance(node, dict):
        for key in list(node):
            out.append((node, key))
            _slots(node[key], out)
    elif isinstance(node, list):
        for i in range(len(node)):
            out.append((node, i))
            _slots(node[i], out)
    return out


@st.composite
def mutated(draw: st.DrawFn, seed: Any) -> Any:
    """A deep copy of `seed` with a few values replaced (wrong types, huge, negative, odd unicode), keys
    deleted or added."""
    value = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 4))):
        slots = _slots(value, [])
        if not slots:
            break
        container, key = slots[draw(st.integers(0, len(slots) - 1))]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if action == "replace":
            container[key] = draw(VALUES)
        elif action == "delete":
            del container[key]
        elif isinstance(container, dict):
            container[draw(st.sampled_from(["type", "model", "usage", "ts", "id", "content", "x\x00"]))] = draw(VALUES)
        else:
            container.insert(key, draw(VALUES))
    return value


def encode(value: Any, ascii_only: bool) -> bytes:
    """JSON text as a logger might write it: NaN/Infinity literals kept (invalid JSON, to be rejected),
    lone surrogates escaped (`\\ud800`) or, unescaped, written as the invalid UTF-8 they make."""
    return json.dumps(value, ensure_ascii=ascii_only, allow_nan=True).encode("utf-8", "surrogatepass")


def sse_text(events: list[Any], ascii_only: bool) -> bytes:
    parts = []
    for event in events:
        name = event.get("type") if isinstance(event, dict) and isinstance(event.get("type"), str) else "x"
        parts.append(b"event: " + name.encode("utf-8", "surrogatepass") + b"\ndata: " + encode(event, ascii_only)
                     + b"\n\n")
    return b"".join(parts)


def line_noise() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
        st.sampled_from([b"", b"   ", b"\t", b"\r", b"{", b"}", b"[]", b"null", b"1", b'"s"', b"{}", b'{"a":NaN}',
                         b'{"ts":1e400}', b'{"a":"\\ud800"}', b"\xef\xbb\xbf{}", b"\xff\xfe", b"event: message_start",
                         b"data: {", b"data: []", b"data: {}", b": comment", b"id: 1", b"retry: 5",
                         b'data: {"type":"message_stop"}', b'data: {"type":"error"}']),
        st.text(max_size=30).map(lambda t: t.replace("\n", "").encode("utf-8", "surrogatepass")),
    )


@st.composite
def documents(draw: st.DrawFn, fmt: str) -> bytes:
    """A whole input file: mutated and valid records of the format mixed with noise lines, LF or CRLF,
    with or without a BOM."""
    ascii_only = draw(st.booleans())
    pieces: list[bytes] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["seed", "mutated", "mutated", "noise"]))
        if kind == "noise":
            pieces.append(draw(line_noise()) + b"\n")
            continue
        seed = draw(st.sampled_from(seeds_for(fmt)))
        value = seed if kind == "seed" else draw(mutated(seed))
        if fmt == sse.NAME:
            events = value if isinstance(value, list) else [value]
            pieces.append(sse_text(events, ascii_only))
        else:
            pieces.append(encode(value, ascii_only) + b"\n")
    data = b"".join(pieces)
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]  # a file cut off mid-record
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    return data


# ------------------------------------------------------------------------------------------- checks


def extract(fmt: str, data: bytes, ctx: Context):
    if fmt == sse.NAME:
        return extract_sse(data, 0, ctx)
    return extract_lines(fmt, data, 0, ctx)


def context(default_ts: bool) -> Context:
    return Context(b"fuzz-key", {}, None, DEFAULT_TS if default_ts else None, "msgbatch_fuzz")


def assert_accounted(fmt: str, data: bytes, out) -> None:
    """Every record gave attempt rows or exactly one reject with its line, offset and a reason; rows fit
    the table (no NULL in a NOT NULL column, known outcomes, token counts that cannot overflow)."""
    table = from_ipc(out.ipc)
    assert table.num_rows == out.rows
    assert out.lines == line_count(data)
    starts = {line_no: offset for line_no, offset, _ in numbered_lines(data, 0)}
    filled = {line_no for line_no, _, raw in numbered_lines(data, 0) if raw and not raw.isspace()}
    rows = table.to_pylist()
    keys = {(r["line_no"], r.get("record_no") or 0) for r in rows}
    reject_lines = [line_no for line_no, _, _ in out.rejects]
    assert out.records == len(keys) + len(out.rejects), (out.records, len(keys), out.rejects)
    for line_no, offset, reason in out.rejects:
        assert line_no in filled and offset == starts[line_no]
        assert isinstance(reason, str) and reason and "\n" not in reason and len(reason) < 300
    assert {line for line, _ in keys} <= filled
    if fmt in LINE_FORMATS and not hasattr(LINE_FORMATS[fmt], "split_records"):
        # one record per non-blank line: each is loaded or rejected, never both, never neither
        assert len(reject_lines) == len(set(reject_lines))
        assert {line for line, _ in keys} | set(reject_lines) == filled
        assert not {line for line, _ in keys} & set(reject_lines)
    for row in rows:
        for name in NOT_NULL:
            assert row[name] is not None, (name, row)
        assert row["outcome"] in OUTCOMES
        # web searches a format does not report are NULL, and the cost is then flagged (docs/metrics.md §3.8)
        assert (row["web_search_requests"] is None) == (not row["cost_complete"])
        counts = [row[c] or 0 for c in TOKEN_COLUMNS]
        assert all(0 <= count for count in counts)
        assert sum(counts) < 2**62  # the cost SQL adds them up in 64 bits


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.binary(max_size=3000), default_ts=st.booleans())
def test_arbitrary_bytes_never_crash_and_every_record_is_accounted_for(fmt, data, default_ts):
    assert_accounted(fmt, data, extract(fmt, data, context(default_ts)))


@pytest.mark.parametrize("fmt", FORMATS)
@FUZZ
@given(data=st.data(), default_ts=st.booleans())
def test_mutated_records_are_loaded_or_rejected_with_a_reason(fmt, data, default_ts):
    document = data.draw(documents(fmt))
    assert_accounted(fmt, document, extract(fmt, document, context(default_ts)))


def test_a_number_too_large_for_its_column_rejects_only_its_record():
    good = encode({**SEEDS["exchange"][1], "request_id": "r_ok"}, True)
    huge = encode({**SEEDS["exchange"][1], "request_id": "r_huge", "http_status": 2**40}, True)
    data = good + b"\n" + huge + b"\n" + good.replace(b"r_ok", b"r_ok2") + b"\n"
    out = extract("exchange", data, context(True))
    assert out.rows == 2 and out.rejects == [(2, len(good) + 1, "field `http_status` is out of range")]
    tokens = {**SEEDS["exchange"][0], "response": {**MESSAGE, "usage": {"input_tokens": 2**62 - 1}}}
    out = extract("exchange", encode(tokens, True), context(True))
    assert out.rows == 0 and out.rejects == [(1, 0, "field `response.usage.input_tokens` is out of range")]


def test_numbers_beyond_64_bit_sums_reject_their_record_and_the_rest_of_the_file_loads(tmp_path):
    huge = {**SEEDS["exchange"][0], "request_id": "r_huge",
            "response": {**MESSAGE, "id": "msg_huge", "content": [], "usage": {
                name: 2**62 - 1 for name in ("input_tokens", "output_tokens", "cache_read_input_tokens")}}}
    status = {**SEEDS["exchange"][1], "request_id": "r_status", "http_status": 2**33}
    good = {**SEEDS["exchange"][1], "request_id": "r_good"}
    path = tmp_path / "big.jsonl"
    path.write_bytes(b"\n".join(encode(r, True) for r in (huge, status, good)) + b"\n")
    [report] = ingest_paths(tmp_path / "b.duckdb", [str(path)])
    assert (report.status, report.records, report.loaded, report.rejected) == ("ok", 3, 1, 2)
    con = duckdb.connect(str(tmp_path / "b.duckdb"), read_only=True)
    assert con.execute("SELECT line_no, reason FROM rejects ORDER BY line_no").fetchall() == [
        (1, "field `response.usage.input_tokens` is out of range"), (2, "field `http_status` is out of range")]
    con.close()


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                                HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_files_load_into_a_real_database_with_every_record_in_the_ledger(fmt, data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    document = b"".join(data.draw(documents(fmt)) + b"\n" for _ in range(3))
    path = folder / f"input.{fmt}"
    path.write_bytes(document)
    db = folder / "f.duckdb"
    options = LoadOptions(format=fmt, default_ts="2026-11-04T08:00:00Z", batch_id="msgbatch_fuzz", workers=1)
    try:
        [report] = ingest_paths(db, [str(path)], options)
    except IngestFailed as failed:  # every record rejected: the file failed (docs/metrics.md §2)
        [report] = failed.reports
    con = duckdb.connect(str(db), read_only=True)
    try:
        ledger = con.execute("SELECT records, attempts_loaded, duplicates, rejected, status FROM loads"
                             " ORDER BY load_id LIMIT 1").fetchone()
        records, attempts, duplicates, rejected, status = ledger
        assert status == report.status and records == report.records
        assert status == ("rejected" if records and not attempts and not duplicates and rejected else "ok")
        loaded = records - duplicates - rejected
        assert loaded >= 0 and duplicates >= 0
        assert con.execute("SELECT count(*) FROM attempts").fetchone()[0] == attempts
        assert con.execute("SELECT count(*) FROM rejects").fetchone()[0] == rejected
        lines = line_count(document)
        bad = con.execute("SELECT count(*) FROM rejects WHERE line_no NOT BETWEEN 1 AND ? OR reason = ''"
                          " OR byte_offset NOT BETWEEN 0 AND ?", [lines, len(document)]).fetchone()[0]
        assert bad == 0
        assert attempts >= loaded  # a loaded record stored at least one attempt
    finally:
        con.close()
    Path(db).unlink()
