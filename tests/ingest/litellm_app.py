"""An app that calls Claude through the real LiteLLM (its Anthropic provider), with LiteLLM's OpenTelemetry callback
(spans written by the OpenTelemetry SDK's OTLP/JSON file exporter) and a logger that writes each call's
StandardLoggingPayload as a JSON line, as a LiteLLM custom callback does. Run in its own process by
`test_instrumentations.py`:

    python litellm_app.py BASE_URL SPANS.jsonl PAYLOADS.jsonl CALL...    where CALL is `reply[:stream]`

Every request carries canary text, so a test can show none of it reaches the database.
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of LiteLLM's price map from the internet

import litellm  # noqa: E402
from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from litellm.integrations.opentelemetry import OpenTelemetry, OpenTelemetryConfig  # noqa: E402
from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter  # noqa: E402

CANARY = "CANARY_instrumented_Zq7"


class PayloadWriter(CustomLogger):
    """Writes the StandardLoggingPayload of every call, successful or failed, as one JSON line."""

    def __init__(self, stream) -> None:
        super().__init__()
        self.stream = stream
        self.count = 0

    def _write(self, kwargs) -> None:
        self.stream.write(json.dumps(kwargs["standard_logging_object"], default=str) + "\n")
        self.stream.flush()
        self.count += 1

    def log_success_event(self, kwargs, response_obj, start_time, end_time) -> None:
        self._write(kwargs)

    def log_failure_event(self, kwargs, response_obj, start_time, end_time) -> None:
        self._write(kwargs)


def main(base_url: str, spans: str, payloads: str, calls: list[str]) -> None:
    with open(spans, "w", encoding="utf-8") as span_stream, open(payloads, "w", encoding="utf-8") as payload_stream:
        otel = OpenTelemetry(config=OpenTelemetryConfig(exporter=FileSpanExporter(stream=span_stream),
                                                        service_name="instrumented-app", skip_set_global=True))
        writer = PayloadWriter(payload_stream)
        litellm.callbacks = [otel, writer]
        for call in calls:
            reply, _, mode = call.partition(":")
            try:
                response = litellm.completion(
                    model="anthropic/claude-sonnet-4-5", api_base=base_url, api_key=f"{CANARY}_api_key", max_tokens=64,
                    messages=[{"role": "system", "content": f"{CANARY}_system"},
                              {"role": "user", "content": f"{CANARY}_prompt"}],
                    extra_headers={"x-reply": reply}, num_retries=0, stream=mode == "stream")
                if mode == "stream":
                    for _ in response:
                        pass
            except litellm.exceptions.APIError:
                pass  # the fake server's error reply: the app goes on
            except litellm.exceptions.InternalServerError:
                pass
        deadline = time.monotonic() + 30  # a stream's logging runs in LiteLLM's own thread once it is read
        while writer.count < len(calls) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
