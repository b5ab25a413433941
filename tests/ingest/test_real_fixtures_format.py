"""Records other projects wrote (tests/fixtures/real/, sources in its SOURCES.md): the anthropic SDK's streaming
fixtures and recorded cassettes, the API documentation's examples, a Bedrock invocation log, LiteLLM's own test
payloads, and spans written by the released instrumentations. For each record, every field it states is the stored
value: model, status, outcome, stop reason, category, every token count, web searches, cost from the price table."""

from __future__ import annotations

from pathlib import Path

import pytest
from builders import rows

from ingest.loader import LoadOptions, ingest_paths

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real"
TS = "2026-11-04T08:00:00Z"  # bare bodies, streams and batch results carry no time of their own
FIELDS = ("attempt_id", "requested_model", "model", "http_status", "error_class", "outcome", "stop_reason",
          "refusal_category", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens",
          "cache_write_1h_tokens", "web_search_requests", "had_output", "cost_usd")


def usd(inp: float = 0, out: float = 0, read: float = 0, w5: float = 0, *, prices: tuple) -> float:
    """The cost at (input, output, cache read, 5m write) USD per million tokens."""
    p_in, p_out, p_read, p_w5 = prices
    return (inp * p_in + out * p_out + read * p_read + w5 * p_w5) / 1e6


SONNET = (3, 15, 0.30, 3.75)
OPUS_4_7 = (5, 25, 0.50, 6.25)
OPUS_3 = (15, 75, 1.50, 18.75)
HAIKU_3 = (0.25, 1.25, 0.03, 0.30)


def row(attempt_id, requested, model, status, error_class, outcome, stop, category, inp, out, read, w5, w1, searches,
        had_output, cost) -> dict:
    return dict(zip(FIELDS, (attempt_id, requested, model, status, error_class, outcome, stop, category, inp, out,
                             read, w5, w1, searches, had_output, cost), strict=True))


CASES = {
    # the anthropic SDK's streaming fixtures (tests/lib/streaming/fixtures) and a recorded streamed cassette
    "sse/basic_response.txt": [row("msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK", "claude-3-opus-latest", "claude-opus-3",
                                   200, None, "ok", "end_turn", None, 11, 6, 0, 0, 0, 0, True,
                                   usd(11, 6, prices=OPUS_3))],
    "sse/refusal_response.txt": [  # the only text block stays empty: no output, so no charge (§3.8, §6.3)
        row("msg_01RefusalTestMessage123456789", "claude-opus-4-7", "claude-opus-4-7", 200, None, "refusal", "refusal",
            "cyber", 20, 120, 0, 0, 0, 0, False, 0.0)],
    "sse/fallback_response.txt": [
        row("msg_01FallbackModelRelabel000001#1", "claude-opus-4-7", "claude-opus-4-7", None, None, "refusal",
            "refusal", None, 0, 0, 0, 0, 0, 0, False, 0.0),
        row("msg_01FallbackModelRelabel000001#2", "claude-opus-4-7", "claude-sonnet-4-5", 200, None, "ok", "end_turn",
            None, 25, 8, 0, 0, 0, 0, True, usd(25, 8, prices=SONNET))],
    "sse/tool_use_response.txt": [row("msg_019Q1hrJbZG26Fb9BQhrkHEr", "claude-sonnet-4-20250514", "claude-sonnet-4",
                                      200, None, "ok", "tool_use", None, 377, 65, 0, 0, 0, 0, True,
                                      usd(377, 65, prices=SONNET))],
    "sse/server_tool_use_response.txt": [row("msg_01ServerToolUseInputJson", "claude-sonnet-4-20250514",
                                             "claude-sonnet-4", 200, None, "ok", "end_turn", None, 42, 40, 0, 0, 0, 0,
                                             True, usd(42, 40, prices=SONNET))],
    "sse/stop_details_response.txt": [row("msg_test", "claude-test", "claude-test", 200, None, "ok", "end_turn", None,
                                          11, 1, 0, 0, 0, 0, True, None)],  # no price for `claude-test`
    "sse/fallback_credit_response.txt": [row("msg_01FallbackCreditUsage0000001", "claude-sonnet-4-5",
                                             "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 25, 8, 0, 0, 0, 0,
                                             True, usd(25, 8, prices=SONNET))],
    "sse/compaction_response.txt": [row("msg_01CompactionEncryptedContent01", "claude-opus-4-7", "claude-opus-4-7",
                                        200, None, "ok", "end_turn", None, 30, 8, 0, 0, 0, 0, True,
                                        usd(30, 8, prices=OPUS_4_7))],
    "sse/structured_output_stream.txt": [row("msg_01LtFpmR8SbmiK2kRA5sWXNi", "claude-sonnet-4-5-20250929",
                                             "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 135, 10, 0, 0, 0,
                                             0, True, usd(135, 10, prices=SONNET))],
    # recorded cassettes' response bodies and the API documentation's examples, as `to_json()` writes them
    "anthropic/messages.jsonl": [
        row("msg_01T4jd6NyD9xGGtTPDC4ogy5", None, "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 406, 50, 0,
            0, 0, 0, True, usd(406, 50, prices=SONNET)),
        row("msg_01Egs18hRzhru3uGon3qesbA", None, "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 249, 26, 0,
            0, 0, 0, True, usd(249, 26, prices=SONNET)),
        row("msg_01EojSKby3oqoP7mb4PHsMJ7", None, "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 222, 14, 0,
            0, 0, 0, True, usd(222, 14, prices=SONNET)),
        row("msg_01234", None, None, 200, None, "ok", "end_turn", None, 100, 50, 0, 0, 0, 0, True, None),  # no model
        row(None, None, None, None, "invalid_request", "error", None, None, 0, 0, 0, 0, 0, 0, False, 0.0)],
    "batch/results.jsonl": [
        row("msg_014VwiXbi91y3JMjcpyGBHX5", None, "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 11, 36, 0, 0,
            0, 0, True, usd(11, 36, prices=SONNET) * 0.5),
        row("msg_01FqfsLoHwgeFbguDgpz48m7", None, "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 10, 34, 0, 0,
            0, 0, True, usd(10, 34, prices=SONNET) * 0.5)],
    "bedrock/invocation_logs.jsonl": [row("915a6a04-3f83-4c70-a277-7fbf7ea546b3",
                                          "anthropic.claude-3-haiku-20240307-v1:0", "claude-haiku-3", 200, None, "ok",
                                          "end_turn", None, 35, 446, 0, 0, 0, 0, True, usd(35, 446, prices=HAIKU_3))],
    # LiteLLM's own test payloads (an OpenAI deployment: no price in the table, so no cost)
    "litellm/standard_logging_payload.jsonl": [row("chatcmpl-2299b6a2-82a3-465a-b47c-04e685a2227f", "gpt-4o",
                                                   "gpt-4o", 200, None, "ok", "end_turn", None, 10, 20, 0, 0, 0, 0,
                                                   True, None)],
    "litellm/spend_logs_payload.jsonl": [row("chatcmpl-2283081b-dc89-41f6-93e6-d4f914774027", "gpt-4o", "gpt-4o",
                                             200, None, "ok", None, None, 10, 20, 0, 0, 0, 0, True, None)],
    # spans the released instrumentations wrote (no span reports web searches: NULL, cost a lower bound)
    "otel/anthropic_sdk_spans.jsonl": [
        row("msg_1", "claude-sonnet-4-5", "claude-sonnet-4-5", 200, None, "ok", "end_turn", None, 10, 5, 100, 20, 0,
            None, True, usd(10, 5, 100, 20, prices=SONNET)),
        row("msg_2", "claude-sonnet-4-5", "claude-sonnet-4-5", 200, None, "refusal", "refusal", None, 10, 0, 0, 0, 0,
            None, False, 0.0),
        row("req_3", "claude-sonnet-4-5", "claude-sonnet-4-5", 529, "overloaded", "error", None, None, 0, 0, 0, 0, 0,
            None, False, 0.0)],
}
# OpenInference's span around each SDK span: the same three calls. OpenLLMetry's spans beside the SDK's (separate
# traces): the same three calls too, its failed call's span joined to the SDK's by the request id its status
# message names (DECISIONS.md, Nested spans of one call)
CASES["otel/openinference_spans.jsonl"] = CASES["otel/anthropic_sdk_spans.jsonl"]
CASES["otel/openllmetry_spans.jsonl"] = CASES["otel/anthropic_sdk_spans.jsonl"]
OPTIONS = {"sse": dict(format="sse", default_ts=TS), "anthropic": dict(format="anthropic", default_ts=TS),
           "batch": dict(format="batch", default_ts=TS)}


def test_there_are_at_least_25_real_records_and_each_file_has_a_source():
    sources = (REAL / "SOURCES.md").read_text(encoding="utf-8")
    files = sorted(str(p.relative_to(REAL)) for p in REAL.rglob("*") if p.is_file() and p.name != "SOURCES.md")
    assert files == sorted(CASES)
    assert all(f"`{name}`" in sources for name in files)
    records = sum(len(p.read_text().splitlines()) for p in REAL.rglob("*.jsonl")) + len(list(REAL.glob("sse/*")))
    assert records >= 25


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_field_a_real_record_states_is_stored(tmp_path, db, name):
    [report] = ingest_paths(db, [str(REAL / name)], LoadOptions(**OPTIONS.get(name.split("/")[0], {})))
    assert report.rejected == 0, report.reasons
    def order(r: dict) -> tuple:  # what tells a file's attempts apart, the content ids aside
        return tuple(str(r[k]) for k in ("outcome", "stop_reason", "http_status", "model", "input_tokens",
                                          "output_tokens"))

    got = sorted(({k: r[k] for k in FIELDS} for r in rows(db)), key=order)
    want = sorted(CASES[name], key=order)
    assert len(got) == len(want)
    for stored, stated in zip(got, want, strict=True):
        for key in FIELDS:
            if key == "attempt_id" and stated[key] is None:
                continue  # an id made from the record's content (or its span)
            if key == "cost_usd" and stated[key] is not None:
                assert stored[key] == pytest.approx(stated[key], abs=1e-12), (name, key, stored)
            else:
                assert stored[key] == stated[key], (name, key, stored)
