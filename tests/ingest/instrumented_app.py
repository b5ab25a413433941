"""An app that calls the Messages API through the real `anthropic` SDK, traced by the released instrumentation
libraries, its spans written by the OpenTelemetry SDK's OTLP/JSON file exporter. Run in its own process by
`test_instrumentations.py` (instrumentors patch the SDK for the whole process):

    python instrumented_app.py BASE_URL OUT.jsonl SDK_SPANS(on|off) INSTRUMENTATION(none|openllmetry|openinference)
        CALL...        where CALL is `reply[:stream]`, the reply the fake server is asked for

Every request carries canary text, so a test can show none of it reaches the database.
"""

from __future__ import annotations

import sys

from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

CANARY = "CANARY_instrumented_Zq7"


def main(base_url: str, out: str, sdk_spans: str, instrumentation: str, calls: list[str]) -> None:
    provider = TracerProvider(resource=Resource.create({"service.name": "instrumented-app"}))
    with open(out, "w", encoding="utf-8") as stream:
        provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(stream=stream)))
        if instrumentation == "openllmetry":
            from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

            AnthropicInstrumentor().instrument(tracer_provider=provider)
        elif instrumentation == "openinference":
            from openinference.instrumentation.anthropic import AnthropicInstrumentor

            AnthropicInstrumentor().instrument(tracer_provider=provider)
        import anthropic

        telemetry = {"tracer_provider": provider, "traces": {"content_mode": "content"}} if sdk_spans == "on" else False
        client = anthropic.Anthropic(base_url=base_url, api_key=f"{CANARY}_api_key", max_retries=0,
                                     open_telemetry=telemetry)
        for call in calls:
            reply, _, mode = call.partition(":")
            params = dict(model="claude-sonnet-4-5", max_tokens=64, extra_headers={"x-reply": reply},
                          system=f"{CANARY}_system", messages=[{"role": "user", "content": f"{CANARY}_prompt"}])
            try:
                if mode == "stream":
                    with client.messages.stream(**params) as events:
                        for _ in events:
                            pass
                else:
                    client.messages.create(**params)
            except anthropic.APIStatusError:
                pass  # the fake server's error reply: the app goes on
        provider.shutdown()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
