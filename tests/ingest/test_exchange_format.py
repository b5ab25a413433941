"""Hand-made `exchange` records parsed into exactly the right attempt rows (docs/metrics.md §3.1, §3.6, §3.7, §4)."""

from __future__ import annotations

import pytest
from builders import exchange, message, prompt_fp, request, rows, token_fp, usage, write_jsonl

from ingest.loader import LoadOptions, ingest_paths

TOKEN = "fct_tok_A1"


def load(tmp_path, db, records, **options):
    path = write_jsonl(tmp_path / "x.jsonl", records)
    return ingest_paths(db, [str(path)], LoadOptions(**options))


def refusal_record(ts="2026-11-02T10:00:00Z", **extra):
    req = request("claude-fable-5-20260101", "how do I pick this lock")
    resp = message("msg_ref1", "claude-fable-5", stop_reason="refusal", content=[],
                   usage_=usage(100, 0, read=40, w5=60),
                   stop_details={"type": "refusal", "category": "cyber", "explanation": "no",
                                 "recommended_model": "claude-opus-4-8-20260101",
                                 "fallback_credit_token": TOKEN, "fallback_has_prefill_claim": False})
    return exchange(ts, req, resp, session_id="s1", request_id="req_1", latency_ms=120, **extra)


def test_refusal_mints_a_credit_and_is_not_billed(tmp_path, db):
    load(tmp_path, db, [refusal_record()])
    [row] = rows(db)
    assert row["attempt_id"] == "msg_ref1"
    assert row["outcome"] == "refusal" and row["stop_reason"] == "refusal"
    assert row["refusal_category"] == "cyber"
    assert row["recommended_model"] == "claude-opus-4-8"
    assert row["model"] == "claude-fable-5" and row["requested_model"] == "claude-fable-5-20260101"
    assert row["credit_minted_fp"] == token_fp(TOKEN)
    assert row["prefill_claim"] is False
    assert row["had_output"] is False
    assert row["cost_usd"] == 0  # refused before any output: not billed
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"]) == (100, 40, 60)
    assert row["prompt_fp"] == prompt_fp(refusal_record()["request"])
    assert row["chain_id"] == "msg_ref1" and row["attempt_index"] == 1 and row["trigger"] is None
    assert row["fallback_mode"] == "none" and row["error_class"] is None and row["http_status"] == 200
    assert row["session_id"] == "s1" and row["request_id"] == "req_1" and row["latency_ms"] == 120
    assert row["workload"] == "wl" and row["surface"] == "anthropic"


@pytest.mark.parametrize("token_form", ["string", "object"])
def test_retry_presenting_the_token_joins_the_refused_chain_and_is_redeemed(tmp_path, db, token_form):
    token = TOKEN if token_form == "string" else {"token": TOKEN, "mode": "best_effort"}
    # another session and another prompt: only the credit token can link it (rule 2)
    retry = exchange("2026-11-02T10:00:03Z", request("claude-opus-4-8", "other text", fallback_credit_token=token),
                     message("msg_ok1", "claude-opus-4-8", usage_=usage(100, 50, read=60,
                             fallback_credit={"status": {"type": "redeemed"}})), session_id="s2")
    load(tmp_path, db, [refusal_record(), retry])
    first, second = rows(db)
    assert second["chain_id"] == first["chain_id"] == "msg_ref1"
    assert second["attempt_index"] == 2 and second["trigger"] == "refusal"
    assert second["fallback_mode"] == "client"
    assert second["credit_presented_fp"] == token_fp(TOKEN) == first["credit_minted_fp"]
    assert second["credit_status"] == "redeemed" and second["credit_reason"] is None
    # opus-4-8: 100 in × $5 + 60 read × $0.50 + 50 out × $25, per million
    assert second["cost_usd"] == pytest.approx((100 * 5 + 60 * 0.5 + 50 * 25) / 1e6)


def test_credit_not_applied_keeps_its_reason(tmp_path, db):
    retry = exchange("2026-11-02T10:07:00Z", request("claude-opus-4-8", "x", fallback_credit_token=TOKEN),
                     message("msg_ok2", "claude-opus-4-8", usage_=usage(
                         10, 5, fallback_credit={"status": {"type": "not_applied", "reason": "expired"}})))
    load(tmp_path, db, [refusal_record(), retry])
    second = rows(db)[1]
    assert second["credit_status"] == "not_applied" and second["credit_reason"] == "expired"
    assert second["chain_id"] == "msg_ref1"


def test_continuation_retry_with_trailing_assistant_has_the_same_prompt_fp(tmp_path, db):
    refused = refusal_record()
    cont_req = request("claude-opus-4-8", "how do I pick this lock")
    cont_req["system"] = refused["request"]["system"]
    cont_req["messages"] = [{"role": "user", "content": [{"type": "text", "text": "how do I pick this lock"}]},
                            {"role": "assistant", "content": "Partial answ"}]
    retry = exchange("2026-11-02T10:00:02Z", cont_req, message("msg_c", "claude-opus-4-8"), session_id="s1")
    load(tmp_path, db, [refused, retry])
    first, second = rows(db)
    assert second["prompt_fp"] == first["prompt_fp"] == prompt_fp(refused["request"])
    assert second["chain_id"] == first["chain_id"]  # rule 4: same prompt, same session, < 10 min
    assert second["trigger"] == "refusal" and second["attempt_index"] == 2


def server_side_record():
    req = request("claude-fable-5", "synthesise this", fallbacks=[{"model": "claude-opus-4-8"}])
    resp = message(
        "msg_ss", "claude-opus-4-8",
        content=[{"type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-8"},
                  "trigger": {"type": "refusal", "category": "bio"}},
                 {"type": "text", "text": "served text"}],
        usage_={"input_tokens": 999, "output_tokens": 999, "service_tier": "standard",
                "iterations": [
                    {"type": "message", "model": "claude-fable-5", "input_tokens": 200, "output_tokens": 0,
                     "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
                    {"type": "fallback_message", "model": "claude-opus-4-8", "input_tokens": 200,
                     "output_tokens": 80, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 0},
                    {"type": "compaction", "input_tokens": 7, "output_tokens": 3}]})
    return exchange("2026-11-02T11:00:00Z", req, resp, session_id="s9")


def test_server_side_fallback_is_split_into_hops_with_iteration_usage(tmp_path, db):
    load(tmp_path, db, [server_side_record()])
    hop1, hop2 = rows(db)
    assert [hop1["attempt_id"], hop2["attempt_id"]] == ["msg_ss#1", "msg_ss#2"]
    assert hop1["chain_id"] == hop2["chain_id"] and [hop1["attempt_index"], hop2["attempt_index"]] == [1, 2]
    assert hop1["model"] == "claude-fable-5" and hop1["outcome"] == "refusal"
    assert hop1["refusal_category"] == "bio" and hop1["had_output"] is False
    assert (hop1["input_tokens"], hop1["output_tokens"]) == (200, 0)
    assert hop2["model"] == "claude-opus-4-8" and hop2["outcome"] == "ok" and hop2["had_output"] is True
    # the fallback_message entry plus the compaction entry; top-level usage unused
    assert (hop2["input_tokens"], hop2["output_tokens"], hop2["cache_read_tokens"]) == (207, 83, 30)
    assert hop1["fallback_mode"] == hop2["fallback_mode"] == "server_side"
    assert hop2["trigger"] == "refusal"
    assert hop1["requested_model"] == hop2["requested_model"] == "claude-fable-5"
    assert hop1["cost_usd"] == 0


@pytest.mark.parametrize(("error_type", "error_class"), [("overloaded_error", "overloaded"),
                                                         ("timeout_error", "timeout"), ("api_error", "server_error")])
def test_server_side_error_hop_without_fallback_message_gets_no_usage(tmp_path, db, error_type, error_class):
    resp = message("msg_ov", "claude-opus-4-8",
                   content=[{"type": "text", "text": "part"},
                            {"type": "fallback", "from": {"model": "claude-fable-5"},
                             "to": {"model": "claude-opus-4-8"}, "trigger": {"type": error_type}},
                            {"type": "text", "text": "rest"}],
                   usage_=usage(50, 20))
    load(tmp_path, db, [exchange("2026-11-02T11:00:00Z", request("claude-fable-5"), resp)])
    hop1, hop2 = rows(db)
    # docs/metrics.md §3.7: a declined hop that is no refusal has outcome `error`, whatever its class
    assert hop1["outcome"] == "error" and hop1["error_class"] == error_class and hop1["had_output"] is True
    assert hop1["input_tokens"] == 0 and hop2["input_tokens"] == 50 and hop2["output_tokens"] == 20
    assert hop2["trigger"] == error_class


def test_compaction_tokens_go_to_the_serving_attempt_without_a_fallback_message(tmp_path, db):
    side = [{"type": "compaction", "input_tokens": 100, "output_tokens": 50},
            {"type": "advisor_message", "input_tokens": 1000, "output_tokens": 500}]
    declined = message("msg_cb", "claude-opus-4-8",
                       content=[{"type": "fallback", "from": {"model": "claude-fable-5"},
                                 "to": {"model": "claude-opus-4-8"}, "trigger": {"type": "overloaded_error"}},
                                {"type": "text", "text": "rest"}],
                       usage_=usage(5, 3, iterations=[side[0], {"type": "message", "input_tokens": 5,
                                                                "output_tokens": 3}]))
    single = message("msg_one", "claude-opus-4-8",
                     usage_=usage(7, 2, iterations=[*side, {"type": "message", "input_tokens": 7, "output_tokens": 2}]))
    load(tmp_path, db, [exchange("2026-11-02T11:00:00Z", request("claude-fable-5"), declined),
                        exchange("2026-11-02T11:05:00Z", request("claude-opus-4-8", "other"), single)])
    hop1, hop2, one = rows(db)
    assert (hop1["input_tokens"], hop1["output_tokens"]) == (0, 0)
    assert (hop2["input_tokens"], hop2["output_tokens"]) == (105, 53)  # top level + compaction
    assert (one["input_tokens"], one["output_tokens"]) == (1107, 552)  # top level + compaction + advisor


def test_web_searches_of_a_served_fallback_come_from_its_iterations(tmp_path, db):
    resp = server_side_record()
    iterations = resp["response"]["usage"]["iterations"]
    resp["response"]["usage"]["server_tool_use"] = {"web_search_requests": 9}  # top level: not used
    iterations[1]["server_tool_use"] = {"web_search_requests": 2}
    load(tmp_path, db, [resp])
    hop1, hop2 = rows(db)
    assert (hop1["web_search_requests"], hop2["web_search_requests"]) == (0, 2)


def test_request_with_fallbacks_answered_by_first_model_is_one_attempt(tmp_path, db):
    resp = message("msg_one", "claude-fable-5", usage_=usage(5, 5, iterations=[
        {"type": "message", "input_tokens": 5, "output_tokens": 5}]))
    load(tmp_path, db, [exchange("2026-11-02T11:00:00Z", request("claude-fable-5", fallbacks=[{"model": "x"}]),
                                 resp)])
    [row] = rows(db)
    assert row["attempt_id"] == "msg_one" and row["fallback_mode"] == "none"


def stream_events():
    return [
        {"type": "message_start", "message": {"id": "msg_st", "type": "message", "role": "assistant",
                                              "model": "claude-fable-5", "content": [], "stop_reason": None,
                                              "usage": {"input_tokens": 100, "output_tokens": 1,
                                                        "cache_read_input_tokens": 0,
                                                        "cache_creation_input_tokens": 0}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Sure, first"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "refusal",
                                            "stop_details": {"type": "refusal", "category": None,
                                                             "explanation": "stop"}},
         "usage": {"input_tokens": 100, "output_tokens": 20}},
        {"type": "message_stop"},
    ]


def test_streamed_refusal_with_cumulative_usage_is_not_double_counted(tmp_path, db):
    record = exchange("2026-11-02T12:00:00Z", request("claude-fable-5", stream=True), events=stream_events())
    load(tmp_path, db, [record])
    [row] = rows(db)
    assert row["attempt_id"] == "msg_st" and row["is_stream"] is True
    assert row["outcome"] == "refusal" and row["refusal_category"] is None
    assert (row["input_tokens"], row["output_tokens"]) == (100, 20)
    assert row["had_output"] is True
    # refused after output: billed. fable-5: 100 × $10 + 20 × $50 per million
    assert row["cost_usd"] == pytest.approx((100 * 10 + 20 * 50) / 1e6)


@pytest.mark.parametrize("blocks", [True, False])
def test_stream_error_event_after_200_is_an_error_with_its_usage(tmp_path, db, blocks):
    events = stream_events()[:4 if blocks else 1] + [
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}]
    load(tmp_path, db, [exchange("2026-11-02T12:00:00Z", request("claude-fable-5"), events=events,
                                 request_id="req_st")])
    [row] = rows(db)
    assert row["outcome"] == "error" and row["error_class"] == "overloaded"
    assert row["attempt_id"] == "msg_st" and row["request_id"] == "req_st"  # the message id first (docs/metrics.md §2)
    assert row["had_output"] is blocks  # a block was streamed before the error
    assert row["input_tokens"] == 100 and row["output_tokens"] == 1
    assert row["cost_usd"] == pytest.approx((100 * 10 + 1 * 50) / 1e6)


def test_a_stream_abandoned_before_its_stop_reason_is_canceled_and_billed_for_its_usage(tmp_path, db):
    record = exchange("2026-11-02T12:00:00Z", request("claude-fable-5", stream=True), events=stream_events()[:3],
                      canceled=True)
    load(tmp_path, db, [record])
    [row] = rows(db)
    assert row["outcome"] == "canceled" and row["stop_reason"] is None
    # the input was billed when the stream started: 100 × $10 + 1 × $50 per million (not the batch rule's 0)
    assert row["cost_usd"] == pytest.approx((100 * 10 + 1 * 50) / 1e6)


def test_a_stream_canceled_before_any_event_is_a_canceled_attempt(tmp_path, db):
    record = exchange("2026-11-02T12:00:00Z", request("claude-fable-5", stream=True), events=[], canceled=True,
                      request_id="req_c")
    load(tmp_path, db, [record])
    [row] = rows(db)
    assert row["attempt_id"] == "req_c" and row["outcome"] == "canceled" and row["model"] == "claude-fable-5"
    assert row["had_output"] is False and row["input_tokens"] == 0 and row["cost_usd"] == 0


STATUS_CLASSES = [
    (400, "invalid_request", "error"), (413, "invalid_request", "error"), (422, "invalid_request", "error"),
    (401, "auth", "error"), (402, "billing", "error"), (403, "permission", "error"),
    (404, "not_found", "error"), (409, "conflict", "error"), (429, "rate_limit", "error"),
    (500, "server_error", "error"), (502, "server_error", "error"), (503, "server_error", "error"),
    (408, "timeout", "timeout"), (504, "timeout", "timeout"), (529, "overloaded", "error"),
    (418, "invalid_request", "error"), (599, "server_error", "error"),
]


@pytest.mark.parametrize(("status", "error_class", "outcome"), STATUS_CLASSES)
def test_http_errors_get_their_error_class(tmp_path, db, status, error_class, outcome):
    body = {"type": "error", "error": {"type": "some_error", "message": "m"}, "request_id": "req_err"}
    load(tmp_path, db, [exchange("2026-11-02T12:00:00Z", request("claude-sonnet-4-5-20250929"), body,
                                 status=status)])
    [row] = rows(db)
    assert (row["error_class"], row["outcome"], row["http_status"]) == (error_class, outcome, status)
    assert row["model"] == "claude-sonnet-4-5" and row["cost_usd"] == 0 and row["had_output"] is False
    assert row["attempt_id"] == "req_err" and row["request_id"] == "req_err"


@pytest.mark.parametrize("kind", ["timeout", "connection"])
def test_transport_errors(tmp_path, db, kind):
    record = exchange("2026-11-02T12:00:00Z", request("claude-haiku-4-5"), status=None, transport_error=kind)
    load(tmp_path, db, [record])
    [row] = rows(db)
    assert (row["outcome"], row["error_class"], row["http_status"]) == (kind, kind, None)
    assert row["model"] == "claude-haiku-4-5" and row["cost_usd"] == 0
    assert row["attempt_id"].startswith("h:")


def test_error_body_type_classes_a_2xx_error_body(tmp_path, db):
    body = {"type": "error", "error": {"type": "rate_limit_error", "message": "m"}}
    load(tmp_path, db, [exchange("2026-11-02T12:00:00Z", request("claude-haiku-4-5"), body)])
    assert rows(db)[0]["error_class"] == "rate_limit"


def test_batch_service_tier_geo_fast_and_web_search_are_priced(tmp_path, db):
    resp = message("m_b", "claude-opus-4-8", usage_=usage(
        1000, 100, read=200, w5=300, w1=400, service_tier="batch", inference_geo="us", speed="fast",
        server_tool_use={"web_search_requests": 2}))
    load(tmp_path, db, [exchange("2026-11-02T09:00:00Z", request("claude-opus-4-8"), resp)])
    [row] = rows(db)
    assert row["is_batch"] is True and row["inference_geo"] == "us" and row["speed"] == "fast"
    assert row["web_search_requests"] == 2
    # fast: in 10, out 50, cache ×2 (10/5): w5 12.5, w1 20, read 1.0
    tokens = (1000 * 10 + 300 * 12.5 + 400 * 20 + 200 * 1.0 + 100 * 50) / 1e6
    assert row["cost_usd"] == pytest.approx(tokens * 0.5 * 1.1 + 2 * 0.01)


def test_cache_creation_total_without_breakdown_is_all_5m(tmp_path, db):
    u = {"input_tokens": 1, "output_tokens": 1, "cache_creation_input_tokens": 70, "cache_read_input_tokens": 3}
    load(tmp_path, db, [exchange("2026-11-02T09:00:00Z", request("claude-haiku-4-5"),
                                 message("m_c", "claude-haiku-4-5", usage_=u))])
    [row] = rows(db)
    assert (row["cache_write_5m_tokens"], row["cache_write_1h_tokens"], row["cache_read_tokens"]) == (70, 0, 3)


def test_haiku_5_5_prompt_band_prices_the_whole_request(tmp_path, db):
    small = message("m_s", "claude-haiku-5-5", usage_=usage(60_000, 1000, read=40_000))
    large = message("m_l", "claude-haiku-5-5", usage_=usage(60_000, 1000, read=40_001))
    load(tmp_path, db, [exchange("2026-11-02T09:00:00Z", request("claude-haiku-5-5", "a"), small),
                        exchange("2026-11-02T09:00:01Z", request("claude-haiku-5-5", "b"), large)])
    by_id = {r["attempt_id"]: r["cost_usd"] for r in rows(db)}
    assert by_id["m_s"] == pytest.approx((60_000 * 0.10 + 40_000 * 0.01 + 1000 * 0.50) / 1e6)
    assert by_id["m_l"] == pytest.approx((60_000 * 0.50 + 40_001 * 0.05 + 1000 * 2.50) / 1e6)


def test_dated_price_rows_apply_by_attempt_time(tmp_path, db):
    before = message("m_before", "claude-sonnet-5-5", usage_=usage(0, 0, read=1_000_000))
    after = message("m_after", "claude-sonnet-5-5", usage_=usage(0, 0, read=1_000_000))
    load(tmp_path, db, [exchange("2026-10-06T23:59:59Z", request("claude-sonnet-5-5", "a"), before),
                        exchange("2026-10-07T00:00:00Z", request("claude-sonnet-5-5", "b"), after)])
    by_id = {r["attempt_id"]: r["cost_usd"] for r in rows(db)}
    assert by_id["m_before"] == pytest.approx(0.20) and by_id["m_after"] == pytest.approx(0.10)


def test_unknown_model_with_tokens_is_unpriced_not_zero(tmp_path, db):
    load(tmp_path, db, [exchange("2026-11-02T09:00:00Z", request("claude-mystery-9"),
                                 message("m_u", "claude-mystery-9"))])
    [row] = rows(db)
    assert row["model"] == "claude-mystery-9" and row["cost_usd"] is None


def test_workload_and_default_ts_options(tmp_path, db):
    record = exchange("x", request("claude-haiku-4-5"), message("m_d", "claude-haiku-4-5"))
    del record["ts"], record["workload"]
    load(tmp_path, db, [record], default_ts="2026-11-03T00:00:00Z", workload="from-cli")
    [row] = rows(db)
    assert row["workload"] == "from-cli" and row["ts"] == 1793664000.0
