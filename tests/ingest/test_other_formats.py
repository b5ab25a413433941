"""Hand-made `anthropic`, `batch` and `sse` inputs parsed into exactly the right rows (docs/metrics.md §3.2–3.4)."""

from __future__ import annotations

import gzip

import pytest
from builders import message, rows, token_fp, usage, write_jsonl

from ingest.loader import IngestFailed, LoadOptions, ingest_paths

TS = "2026-11-04T08:00:00Z"
TS_EPOCH = 1793779200.0


def test_bare_bodies_take_default_ts_and_split_hops_as_unknown(tmp_path, db):
    ss = message("msg_b1", "claude-opus-4-8",
                 content=[{"type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-8"},
                           "trigger": {"type": "refusal", "category": "reasoning_extraction"}},
                          {"type": "text", "text": "t"}], usage_=usage(30, 10))
    err = {"type": "error", "error": {"type": "overloaded_error", "message": "m"}, "request_id": "req_b2"}
    path = write_jsonl(tmp_path / "bodies.jsonl", [ss, err])
    [report] = ingest_paths(db, [str(path)], LoadOptions(default_ts=TS, workload="bare"))
    assert report.format == "anthropic" and report.records == 2 and report.rejected == 0
    by_id = {r["attempt_id"]: r for r in rows(db)}
    assert set(by_id) == {"msg_b1#1", "msg_b1#2", "req_b2"}
    assert by_id["msg_b1#1"]["fallback_mode"] == by_id["msg_b1#2"]["fallback_mode"] == "unknown"
    assert by_id["msg_b1#1"]["refusal_category"] == "reasoning_extraction"
    assert by_id["msg_b1#2"]["input_tokens"] == 30 and by_id["msg_b1#1"]["input_tokens"] == 0
    assert by_id["req_b2"]["error_class"] == "overloaded" and by_id["req_b2"]["model"] is None
    assert by_id["req_b2"]["request_id"] == "req_b2"
    assert all(r["ts"] == TS_EPOCH and r["workload"] == "bare" and r["prompt_fp"] is None for r in by_id.values())


def test_bare_bodies_without_default_ts_are_rejected(tmp_path, db):
    path = write_jsonl(tmp_path / "bodies.jsonl", [message("m", "claude-haiku-4-5")])
    with pytest.raises(IngestFailed) as failed:  # none of its records loaded: a failed file (docs/metrics.md §2)
        ingest_paths(db, [str(path)])
    [report] = failed.value.reports
    assert report.rejected == 1 and report.reasons == {"no timestamp": 1}


def batch_lines():
    refusal = message("msg_bt1", "claude-fable-5", stop_reason="refusal", content=[],
                      usage_=usage(500, 0, service_tier="batch"),
                      stop_details={"type": "refusal", "category": "general_harms", "explanation": "x",
                                    "fallback_credit_token": "fct_batch_1"})
    return [
        {"custom_id": "r1", "result": {"type": "succeeded", "message": refusal}},
        {"custom_id": "r2", "result": {"type": "succeeded", "message": message(
            "msg_bt2", "claude-sonnet-4-5", usage_=usage(1000, 100, service_tier="batch"))}},
        {"custom_id": "r3", "result": {"type": "errored", "error": {
            "type": "error", "error": {"type": "invalid_request_error", "message": "bad"}, "request_id": "req_bt3"}}},
        {"custom_id": "r4", "result": {"type": "canceled"}},
        {"custom_id": "r5", "result": {"type": "expired"}},
    ]


def test_batch_results(tmp_path, db):
    path = write_jsonl(tmp_path / "results.jsonl", batch_lines())
    [report] = ingest_paths(db, [str(path)], LoadOptions(default_ts=TS, batch_id="msgbatch_1"))
    assert report.format == "batch" and report.records == 5
    by_id = {r["attempt_id"]: r for r in rows(db)}
    assert set(by_id) == {"msg_bt1", "msg_bt2", "msgbatch_1:r3", "msgbatch_1:r4", "msgbatch_1:r5"}
    assert all(r["is_batch"] and r["batch_id"] == "msgbatch_1" for r in by_id.values())
    refusal = by_id["msg_bt1"]
    assert refusal["outcome"] == "refusal" and refusal["credit_minted_fp"] == token_fp("fct_batch_1")
    assert refusal["refusal_category"] == "general_harms" and refusal["cost_usd"] == 0
    assert by_id["msg_bt2"]["cost_usd"] == pytest.approx((1000 * 3 + 100 * 15) / 1e6 * 0.5)
    assert by_id["msgbatch_1:r3"]["error_class"] == "invalid_request" and by_id["msgbatch_1:r3"]["model"] is None
    assert (by_id["msgbatch_1:r4"]["outcome"], by_id["msgbatch_1:r5"]["outcome"]) == ("canceled", "expired")
    assert by_id["msgbatch_1:r4"]["cost_usd"] == 0 and by_id["msgbatch_1:r4"]["input_tokens"] == 0


def test_batch_results_without_batch_id_get_content_ids_that_survive_gzip_and_rename(tmp_path, db):
    plain = write_jsonl(tmp_path / "results.jsonl", batch_lines())
    ingest_paths(db, [str(plain)], LoadOptions(default_ts=TS))
    first = {r["attempt_id"] for r in rows(db)}
    # §2: the message id when succeeded, else (no --batch-id) the content hash, never the error's request id
    assert {i for i in first if not i.startswith("h:")} == {"msg_bt1", "msg_bt2"} and len(first) == 5
    gz = tmp_path / "renamed.jsonl.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes().replace(b"\n", b"\r\n")))
    [report] = ingest_paths(db, [str(gz)], LoadOptions(default_ts=TS, format="batch"))
    assert report.duplicates == 5 and report.attempts_loaded == 0
    assert {r["attempt_id"] for r in rows(db)} == first


def sse_text(*streams: list[tuple[str, dict]]) -> bytes:
    import json

    out = []
    for stream in streams:
        for event, data in stream:
            out.append(f"event: {event}\ndata: {json.dumps(data)}\n\n")
    return "".join(out).encode()


def start(mid, model, inp=50, out=1):
    return ("message_start", {"type": "message_start", "message": {
        "id": mid, "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": None,
        "usage": {"input_tokens": inp, "output_tokens": out}}})


def text_block():
    return [("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "hello"}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0})]


def delta(stop_reason, out, **details):
    d = {"stop_reason": stop_reason}
    if details:
        d["stop_details"] = details
    return ("message_delta", {"type": "message_delta", "delta": d, "usage": {"output_tokens": out}})


STOP = ("message_stop", {"type": "message_stop"})


def test_sse_streams_are_rebuilt_from_cumulative_usage(tmp_path, db):
    ok = [start("msg_s1", "claude-sonnet-4-5-20250929"), *text_block(), delta("end_turn", 40), STOP]
    refusal = [start("msg_s2", "claude-fable-5"), delta("refusal", 0, type="refusal", category="cyber",
                                                         fallback_credit_token="fct_sse")]  # no stop: next start
    errored = [start("msg_s3", "claude-opus-4-8", inp=70, out=3), *text_block(),
               ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})]
    server = [start("msg_s4", "claude-fable-5"),
              ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                  "type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-8"},
                  "trigger": {"type": "refusal", "category": "bio"}}}),
              ("content_block_stop", {"type": "content_block_stop", "index": 0}),
              *[(e, {**d, "index": 1}) for e, d in text_block()],
              delta("end_turn", 9), STOP]
    path = tmp_path / "capture.sse"
    path.write_bytes(sse_text(ok, refusal, errored, server))
    [report] = ingest_paths(db, [str(path)], LoadOptions(default_ts=TS))
    assert report.format == "sse" and report.records == 4 and report.rejected == 0
    by_id = {r["attempt_id"]: r for r in rows(db)}
    s1 = by_id["msg_s1"]
    assert (s1["model"], s1["outcome"], s1["input_tokens"], s1["output_tokens"]) == ("claude-sonnet-4-5", "ok", 50, 40)
    assert s1["is_stream"] and s1["had_output"]
    s2 = by_id["msg_s2"]
    assert s2["outcome"] == "refusal" and s2["refusal_category"] == "cyber" and s2["had_output"] is False
    assert s2["credit_minted_fp"] == token_fp("fct_sse") and s2["cost_usd"] == 0
    s3 = by_id["msg_s3"]
    assert s3["outcome"] == "error" and s3["error_class"] == "overloaded"
    assert s3["had_output"] is True  # a text block was streamed before the error event
    assert (s3["input_tokens"], s3["output_tokens"]) == (70, 3)
    assert s3["cost_usd"] == pytest.approx((70 * 5 + 3 * 25) / 1e6)
    hop1, hop2 = by_id["msg_s4#1"], by_id["msg_s4#2"]
    assert hop1["model"] == "claude-fable-5" and hop1["outcome"] == "refusal"
    assert hop2["model"] == "claude-opus-4-8" and hop2["requested_model"] == "claude-fable-5"
    assert hop1["fallback_mode"] == hop2["fallback_mode"] == "server_side"
    assert hop2["chain_id"] == hop1["chain_id"] and hop2["attempt_index"] == 2


def test_sse_junk_and_bad_data_lines_are_rejected_with_their_line(tmp_path, db):
    good = [start("msg_g", "claude-haiku-4-5"), *text_block(), delta("end_turn", 4), STOP]
    text = b"this is not sse\n" + sse_text(good) + b"event: message_start\ndata: {not json\n\n"
    path = tmp_path / "capture.sse"
    path.write_bytes(b"event: message_start\n" + text if False else text)
    [report] = ingest_paths(db, [str(path)], LoadOptions(default_ts=TS, format="sse"))
    assert report.records == 3 and report.rejected == 2 and report.attempts_loaded == 1
    from builders import query

    rejects = query(db, "SELECT line_no, byte_offset, reason FROM rejects ORDER BY line_no")
    assert rejects[0] == (1, 0, "not an SSE `event:` or `data:` line")
    assert rejects[1][2].startswith("invalid JSON in the `data:` line")
