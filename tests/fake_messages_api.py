"""A scripted fake Messages API on 127.0.0.1, for tests that run a real client (the `anthropic` SDK, with or
without instrumentation libraries) against it: each request names the reply it wants in an `x-reply` header,
and the server sends that reply — a Message (as JSON or as an SSE stream) or an error body with its status.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sse_events(message: dict) -> list[tuple[str, dict]]:
    """Return the SSE events that stream `message` (text and thinking as one delta each, tool input as JSON)."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    events: list[tuple[str, dict]] = [("message_start", {"type": "message_start", "message": start})]
    for i, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"text": {"type": "text", "text": ""}, "thinking": {"type": "thinking", "thinking": ""}}.get(kind)
        events.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": empty or {**block, "input": {}}}))
        if kind == "text":
            delta = {"type": "text_delta", "text": block["text"]}
        elif kind == "thinking":
            delta = {"type": "thinking_delta", "thinking": block["thinking"]}
        else:
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input", {}))}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}))
        events.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    events.append(("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                     "usage": message["usage"]}))
    events.append(("message_stop", {"type": "message_stop"}))
    return events


class ScriptedHandler(BaseHTTPRequestHandler):
    """Serves `replies[<x-reply header>]`: `(status, body)`; a 200 to a request with `stream: true` is streamed."""

    replies: dict[str, tuple[int, dict]]
    seen: list[dict]

    def log_message(self, *args) -> None:  # keep the test output quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.seen.append({"path": self.path, "reply": self.headers["x-reply"], "model": body.get("model")})
        status, reply = self.replies[self.headers["x-reply"]]
        request_id = reply.get("request_id") or f"req_{reply.get('id')}"
        if status == 200 and body.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("request-id", request_id)
            self.send_header("connection", "close")
            self.end_headers()
            for name, data in sse_events(reply):
                self.wfile.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            return
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", request_id)
        self.end_headers()
        self.wfile.write(data)


@contextlib.contextmanager
def fake_messages_api(replies: dict[str, tuple[int, dict]]) -> Iterator[tuple[str, list[dict]]]:
    """Serve `replies` on 127.0.0.1 in a thread; yield (base URL, the requests seen)."""
    seen: list[dict] = []
    handler = type("BoundHandler", (ScriptedHandler,), {"replies": replies, "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
