"""Per-format ingest throughput: `bedrock`, `otel` and `litellm` against `exchange` (issue 6).

    python benchmarks/formats.py [--lines 50000] [--repeat 3]

Generates `--lines` realistic `exchange` lines (`fallbackscope sample --lines`, ~2.5 KB each: prompts,
system prompt, completion text) and converts each into the equivalent record of every other format,
carrying the same content (request messages and system, completion text) so that each format skips and
fingerprints the same bytes:
- bedrock: an InvokeModel invocation log record (Anthropic bodies; errors as `errorCode`);
- otel: one OTLP/JSON export per line holding one chat span, content captured in
  `gen_ai.input.messages` / `gen_ai.system_instructions` / `gen_ai.output.messages`;
- litellm: a StandardLoggingPayload with OpenAI-format messages and response.
Then times `fallbackscope ingest FILE --format F` (a subprocess, fresh database each run), best of N, and
prints lines per second and the ratio to `exchange`. Target: each within 3× of exchange.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
BEDROCK_ERRORS = {429: "ThrottlingException", 529: "ServiceUnavailableException", 500: "InternalServerException",
                  400: "ValidationException", 408: "ModelTimeoutException"}


def _epoch(ts: str) -> float:
    return dt.datetime.fromisoformat(ts).timestamp()


def _usage(r: dict) -> dict:
    return (r.get("response") or {}).get("usage") or {}


def to_bedrock(r: dict) -> dict:
    body = dict(r["request"])
    model = body.pop("model")
    body["anthropic_version"] = "bedrock-2023-05-31"
    usage = _usage(r)
    rec = {"schemaType": "ModelInvocationLog", "schemaVersion": "1.0", "timestamp": r["ts"],
           "accountId": "123456789012", "identity": {"arn": "arn:aws:sts::123456789012:assumed-role/app/s"},
           "region": "us-east-1", "requestId": r["request_id"], "operation": "InvokeModel",
           "modelId": f"us.anthropic.{model}-v1:0",
           "input": {"inputContentType": "application/json", "inputBodyJson": body,
                     "inputTokenCount": usage.get("input_tokens", 0),
                     "cacheReadInputTokenCount": usage.get("cache_read_input_tokens", 0),
                     "cacheWriteInputTokenCount": usage.get("cache_creation_input_tokens", 0)}}
    if r.get("http_status") == 200:
        rec["output"] = {"outputContentType": "application/json", "outputBodyJson": r["response"],
                         "outputTokenCount": usage.get("output_tokens", 0)}
    else:
        rec["errorCode"] = BEDROCK_ERRORS.get(r.get("http_status"), "InternalServerException")
    return rec


def _attr(key: str, value) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, list):
        return {"key": key, "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}}}
    return {"key": key, "value": {"stringValue": value}}


def to_otel(r: dict, n: int) -> dict:
    request, response = r["request"], r.get("response") or {}
    usage = _usage(r)
    read, write = usage.get("cache_read_input_tokens", 0), usage.get("cache_creation_input_tokens", 0)
    start = int(_epoch(r["ts"]) * 1e9)
    attrs = [_attr("gen_ai.operation.name", "chat"), _attr("gen_ai.provider.name", "anthropic"),
             _attr("gen_ai.request.model", request["model"]),
             _attr("gen_ai.input.messages", json.dumps(request.get("messages"))),
             _attr("gen_ai.system_instructions", json.dumps(request.get("system")))]
    if r.get("session_id"):
        attrs.append(_attr("gen_ai.conversation.id", r["session_id"]))
    if r.get("http_status") == 200:
        attrs += [_attr("gen_ai.response.id", response["id"]), _attr("gen_ai.response.model", response["model"]),
                  _attr("gen_ai.response.finish_reasons", [response.get("stop_reason") or "end_turn"]),
                  _attr("gen_ai.usage.input_tokens", usage.get("input_tokens", 0) + read + write),
                  _attr("gen_ai.usage.output_tokens", usage.get("output_tokens", 0)),
                  _attr("gen_ai.usage.cache_read.input_tokens", read),
                  _attr("gen_ai.usage.cache_creation.input_tokens", write),
                  _attr("gen_ai.output.messages", json.dumps(response.get("content")))]
    else:
        attrs += [_attr("error.type", ((response.get("error") or {}).get("type")) or "_OTHER"),
                  _attr("http.response.status_code", r.get("http_status") or 0)]
    span = {"traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": f"chat {request['model']}", "kind": 3,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + int((r.get("latency_ms") or 0) * 1e6)),
            "attributes": attrs, "status": {} if r.get("http_status") == 200 else {"code": 2}}
    return {"resourceSpans": [{"resource": {"attributes": [_attr("service.name", r.get("workload") or "app")]},
                               "scopeSpans": [{"scope": {"name": "com.anthropic.sdk.python"}, "spans": [span]}]}]}


def to_litellm(r: dict) -> dict:
    request, response = r["request"], r.get("response") or {}
    usage = _usage(r)
    read, write = usage.get("cache_read_input_tokens", 0), usage.get("cache_creation_input_tokens", 0)
    prompt = usage.get("input_tokens", 0) + read + write
    start = _epoch(r["ts"])
    messages = [{"role": "system", "content": request.get("system")}, *request.get("messages", [])]
    rec = {"id": response.get("id") or r["request_id"], "trace_id": r.get("chain_id") or r["request_id"],
           "call_type": "acompletion", "stream": False, "custom_llm_provider": "anthropic",
           "startTime": start, "endTime": start + (r.get("latency_ms") or 0) / 1000,
           "model": response.get("model") or request["model"], "model_group": request["model"],
           "prompt_tokens": prompt, "completion_tokens": usage.get("output_tokens", 0),
           "total_tokens": prompt + usage.get("output_tokens", 0),
           "metadata": {"user_api_key_hash": "0" * 64, "user_api_key_alias": "bench"},
           "messages": messages, "model_parameters": {"max_tokens": request.get("max_tokens")}}
    if r.get("http_status") == 200:
        text = "".join(b.get("text", "") for b in response.get("content") or [] if isinstance(b, dict))
        finish = {"refusal": "content_filter", "end_turn": "stop", "max_tokens": "length"}.get(
            response.get("stop_reason"), "stop")
        usage_object = {"prompt_tokens": prompt, "completion_tokens": usage.get("output_tokens", 0),
                        "cache_read_input_tokens": read, "cache_creation_input_tokens": write}
        rec.update(status="success", hidden_params={"usage_object": usage_object}, response={
            "id": rec["id"], "object": "chat.completion", "model": rec["model"],
            "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": text}}]})
    else:
        rec.update(status="failure", error_information={"error_code": str(r.get("http_status")),
                                                        "error_class": "RateLimitError"})
    return rec


def convert(source: Path, folder: Path) -> dict[str, Path]:
    paths = {"exchange": source}
    outs = {name: open(folder / f"{name}.jsonl", "w") for name in ("bedrock", "otel", "litellm")}
    with open(source, "rb") as fh:
        for n, line in enumerate(fh):
            r = json.loads(line)
            outs["bedrock"].write(json.dumps(to_bedrock(r)) + "\n")
            outs["otel"].write(json.dumps(to_otel(r, n + 1)) + "\n")
            outs["litellm"].write(json.dumps(to_litellm(r)) + "\n")
    for name, fh in outs.items():
        fh.close()
        paths[name] = folder / f"{name}.jsonl"
    return paths


def timed_ingest(path: Path, fmt: str, db: Path) -> tuple[float, str]:
    for p in db.parent.glob(db.name + "*"):
        p.unlink()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(path), "--db", str(db),
                           "--format", fmt], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ingest of {fmt} failed:\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("FALLBACKSCOPE_KEY", "bench-key")
    OUT.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fsformats-"))
    try:
        subprocess.run([sys.executable, "-m", "fallbackscope.cli", "sample", str(tmp / "gen"), "--lines",
                        str(args.lines)], check=True, stdout=subprocess.DEVNULL)
        paths = convert(tmp / "gen" / "exchange-bench.jsonl", tmp)
        mem = psutil.virtual_memory().total / 2**30
        print(f"input: {args.lines:,} lines per format; machine: {os.cpu_count()} cores, {mem:.0f} GiB")
        for name, path in paths.items():
            size = path.stat().st_size
            print(f"  {name:9s} {size / 1e6:8.1f} MB ({size / args.lines / 1e3:.2f} KB a line)")
        best: dict[str, float] = {}
        # interleaved rounds, so a busy spell on the shared machine hits every format alike
        for round_no in range(args.repeat):
            for name, path in paths.items():
                seconds, summary = timed_ingest(path, name, tmp / f"{name}.duckdb")
                best[name] = min(best.get(name, seconds), seconds)
                print(f"  round {round_no + 1} {name:9s} {seconds:7.2f} s  {re.sub(r'^.*?: ', '', summary)}",
                      flush=True)
        print()
        print(f"{'format':9s} {'best s':>8s} {'lines/s':>10s} {'time / exchange':>16s}  (target ≤ 3.0)")
        for name, seconds in best.items():
            print(f"{name:9s} {seconds:8.2f} {args.lines / seconds:10,.0f} {seconds / best['exchange']:16.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
