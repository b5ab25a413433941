"""Dashboard benchmark (issue 4): every page's callbacks over HTTP on loopback, on 10,000,000 attempts.

    python benchmarks/dashboard.py [--attempts 10000000] [--db PATH] [--repeat 3] [--port 0]

The database is synthesised with DuckDB SQL straight into `attempts` (loading 10M log lines would take
too long): 28 days from Monday 2026-03-02, chains of 1–5 attempts (88% / 8% / 2.5% / 1% / 0.5%), five
workloads (two with a declared tier chain), three surfaces, refusals with credits that are redeemed,
rejected or left, retries, quality escalations, a few unpriced attempts, plus 28 `loads` rows and some
`rejects`. It is kept in `benchmarks/out/` and reused by the next run (pass `--db` for another file).

The dashboard then runs as a subprocess (`python -m dashboard.app`-like, waitress on 127.0.0.1) and each
page's callback is POSTed to `/_dash-update-component` the way the browser does, with the default
filters: the first call after start (cold: the facts of the range are computed), then best of
`--repeat` (warm: served from the cache), then with a workload filter (a new cache key: cold again).
Target: each page's callbacks answer in ≤ 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthetic import build  # noqa: E402

from fallbackscope.core.store import connect  # noqa: E402

TARGET_SECONDS = 1.0


# ---------------------------------------------------------------------------- HTTP like the browser


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, timeout: float = 600) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(url: str, payload: Any, timeout: float = 600) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def payload(dep: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Return the body the browser POSTs to /_dash-update-component for one callback."""
    outputs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
               for o in dep["output"].strip(".").split("...")]

    def props(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"id": i["id"], "property": i["property"], "value": values.get(f"{i['id']}.{i['property']}")}
                for i in items]

    return {"output": dep["output"], "outputs": outputs if len(outputs) > 1 else outputs[0],
            "inputs": props(dep["inputs"]), "state": props(dep.get("state", [])),
            "changedPropIds": [f"{i['id']}.{i['property']}" for i in dep["inputs"]]}


class Dashboard:
    """`fallbackscope dashboard` (dashboard.app.serve) in a subprocess on 127.0.0.1."""

    def __init__(self, db: Path, port: int, log: Path) -> None:
        code = f"from dashboard.app import serve; serve({str(db)!r}, host='127.0.0.1', port={port})"
        self.url = f"http://127.0.0.1:{port}"
        self.log = log.open("w")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        env.pop("FALLBACKSCOPE_DASHBOARD_PASSWORD", None)
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while True:
            try:
                if _get(self.url + "/_dash-layout", timeout=5)[0] == 200:
                    break
            except (OSError, urllib.error.URLError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the dashboard did not start; see {log}")
            time.sleep(0.2)
        self.deps = json.loads(_get(self.url + "/_dash-dependencies")[1])

    def callback(self, dep: dict[str, Any], values: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """POST one callback; return (seconds, response). Fails on anything but 200."""
        started = time.perf_counter()
        status, body = _post(self.url + "/_dash-update-component", payload(dep, values))
        seconds = time.perf_counter() - started
        if status != 200:
            raise SystemExit(f"callback {dep['output'][:60]} answered {status}")
        return seconds, json.loads(body)["response"]

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def pages(deps: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return each page's callback (the ones fed by the filters store), by page."""
    out = {}
    for dep in deps:
        if any(i["id"] == "filters" and i["property"] == "data" for i in dep["inputs"]):
            out[dep["output"].strip(".").split("-", 1)[0]] = dep
    return out


def store(since: dt.date, until: dt.date, workloads: tuple[str, ...] = (), models: tuple[str, ...] = (),
          surfaces: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the filters store the browser would send."""
    return {"since": since.isoformat(), "until": until.isoformat(), "workloads": list(workloads),
            "models": list(models), "surfaces": list(surfaces)}


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--attempts", type=int, default=10_000_000)
    parser.add_argument("--db", type=Path, help="reuse or create this database file")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    args = parser.parse_args()

    db = args.db or ROOT / "benchmarks" / "out" / f"dashboard-{args.attempts}.duckdb"
    if not db.exists():
        build(db, args.attempts)
    con = connect(db, read_only=True)
    n, last = con.execute("SELECT count(*), max(ts)::DATE FROM attempts").fetchone()
    con.close()

    log = Path(tempfile.gettempdir()) / "fallbackscope-dashboard-benchmark.log"
    server = Dashboard(db, args.port or _free_port(), log)
    try:
        per_page = pages(server.deps)
        sync = next(d for d in server.deps if "url.search" in d["output"] and "filters.data" in d["output"])
        t_sync, first = server.callback(sync, {"url.search": ""})
        default = first["filters"]["data"]
        # the first page view waits for the whole-database pass that `serve` starts at once
        t_first, _ = server.callback(per_page["overview"], {"filters.data": default})
        t_ready = time.perf_counter() - server.started
        rows = []
        for i, (name, dep) in enumerate(per_page.items()):
            t_default, _ = server.callback(dep, {"filters.data": default})
            cached = min(server.callback(dep, {"filters.data": default})[0] for _ in range(args.repeat))
            fresh = []
            for r in range(args.repeat):  # a new range each time: nothing of it is cached yet
                days = 6 + 3 * (i * args.repeat + r)
                fresh.append(server.callback(dep, {"filters.data": store(last - dt.timedelta(days=days), last)})[0])
            rows.append((name, t_default, cached, min(fresh), max(fresh)))
        one_workload = server.callback(per_page["refusals"], {"filters.data": store(
            last - dt.timedelta(days=27), last, ("support-chat",))})[0]
        two_workloads = server.callback(per_page["refusals"], {"filters.data": store(
            last - dt.timedelta(days=27), last, ("code-assist", "support-chat"))})[0]
        surface = server.callback(per_page["overview"], {"filters.data": store(
            last - dt.timedelta(days=27), last, surfaces=("bedrock",))})[0]
        surface_again = server.callback(per_page["costs"], {"filters.data": store(
            last - dt.timedelta(days=13), last, surfaces=("bedrock",))})[0]
        layout_get = min(_timed_get(server.url + path) for path in
                         ("/", "/refusals", "/chains", "/costs", "/reliability", "/data"))
    finally:
        server.close()

    print(f"attempts: {n:,}   cores: {os.cpu_count()}   memory: {_memory_gib():.1f} GiB   database: {db}")
    print(f"start → first page answered (the whole-database pass, once per load): {t_ready:7.2f} s"
          f"   (filter sync {t_sync:.3f} s, first overview {t_first:.2f} s)")
    print(f"page HTML (GET), best: {layout_get:.3f} s")
    print(f"{'page':<12} {'default':>9} {'cached':>9} {'new range':>10} {'(worst)':>9}   target {TARGET_SECONDS:.0f} s")
    worst = 0.0
    for name, t_default, cached, best, slowest in rows:
        worst = max(worst, t_default, slowest)
        print(f"{name:<12} {t_default:8.3f}s {cached:8.3f}s {best:9.3f}s {slowest:8.3f}s   "
              f"{'met' if max(t_default, slowest) <= TARGET_SECONDS else 'MISSED'}")
    print(f"one workload (refusals): {one_workload:.3f} s   two workloads together (sessions of the pair, first "
          f"time): {two_workloads:.3f} s")
    print(f"first use of a surface filter (a whole-database pass for that scope): {surface:.2f} s; "
          f"another range of it: {surface_again:.3f} s")
    print(f"every page, default and new ranges: worst {worst:.3f} s — target ≤ {TARGET_SECONDS:.0f} s: "
          f"{'met' if worst <= TARGET_SECONDS else 'missed'}")


def _timed_get(url: str) -> float:
    started = time.perf_counter()
    status, _ = _get(url)
    if status != 200:
        raise SystemExit(f"GET {url} answered {status}")
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
