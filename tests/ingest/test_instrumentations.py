"""Released instrumentations, really run (issue 14): the `anthropic` SDK with its own tracing, OpenLLMetry
(`opentelemetry-instrumentation-anthropic`) and OpenInference (`openinference-instrumentation-anthropic`) call a
fake Messages API on 127.0.0.1; the OpenTelemetry SDK's OTLP/JSON file exporter writes their spans; ingest must
give back what the fake server served — one attempt per call, refusals as refusals, cache tokens and cost right —
and keep none of the prompt. Versions are pinned in pyproject.toml's test extra."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from builders import rows
from fake_messages_api import fake_messages_api

from ingest.loader import LoadOptions, ingest_paths

pytest.importorskip("anthropic")
pytest.importorskip("opentelemetry.sdk.trace")
pytest.importorskip("opentelemetry.exporter.otlp.json.file.trace_exporter")

APP = Path(__file__).with_name("instrumented_app.py")
SERVED = "claude-sonnet-4-5-20250929"


def message(mid: str, content: list, stop: str, usage: dict, **extra) -> dict:
    return {"id": mid, "type": "message", "role": "assistant", "model": SERVED, "content": content,
            "stop_reason": stop, "stop_sequence": None, "usage": usage, **extra}


REPLIES = {
    "ok": (200, message("msg_ok1", [{"type": "text", "text": "CANARY_instrumented_Zq7_completion"}], "end_turn",
                        {"input_tokens": 120, "output_tokens": 40, "cache_read_input_tokens": 500,
                         "cache_creation_input_tokens": 30,
                         "cache_creation": {"ephemeral_5m_input_tokens": 30, "ephemeral_1h_input_tokens": 0}})),
    "refusal": (200, message("msg_ref1", [{"type": "text", "text": ""}], "refusal",
                             {"input_tokens": 80, "output_tokens": 0},
                             stop_details={"type": "refusal", "category": "cyber",
                                           "explanation": "CANARY_instrumented_Zq7_explanation"})),
    "tool": (200, message("msg_tool1", [{"type": "tool_use", "id": "toolu_1", "name": "CANARY_instrumented_Zq7_tool",
                                         "input": {"q": "x"}}], "tool_use", {"input_tokens": 60, "output_tokens": 20})),
    "stream": (200, message("msg_str1", [{"type": "text", "text": "CANARY_instrumented_Zq7_streamed"}], "end_turn",
                            {"input_tokens": 50, "output_tokens": 12})),
    "overloaded": (529, {"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "CANARY_instrumented_Zq7_error"},
                         "request_id": "req_ovl1"}),
}
# what each call must become: (outcome, stop reason, error class, input, cache read, 5m write, output, cost)
TRUTH = {
    "ok": ("ok", "end_turn", None, 120, 500, 30, 40, (120 * 3 + 500 * 0.3 + 30 * 3.75 + 40 * 15) / 1e6),
    "refusal": ("refusal", "refusal", None, 80, 0, 0, 0, 0.0),
    "tool": ("ok", "tool_use", None, 60, 0, 0, 20, (60 * 3 + 20 * 15) / 1e6),
    "stream": ("ok", "end_turn", None, 50, 0, 0, 12, (50 * 3 + 12 * 15) / 1e6),
    "overloaded": ("error", None, "overloaded", 0, 0, 0, 0, 0.0),
}


def run_app(tmp_path: Path, sdk_spans: str, instrumentation: str, calls: list[str]) -> Path:
    out = tmp_path / f"spans-{sdk_spans}-{instrumentation}.jsonl"
    with fake_messages_api(REPLIES) as (url, seen):
        subprocess.run([sys.executable, str(APP), url, str(out), sdk_spans, instrumentation, *calls], check=True,
                       timeout=120, capture_output=True)
    assert [s["reply"] for s in seen] == [c.split(":")[0] for c in calls]
    return out


def loaded(db: Path, path: Path) -> list[tuple]:
    [report] = ingest_paths(db, [str(path)], LoadOptions())
    assert (report.format, report.rejected) == ("otel", 0)
    got = []
    for r in rows(db):
        cost = round(r["cost_usd"], 12) if r["cost_usd"] is not None else None
        got.append((r["outcome"], r["stop_reason"], r["error_class"], r["input_tokens"], r["cache_read_tokens"],
                    r["cache_write_5m_tokens"], r["output_tokens"], cost))
        assert (r["model"], r["surface"], r["workload"]) == ("claude-sonnet-4-5", "anthropic", "instrumented-app")
        assert (r["web_search_requests"], r["cost_complete"]) == (None, False)  # spans report no searches
    return sorted(got, key=str)


def expected(calls: list[str]) -> list[tuple]:
    return sorted(((*TRUTH[c.split(":")[0]][:7], round(TRUTH[c.split(":")[0]][7], 12)) for c in calls), key=str)


CALLS = ["ok", "refusal", "tool", "stream:stream", "overloaded"]
ALONE = [
    ("on", "none"),  # the SDK's own spans
    ("off", "openllmetry"),  # OpenLLMetry alone
    ("off", "openinference"),  # OpenInference alone
]
MODULES = {"openllmetry": "opentelemetry.instrumentation.anthropic",
           "openinference": "openinference.instrumentation.anthropic"}


@pytest.mark.slow
@pytest.mark.parametrize(("sdk_spans", "instrumentation"), ALONE)
def test_each_call_is_one_attempt_as_served(tmp_path, db, sdk_spans, instrumentation):
    if instrumentation != "none":
        pytest.importorskip(MODULES[instrumentation])
    spans = run_app(tmp_path, sdk_spans, instrumentation, CALLS)
    want = expected(CALLS)
    if instrumentation == "openllmetry":
        # OpenLLMetry 0.62.4 adds message_start's output count (1) to message_delta's cumulative one: its span says
        # 13 where 12 were served; ingest stores what the span says
        want = sorted([w for w in want if w[1:2] != ("end_turn",) or w[3] != 50]
                      + [("ok", "end_turn", None, 50, 0, 0, 13, round((50 * 3 + 13 * 15) / 1e6, 12))], key=str)
    assert loaded(db, spans) == want
    assert b"CANARY_instrumented" not in db.read_bytes()


@pytest.mark.slow
def test_openinferences_span_around_the_sdks_span_is_one_attempt(tmp_path, db):
    pytest.importorskip(MODULES["openinference"])
    calls = ["ok", "refusal", "tool", "overloaded"]
    spans = run_app(tmp_path, "on", "openinference", calls)
    assert loaded(db, spans) == expected(calls)
    assert b"CANARY_instrumented" not in db.read_bytes()


@pytest.mark.slow
def test_openinferences_span_of_a_stream_beside_the_sdks_is_one_attempt(tmp_path, db):
    # OpenInference 3.1.0 does not keep its span current while `messages.stream` sends the request, so the SDK's
    # span of a stream is a root of its own; the Message id in OpenInference's `output.value` joins the two
    pytest.importorskip(MODULES["openinference"])
    spans = run_app(tmp_path, "on", "openinference", ["stream:stream"])
    assert loaded(db, spans) == expected(["stream:stream"])
    assert b"CANARY_instrumented" not in db.read_bytes()


@pytest.mark.slow
def test_openllmetry_beside_the_sdks_spans_gives_one_attempt_per_answered_call(tmp_path, db):
    pytest.importorskip(MODULES["openllmetry"])
    calls = ["ok", "refusal", "tool"]
    spans = run_app(tmp_path, "on", "openllmetry", calls)
    assert loaded(db, spans) == expected(calls)  # the two spans of each call share the response id


@pytest.mark.slow
def test_openllmetry_beside_the_sdks_spans_gives_one_attempt_per_failed_call(tmp_path, db):
    # OpenLLMetry 0.62.4 does not make its span current, so its span of a failed call and the SDK's are separate
    # traces; the request id in its status message (the SDK's error text) joins the two, and no more of it is kept
    pytest.importorskip(MODULES["openllmetry"])
    spans = run_app(tmp_path, "on", "openllmetry", ["overloaded"])
    assert loaded(db, spans) == expected(["overloaded"])
    assert b"CANARY_instrumented" not in db.read_bytes()


# -- LiteLLM: its OpenTelemetry callback and its StandardLoggingPayload, from the released library -----------------

LITELLM_APP = Path(__file__).with_name("litellm_app.py")


def run_litellm(tmp_path: Path, calls: list[str]) -> tuple[Path, Path]:
    spans, payloads = tmp_path / "litellm-spans.jsonl", tmp_path / "litellm-payloads.jsonl"
    with fake_messages_api(REPLIES) as (url, seen):
        done = subprocess.run([sys.executable, str(LITELLM_APP), url, str(spans), str(payloads), *calls],
                              timeout=300, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert [s["reply"] for s in seen] == [c.split(":")[0] for c in calls]
    return spans, payloads


@pytest.mark.slow
def test_litellm_spans_and_payloads_give_each_call_as_served(tmp_path):
    """LiteLLM 1.110 reports a refusal as `content_filter`, an `overloaded_error` as its own 500 InternalServerError,
    and (in its spans) the usage with cache counts only as a Python repr in `metadata.usage_object`: both of its
    outputs must still give what the fake server served — refusals as refusals, the API's error class, cache tokens
    and cost right, and the refusal's category where the payload kept the provider's `stop_details`."""
    if importlib.util.find_spec("litellm") is None:  # not imported here: importing it fetches a price map online
        pytest.skip("litellm is not installed")
    calls = ["ok", "refusal", "tool", "overloaded", "stream:stream"]
    spans, payloads = run_litellm(tmp_path, calls)
    want = expected(calls)
    for path, fmt in ((spans, "otel"), (payloads, "litellm")):
        db = tmp_path / f"{fmt}.duckdb"
        [report] = ingest_paths(db, [str(path)], LoadOptions())
        assert (report.format, report.rejected, report.attempts_loaded) == (fmt, 0, len(calls))
        got = rows(db)
        assert sorted(((r["outcome"], r["stop_reason"], r["error_class"], r["input_tokens"], r["cache_read_tokens"],
                        r["cache_write_5m_tokens"], r["output_tokens"], round(r["cost_usd"], 12)) for r in got),
                      key=str) == want
        assert {r["model"] for r in got} == {"claude-sonnet-4-5"}
        by_outcome = {r["outcome"]: r for r in got}
        assert by_outcome["error"]["request_id"] == "req_ovl1"  # the API's, quoted in LiteLLM's error text
        # the category survives only in the payload (the span says `content_filter` and no more)
        assert by_outcome["refusal"]["refusal_category"] == ("cyber" if fmt == "litellm" else None)
        assert b"CANARY_instrumented" not in db.read_bytes()
