"""LiteLLM StandardLoggingPayload lines and SpendLogs rows (docs/metrics.md §3.5) parsed into exactly the right rows:
`trace_id` chains retries and fallbacks, `prompt_tokens` is stored without the cache tokens it includes,
and refusals that LiteLLM reports as `content_filter` are recognised."""

from __future__ import annotations

import json

import pytest
from builders import prompt_fp, query, rows, token_fp, write_jsonl

from ingest.detect import detect_format
from ingest.loader import LoadOptions, ingest_paths

START = 1793779200.0  # 2026-11-04T08:00:00Z
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]


def usage_object(prompt: int, completion: int, read: int = 0, write: int = 0, w1h: int = 0) -> dict:
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "cache_read_input_tokens": read, "cache_creation_input_tokens": write,
            "prompt_tokens_details": {"cached_tokens": read, "cache_creation_tokens": write,
                                      "cache_creation_token_details": {"ephemeral_5m_input_tokens": write - w1h,
                                                                       "ephemeral_1h_input_tokens": w1h}}}


def payload(call_id: str, trace_id: str, start: float = START, *, model: str = "claude-sonnet-4-5-20250929",
            group: str = "claude-sonnet", provider: str = "anthropic", status: str = "success",
            usage: dict | None = None, finish: str = "stop", **extra) -> dict:
    usage = usage or usage_object(100, 20)
    record = {
        "id": call_id, "trace_id": trace_id, "call_type": "acompletion", "stream": False, "response_cost": 0.001,
        "status": status, "custom_llm_provider": provider, "total_tokens": usage["total_tokens"],
        "prompt_tokens": usage["prompt_tokens"], "completion_tokens": usage["completion_tokens"],
        "startTime": start, "endTime": start + 1.5, "completionStartTime": start + 0.4, "model": model,
        "model_id": "deploy-1", "model_group": group, "api_base": "https://api.anthropic.com/v1/messages",
        "metadata": {"user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
                     "user_api_key_alias": "team-key", "user_api_key_user_id": "u-1", "usage_object": usage},
        "cache_hit": None, "cache_key": None, "saved_cache_cost": 0.0, "request_tags": [], "end_user": "",
        "requester_ip_address": "10.0.0.1", "messages": MESSAGES,
        "response": {"id": call_id, "object": "chat.completion", "model": model, "choices": [
            {"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "an answer"}}]},
        "error_str": None, "error_information": {"error_code": "", "error_class": "", "llm_provider": ""},
        "model_parameters": {"max_tokens": 512, "temperature": 0.2},
        "hidden_params": {"model_id": "deploy-1", "cache_key": None, "response_cost": "0.001",
                          "litellm_model_name": model, "usage_object": usage},
    }
    record.update(extra)
    return record


def failure(call_id: str, trace_id: str, start: float, code: str, error_class: str, **extra) -> dict:
    return payload(call_id, trace_id, start, status="failure", usage=usage_object(0, 0), response=None,
                   error_str="the provider said no",
                   error_information={"error_code": code, "error_class": error_class, "llm_provider": "anthropic",
                                      "error_message": "the provider said no", "traceback": "Traceback ..."},
                   **extra)


def load(tmp_path, db, lines, **options):
    path = write_jsonl(tmp_path / "litellm.jsonl", lines)
    [report] = ingest_paths(db, [str(path)], LoadOptions(**options))
    return report, {r["attempt_id"]: r for r in rows(db)}


def test_payload_fields_and_cache_tokens_subtracted_from_prompt_tokens(tmp_path, db):
    line = payload("chatcmpl-1", "trace-1", usage=usage_object(1500, 80, read=1000, write=300), stream=True)
    report, by_id = load(tmp_path, db, [line], workload="gateway")
    assert (report.format, report.records, report.rejected) == ("litellm", 1, 0)
    row = by_id["chatcmpl-1"]
    assert (row["ts"], row["latency_ms"], row["workload"], row["surface"], row["chain_id"]) == (
        START, 1500.0, "gateway", "anthropic", "trace-1")
    assert (row["requested_model"], row["model"], row["request_id"], row["http_status"]) == (
        "claude-sonnet", "claude-sonnet-4-5", "chatcmpl-1", 200)
    # docs/metrics.md §3.5: prompt_tokens 1500 includes 1000 cache reads and 300 cache writes
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"],
            row["cache_write_1h_tokens"], row["output_tokens"]) == (200, 1000, 300, 0, 80)
    assert (row["outcome"], row["stop_reason"], row["had_output"], row["is_stream"]) == ("ok", "end_turn", True, True)
    assert row["prompt_fp"] == prompt_fp({"messages": MESSAGES})
    assert row["cost_usd"] == pytest.approx((200 * 3 + 300 * 3.75 + 1000 * 0.30 + 80 * 15) / 1e6)


def test_cache_write_breakdown_and_usage_without_writes_in_prompt_tokens(tmp_path, db):
    one_hour = payload("c-2", "t-2", usage=usage_object(900, 5, read=100, write=600, w1h=400))
    older = payload("c-3", "t-3", start=START + 10, usage={
        "prompt_tokens": 150, "completion_tokens": 5, "total_tokens": 155, "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 500})  # writes left out of prompt_tokens: 150 < 100 + 500
    _, by_id = load(tmp_path, db, [one_hour, older])
    assert tuple(by_id["c-2"][k] for k in ("input_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")) == (
        200, 200, 400)
    assert tuple(by_id["c-3"][k] for k in ("input_tokens", "cache_read_tokens", "cache_write_5m_tokens")) == (
        50, 100, 500)


def test_trace_id_chains_a_failure_and_its_fallback(tmp_path, db):
    lines = [
        failure("f-1", "trace-9", START, "529", "InternalServerError", model="claude-opus-4-8", group="claude-opus"),
        payload("c-9", "trace-9", START + 3, model="claude-sonnet-4-5-20250929", group="claude-opus"),
    ]
    _, by_id = load(tmp_path, db, lines)
    failed, served = by_id["f-1"], by_id["c-9"]
    assert (failed["outcome"], failed["error_class"], failed["http_status"], failed["model"]) == (
        "error", "overloaded", 529, "claude-opus-4-8")
    assert failed["input_tokens"] == 0 and failed["had_output"] is False and failed["cost_usd"] == 0
    assert failed["chain_id"] == served["chain_id"] == "trace-9"
    assert (served["attempt_index"], served["fallback_mode"], served["trigger"]) == (2, "client", "overloaded")


def test_errors_without_a_status_are_classed_by_exception_name(tmp_path, db):
    lines = [failure("f-2", "t-a", START, "", "RateLimitError"),
             failure("f-3", "t-b", START + 1, "", "Timeout"),
             failure("f-4", "t-c", START + 2, "", "APIConnectionError")]
    _, by_id = load(tmp_path, db, lines)
    assert [(by_id[k]["outcome"], by_id[k]["error_class"]) for k in ("f-2", "f-3", "f-4")] == [
        ("error", "rate_limit"), ("timeout", "timeout"), ("connection", "connection")]


def test_without_a_status_only_filled_error_information_is_a_failure(tmp_path, db):
    ok = payload("s-1", "t-s1")
    del ok["status"]  # older payloads: no `status`, an empty `error_information` on success
    failed = failure("s-2", "t-s2", START + 1, "529", "OverloadedError")
    del failed["status"]
    _, by_id = load(tmp_path, db, [ok, failed])
    assert (by_id["s-1"]["outcome"], by_id["s-1"]["error_class"]) == ("ok", None)
    assert (by_id["s-2"]["outcome"], by_id["s-2"]["error_class"], by_id["s-2"]["http_status"]) == (
        "error", "overloaded", 529)


@pytest.mark.parametrize(("name", "outcome", "error_class"), [
    ("anthropic.RequestTooLargeError", "error", "invalid_request"),
    ("anthropic.DeadlineExceededError", "timeout", "timeout"),
    ("anthropic.OverloadedError", "error", "overloaded"),
])
def test_sdk_exception_names_get_their_class(tmp_path, db, name, outcome, error_class):
    _, by_id = load(tmp_path, db, [failure("f-9", "t-9", START, "", name)])
    assert (by_id["f-9"]["outcome"], by_id["f-9"]["error_class"]) == (outcome, error_class)


def test_an_anthropic_response_logged_without_usage_keeps_the_payloads_counts_and_its_hops_are_server_side(
        tmp_path, db):
    raw = {"id": "msg_raw2", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
           "content": [{"type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-8"},
                        "trigger": {"type": "overloaded_error"}}, {"type": "text", "text": "x"}],
           "stop_reason": "end_turn"}
    line = payload("r-4", "t-r4", START, call_type="anthropic_messages", model="claude-opus-4-8", response=raw,
                   usage=usage_object(100, 20))
    _, by_id = load(tmp_path, db, [line])
    hop1, hop2 = by_id["msg_raw2#1"], by_id["msg_raw2#2"]
    assert (hop2["input_tokens"], hop2["output_tokens"]) == (100, 20)
    assert hop1["fallback_mode"] == hop2["fallback_mode"] == "server_side"


def test_content_filter_is_a_refusal_and_a_raw_anthropic_response_gives_its_details(tmp_path, db):
    claude = payload("r-1", "t-r1", finish="content_filter", usage=usage_object(300, 0))
    claude["response"]["choices"][0]["message"]["content"] = None
    other = payload("r-2", "t-r2", START + 1, finish="content_filter", provider="openai", model="gpt-5",
                    group="gpt-5")
    raw = {"id": "msg_raw1", "type": "message", "role": "assistant", "model": "claude-opus-4-8", "content": [],
           "stop_reason": "refusal", "stop_details": {"type": "refusal", "category": "bio", "explanation": "x",
                                                     "fallback_credit_token": "fct_litellm_1"},
           "usage": {"input_tokens": 40, "output_tokens": 0, "cache_read_input_tokens": 2000}}
    messages_api = payload("r-3", "t-r3", START + 2, call_type="anthropic_messages", model="claude-opus-4-8",
                           response=raw, usage=usage_object(2040, 0, read=2000))
    _, by_id = load(tmp_path, db, [claude, other, messages_api])
    assert (by_id["r-1"]["outcome"], by_id["r-1"]["stop_reason"], by_id["r-1"]["had_output"]) == (
        "refusal", "refusal", False)
    assert by_id["r-1"]["refusal_category"] is None and by_id["r-1"]["cost_usd"] == 0
    # docs/metrics.md §3.8: every stop reason in Anthropic's words, whoever served
    assert (by_id["r-2"]["outcome"], by_id["r-2"]["stop_reason"], by_id["r-2"]["surface"]) == (
        "refusal", "refusal", "openai")
    row = by_id["msg_raw1"]
    assert (row["outcome"], row["refusal_category"]) == ("refusal", "bio")
    assert row["credit_minted_fp"] == token_fp("fct_litellm_1")
    assert (row["input_tokens"], row["cache_read_tokens"], row["request_id"]) == (40, 2000, "r-3")


def test_spend_logs_rows(tmp_path, db):
    meta = {"user_api_key": "hashed", "usage_object": usage_object(1200, 60, read=1000), "status": "success",
            "error_information": None, "spend_logs_metadata": {"note": "x"}}
    row_ok = {"request_id": "chatcmpl-s1", "call_type": "acompletion", "api_key": "88dc28d0f030c55e",
              "spend": 0.0021, "total_tokens": 1260, "prompt_tokens": 1200, "completion_tokens": 60,
              "startTime": "2026-11-04 08:00:10.250+00", "endTime": "2026-11-04 08:00:12.000+00",
              "model": "us.anthropic.claude-sonnet-4-5-20250929-v1:0", "model_group": "sonnet",
              "custom_llm_provider": "bedrock", "user": "u", "metadata": json.dumps(meta), "cache_hit": "False",
              "cache_key": "", "request_tags": "[]", "session_id": "trace-s", "status": "success",
              "messages": json.dumps(MESSAGES), "response": "{}"}
    failed_meta = {"usage_object": None, "error_information": {"error_code": "429", "error_class": "RateLimitError"}}
    row_failed = {**row_ok, "request_id": "chatcmpl-s0", "startTime": "2026-11-04 08:00:05+00",
                  "endTime": "2026-11-04 08:00:06+00", "prompt_tokens": 0, "completion_tokens": 0,
                  "metadata": json.dumps(failed_meta), "status": "failure", "messages": "{}"}
    _, by_id = load(tmp_path, db, [row_failed, row_ok])
    ok, failed = by_id["chatcmpl-s1"], by_id["chatcmpl-s0"]
    assert (ok["ts"], ok["latency_ms"], ok["surface"], ok["model"], ok["requested_model"]) == (
        START + 10.25, 1750.0, "bedrock", "claude-sonnet-4-5", "sonnet")
    assert (ok["input_tokens"], ok["cache_read_tokens"], ok["output_tokens"], ok["outcome"]) == (200, 1000, 60, "ok")
    assert ok["prompt_fp"] == prompt_fp({"messages": MESSAGES}) and ok["had_output"] is True
    assert (failed["outcome"], failed["error_class"], failed["http_status"], failed["prompt_fp"]) == (
        "error", "rate_limit", 429, None)
    assert ok["chain_id"] == failed["chain_id"] == "trace-s" and ok["attempt_index"] == 2


def test_redacted_messages_give_no_fingerprint(tmp_path, db):
    a = payload("x-1", "t-x1", messages="redacted-by-litellm", response="redacted-by-litellm")
    b = payload("x-2", "t-x2", START + 1, messages=[], response=None)
    mangled = payload("x-3", "t-x3", START + 2, messages='[{"role": "us', response='{"choices": [')
    _, by_id = load(tmp_path, db, [a, b, mangled])
    assert by_id["x-1"]["prompt_fp"] is None and by_id["x-2"]["prompt_fp"] is None
    assert by_id["x-3"]["prompt_fp"] is None and by_id["x-3"]["outcome"] == "ok"  # content unreadable, call kept
    assert by_id["x-1"]["had_output"] is True and by_id["x-1"]["stop_reason"] is None  # from its 20 output tokens


def test_nothing_lost_and_non_calls_rejected(tmp_path, db):
    negative = payload("n-2", "t", prompt_tokens=-5)
    lines = [
        payload("n-1", "t"),
        {**payload("n-3", "t"), "call_type": "aembedding"},
        {**payload("n-4", "t"), "cache_hit": True},
        negative,
        {**payload("n-5", "t"), "startTime": "soon"},
        {**payload("n-6", "t"), "metadata": "{not json"},
        payload("n-1", "t"),
    ]
    path = write_jsonl(tmp_path / "litellm.jsonl", lines)
    [report] = ingest_paths(db, [str(path)], LoadOptions(format="litellm"))
    assert (report.records, report.loaded, report.duplicates, report.rejected) == (7, 1, 1, 5)
    assert query(db, "SELECT line_no, reason FROM rejects ORDER BY line_no") == [
        (2, "not a chat or completion call (`call_type`)"),
        (3, "a LiteLLM cache hit, not a model call (`cache_hit`)"),
        (4, "negative token count in `prompt_tokens`"),
        (5, "unparseable timestamp in `startTime`"),
        (6, "invalid JSON in `metadata`"),
    ]


def test_detected_by_its_keys():
    assert detect_format(json.dumps(payload("d", "t")).encode() + b"\n") == "litellm"
    big = json.dumps({"id": "d", "trace_id": "t", "call_type": "acompletion", "startTime": START,
                      "messages": [{"role": "user", "content": "y" * 100_000}]}).encode()
    assert detect_format(big[:65536]) == "litellm"
