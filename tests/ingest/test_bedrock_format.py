"""Bedrock model invocation log records (docs/metrics.md §3.5) parsed into exactly the right rows.

Fixtures follow the documented record (`schemaType: ModelInvocationLog`, `input`/`output` with
`inputBodyJson`/`outputBodyJson`, token counts, `errorCode`) and the Converse API shapes.
"""

from __future__ import annotations

import json

import pytest
from builders import fp, prompt_fp, query, rows, token_fp, usage, write_jsonl

from ingest.detect import detect_format
from ingest.loader import LoadOptions, ingest_paths

TS = "2026-11-04T08:00:00Z"
EPOCH = 1793779200.0
PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
ANTHROPIC_BODY = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 512, "system": "be brief",
                  "messages": [{"role": "user", "content": "hello"}]}


def record(request_id: str, operation: str = "InvokeModel", model_id: str = PROFILE, ts: str = TS,
           inp: dict | None = None, out: dict | None = None, **extra) -> dict:
    rec = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": ts, "accountId": "123456789012",
           "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/app/s"}, "region": "us-east-1",
           "requestId": request_id, "operation": operation, "modelId": model_id}
    if inp is not None:
        rec["input"] = inp
    if out is not None:
        rec["output"] = out
    rec.update(extra)
    return rec


def anthropic_message(mid: str, stop_reason: str = "end_turn", usage_: dict | None = None, **extra) -> dict:
    return {"id": mid, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "text", "text": "an answer"}], "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage_ or usage(10, 5), **extra}


def load(tmp_path, db, records, **options):
    path = write_jsonl(tmp_path / "bedrock.jsonl", records)
    [report] = ingest_paths(db, [str(path)], LoadOptions(**options))
    return report, {r["request_id"]: r for r in rows(db)}


def test_invoke_model_with_cache_tokens_reads_the_anthropic_body(tmp_path, db):
    body_usage = usage(120, 50, read=1000, w5=200)
    rec = record("req-1", inp={"inputContentType": "application/json", "inputBodyJson": ANTHROPIC_BODY,
                               "inputTokenCount": 120, "cacheReadInputTokenCount": 1000,
                               "cacheWriteInputTokenCount": 200},
                 out={"outputContentType": "application/json", "outputTokenCount": 50,
                      "outputBodyJson": anthropic_message("msg_bdrk_01", usage_=body_usage)})
    report, by_id = load(tmp_path, db, [rec])
    assert (report.format, report.records, report.rejected) == ("bedrock", 1, 0)
    row = by_id["req-1"]
    assert row["attempt_id"] == "msg_bdrk_01" and row["surface"] == "bedrock" and row["ts"] == EPOCH
    assert row["requested_model"] == PROFILE and row["model"] == "claude-sonnet-4-5"
    assert (row["http_status"], row["outcome"], row["stop_reason"], row["is_stream"]) == (200, "ok", "end_turn", False)
    # docs/metrics.md §3.5: never double count — 120 uncached, not 120 + 1000 + 200
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"],
            row["cache_write_1h_tokens"], row["output_tokens"]) == (120, 1000, 200, 0, 50)
    assert row["prompt_fp"] == prompt_fp(ANTHROPIC_BODY) and row["workload"] == "default"
    assert row["cost_usd"] == pytest.approx((120 * 3 + 200 * 3.75 + 1000 * 0.30 + 50 * 15) / 1e6)


def test_record_counts_alone_are_not_added_to_the_cache_counts(tmp_path, db):
    """Bodies offloaded to S3: usage comes from the record, whose inputTokenCount excludes cache."""
    rec = record("req-s3", inp={"inputContentType": "application/json",
                                "inputBodyS3Path": "s3://logs/data/req-s3/input.json.gz", "inputTokenCount": 500,
                                "cacheReadInputTokenCount": 100, "cacheWriteInputTokenCount": 40},
                 out={"outputContentType": "application/json",
                      "outputBodyS3Path": "s3://logs/data/req-s3/output.json.gz", "outputTokenCount": 20})
    titan = record("req-titan", model_id="amazon.titan-text-express-v1",
                   inp={"inputBodyJson": {"inputText": "User: Hello", "textGenerationConfig": {"maxTokenCount": 64}},
                        "inputTokenCount": 7},
                   out={"outputBodyJson": {"results": [{"outputText": "Hi", "tokenCount": 3}]}, "outputTokenCount": 3})
    _, by_id = load(tmp_path, db, [rec, titan])
    # another provider's body: tokens from the record, and no prompt fingerprint (nothing would tell prompts apart)
    assert (by_id["req-titan"]["input_tokens"], by_id["req-titan"]["output_tokens"]) == (7, 3)
    assert by_id["req-titan"]["prompt_fp"] is None and by_id["req-titan"]["model"] == "amazon.titan-text-express"
    row = by_id["req-s3"]
    assert row["attempt_id"] == "req-s3" and row["prompt_fp"] is None and row["outcome"] == "ok"
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"], row["output_tokens"]) == (
        500, 100, 40, 20)
    assert row["had_output"] is True and row["model"] == "claude-sonnet-4-5"


def test_refusal_with_category_and_credit_token(tmp_path, db):
    refused = anthropic_message("msg_bdrk_r", stop_reason="refusal", usage_=usage(300, 0),
                                stop_details={"type": "refusal", "category": "cyber", "explanation": "x",
                                              "fallback_credit_token": "fct_bedrock_1"})
    refused["content"] = []
    rec = record("req-r", model_id="anthropic.claude-opus-4-8-v1:0",
                 inp={"inputBodyJson": ANTHROPIC_BODY, "inputTokenCount": 300},
                 out={"outputBodyJson": refused, "outputTokenCount": 0})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-r"]
    assert (row["outcome"], row["stop_reason"], row["refusal_category"]) == ("refusal", "refusal", "cyber")
    assert row["credit_minted_fp"] == token_fp("fct_bedrock_1") and row["had_output"] is False
    assert row["cost_usd"] == 0  # refused before any output: not billed


def test_converse_and_its_guardrail_stop(tmp_path, db):
    messages = [{"role": "user", "content": [{"text": "why is the sky blue"}]}]
    system = [{"text": "be brief"}]
    ok = record("req-c1", operation="Converse", model_id="global.anthropic.claude-haiku-4-5-20251001-v1:0",
                inp={"inputContentType": "application/json", "inputTokenCount": 35,
                     "inputBodyJson": {"messages": messages, "system": system,
                                       "inferenceConfig": {"maxTokens": 512}}},
                out={"outputContentType": "application/json", "outputTokenCount": 446, "outputBodyJson": {
                    "output": {"message": {"role": "assistant", "content": [{"text": "because"}]}},
                    "stopReason": "end_turn", "metrics": {"latencyMs": 3640},
                    "usage": {"inputTokens": 35, "outputTokens": 446, "totalTokens": 2481,
                              "cacheReadInputTokens": 2000, "cacheWriteInputTokens": 0}}})
    blocked = record("req-c2", operation="Converse", ts="2026-11-04T08:00:05Z",
                     inp={"inputBodyJson": {"messages": messages}, "inputTokenCount": 12},
                     out={"outputTokenCount": 0, "outputBodyJson": {
                         "output": {"message": {"role": "assistant", "content": []}},
                         "stopReason": "guardrail_intervened",
                         "usage": {"inputTokens": 12, "outputTokens": 0, "totalTokens": 12}}})
    _, by_id = load(tmp_path, db, [ok, blocked])
    row = by_id["req-c1"]
    assert row["model"] == "claude-haiku-4-5"
    assert row["requested_model"] == "global.anthropic.claude-haiku-4-5-20251001-v1:0"
    assert (row["outcome"], row["stop_reason"], row["latency_ms"], row["had_output"]) == ("ok", "end_turn", 3640, True)
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (35, 2000, 446)
    assert row["prompt_fp"] == fp({"messages": messages, "system": system, "tools": None})
    row = by_id["req-c2"]
    # docs/metrics.md §3.8: a guardrail intervention is kept as given and is no refusal
    assert (row["outcome"], row["stop_reason"], row["had_output"]) == ("ok", "guardrail_intervened", False)
    assert row["prompt_fp"] == fp({"messages": messages, "system": None, "tools": None})


def test_converse_stream_events(tmp_path, db):
    events = [{"messageStart": {"role": "assistant"}},
              {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hel"}}},
              {"contentBlockStop": {"contentBlockIndex": 0}},
              {"messageStop": {"stopReason": "max_tokens"}},
              {"metadata": {"usage": {"inputTokens": 40, "outputTokens": 64, "cacheReadInputTokens": 8,
                                      "cacheWriteInputTokens": 16}, "metrics": {"latencyMs": 950}}}]
    rec = record("req-cs", operation="ConverseStream", inp={"inputTokenCount": 40},
                 out={"outputBodyJson": events, "outputTokenCount": 64})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-cs"]
    assert (row["is_stream"], row["outcome"], row["stop_reason"], row["latency_ms"]) == (True, "ok", "max_tokens", 950)
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"], row["output_tokens"]) == (
        40, 8, 16, 64)


def test_invoke_model_stream_chunks_rebuild_the_message(tmp_path, db):
    chunks = [
        {"type": "message_start", "message": {"id": "msg_bdrk_s", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5-20250929", "content": [],
                                              "stop_reason": None,
                                              "usage": {"input_tokens": 20, "cache_read_input_tokens": 700,
                                                        "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 30}},
        {"type": "message_stop", "amazon-bedrock-invocationMetrics": {
            "inputTokenCount": 20, "outputTokenCount": 30, "invocationLatency": 812, "firstByteLatency": 300}},
    ]
    rec = record("req-st", operation="InvokeModelWithResponseStream",
                 inp={"inputBodyJson": ANTHROPIC_BODY, "inputTokenCount": 20, "cacheReadInputTokenCount": 700},
                 out={"outputBodyJson": chunks, "outputTokenCount": 30})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-st"]
    assert (row["attempt_id"], row["is_stream"], row["latency_ms"], row["stop_reason"]) == (
        "msg_bdrk_s", True, 812, "end_turn")
    # usage in message_delta is cumulative; the cache read counted once
    assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (20, 700, 30)


def test_an_invoke_stream_failing_after_a_block_keeps_its_message_id_and_had_output(tmp_path, db):
    chunks = [
        {"type": "message_start", "message": {"id": "msg_bdrk_f", "type": "message", "role": "assistant",
                                              "model": "claude-sonnet-4-5-20250929", "content": [],
                                              "usage": {"input_tokens": 20, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "par"}},
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
    ]
    rec = record("req-sf", operation="InvokeModelWithResponseStream", inp={"inputBodyJson": ANTHROPIC_BODY},
                 out={"outputBodyJson": chunks})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-sf"]
    assert (row["attempt_id"], row["outcome"], row["error_class"], row["had_output"]) == (
        "msg_bdrk_f", "error", "overloaded", True)
    assert (row["input_tokens"], row["output_tokens"]) == (20, 1)


def test_converse_stream_exception_event_fails_the_call(tmp_path, db):
    events = [{"messageStart": {"role": "assistant"}},
              {"contentBlockDelta": {"contentBlockIndex": 0, "delta": {"text": "Hel"}}},
              {"internalServerException": {"message": "boom"}}]
    rec = record("req-cx", operation="ConverseStream", inp={"inputTokenCount": 40},
                 out={"outputBodyJson": events, "outputTokenCount": 3})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-cx"]
    assert (row["outcome"], row["error_class"], row["http_status"], row["had_output"]) == (
        "error", "server_error", 200, True)
    assert (row["input_tokens"], row["output_tokens"]) == (40, 3)


def test_converse_cache_details_split_writes_by_ttl(tmp_path, db):
    body = {"output": {"message": {"role": "assistant", "content": [{"text": "ok"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 4, "outputTokens": 2, "cacheWriteInputTokens": 1000,
                      "cacheDetails": [{"ttl": "1h", "inputTokens": 600}, {"ttl": "5m", "inputTokens": 400}]}}
    rec = record("req-cd", operation="Converse", inp={"inputTokenCount": 4}, out={"outputBodyJson": body})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-cd"]
    assert (row["input_tokens"], row["cache_write_5m_tokens"], row["cache_write_1h_tokens"]) == (4, 400, 600)


def test_a_non_anthropic_invoke_body_takes_the_records_counts(tmp_path, db):
    nova = {"output": {"message": {"role": "assistant", "content": [{"text": "hi"}]}}, "stopReason": "end_turn",
            "usage": {"inputTokens": 12, "outputTokens": 7}}
    rec = record("req-nova", model_id="us.amazon.nova-pro-v1:0", inp={"inputTokenCount": 12},
                 out={"outputBodyJson": nova, "outputTokenCount": 7})
    _, by_id = load(tmp_path, db, [rec])
    row = by_id["req-nova"]
    assert (row["input_tokens"], row["output_tokens"], row["had_output"], row["outcome"]) == (12, 7, True, "ok")


def test_the_request_id_may_be_spelled_request_id(tmp_path, db):
    rec = record("unused", inp={"inputTokenCount": 5}, out={"outputTokenCount": 5})
    rec["request_id"] = rec.pop("requestId")
    _, by_id = load(tmp_path, db, [rec])
    assert by_id["unused"]["attempt_id"] == "unused"


@pytest.mark.parametrize(("code", "status", "error_class", "outcome"), [
    ("ValidationException", 400, "invalid_request", "error"),
    ("ServiceQuotaExceededException", 400, "invalid_request", "error"),
    ("AccessDeniedException", 403, "permission", "error"),
    ("UnrecognizedClientException", 403, "permission", "error"),
    ("ResourceNotFoundException", 404, "not_found", "error"),
    ("ModelTimeoutException", 408, "timeout", "timeout"),
    ("ModelErrorException", 424, "invalid_request", "error"),
    ("ThrottlingException", 429, "rate_limit", "error"),
    ("ModelNotReadyException", 429, "rate_limit", "error"),
    ("InternalServerException", 500, "server_error", "error"),
    ("ServiceUnavailableException", 503, "server_error", "error"),
])
def test_an_error_code_gets_its_documented_status_and_that_statuss_class(tmp_path, db, code, status, error_class,
                                                                          outcome):
    _, by_id = load(tmp_path, db, [record("req-x", errorCode=code)])
    row = by_id["req-x"]
    assert (row["http_status"], row["error_class"], row["outcome"]) == (status, error_class, outcome)


def test_errors_are_classed_by_error_code(tmp_path, db):
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-8-v1:0"
    throttled = record("req-e1", model_id=arn, inp={"inputBodyJson": ANTHROPIC_BODY}, errorCode="ThrottlingException")
    slow = record("req-e2", ts="2026-11-04T08:01:00Z", errorCode="ModelTimeoutException")
    odd = record("req-e3", ts="2026-11-04T08:02:00Z", errorCode="SomethingNewException")
    _, by_id = load(tmp_path, db, [throttled, slow, odd])
    row = by_id["req-e1"]
    assert (row["outcome"], row["error_class"], row["http_status"], row["model"]) == (
        "error", "rate_limit", 429, "claude-opus-4-8")
    assert row["requested_model"] == arn and row["input_tokens"] == 0 and row["cost_usd"] == 0
    assert row["prompt_fp"] == prompt_fp(ANTHROPIC_BODY) and row["attempt_id"] == "req-e1"
    assert (by_id["req-e2"]["outcome"], by_id["req-e2"]["error_class"]) == ("timeout", "timeout")
    assert (by_id["req-e3"]["error_class"], by_id["req-e3"]["http_status"]) == ("server_error", None)


def test_request_metadata_names_workload_session_and_chain(tmp_path, db):
    first = record("req-m1", inp={"inputTokenCount": 5}, out={"outputTokenCount": 5},
                   requestMetadata={"workload": "support-chat", "session_id": "sess-9", "chain_id": "c-1",
                                    "team": "x"})
    second = record("req-m2", ts="2026-11-04T08:00:03Z", inp={"inputTokenCount": 5}, out={"outputTokenCount": 5},
                    requestMetadata={"workload": "support-chat", "session_id": "sess-9", "chain_id": "c-1"})
    _, by_id = load(tmp_path, db, [first, second], workload="cli-workload")
    assert {r["workload"] for r in by_id.values()} == {"support-chat"}
    assert by_id["req-m1"]["session_id"] == "sess-9" and by_id["req-m2"]["chain_id"] == "c-1"
    assert (by_id["req-m1"]["attempt_index"], by_id["req-m2"]["attempt_index"]) == (1, 2)


def test_bodies_logged_as_json_text_are_decoded(tmp_path, db):
    rec = record("req-j", inp={"inputBodyJson": json.dumps(ANTHROPIC_BODY)},
                 out={"outputBodyJson": json.dumps(anthropic_message("msg_bdrk_j"))})
    _, by_id = load(tmp_path, db, [rec])
    assert by_id["req-j"]["attempt_id"] == "msg_bdrk_j" and by_id["req-j"]["prompt_fp"] == prompt_fp(ANTHROPIC_BODY)


def test_bad_records_are_rejected_with_the_field_and_the_rest_loads(tmp_path, db):
    lines = [
        record("ok-1", inp={"inputTokenCount": 1}, out={"outputTokenCount": 1}),
        record("neg", inp={"inputTokenCount": -3}, out={"outputTokenCount": 1}),
        record("bad-ts", ts="last tuesday"),
        record("bad-body", inp={"inputBodyJson": 7}),
        {k: v for k, v in record("no-ts").items() if k != "timestamp"},
        record("ok-1", inp={"inputTokenCount": 1}, out={"outputTokenCount": 1}),  # the same call again
        {**record("other"), "schemaType": "SomethingElse"},
    ]
    path = write_jsonl(tmp_path / "bedrock.jsonl", lines)
    [report] = ingest_paths(db, [str(path)], LoadOptions(format="bedrock"))
    assert (report.records, report.loaded, report.duplicates, report.rejected) == (7, 1, 1, 5)
    assert report.records == report.loaded + report.duplicates + report.rejected
    assert query(db, "SELECT line_no, reason FROM rejects ORDER BY line_no") == [
        (2, "negative token count in `input.inputTokenCount`"),
        (3, "unparseable timestamp in `timestamp`"),
        (4, "field `input.inputBodyJson` has the wrong type (expected an object)"),
        (5, "no timestamp"),
        (7, "not a model invocation log record (`schemaType`)"),
    ]


def test_detected_from_the_record_even_when_the_first_line_is_longer_than_the_head():
    small = json.dumps(record("r")).encode()
    assert detect_format(small + b"\n") == "bedrock"
    huge = json.dumps(record("r", inp={"inputBodyJson": {**ANTHROPIC_BODY, "system": "x" * 100_000}})).encode()
    assert detect_format(huge[:65536]) == "bedrock"
