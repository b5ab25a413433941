"""moto's S3 server on loopback, for the object-storage tests of both engines (docs/metrics.md §11).

One server per test process (`s3_server()`): s3fs caches its filesystems per process, so every test of the
process must talk to the same endpoint. The server counts the requests it serves (`requests`), so a test can
show that an object was not read (no GET of its key). Credentials are canary strings, given the usual way
(environment variables: `s3_env`), so a test can search every output for them.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path

from builders import exchange, message, request

ACCESS_KEY = "AKIACANARYKEYID0S3X"  # fake credentials the tests search every output for
SECRET_KEY = "canary-secret-9f27c1d0e3b4a5968776"
REGION = "us-east-1"
SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # /bucket/key
    query: str


@dataclass
class S3Server:
    endpoint: str
    server: object
    requests: list[Request] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """Return the environment an S3 client needs to reach the server with the canary credentials."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": REGION,
                "AWS_ENDPOINT_URL": self.endpoint}

    def object_reads(self, bucket: str) -> list[str]:
        """Return the keys of `bucket` whose bytes were requested (GET of an object, not a listing), in order."""
        prefix = f"/{bucket}/"
        return [r.path.removeprefix(prefix) for r in list(self.requests)
                if r.method == "GET" and r.path.startswith(prefix) and len(r.path) > len(prefix)]


_server: S3Server | None = None
_lock = threading.Lock()


def s3_server() -> S3Server:
    """Return the process's S3 server, started on first use (a daemon thread: it ends with the process)."""
    global _server
    with _lock:
        if _server is None:
            _server = _start()
        return _server


def _start() -> S3Server:
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    seen: list[Request] = []

    class CountingServer(ThreadedMotoServer):
        def _server_entry(self) -> None:  # moto's own, with a request log in front of the app
            app = DomainDispatcherApplication(create_backend_app)

            def counted(environ, start_response):
                seen.append(Request(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                                    environ.get("QUERY_STRING", "")))
                return app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, counted, True)
            self._server_ready_event.set()
            self._server.serve_forever()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = CountingServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return S3Server(f"http://{host}:{port}", server, seen)


def new_bucket(server: S3Server, name: str) -> None:
    """Create a bucket on the server (with boto3, outside the code under test)."""
    client(server).create_bucket(Bucket=name)


def client(server: S3Server):
    """Return a boto3 S3 client of the server, for putting and rewriting objects."""
    import boto3

    return boto3.client("s3", endpoint_url=server.endpoint, aws_access_key_id=ACCESS_KEY,
                        aws_secret_access_key=SECRET_KEY, region_name=REGION)


# -- inputs ----------------------------------------------------------------------------------------------------------


def records(prefix: str, n: int, start: int = 0) -> list[dict]:
    """`n` exchange records with message ids `msg_<prefix>_<i>`, one a minute."""
    out = []
    for i in range(start, start + n):
        ts = (dt.datetime(2026, 10, 20, 9, tzinfo=dt.UTC) + dt.timedelta(minutes=i)).isoformat()
        out.append(exchange(ts, request("claude-sonnet-4-5", f"q {prefix} {i}"),
                            message(f"msg_{prefix}_{i}", "claude-sonnet-4-5")))
    return out


def jsonl(items: list[dict]) -> bytes:
    return b"".join(json.dumps(item).encode() + b"\n" for item in items)


def inputs() -> dict[str, bytes]:
    """The files of a prefix, by relative name: plain JSON Lines, a gzip without `.gz` in its name, a gzip in a
    subfolder, and hidden names (left out, as in a folder)."""
    return {"a.jsonl": jsonl(records("a", 6)), "day.log": (SAMPLE / "exchange-2026-10-19.jsonl.gz").read_bytes(),
            "sub/day2.jsonl.gz": (SAMPLE / "exchange-2026-10-20.jsonl.gz").read_bytes(),
            ".hidden.jsonl": jsonl(records("h", 2)), ".tmp/x.jsonl": jsonl(records("x", 2))}


def put(server: S3Server, bucket: str, files: dict[str, bytes], prefix: str = "logs/") -> None:
    """Put (or overwrite) objects `prefix + name`."""
    s3c = client(server)
    for name, body in files.items():
        s3c.put_object(Bucket=bucket, Key=prefix + name, Body=body)
