"""OTLP/JSON trace exports with GenAI semantic-convention attributes (docs/metrics.md §3.5): one record per
model-call span, exactly the right rows, cache tokens subtracted from `gen_ai.usage.input_tokens`."""

from __future__ import annotations

import gzip
import json

from builders import fp, query, rows, write_jsonl

from ingest.detect import detect_format
from ingest.loader import LoadOptions, ingest_paths

T0 = 1793779200_000_000_000  # 2026-11-04T08:00:00Z in unix nanoseconds
EPOCH = 1793779200.0
TRACE = "5b8efff798038103d269b633813fc60c"
MESSAGES = [{"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]}]
SYSTEM = [{"type": "text", "content": "be brief"}]


def value(v) -> dict:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}  # OTLP/JSON writes int64 as a string
    if isinstance(v, float):
        return {"doubleValue": v}
    if isinstance(v, list):
        return {"arrayValue": {"values": [value(x) for x in v]}}
    return {"stringValue": v}


def attrs(**kv) -> list[dict]:
    return [{"key": k.replace("__", "."), "value": value(v)} for k, v in kv.items()]


def span(span_id: str, attributes: list[dict], start: int = T0, ms: int = 1250, name: str = "chat", **extra) -> dict:
    s = {"traceId": TRACE, "spanId": span_id, "parentSpanId": "051581bf3cb55c13", "name": name, "kind": 3,
         "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + ms * 1_000_000),
         "attributes": attributes, "status": {}}
    s.update(extra)
    return s


def export(*spans: dict, service: str = "support-bot") -> dict:
    return {"resourceSpans": [{"resource": {"attributes": attrs(service__name=service)},
                               "scopeSpans": [{"scope": {"name": "com.anthropic.sdk.python", "version": "1.0.0"},
                                               "spans": list(spans)}]}]}


def chat(span_id: str, response_id: str | None, **kv) -> dict:
    base = dict(gen_ai__operation__name="chat", gen_ai__provider__name="anthropic",
                gen_ai__request__model="claude-sonnet-4-5")
    if response_id:
        base["gen_ai__response__id"] = response_id
    base.update(kv)
    start = kv.pop("start", T0) if "start" in kv else T0
    return span(span_id, attrs(**{k: v for k, v in base.items() if k != "start"}), start=start)


def load(tmp_path, db, lines, **options):
    path = write_jsonl(tmp_path / "traces.jsonl", lines)
    [report] = ingest_paths(db, [str(path)], LoadOptions(**options))
    return report, {r["attempt_id"]: r for r in rows(db)}


def test_model_call_spans_are_records_and_other_spans_are_skipped(tmp_path, db):
    ok = chat("a1", "msg_o1", gen_ai__response__model="claude-sonnet-4-5-20250929",
              gen_ai__response__finish_reasons=["end_turn"], gen_ai__usage__input_tokens=1500,
              gen_ai__usage__cache_read__input_tokens=1000, gen_ai__usage__cache_creation__input_tokens=300,
              gen_ai__usage__output_tokens=80, gen_ai__conversation__id="conv-1",
              gen_ai__input__messages=json.dumps(MESSAGES), gen_ai__system_instructions=json.dumps(SYSTEM),
              gen_ai__output__messages="[]")
    http = span("h1", attrs(http__request__method="POST", http__response__status_code=200), name="POST")
    tool = span("t1", attrs(gen_ai__operation__name="execute_tool", gen_ai__tool__name="get_weather"))
    agent = span("g1", attrs(gen_ai__operation__name="invoke_agent", gen_ai__request__model="claude-sonnet-4-5",
                             gen_ai__usage__input_tokens=9999))
    refused = chat("a2", "msg_o2", start=T0 + 2_000_000_000, gen_ai__response__finish_reasons=["refusal"],
                   gen_ai__usage__input_tokens=40, gen_ai__usage__output_tokens=0, gen_ai__conversation__id="conv-1")
    report, by_id = load(tmp_path, db, [export(http, ok, tool, agent, refused)])
    assert (report.format, report.records, report.loaded, report.rejected) == ("otel", 2, 2, 0)
    assert set(by_id) == {"msg_o1", "msg_o2"}
    row = by_id["msg_o1"]
    assert (row["ts"], row["latency_ms"], row["surface"], row["workload"], row["session_id"]) == (
        EPOCH, 1250.0, "anthropic", "support-bot", "conv-1")
    assert (row["requested_model"], row["model"], row["outcome"], row["stop_reason"]) == (
        "claude-sonnet-4-5", "claude-sonnet-4-5", "ok", "end_turn")
    # gen_ai.usage.input_tokens includes cache reads and writes: 1500 - 1000 - 300 uncached
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_5m_tokens"],
            row["cache_write_1h_tokens"], row["output_tokens"]) == (200, 1000, 300, 0, 80)
    assert row["prompt_fp"] == fp({"messages": MESSAGES, "system": SYSTEM, "tools": None})
    assert row["had_output"] is True and row["request_id"] is None
    row = by_id["msg_o2"]
    assert (row["outcome"], row["stop_reason"], row["had_output"], row["cost_usd"]) == ("refusal", "refusal", False, 0)
    assert row["prompt_fp"] is None and row["ts"] == EPOCH + 2


def test_sdk_attribute_names_cache_breakdown_and_stop_reason(tmp_path, db):
    sdk = chat("b1", "msg_o3", gen_ai__usage__input_tokens=2000, gen_ai__usage__cache_write__input_tokens=800,
               anthropic__usage__cache_creation__ephemeral_5m_input_tokens=500,
               anthropic__usage__cache_creation__ephemeral_1h_input_tokens=300,
               gen_ai__usage__output_tokens=10, gen_ai__response__finish_reasons=["content_filter"],
               anthropic__message__stop_reason="refusal")
    filtered = chat("b2", "msg_o4", gen_ai__response__finish_reasons=["content_filter"])
    _, by_id = load(tmp_path, db, [export(sdk, filtered)])
    row = by_id["msg_o3"]
    tokens = ("input_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens", "cache_read_tokens")
    assert tuple(row[k] for k in tokens) == (1200, 500, 300, 0)
    assert (row["outcome"], row["stop_reason"]) == ("refusal", "refusal")
    assert (by_id["msg_o4"]["outcome"], by_id["msg_o4"]["stop_reason"]) == ("refusal", "refusal")


def test_cache_writes_a_partial_breakdown_leaves_out_are_5m_writes(tmp_path, db):
    partial = chat("p1", "msg_p1", gen_ai__usage__input_tokens=1410, gen_ai__usage__cache_write__input_tokens=300,
                   anthropic__usage__cache_creation__ephemeral_1h_input_tokens=200, gen_ai__usage__output_tokens=5)
    _, by_id = load(tmp_path, db, [export(partial)])
    row = by_id["msg_p1"]
    assert (row["input_tokens"], row["cache_write_5m_tokens"], row["cache_write_1h_tokens"]) == (1110, 100, 200)


def test_older_system_names_map_to_their_surface(tmp_path, db):
    vertex = chat("v1", "msg_v1", gen_ai__provider__name=None, gen_ai__system="vertex_ai")
    azure = chat("z1", "msg_z1", gen_ai__provider__name=None, gen_ai__system="az.ai.inference")
    for s in (vertex, azure):
        s["attributes"] = [a for a in s["attributes"] if a["key"] != "gen_ai.provider.name"]
    _, by_id = load(tmp_path, db, [export(vertex, azure)])
    assert (by_id["msg_v1"]["surface"], by_id["msg_z1"]["surface"]) == ("vertex", "foundry")


def test_the_sdks_request_id_names_a_span_without_a_response_id(tmp_path, db):
    failed = chat("f1", None, anthropic__request__id="req_otel_1", error__type="anthropic.OverloadedError",
                  http__response__status_code=529)
    _, by_id = load(tmp_path, db, [export(failed)])
    row = by_id["req_otel_1"]
    assert (row["request_id"], row["error_class"]) == ("req_otel_1", "overloaded")


def test_input_tokens_smaller_than_the_cache_counts_are_taken_as_uncached(tmp_path, db):
    """A producer that reports Anthropic's own input_tokens (cache excluded) is not driven negative."""
    exclusive = chat("c1", "msg_o5", gen_ai__usage__input_tokens=50, gen_ai__usage__cache_read__input_tokens=4000)
    _, by_id = load(tmp_path, db, [export(exclusive)])
    assert (by_id["msg_o5"]["input_tokens"], by_id["msg_o5"]["cache_read_tokens"]) == (50, 4000)


def test_failed_spans_are_classed_by_status_and_error_type(tmp_path, db):
    spans = [
        chat("e1", None, error__type="529", http__response__status_code=529),
        chat("e2", None, error__type="anthropic.RateLimitError"),
        chat("e3", None, error__type="APITimeoutError"),
        span("e4", attrs(gen_ai__operation__name="chat", gen_ai__request__model="claude-opus-4-8"),
             status={"code": 2, "message": "boom"}),
        chat("e5", None, error__type="_OTHER"),
    ]
    _, by_id = load(tmp_path, db, [export(*spans)])
    got = {aid.rsplit(":", 1)[-1]: (r["outcome"], r["error_class"], r["http_status"]) for aid, r in by_id.items()}
    assert got == {
        "e1": ("error", "overloaded", 529),
        "e2": ("error", "rate_limit", None),
        "e3": ("timeout", "timeout", None),
        "e4": ("error", "server_error", None),
        "e5": ("error", "server_error", None),
    }
    assert set(by_id) == {f"otel:{TRACE}:e{i}" for i in range(1, 6)}
    assert all(r["input_tokens"] == 0 and r["had_output"] is False for r in by_id.values())


def test_older_spans_without_an_operation_name_and_other_providers(tmp_path, db):
    old = span("d1", attrs(gen_ai__system="aws.bedrock", gen_ai__request__model="anthropic.claude-haiku-4-5-v1:0",
                           gen_ai__usage__input_tokens=10, gen_ai__usage__output_tokens=2))
    vertex = chat("d2", "msg_o6", gen_ai__provider__name="gcp.vertex_ai",
                  gen_ai__response__model="claude-opus-4-8@20260101")
    _, by_id = load(tmp_path, db, [export(old, vertex, service="unknown_service:python")], workload="cli-w")
    row = by_id[f"otel:{TRACE}:d1"]
    assert (row["surface"], row["model"], row["workload"], row["input_tokens"]) == (
        "bedrock", "claude-haiku-4-5", "cli-w", 10)
    assert (by_id["msg_o6"]["surface"], by_id["msg_o6"]["model"]) == ("vertex", "claude-opus-4-8")


def test_nothing_lost_spans_and_lines_rejected_on_their_own(tmp_path, db):
    good = chat("n1", "msg_n1", gen_ai__usage__input_tokens=5)
    negative = chat("n2", "msg_n2", gen_ai__usage__output_tokens=-4)
    wrong = chat("n3", "msg_n3")
    wrong["attributes"].append({"key": "gen_ai.usage.input_tokens", "value": {"intValue": "many"}})
    no_start = chat("n4", "msg_n4")
    del no_start["startTimeUnixNano"]
    line1 = export(good, negative, wrong, no_start)
    lines = [
        line1,
        b'{"resourceSpans": [{"scopeSpans": 5}]}',  # a layout that cannot be read: one rejected record
        b'{"resourceSpans": [',                      # truncated
        export(chat("n5", "msg_n5")),
        line1,                                        # the same export again: its good span is a duplicate
        {"resourceLogs": []},                         # another signal: one rejected record
        export(span("h2", attrs(http__request__method="GET"))),  # no model-call span: no record
    ]
    report, by_id = load(tmp_path, db, lines)
    assert (report.records, report.loaded, report.duplicates, report.rejected) == (12, 2, 1, 9)
    assert report.records == report.loaded + report.duplicates + report.rejected
    assert set(by_id) == {"msg_n1", "msg_n5"}
    spans = "resourceSpans[0].scopeSpans[0].spans"
    wrong_type = (f"field `{spans}[2].attributes.gen_ai.usage.input_tokens.intValue` has the wrong type"
                  " (expected an integer)")
    assert query(db, "SELECT line_no, reason FROM rejects ORDER BY line_no, reason") == [
        (1, wrong_type),
        (1, f"negative token count in `{spans}[1].attributes.gen_ai.usage.output_tokens`"),
        (1, "no timestamp"),
        (2, "field `resourceSpans[0].scopeSpans` has the wrong type (expected an array)"),
        (3, "invalid JSON"),
        (5, wrong_type),
        (5, f"negative token count in `{spans}[1].attributes.gen_ai.usage.output_tokens`"),
        (5, "no timestamp"),
        (6, "not an OTLP trace export (no `resourceSpans`)"),
    ]


def test_spans_without_a_start_take_the_default_time(tmp_path, db):
    timeless = chat("m1", "msg_m1")
    del timeless["startTimeUnixNano"]
    _, by_id = load(tmp_path, db, [export(timeless)], default_ts="2026-11-04T09:00:00Z")
    assert by_id["msg_m1"]["ts"] == EPOCH + 3600 and by_id["msg_m1"]["latency_ms"] is None


def test_detected_even_when_the_first_export_is_longer_than_the_head():
    line = json.dumps(export(chat("x", "msg_x"))).encode()
    assert detect_format(line + b"\n") == "otel"
    big = json.dumps(export(*[chat(f"x{i}", f"msg_{i}", gen_ai__input__messages="y" * 1000) for i in range(100)]))
    assert detect_format(big.encode()[:65536]) == "otel"


def test_spans_without_any_id_get_content_ids_that_survive_a_gzipped_copy(tmp_path, db):
    bare = chat("z", None)
    del bare["traceId"], bare["spanId"]
    path = write_jsonl(tmp_path / "traces.jsonl", [export(bare, bare)])  # two identical calls in one export
    [first] = ingest_paths(db, [str(path)])
    ids = [r["attempt_id"] for r in rows(db)]
    assert first.loaded == 2 and len(set(ids)) == 2 and all(i.startswith("h:") for i in ids)
    copy = tmp_path / "renamed.jsonl.gz"
    copy.write_bytes(gzip.compress(path.read_bytes()))
    [again] = ingest_paths(db, [str(copy)])
    assert (again.records, again.duplicates, again.attempts_loaded) == (2, 2, 0)


def test_instrumentation_spans_without_id_attributes_take_the_ids_they_carry(tmp_path, db):
    """OpenLLMetry's span of a failed call names its request id only in the status message (the SDK's error text),
    OpenInference's only in `output.value` (the Message as JSON): each becomes the attempt id, so the SDK's span of
    the same call is its duplicate; nothing else of the message or the body is kept."""
    failed = chat("f1", None, error__type="OverloadedError")
    failed["status"] = {"code": 2, "message": "Error code: 529 - {'type': 'error', 'error': {'type': "
                        "'overloaded_error', 'message': 'CANARY_status_Qx'}, 'request_id': 'req_011CV9'}"}
    sdk_failed = chat("f2", None, anthropic__request__id="req_011CV9", http__response__status_code=529)
    body = {"id": "msg_01OI", "type": "message", "role": "assistant", "content": [{"type": "text",
            "text": "CANARY_output_Qx"}], "stop_reason": "end_turn", "usage": {"input_tokens": 5, "output_tokens": 2}}
    oi = span("o1", attrs(openinference__span__kind="LLM", llm__provider="anthropic",
                          llm__model_name="claude-sonnet-4-5", llm__token_count__prompt=5,
                          llm__token_count__completion=2, output__value=json.dumps(body),
                          output__mime_type="application/json"))
    # other shapes are no id: a body that is not a Message, text output, a message without a request id
    not_message = span("o2", attrs(openinference__span__kind="LLM", llm__model_name="claude-sonnet-4-5",
                                   output__value=json.dumps({"id": "x1", "type": "error"}),
                                   output__mime_type="application/json"))
    text = span("o3", attrs(openinference__span__kind="LLM", llm__model_name="claude-sonnet-4-5",
                            output__value='{"id": "msg_text", "type": "message"}', output__mime_type="text/plain"))
    other = chat("f3", None, error__type="OverloadedError")
    other["status"] = {"code": 2, "message": "Connection error."}
    report, by_id = load(tmp_path, db, [export(failed, sdk_failed, oi, not_message, text, other)])
    assert (report.records, report.duplicates, report.rejected) == (6, 1, 0)
    assert by_id["req_011CV9"]["outcome"] == "error"
    assert by_id["msg_01OI"]["output_tokens"] == 2
    assert {i.split(":")[0] for i in by_id if not i.startswith(("req_", "msg_"))} == {"otel"}
    assert len(by_id) == 5
    assert b"CANARY_" not in db.read_bytes()
