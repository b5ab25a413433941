"""Issue 14, docs/metrics.md §3.8: what other tools really write — foreign finish reasons, OpenInference spans,
nested spans of one call, strict `--format`, silent files, `had_output` by content, advisor parts at their own
price, web searches a span does not report. One test per defect; each failed on the code before the fix."""

from __future__ import annotations

import json

import duckdb
import pytest
from builders import message, query, rows, usage, write_jsonl
from test_otel_format import attrs, chat, export, span

from fallbackscope.core import store
from ingest.loader import IngestFailed, LoadOptions, ingest_paths

DEFAULT_TS = "2026-11-04T08:00:00Z"


def load(tmp_path, db, lines, name="in.jsonl", **options):
    path = write_jsonl(tmp_path / name, lines)
    [report] = ingest_paths(db, [str(path)], LoadOptions(**options))
    return report, {r["attempt_id"]: r for r in rows(db)}


# -- foreign finish reasons ---------------------------------------------------------------------------------------


def test_litellm_otel_finish_reasons_as_a_json_list_string_count_a_content_filter_as_a_refusal(tmp_path, db):
    # LiteLLM's OTel callback: finish reasons as JSON text, its own call type as the operation, `gen_ai.system`
    refused = chat("l1", "msg_l1", gen_ai__operation__name="acompletion", gen_ai__provider__name="anthropic",
                   gen_ai__response__finish_reasons='["content_filter"]', gen_ai__usage__input_tokens=40,
                   gen_ai__usage__output_tokens=0)
    ok = chat("l2", "msg_l2", gen_ai__response__finish_reasons='["stop"]', gen_ai__usage__input_tokens=40,
              gen_ai__usage__output_tokens=9)
    _, by_id = load(tmp_path, db, [export(refused, ok)])
    row = by_id["msg_l1"]
    assert (row["outcome"], row["stop_reason"], row["refusal_category"], row["cost_usd"]) == (
        "refusal", "refusal", None, 0)
    assert (by_id["msg_l2"]["outcome"], by_id["msg_l2"]["stop_reason"]) == ("ok", "end_turn")


def test_litellm_otel_cache_counts_come_from_its_hidden_params(tmp_path, db):
    hidden = {"model_id": "m", "usage_object": {
        "prompt_tokens": 1300, "completion_tokens": 20, "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 200, "server_tool_use": {"web_search_requests": 2}}}
    span_ = chat("l3", "msg_l3", gen_ai__response__finish_reasons='["stop"]', gen_ai__usage__input_tokens=1300,
                 gen_ai__usage__output_tokens=20, hidden_params=json.dumps(hidden))
    _, by_id = load(tmp_path, db, [export(span_)])
    row = by_id["msg_l3"]
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"]) == (100, 1000, 200)
    assert (row["web_search_requests"], row["cost_complete"]) == (2, True)
    assert row["cost_usd"] == pytest.approx((100 * 3 + 1000 * 0.3 + 200 * 3.75 + 20 * 15) / 1e6 + 0.02)


@pytest.mark.parametrize(("given", "stored", "outcome"), [
    ("stop", "end_turn", "ok"), ("length", "max_tokens", "ok"), ("tool_calls", "tool_use", "ok"),
    ("function_call", "tool_use", "ok"), ("content_filter", "refusal", "refusal"), ("STOP", "end_turn", "ok"),
    ("recitation", "recitation", "ok"), ("error", None, "error"),
])
def test_litellm_payload_finish_reasons_are_stored_in_anthropics_words(tmp_path, db, given, stored, outcome):
    payload = {"id": "r-1", "call_type": "acompletion", "startTime": 1793779200.0, "endTime": 1793779201.0,
               "model": "gpt-5", "custom_llm_provider": "openai", "status": "success", "prompt_tokens": 10,
               "completion_tokens": 5, "response": {"choices": [{"finish_reason": given,
                                                                 "message": {"content": "x"}}]}}
    _, by_id = load(tmp_path, db, [payload])
    row = by_id["r-1"]
    assert (row["stop_reason"], row["outcome"]) == (stored, outcome)
    if outcome == "error":
        assert row["error_class"] == "server_error"


def test_bedrock_content_filtered_is_a_refusal_and_a_guardrail_intervention_is_not(tmp_path, db):
    def converse(rid: str, stop: str) -> dict:
        return {"schemaType": "ModelInvocationLog", "timestamp": DEFAULT_TS, "requestId": rid,
                "operation": "Converse", "modelId": "anthropic.claude-haiku-4-5-20251001-v1:0",
                "output": {"outputBodyJson": {"output": {"message": {"role": "assistant", "content": []}},
                                              "stopReason": stop, "usage": {"inputTokens": 12, "outputTokens": 0}}}}
    _, by_id = load(tmp_path, db, [converse("c1", "content_filtered"), converse("c2", "guardrail_intervened")])
    assert (by_id["c1"]["outcome"], by_id["c1"]["stop_reason"], by_id["c1"]["refusal_category"]) == (
        "refusal", "refusal", None)
    assert (by_id["c2"]["outcome"], by_id["c2"]["stop_reason"]) == ("ok", "guardrail_intervened")


# -- OpenInference spans and nested spans of one call --------------------------------------------------------------


def openinference(span_id: str, parent: str | None = None, **kv) -> dict:
    base = dict(openinference__span__kind="LLM", llm__provider="anthropic", llm__system="anthropic",
                llm__request__model_name="claude-sonnet-4-5")
    base.update(kv)
    s = span(span_id, attrs(**base), name="messages.create")
    if parent is None:
        s.pop("parentSpanId")
    else:
        s["parentSpanId"] = parent
    return s


def test_openinference_spans_load_with_cache_tokens_subtracted(tmp_path, db):
    ok = openinference("o1", llm__model_name="claude-sonnet-4-5-20250929", llm__finish_reason="end_turn",
                       llm__token_count__prompt=1300, llm__token_count__completion=20,
                       llm__token_count__prompt_details__cache_read=1000,
                       llm__token_count__prompt_details__cache_write=200,
                       llm__input_messages__0__message__content="CANARY_prompt")
    refused = openinference("o2", llm__model_name="claude-sonnet-4-5-20250929", llm__finish_reason="refusal",
                            llm__token_count__prompt=40, llm__token_count__completion=0)
    report, _ = load(tmp_path, db, [export(ok, refused)])
    assert (report.records, report.rejected, report.attempts_loaded) == (2, 0, 2)
    got = {r["stop_reason"]: r for r in rows(db)}
    row = got["end_turn"]
    assert (row["model"], row["requested_model"], row["surface"], row["outcome"]) == (
        "claude-sonnet-4-5", "claude-sonnet-4-5", "anthropic", "ok")
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"], row["output_tokens"]) == (
        100, 1000, 200, 20)
    assert got["refusal"]["outcome"] == "refusal"


def test_an_outer_span_around_the_sdks_span_of_a_failed_call_is_one_error_attempt(tmp_path, db):
    outer = openinference("0000000000000001", status={"code": 2},
                          events=[{"name": "exception", "attributes": attrs(exception__type="anthropic.RateLimitError",
                                                                            exception__message="CANARY_msg")}])
    inner = chat("0000000000000002", None, anthropic__request__id="req_9", error__type="rate_limit_error",
                 http__response__status_code=429, status={"code": 2})
    inner["parentSpanId"] = "0000000000000001"
    # exported on two lines, as a span processor writes each span when it ends
    report, by_id = load(tmp_path, db, [export(inner), export(outer)])
    assert (report.records, report.attempts_loaded, report.duplicates, report.rejected) == (2, 1, 1, 0)
    row = by_id["req_9"]
    assert (row["outcome"], row["error_class"], row["http_status"]) == ("error", "rate_limit", 429)


def nested_spans() -> tuple[dict, dict, dict, list[dict]]:
    """Return an outer OpenInference span around one inner SDK span of the same call (the inner one reports
    no usage and no stop reason), and an outer span around two retries."""
    outer = openinference("00000000000000a1", llm__finish_reason="end_turn", llm__token_count__prompt=50,
                          llm__token_count__completion=7)
    inner = chat("00000000000000a2", "msg_n1")
    inner["parentSpanId"] = "00000000000000a1"
    retries = openinference("00000000000000b1")
    tries = [chat(f"00000000000000b{i}", f"msg_r{i}", gen_ai__usage__output_tokens=3,
                  anthropic__message__stop_reason="end_turn") for i in (2, 3)]
    for t in tries:
        t["parentSpanId"] = "00000000000000b1"
    return outer, inner, retries, tries


def test_an_outer_span_fills_what_the_inner_span_lacks_and_around_retries_is_no_attempt(tmp_path, db):
    outer, inner, retries, tries = nested_spans()
    report, by_id = load(tmp_path, db, [export(outer, inner, retries, *tries)])
    assert sorted(by_id) == ["msg_n1", "msg_r2", "msg_r3"]
    row = by_id["msg_n1"]
    assert (row["outcome"], row["stop_reason"], row["input_tokens"], row["output_tokens"]) == (
        "ok", "end_turn", 50, 7)
    assert (report.records, report.attempts_loaded, report.duplicates) == (5, 3, 2)


# -- strict formats and silent files ------------------------------------------------------------------------------


CONVERSE_BODY = {"output": {"message": {"role": "assistant", "content": [{"text": "CANARY_text"}]}},
                 "stopReason": "end_turn", "usage": {"inputTokens": 3, "outputTokens": 4, "totalTokens": 7},
                 "metrics": {"latencyMs": 10}}


def test_format_anthropic_rejects_records_of_other_shapes_and_names_them(tmp_path, db):
    litellm = {"id": "x", "call_type": "acompletion", "startTime": 1.0, "model": "m"}
    bedrock = {"schemaType": "ModelInvocationLog", "modelId": "m"}
    with pytest.raises(IngestFailed):  # none of its records loaded: a failed file (docs/metrics.md §2)
        load(tmp_path, db, [CONVERSE_BODY, litellm, bedrock, {"foo": 1}], format="anthropic", default_ts=DEFAULT_TS)
    assert query(db, "SELECT count(*) FROM attempts") == [(0,)]
    reasons = [r for (r,) in query(db, "SELECT reason FROM rejects ORDER BY line_no")]
    assert reasons == [
        "a Bedrock Converse response without its invocation-log envelope: it names no model; "
        "log the ModelInvocationLog record",
        "not a Message or error body (it looks like a LiteLLM payload: use --format litellm)",
        "not a Message or error body (it looks like a Bedrock model invocation log record: use --format bedrock)",
        "not a Message or error body",
    ]


def test_a_bare_converse_response_is_rejected_with_a_useful_reason(tmp_path, db):
    good = {"ts": DEFAULT_TS, "http_status": 200, "request": {"model": "claude-haiku-4-5"},
            "response": message("msg_x", "claude-haiku-4-5")}
    report, _ = load(tmp_path, db, [good, CONVERSE_BODY])
    assert report.reasons == {
        "a Bedrock Converse response without its invocation-log envelope: it names no model; "
        "log the ModelInvocationLog record": 1}


def test_an_otlp_export_without_model_calls_is_a_failed_file(tmp_path, db):
    http = span("h1", attrs(http__request__method="POST"), name="POST")
    path = write_jsonl(tmp_path / "http.jsonl", [export(http)])
    with pytest.raises(IngestFailed) as failed:
        ingest_paths(db, [str(path)], LoadOptions())
    [report] = failed.value.reports
    assert (report.status, report.error) == ("rejected", f"no model calls found in {path} (otel)")
    assert query(db, "SELECT status, records FROM loads") == [("rejected", 0)]
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n \n")
    [report] = ingest_paths(db, [str(blank)], LoadOptions(format="otel"))
    assert report.status == "ok"  # a blank file is no failure


# -- had_output, advisor parts, web searches ---------------------------------------------------------------------


def test_a_refusal_whose_content_is_one_empty_text_block_had_no_output_and_costs_nothing(tmp_path, db):
    body = message("msg_e", "claude-sonnet-4-5", stop_reason="refusal", content=[{"type": "text", "text": ""}],
                   usage_=usage(100, 0))
    _, by_id = load(tmp_path, db, [body], format="anthropic", default_ts=DEFAULT_TS)
    assert (by_id["msg_e"]["had_output"], by_id["msg_e"]["cost_usd"]) == (False, 0)


def test_a_streamed_text_block_without_a_delta_is_no_output(tmp_path, db):
    start = {"type": "message_start", "message": {"id": "msg_s", "type": "message", "role": "assistant",
                                                  "model": "claude-sonnet-4-5", "content": [],
                                                  "usage": {"input_tokens": 5, "output_tokens": 0}}}
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    empty = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}}
    stop = {"type": "message_delta", "delta": {"stop_reason": "refusal"}, "usage": {"output_tokens": 0}}
    line = {"ts": DEFAULT_TS, "http_status": 200, "request": {"model": "claude-sonnet-4-5", "stream": True},
            "events": [start, block, empty, stop, {"type": "message_stop"}]}
    filled = json.loads(json.dumps(line))
    filled["events"][0]["message"]["id"] = "msg_s2"
    filled["events"][2]["delta"]["text"] = "CANARY_out"
    _, by_id = load(tmp_path, db, [line, filled])
    assert (by_id["msg_s"]["had_output"], by_id["msg_s2"]["had_output"]) == (False, True)


def test_an_advisor_iteration_is_priced_at_its_own_model(tmp_path, db):
    iterations = [{"type": "message", "input_tokens": 1000, "output_tokens": 100},
                  {"type": "advisor_message", "model": "claude-opus-4-8", "input_tokens": 2000, "output_tokens": 300},
                  {"type": "message", "input_tokens": 500, "output_tokens": 50}]
    body = message("msg_adv", "claude-sonnet-4-5", usage_=usage(1500, 150, iterations=iterations))
    _, by_id = load(tmp_path, db, [body], format="anthropic", default_ts=DEFAULT_TS)
    row = by_id["msg_adv"]
    assert (row["input_tokens"], row["output_tokens"], row["side_model"]) == (3500, 450, "claude-opus-4-8")
    sonnet = (1500 * 3 + 150 * 15) / 1e6
    opus = (2000 * 5 + 300 * 25) / 1e6
    assert row["cost_usd"] == pytest.approx(sonnet + opus)
    store.connect(db).close()  # repricing keeps the parts at their own prices
    con = duckdb.connect(str(db))
    from fallbackscope.core import prices

    prices.reprice(con)
    assert con.execute("SELECT cost_usd FROM attempts").fetchone()[0] == pytest.approx(sonnet + opus)
    con.close()


def test_an_advisor_on_a_model_without_a_price_leaves_the_cost_unknown(tmp_path, db):
    iterations = [{"type": "message", "input_tokens": 10, "output_tokens": 1},
                  {"type": "advisor_message", "model": "some-unpriced-model", "input_tokens": 20, "output_tokens": 3}]
    body = message("msg_adv2", "claude-sonnet-4-5", usage_=usage(10, 1, iterations=iterations))
    _, by_id = load(tmp_path, db, [body], format="anthropic", default_ts=DEFAULT_TS)
    assert by_id["msg_adv2"]["cost_usd"] is None


def test_otel_web_searches_are_unknown_and_the_cost_a_lower_bound(tmp_path, db):
    span_ = chat("w1", "msg_w1", gen_ai__usage__input_tokens=100, gen_ai__usage__output_tokens=10,
                 anthropic__message__stop_reason="end_turn")
    _, by_id = load(tmp_path, db, [export(span_)])
    row = by_id["msg_w1"]
    assert (row["web_search_requests"], row["cost_complete"]) == (None, False)
    assert row["cost_usd"] == pytest.approx((100 * 3 + 10 * 15) / 1e6)


def test_attempts_stored_before_migration_002_keep_a_complete_cost(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, name VARCHAR NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL)")
    [(_, name, sql)] = [m for m in store._migrations() if m[0] == 1]
    con.execute(sql)
    con.execute("INSERT INTO schema_version VALUES (1, ?, now())", [name])
    con.execute("INSERT INTO attempts (attempt_id, load_id, ts, surface, workload, chain_id, attempt_index, outcome,"
                " fallback_mode, is_batch, is_stream, input_tokens, output_tokens, cache_write_5m_tokens,"
                " cache_write_1h_tokens, cache_read_tokens, web_search_requests, had_output, hop) VALUES ('a', 1,"
                " now(), 'anthropic', 'w', 'a', 1, 'ok', 'none', false, false, 1, 1, 0, 0, 0, 0, true, 0)")
    con.close()
    store.connect(path).close()
    assert query(path, "SELECT cost_complete, side_model FROM attempts") == [(True, None)]


def test_an_api_error_quoted_in_another_tools_error_text_gives_its_type_and_request_id_only():
    from ingest.formats.shared import quoted_api_error

    litellm_text = ('litellm.InternalServerError: AnthropicError - {"type": "error", "error": {"type": '
                    '"overloaded_error", "message": "secret words"}, "request_id": "req_011A"}')
    sdk_repr = "Error code: 429 - {'type': 'error', 'error': {'type': 'rate_limit_error', 'message': 'x'}, " \
               "'request_id': 'req_9'}"
    assert quoted_api_error(litellm_text) == ("overloaded_error", "req_011A")
    assert quoted_api_error(sdk_repr) == ("rate_limit_error", "req_9")
    # a type outside the API's vocabulary is no type; text without a body names nothing; not text at all neither
    assert quoted_api_error('{"error": {"type": "made_up_error"}}') == (None, None)
    assert quoted_api_error("Connection error.") == (None, None)
    assert quoted_api_error(None) == (None, None)


def test_a_python_repr_of_a_usage_object_is_read_as_literals_only():
    from ingest.formats.shared import literal_object

    assert literal_object("{'cached_tokens': 500, 'x': None}") == {"cached_tokens": 500, "x": None}
    assert literal_object('{"a": 1}') == {"a": 1}
    assert literal_object("{'a': __import__('os').getcwd()}") is None  # code is never run
    assert literal_object("[1, 2]") is None and literal_object("{'a': 1") is None
    assert literal_object("{'a': '" + "x" * 70000 + "'}") is None  # too long to be a usage object
