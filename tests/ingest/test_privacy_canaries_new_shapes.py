"""Privacy by schema (docs/metrics.md §2) for the shapes read since issue 14 (§3.8): OpenInference spans (content in
`input.value`, `output.value`, `llm.input_messages.*`, `llm.output_messages.*`, `metadata` with the refusal's
explanation, exception events), LiteLLM's OTel spans (finish reasons as JSON text, `hidden_params` with headers,
`metadata.*`), nested spans merged into one attempt, and records rejected as the wrong shape under `--format`:
no canary reaches the database file's bytes, stdout, stderr or a reject reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from canary_search import assert_no_canary

FIELDS = [
    "oi_input_value", "oi_output_value", "oi_input_message", "oi_output_message", "oi_explanation", "oi_metadata",
    "oi_exception_message", "oi_stacktrace", "oi_tool_json", "oi_invocation_parameters",
    "ll_input_messages", "ll_output_messages", "ll_header", "ll_metadata", "ll_tool_args", "ll_error_message",
    "sdk_output", "shape_converse_text", "shape_litellm_message", "shape_unknown",
]


def canary(field: str) -> str:
    return f"CANARY_{field}_Pz8"


c = canary


def attr(key: str, text: str) -> dict:
    return {"key": key, "value": {"stringValue": text}}


def number(key: str, n: int) -> dict:
    return {"key": key, "value": {"intValue": str(n)}}


def span(span_id: str, attributes: list, parent: str | None = None, **more) -> dict:
    s = {"traceId": "cd" * 16, "spanId": span_id, "name": "messages.create", "kind": 3,
         "startTimeUnixNano": "1794045600000000000", "endTimeUnixNano": "1794045601000000000",
         "attributes": attributes, "status": {}, **more}
    if parent:
        s["parentSpanId"] = parent
    return s


def otel_lines() -> list[str]:
    openinference = [
        attr("openinference.span.kind", "LLM"), attr("llm.provider", "anthropic"),
        attr("llm.request.model_name", "claude-opus-4-8"), attr("llm.model_name", "claude-opus-4-8"),
        attr("input.value", json.dumps({"messages": [{"role": "user", "content": c("oi_input_value")}]})),
        attr("output.value", json.dumps({"content": [{"text": c("oi_output_value")}]})),
        attr("llm.input_messages.0.message.content", c("oi_input_message")),
        attr("llm.output_messages.0.message.contents.0.message_content.text", c("oi_output_message")),
        attr("metadata", json.dumps({"stop_details": {"category": "cyber", "explanation": c("oi_explanation")},
                                     "note": c("oi_metadata")})),
        attr("llm.tools.0.tool.json_schema", c("oi_tool_json")),
        attr("llm.invocation_parameters", json.dumps({"system": c("oi_invocation_parameters")})),
        attr("llm.finish_reason", "refusal"), number("llm.token_count.prompt", 40),
        number("llm.token_count.completion", 0)]
    failed_outer = span("00000000000000f1", [
        attr("openinference.span.kind", "LLM"), attr("llm.request.model_name", "claude-opus-4-8")],
        status={"code": 2, "message": c("oi_exception_message")},
        events=[{"name": "exception", "attributes": [
            attr("exception.type", "anthropic.OverloadedError"), attr("exception.message", c("oi_exception_message")),
            attr("exception.stacktrace", c("oi_stacktrace"))]}])
    failed_inner = span("00000000000000f2", [
        attr("gen_ai.operation.name", "chat"), attr("gen_ai.provider.name", "anthropic"),
        attr("gen_ai.request.model", "claude-opus-4-8"), attr("error.type", "overloaded_error"),
        attr("anthropic.request.id", "req_canary"), attr("gen_ai.output.messages", c("sdk_output"))],
        parent="00000000000000f1")
    litellm = [
        attr("gen_ai.operation.name", "acompletion"), attr("gen_ai.system", "anthropic"),
        attr("gen_ai.request.model", "claude-opus-4-8"), attr("gen_ai.response.id", "msg_ll_canary"),
        attr("gen_ai.response.finish_reasons", '["content_filter"]'),
        attr("gen_ai.input.messages", json.dumps([{"role": "user", "parts": [{"type": "text",
                                                                              "content": c("ll_input_messages")}]}])),
        attr("gen_ai.output.messages", c("ll_output_messages")), attr("metadata.user_api_key_alias", c("ll_metadata")),
        attr("gen_ai.completion.0.function_call.arguments", c("ll_tool_args")),
        attr("error.message", c("ll_error_message")),
        attr("hidden_params", json.dumps({"additional_headers": {"x-trace": c("ll_header")},
                                          "usage_object": {"prompt_tokens": 30, "completion_tokens": 0}})),
        number("gen_ai.usage.input_tokens", 30), number("gen_ai.usage.output_tokens", 0)]
    spans = [span("00000000000000a1", openinference), failed_outer, failed_inner, span("00000000000000b1", litellm)]
    return [json.dumps({"resourceSpans": [{"resource": {"attributes": [attr("service.name", "bot")]},
                                           "scopeSpans": [{"scope": {"name": "s"}, "spans": [s]}]}]})
            for s in spans]


def wrong_shape_lines() -> list[str]:
    converse = {"output": {"message": {"role": "assistant", "content": [{"text": c("shape_converse_text")}]}},
                "stopReason": "end_turn", "usage": {"inputTokens": 1, "outputTokens": 1}}
    litellm = {"id": "x", "call_type": "acompletion", "startTime": 1.0,
               "messages": [{"role": "user", "content": c("shape_litellm_message")}]}
    return [json.dumps(converse), json.dumps(litellm), json.dumps({"note": c("shape_unknown")})]


def test_no_canary_of_the_new_shapes_reaches_the_database_outputs_or_rejects(tmp_path):
    spans = tmp_path / "spans.jsonl"
    spans.write_text("\n".join(otel_lines()) + "\n")
    shapes = tmp_path / "shapes.jsonl"
    shapes.write_text("\n".join(wrong_shape_lines()) + "\n")
    text = spans.read_text() + shapes.read_text()
    assert not [f for f in FIELDS if canary(f) not in text], "every canary planted"
    db = tmp_path / "p.duckdb"
    cli = [sys.executable, "-m", "fallbackscope.cli", "ingest", "--db", str(db)]
    env = dict(os.environ)
    first = subprocess.run([*cli, str(spans)], capture_output=True, text=True, env=env)
    second = subprocess.run([*cli, "--format", "anthropic", "--default-ts", "2026-11-06T10:00:00Z", str(shapes)],
                            capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    outcomes = sorted(con.execute("SELECT outcome, coalesce(error_class, '') FROM attempts").fetchall())
    reasons = " ".join(r[0] for r in con.execute("SELECT reason FROM rejects").fetchall())
    every_value = con.execute("SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), ' ') FROM attempts").fetchone()
    con.close()
    # the spans really were read: the OpenInference refusal, one merged failed call, LiteLLM's refusal
    assert outcomes == [("error", "overloaded"), ("refusal", ""), ("refusal", "")], outcomes
    assert reasons.count("not a Message or error body") == 2 and "Converse" in reasons
    blobs = {"stdout+stderr": (first.stdout + first.stderr + second.stdout + second.stderr).encode(),
             "rejects": reasons.encode(), "attempt values": " ".join(str(v) for v in every_value).encode()}
    assert_no_canary(db, [canary(f) for f in FIELDS], blobs)
