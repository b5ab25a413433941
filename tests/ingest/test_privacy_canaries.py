"""Privacy by schema (docs/metrics.md §2): canaries planted in every text field of every input format never reach
the database file's bytes, stdout, stderr or rejects; nor do raw credit tokens."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

FIELDS = [
    "msg_string", "msg_block", "tool_use_input", "tool_result", "system", "system_block", "tool_name",
    "tool_description", "tool_schema", "prefill", "completion", "thinking", "thinking_signature",
    "redacted_thinking", "explanation", "error_message", "user_id", "minted_token", "presented_token",
    "api_key_header", "stream_text", "stream_thinking", "stream_json", "batch_error", "sse_error",
    "rejected_line", "invalid_json_line", "unknown_field", "custom_field_name",
]


def canary(field: str) -> str:
    return f"CANARY_{field}_Zq7"


def full_request(model: str) -> dict:
    return {
        "model": model, "max_tokens": 100,
        "system": [{"type": "text", "text": canary("system_block")}],
        "messages": [
            {"role": "user", "content": canary("msg_string")},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "tu1", "name": canary("tool_name"),
                                               "input": {"q": canary("tool_use_input")}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1",
                                          "content": canary("tool_result")},
                                         {"type": "text", "text": canary("msg_block")}]},
            {"role": "assistant", "content": canary("prefill")},
        ],
        "tools": [{"name": canary("tool_name"), "description": canary("tool_description"),
                   "input_schema": {"type": "object", "properties": {canary("tool_schema"): {"type": "string"}}}}],
        "metadata": {"user_id": canary("user_id")},
        "fallback_credit_token": {"token": canary("presented_token"), "mode": "best_effort"},
    }


def full_message(mid: str, stop_reason: str = "refusal") -> dict:
    return {
        "id": mid, "type": "message", "role": "assistant", "model": "claude-fable-5",
        "content": [{"type": "thinking", "thinking": canary("thinking"), "signature": canary("thinking_signature")},
                    {"type": "redacted_thinking", "data": canary("redacted_thinking")},
                    {"type": "text", "text": canary("completion")}],
        "stop_reason": stop_reason,
        "stop_details": {"type": "refusal", "category": "cyber", "explanation": canary("explanation"),
                         "fallback_credit_token": canary("minted_token")},
        "usage": {"input_tokens": 5, "output_tokens": 5},
    }


def write_inputs(folder: Path) -> list[tuple[Path, list[str]]]:
    """Write one file per format; return (path, extra CLI options)."""
    folder.mkdir()
    error_body = {"type": "error", "error": {"type": "overloaded_error", "message": canary("error_message")}}
    exchange = [
        {"ts": "2026-11-06T10:00:00Z", "workload": "w", "http_status": 200, "request": full_request("claude-fable-5"),
         "response": full_message("msg_p1"), "headers": {"x-api-key": canary("api_key_header")},
         "note": canary("unknown_field"), canary("custom_field_name"): 1},
        {"ts": "2026-11-06T10:00:01Z", "http_status": 529,
         "request": {**full_request("claude-opus-4-8"), "system": canary("system")}, "response": error_body},
        {"ts": "2026-11-06T10:00:02Z", "http_status": 200, "request": full_request("claude-opus-4-8"), "events": [
            {"type": "message_start", "message": {**full_message("msg_p2", None), "content": []}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "thinking_delta", "thinking": canary("stream_thinking")}},
            {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": canary("stream_text")}},
            {"type": "content_block_start", "index": 2,
             "content_block": {"type": "tool_use", "name": "t", "input": {}}},
            {"type": "content_block_delta", "index": 2,
             "delta": {"type": "input_json_delta", "partial_json": canary("stream_json")}},
            {"type": "message_delta", "delta": {"stop_reason": "refusal", "stop_details": {
                "type": "refusal", "category": None, "explanation": canary("explanation"),
                "fallback_credit_token": canary("minted_token")}}, "usage": {"output_tokens": 9}},
            {"type": "message_stop"}]},
        {"ts": "2026-11-06T10:00:03Z", "http_status": 200, "workload": 5, "note": canary("rejected_line"),
         "request": full_request("claude-fable-5")},
    ]
    lines = [json.dumps(r) for r in exchange] + ['{"ts": "x", "oops": "' + canary("invalid_json_line")]
    ex_path = folder / "exchange.jsonl"
    ex_path.write_text("\n".join(lines) + "\n")
    bare = folder / "bare.jsonl"
    bare.write_text(json.dumps(full_message("msg_p3")) + "\n" + json.dumps({**error_body, "request_id": "r"}) + "\n")
    batch = folder / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(r) for r in [
        {"custom_id": "a", "result": {"type": "succeeded", "message": full_message("msg_p4")}},
        {"custom_id": "b", "result": {"type": "errored", "error": {
            "type": "error", "error": {"type": "api_error", "message": canary("batch_error")}}}},
    ]) + "\n")
    sse = folder / "capture.sse"
    events = [
        ("message_start", {"type": "message_start", "message": {**full_message("msg_p5", None), "content": []}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": canary("stream_text")}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": canary("stream_text")}}),
        ("error", {"type": "error", "error": {"type": "overloaded_error", "message": canary("sse_error")}}),
    ]
    sse.write_text("".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events) + "data: {"
                   + canary("invalid_json_line") + "\n")
    ts = ["--default-ts", "2026-11-06T12:00:00Z"]
    return [(ex_path, []), (bare, ts), (batch, [*ts, "--batch-id", "b1", "--format", "batch"]), (sse, ts)]


def planted(folder: Path) -> list[str]:
    text = "".join(p.read_text() for p in folder.iterdir())
    found = [canary(f) for f in FIELDS if canary(f) in text]
    assert len(found) == len(FIELDS), "every canary must be planted in the inputs"
    return found


def test_no_canary_reaches_the_database_outputs_or_rejects(tmp_path):
    folder = tmp_path / "logs"
    inputs = write_inputs(folder)
    canaries = planted(folder)
    db = tmp_path / "p.duckdb"
    outputs = []
    for path, options in inputs:
        proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(path), "--db", str(db),
                               *options], capture_output=True, text=True, env=dict(os.environ))
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout + proc.stderr)
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    attempts, rejects = con.execute("SELECT (SELECT count(*) FROM attempts), (SELECT count(*) FROM rejects)").fetchone()
    reasons = " ".join(r[0] for r in con.execute("SELECT reason FROM rejects").fetchall())
    every_value = con.execute("SELECT string_agg(CAST(COLUMNS(*) AS VARCHAR), ' ') FROM attempts").fetchone()
    con.close()
    assert attempts >= 8 and rejects >= 3  # the inputs really were loaded and rejected
    blobs = {"stdout+stderr": "".join(outputs).encode(), "rejects": reasons.encode(),
             "attempt values": " ".join(str(v) for v in every_value).encode()}
    for f in tmp_path.iterdir():
        if f.is_file() and f.name.startswith("p.duckdb"):
            blobs[f.name] = f.read_bytes()
    for name, blob in blobs.items():
        for c in canaries:
            assert c.encode() not in blob, f"{c} leaked into {name}"
