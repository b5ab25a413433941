"""Record the official `anthropic` SDK's calls as `exchange` log lines (metadata only): `Recorder`, `tags`."""

from fallbackscope.recorder.reduce import reduce_event, reduce_message, reduce_request, reduce_usage
from fallbackscope.recorder.transport import AsyncRecordingTransport, Recorder, RecordingTransport, tags

__all__ = ["AsyncRecordingTransport", "Recorder", "RecordingTransport", "reduce_event", "reduce_message",
           "reduce_request", "reduce_usage", "tags"]
