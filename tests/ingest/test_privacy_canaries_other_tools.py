"""Privacy by schema (docs/metrics.md §2) for the formats of other tools: canaries planted in every text field of
`bedrock`, `otel` and `litellm` records never reach the database file's bytes, stdout, stderr or rejects."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from canary_search import assert_no_canary

FIELDS = [
    # bedrock
    "br_msg", "br_system", "br_tool_name", "br_tool_desc", "br_tool_schema", "br_tool_input", "br_tool_result",
    "br_user_id", "br_presented_token", "br_completion", "br_thinking", "br_explanation", "br_minted_token",
    "br_converse_msg", "br_converse_system", "br_converse_tool", "br_converse_out", "br_converse_tool_use",
    "br_stream_delta", "br_cstream_delta", "br_s3_path", "br_identity", "br_request_meta", "br_error_message",
    "br_guardrail_trace", "br_unknown", "br_rejected",
    # otel
    "ot_input_messages", "ot_output_messages", "ot_system", "ot_prompt", "ot_completion", "ot_tool_definitions",
    "ot_tool_args", "ot_event_body", "ot_exception", "ot_status_message", "ot_resource", "ot_unknown_attr",
    "ot_attr_name", "ot_rejected_span",
    # litellm
    "ll_messages", "ll_response", "ll_tool_args", "ll_error_str", "ll_error_message", "ll_traceback",
    "ll_key_alias", "ll_user_id", "ll_end_user", "ll_ip", "ll_params_system", "ll_tags", "ll_spend_meta",
    "ll_headers", "ll_explanation", "ll_minted_token", "ll_raw_text", "ll_proxy_request", "ll_spend_api_key",
    "ll_spend_messages", "ll_rejected",
    # every format
    "invalid_json",
]


def canary(field: str) -> str:
    return f"CANARY_{field}_Qx3"


c = canary


def bedrock_lines() -> list[str]:
    body = {"anthropic_version": "bedrock-2023-05-31", "max_tokens": 100, "system": c("br_system"),
            "messages": [{"role": "user", "content": c("br_msg")},
                         {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "t",
                                                            "input": {"q": c("br_tool_input")}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                       "content": c("br_tool_result")}]}],
            "tools": [{"name": c("br_tool_name"), "description": c("br_tool_desc"),
                       "input_schema": {"type": "object", "properties": {c("br_tool_schema"): {}}}}],
            "metadata": {"user_id": c("br_user_id")},
            "fallback_credit_token": {"token": c("br_presented_token"), "mode": "best_effort"}}
    refusal = {"id": "msg_bp1", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
               "content": [{"type": "thinking", "thinking": c("br_thinking"), "signature": "s"},
                           {"type": "text", "text": c("br_completion")}],
               "stop_reason": "refusal", "stop_details": {"type": "refusal", "category": "cyber",
                                                          "explanation": c("br_explanation"),
                                                          "fallback_credit_token": c("br_minted_token")},
               "usage": {"input_tokens": 5, "output_tokens": 5}}
    common = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": "2026-11-06T10:00:00Z",
              "accountId": "123456789012", "region": "us-east-1", "identity": {"arn": c("br_identity")},
              "requestMetadata": {"team": c("br_request_meta")}, "note": c("br_unknown")}
    converse_in = {"messages": [{"role": "user", "content": [{"text": c("br_converse_msg")}]}],
                   "system": [{"text": c("br_converse_system")}],
                   "toolConfig": {"tools": [{"toolSpec": {"name": c("br_converse_tool"), "inputSchema": {}}}]}}
    records = [
        {**common, "requestId": "b1", "operation": "InvokeModel", "modelId": "anthropic.claude-opus-4-8-v1:0",
         "input": {"inputBodyJson": body, "inputTokenCount": 5}, "output": {"outputBodyJson": refusal}},
        {**common, "requestId": "b2", "operation": "Converse", "modelId": "us.anthropic.claude-haiku-4-5-v1:0",
         "input": {"inputBodyJson": converse_in},
         "output": {"outputBodyJson": {"output": {"message": {"role": "assistant", "content": [
             {"text": c("br_converse_out")}, {"toolUse": {"toolUseId": "u", "name": "n",
                                                          "input": {"x": c("br_converse_tool_use")}}}]}},
             "stopReason": "guardrail_intervened", "trace": {"guardrail": {"detail": c("br_guardrail_trace")}},
             "usage": {"inputTokens": 3, "outputTokens": 3}}}},
        {**common, "requestId": "b3", "operation": "InvokeModelWithResponseStream",
         "modelId": "anthropic.claude-opus-4-8",
         "input": {"inputBodyJson": body}, "output": {"outputBodyJson": [
             {"type": "message_start", "message": {**refusal, "content": [], "stop_reason": None, "id": "msg_bp3"}},
             {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": c("br_stream_delta")}},
             {"type": "message_stop"}]}},
        {**common, "requestId": "b4", "operation": "ConverseStream", "modelId": "anthropic.claude-opus-4-8",
         "input": {"inputBodyJson": converse_in}, "output": {"outputBodyJson": [
             {"contentBlockDelta": {"delta": {"text": c("br_cstream_delta")}}},
             {"messageStop": {"stopReason": "end_turn"}}]}},
        {**common, "requestId": "b5", "operation": "InvokeModel", "modelId": "anthropic.claude-opus-4-8",
         "input": {"inputBodyS3Path": "s3://b/" + c("br_s3_path"), "inputTokenCount": 9},
         "output": {"outputBodyS3Path": "s3://b/" + c("br_s3_path"), "outputTokenCount": 1}},
        {**common, "requestId": "b6", "operation": "InvokeModel", "modelId": "anthropic.claude-opus-4-8",
         "errorCode": "ThrottlingException", "errorMessage": c("br_error_message")},
        {**common, "requestId": "b7", "operation": "InvokeModel", "modelId": "anthropic.claude-opus-4-8",
         "input": {"inputBodyJson": body, "inputTokenCount": -1, "x": c("br_rejected")}},
    ]
    return [json.dumps(r) for r in records] + ['{"schemaType": "ModelInvocationLog", "x": "' + c("invalid_json")]


def otel_lines() -> list[str]:
    def attr(key, text):
        return {"key": key, "value": {"stringValue": text}}

    def span(span_id, extra, **more):
        return {"traceId": "ab" * 16, "spanId": span_id, "name": "chat claude-opus-4-8", "kind": 3,
                "startTimeUnixNano": "1794045600000000000", "endTimeUnixNano": "1794045601000000000",
                "attributes": [attr("gen_ai.operation.name", "chat"), attr("gen_ai.request.model", "claude-opus-4-8"),
                               *extra], **more}

    content = [
        attr("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                              "content": c("ot_input_messages")}]}])),
        attr("gen_ai.output.messages", c("ot_output_messages")), attr("gen_ai.system_instructions", c("ot_system")),
        attr("gen_ai.prompt", c("ot_prompt")), attr("gen_ai.completion", c("ot_completion")),
        attr("gen_ai.tool.definitions", c("ot_tool_definitions")),
        attr("gen_ai.tool.call.arguments", c("ot_tool_args")),
        attr("app.note", c("ot_unknown_attr")), attr(c("ot_attr_name"), "v"),
        {"key": "gen_ai.response.finish_reasons", "value": {"arrayValue": {"values": [{"stringValue": "refusal"}]}}},
    ]
    good = span("s1", content, events=[{"name": "gen_ai.user.message", "timeUnixNano": "1794045600000000000",
                                        "attributes": [attr("content", c("ot_event_body"))]},
                                       {"name": "exception", "attributes": [attr("exception.message",
                                                                                 c("ot_exception"))]}])
    failed = span("s2", [attr("error.type", "overloaded_error")], status={"code": 2, "message": c("ot_status_message")})
    rejected = span("s3", [*content, {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-7"}},
                           attr("x", c("ot_rejected_span"))])
    export = {"resourceSpans": [{"resource": {"attributes": [attr("service.name", "bot"),
                                                             attr("host.name", c("ot_resource"))]},
                                 "scopeSpans": [{"scope": {"name": "s"}, "spans": [good, failed, rejected]}]}]}
    return [json.dumps(export), '{"resourceSpans": [' + c("invalid_json")]


def litellm_lines() -> list[str]:
    common = {"call_type": "acompletion", "custom_llm_provider": "anthropic", "model": "claude-opus-4-8",
              "model_group": "opus", "prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12,
              "messages": [{"role": "user", "content": c("ll_messages")}],
              "metadata": {"user_api_key_alias": c("ll_key_alias"), "user_api_key_user_id": c("ll_user_id"),
                           "spend_logs_metadata": {"n": c("ll_spend_meta")}},
              "end_user": c("ll_end_user"), "requester_ip_address": c("ll_ip"), "request_tags": [c("ll_tags")],
              "model_parameters": {"system": c("ll_params_system")},
              "hidden_params": {"additional_headers": {"x": c("ll_headers")}}}
    raw = {"id": "msg_lp3", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
           "content": [{"type": "text", "text": c("ll_raw_text")}], "stop_reason": "refusal",
           "stop_details": {"category": None, "explanation": c("ll_explanation"),
                            "fallback_credit_token": c("ll_minted_token")}, "usage": {"input_tokens": 1}}
    records = [
        {**common, "id": "l1", "trace_id": "t1", "status": "success", "startTime": 1794045600.0,
         "endTime": 1794045601.0,
         "response": {"choices": [{"finish_reason": "content_filter", "message": {
             "content": c("ll_response"), "tool_calls": [{"function": {"arguments": c("ll_tool_args")}}]}}]}},
        {**common, "id": "l2", "trace_id": "t1", "status": "failure", "startTime": 1794045602.0,
         "error_str": c("ll_error_str"), "error_information": {"error_code": "529", "error_class": "X",
                                                               "error_message": c("ll_error_message"),
                                                               "traceback": c("ll_traceback")}},
        {**common, "id": "l3", "trace_id": "t3", "status": "success", "startTime": 1794045603.0,
         "call_type": "anthropic_messages", "response": raw},
        {"request_id": "l4", "call_type": "acompletion", "startTime": "2026-11-06 10:00:04+00",
         "model": "claude-opus-4-8", "api_key": c("ll_spend_api_key"), "session_id": "t4", "status": "success",
         "metadata": json.dumps({"usage_object": {"prompt_tokens": 3}}),
         "messages": json.dumps([c("ll_spend_messages")]),
         "proxy_server_request": json.dumps({"body": c("ll_proxy_request")}), "prompt_tokens": 3},
        {**common, "id": "l5", "trace_id": "t5", "startTime": "never", "x": c("ll_rejected")},
    ]
    return [json.dumps(r) for r in records] + ['{"call_type": "' + c("invalid_json")]


def write_inputs(folder: Path) -> list[Path]:
    folder.mkdir()
    paths = []
    for name, lines in (("bedrock.jsonl", bedrock_lines()), ("otel.jsonl", otel_lines()),
                        ("litellm.jsonl", litellm_lines())):
        path = folder / name
        path.write_text("\n".join(lines) + "\n")
        paths.append(path)
    return paths


def test_no_canary_of_another_tool_reaches_the_database_outputs_or_rejects(tmp_path):
    folder = tmp_path / "logs"
    paths = write_inputs(folder)
    text = "".join(p.read_text() for p in paths)
    missing = [f for f in FIELDS if canary(f) not in text]
    assert not missing, f"canaries not planted: {missing}"
    db = tmp_path / "p.duckdb"
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", *map(str, paths), "--db", str(db)],
                          capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    formats = dict(con.execute("SELECT format, sum(attempts_loaded) FROM loads GROUP BY 1").fetchall())
    rejected = dict(con.execute("SELECT format, sum(rejected) FROM loads GROUP BY 1").fetchall())
    reasons = " ".join(r[0] for r in con.execute("SELECT reason FROM rejects").fetchall())
    every_value = con.execute("SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), ' ') FROM attempts").fetchone()
    con.close()
    # the inputs really were loaded and rejected, each in its own format
    assert formats == {"bedrock": 6, "otel": 2, "litellm": 4}, formats
    assert rejected == {"bedrock": 2, "otel": 2, "litellm": 2}, rejected
    blobs = {"stdout+stderr": (proc.stdout + proc.stderr).encode(), "rejects": reasons.encode(),
             "attempt values": " ".join(str(v) for v in every_value).encode()}
    assert_no_canary(db, [canary(f) for f in FIELDS], blobs)
