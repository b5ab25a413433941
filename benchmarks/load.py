"""Load test (issue 7): the dashboard under concurrent clients while an ingest writes the same database.

    python benchmarks/load.py [--clients 20] [--seconds 60] [--chains-per-day 1000] [--workdir DIR]

1. A database of 28 days built with `fallbackscope sample` + `fallbackscope ingest`, and 28 more days of
   new logs (same generator, next four weeks) for the ingest to load during the test.
2. `fallbackscope dashboard --db … --port …` as a subprocess (waitress, 127.0.0.1), warmed until the
   first page answers.
3. For `--seconds`, N client threads (one keep-alive `requests.Session` each, like a browser tab) visit
   pages in turn the way the browser does: GET the page HTML (and, on a client's first visit, every
   script it names), GET `/_dash-layout` and `/_dash-dependencies`, then POST to
   `/_dash-update-component` the page router, the filter sync (with a query string: default, a date
   range or a workload), the navigation links and the page's own callback with the filters the sync
   returned. Meanwhile another thread runs `fallbackscope ingest` on the new day files, one process per
   file (as a nightly job would), and again over the folder when they are all in (then every file is
   skipped: still write windows on the database).
Every response must be 2xx; latency p50/p95 per endpoint type and overall are printed (and returned).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "fallbackscope.cli"]
KEY = "load-test-key"
PAGES = ("/", "/refusals", "/chains", "/costs", "/reliability", "/data")
BASE_START = dt.date(2026, 10, 19)  # `fallbackscope sample`'s first day


def env() -> dict[str, str]:
    out = {**os.environ, "FALLBACKSCOPE_KEY": KEY, "PYTHONWARNINGS": "ignore"}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    for name in ("FALLBACKSCOPE_DB", "FALLBACKSCOPE_DASHBOARD_PASSWORD"):
        out.pop(name, None)
    return out


def prepare(workdir: Path, chains_per_day: int, new_days: int = 28) -> tuple[Path, Path]:
    """Build the base database (28 days) and the folder of new day files; return (db, new logs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    base, new, db = workdir / "base-logs", workdir / "new-logs", workdir / "load.duckdb"
    for stale in workdir.glob("load.duckdb*"):
        stale.unlink()
    shutil.rmtree(base, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)
    subprocess.run([*CLI, "sample", str(base), "--chains-per-day", str(chains_per_day)], check=True,
                   capture_output=True, env=env(), cwd=ROOT)
    truth = json.loads((base / ".sample" / "ground_truth.json").read_text())  # beside the logs, hidden from ingest
    options = [item for pair in truth.get("ingest_options", {}).items() for item in pair]
    subprocess.run([*CLI, "ingest", str(base), str(base / ".sample" / "batch-results.jsonl"), "--db", str(db),
                    *options], check=True, capture_output=True, env=env(), cwd=ROOT)
    # the next weeks of the same app: the generator's library API takes a start day (the CLI has no option)
    code = ("import datetime as dt, sys; from pathlib import Path; from fallbackscope.sample import SampleSpec, "
            "generate; generate(Path(sys.argv[1]), SampleSpec(seed=99, days=int(sys.argv[2]), "
            "start=dt.date.fromisoformat(sys.argv[3]), chains_per_day=int(sys.argv[4]), with_batch=False))")
    start = BASE_START + dt.timedelta(days=28)
    subprocess.run([sys.executable, "-c", code, str(new), str(new_days), start.isoformat(), str(chains_per_day)],
                   check=True, capture_output=True, env=env(), cwd=ROOT)
    (new / "ground_truth.json").unlink()
    return db, new


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Dashboard:
    """`fallbackscope dashboard` in a subprocess on 127.0.0.1."""

    def __init__(self, db: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log.open("wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([*CLI, "dashboard", "--db", str(db), "--port", str(self.port)], env=env(),
                                     cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300) -> float:
        """Wait until a page's callback answers with data; return seconds since start."""
        deadline = time.monotonic() + timeout
        with requests.Session() as http:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"the dashboard exited ({self.proc.returncode}); see {self.log.name}")
                try:
                    deps = http.get(self.url + "/_dash-dependencies", timeout=10).json()
                    break
                except (requests.RequestException, ValueError):
                    if time.monotonic() > deadline:
                        raise RuntimeError("the dashboard did not start") from None
                    time.sleep(0.2)
            calls = Callbacks(deps, self.url)
            store = calls.sync(http, "")[1]
            calls.page(http, "overview", store, timeout=timeout)
        return time.monotonic() - self.started

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _payload(dep: dict[str, Any], values: dict[str, Any], outputs: Any = None) -> dict[str, Any]:
    """The body the browser POSTs to /_dash-update-component for one callback (benchmarks/dashboard.py's);
    `outputs` for a pattern-matching output, which names the concrete ids."""
    body = _bench_dashboard().payload(dep, values)
    if outputs is not None:
        body["outputs"] = outputs
    return body


def _bench_dashboard():
    if "bench_dashboard" not in sys.modules:
        sys.path.append(str(ROOT / "benchmarks"))  # after the packages: it imports `synthetic`
        spec = importlib.util.spec_from_file_location("bench_dashboard", ROOT / "benchmarks" / "dashboard.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_dashboard"]


class Callbacks:
    """The app's callbacks, from `/_dash-dependencies`, posted as the browser posts them."""

    def __init__(self, deps: list[dict[str, Any]], url: str) -> None:
        self.url = url
        self.pages: dict[str, dict[str, Any]] = {}
        for dep in deps:
            inputs = {f"{i['id']}.{i['property']}" for i in dep["inputs"]}
            if inputs == {"filters.data"}:
                self.pages[dep["output"].strip(".").split("-", 1)[0]] = dep
            elif "url.search" in inputs and "filters.data" in dep["output"]:
                self.sync_dep = dep
            elif "_pages_location.pathname" in inputs:
                self.router_dep = dep
            elif '"nav"' in dep["output"]:
                self.nav_dep = dep

    def post(self, http: requests.Session, url: str, body: dict[str, Any], timeout: float = 120) -> requests.Response:
        return http.post(url + "/_dash-update-component", json=body, timeout=timeout)

    def sync(self, http: requests.Session, search: str) -> tuple[requests.Response, Any]:
        resp = self.post(http, self.url, _payload(self.sync_dep, {"url.search": search}))
        store = None
        if resp.status_code == 200:
            store = resp.json()["response"].get("filters", {}).get("data")
        return resp, store

    def router(self, http: requests.Session, path: str, search: str) -> requests.Response:
        values = {"_pages_location.pathname": path, "_pages_location.search": search}
        return self.post(http, self.url, _payload(self.router_dep, values))

    def nav(self, http: requests.Session, search: str) -> requests.Response:
        outputs = [[{"id": {"page": p, "type": "nav"}, "property": "href"} for p in PAGES]]
        return self.post(http, self.url, _payload(self.nav_dep, {"url.search": search}, outputs[0]))

    def page(self, http: requests.Session, name: str, store: Any, timeout: float = 120) -> requests.Response:
        resp = self.post(http, self.url, _payload(self.pages[name], {"filters.data": store}), timeout=timeout)
        resp.raise_for_status()
        return resp


@dataclass
class Result:
    seconds: float
    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    failures: list[str] = field(default_factory=list)
    ingest_runs: int = 0
    ingest_files_loaded: int = 0
    ingest_busy_seconds: float = 0.0
    ingest_failures: list[str] = field(default_factory=list)
    warmup_seconds: float = 0.0

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    def table(self) -> list[tuple[str, int, float, float, float]]:
        """(endpoint type, requests, p50, p95, max) per type, then overall."""
        rows = []
        every = []
        for kind in sorted(self.latencies):
            values = self.latencies[kind]
            every += values
            rows.append((kind, len(values), *_percentiles(values)))
        rows.append(("overall", len(every), *_percentiles(every)))
        return rows


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return (float("nan"),) * 3
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return statistics.median(values), cuts[94], max(values)


class Feeder(threading.Thread):
    """Runs `fallbackscope ingest` on the new files, one process per file, then over the folder, until stopped."""

    def __init__(self, db: Path, folder: Path, result: Result) -> None:
        super().__init__(daemon=True, name="ingest-feeder")
        self.db, self.folder, self.result = db, folder, result
        self.done = threading.Event()
        self.current: subprocess.Popen | None = None

    def run(self) -> None:
        files = sorted(self.folder.glob("*.jsonl"))
        queue = [[str(p)] for p in files]
        while not self.done.is_set():
            argv = queue.pop(0) if queue else [str(self.folder)]
            started = time.monotonic()
            self.current = subprocess.Popen([*CLI, "ingest", *argv, "--db", str(self.db)], env=env(), cwd=ROOT,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _, err = self.current.communicate()
            self.result.ingest_busy_seconds += time.monotonic() - started
            self.result.ingest_runs += 1
            if self.current.returncode != 0:
                self.result.ingest_failures.append(err.decode(errors="replace")[-500:])
            elif len(argv) == 1 and argv[0] != str(self.folder):
                self.result.ingest_files_loaded += 1

    def stop(self) -> None:
        self.done.set()
        self.join()


def _searches(last: dt.date, workloads: list[str]) -> list[str]:
    """Query strings the clients use: the default view, date ranges, a workload."""
    out = ["", ""]
    for days in (6, 13, 20):
        out.append(f"?from={(last - dt.timedelta(days=days)).isoformat()}&to={last.isoformat()}")
    out += [f"?workload={w}" for w in workloads[:3]]
    return out


def client(number: int, url: str, calls: Callbacks, searches: list[str], until: float, result: Result,
           lock: threading.Lock) -> None:
    """One browser tab: visit pages in turn until `until`; record each request's latency or failure."""
    rng = random.Random(number)
    http = requests.Session()
    names = {"/": "overview", **{p: p.strip("/") for p in PAGES[1:]}}
    first_visit = True
    visit = number

    def timed(kind: str, call: Any, *args: Any, **kwargs: Any) -> requests.Response | None:
        started = time.perf_counter()
        try:
            resp = call(*args, **kwargs)
        except requests.RequestException as exc:
            with lock:
                result.failures.append(f"{kind}: {type(exc).__name__}: {exc}"[:300])
            return None
        seconds = time.perf_counter() - started
        with lock:
            result.latencies[kind].append(seconds)
            if not 200 <= resp.status_code < 300:
                result.failures.append(f"{kind}: HTTP {resp.status_code}: {resp.text[:200]}")
        return resp

    try:
        while time.monotonic() < until:
            path = PAGES[visit % len(PAGES)]
            visit += 1
            search = rng.choice(searches)
            page = timed("page html", http.get, url + path + search, timeout=120)
            if page is None:
                continue
            if first_visit:
                for src in re.findall(r'<script[^>]+src="([^"]+)"', page.text):
                    timed("scripts", http.get, url + src, timeout=120)
                first_visit = False
            timed("layout", http.get, url + "/_dash-layout", timeout=120)
            timed("dependencies", http.get, url + "/_dash-dependencies", timeout=120)
            timed("callback router", calls.router, http, path, search)
            synced = timed("callback filters", calls.post, http, url, _payload(calls.sync_dep, {"url.search": search}))
            timed("callback nav", calls.nav, http, search)
            store = None
            if synced is not None and synced.status_code == 200:
                store = synced.json()["response"].get("filters", {}).get("data")
            timed("callback page", calls.post, http, url, _payload(calls.pages[names[path]], {"filters.data": store}))
    finally:
        http.close()


def run_load(db: Path, new_logs: Path | None, clients: int, seconds: float, log: Path) -> Result:
    """Serve the dashboard, warm it, then run clients and the ingest (unless new_logs is None) together
    for `seconds`."""
    result = Result(seconds, clients)
    server = Dashboard(db, log)
    try:
        result.warmup_seconds = server.wait_ready()
        with requests.Session() as http:
            calls = Callbacks(http.get(server.url + "/_dash-dependencies", timeout=60).json(), server.url)
            store = calls.sync(http, "")[1]
        last = dt.date.fromisoformat(store["until"])
        workloads = ["support-chat", "code-assist", "batch-extract"]
        searches = _searches(last, workloads)
        lock = threading.Lock()
        feeder = Feeder(db, new_logs, result) if new_logs is not None else None
        if feeder is not None:
            feeder.start()
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=client, args=(n, server.url, calls, searches, until, result, lock),
                                    name=f"client-{n}") for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if feeder is not None:
            feeder.stop()
        if server.proc.poll() is not None:
            result.failures.append(f"the dashboard exited with {server.proc.returncode}")
    finally:
        server.close()
    return result


def report(result: Result) -> str:
    lines = [f"{result.clients} clients for {result.seconds:.0f} s on 127.0.0.1: {result.requests:,} requests, "
             f"{len(result.failures)} failed; dashboard warm-up {result.warmup_seconds:.1f} s",
             f"ingest beside it: {result.ingest_runs} runs, {result.ingest_files_loaded} new files loaded, "
             f"busy {result.ingest_busy_seconds:.0f} s, {len(result.ingest_failures)} failed",
             f"{'endpoint':<18} {'requests':>9} {'p50':>8} {'p95':>8} {'max':>8}"]
    for kind, n, p50, p95, worst in result.table():
        lines.append(f"{kind:<18} {n:9,d} {p50:7.3f}s {p95:7.3f}s {worst:7.2f}s")
    for failure in result.failures[:10]:
        lines.append(f"FAILED {failure}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--chains-per-day", type=int, default=1000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="reuse the workdir's database and new logs (the "
                        "files loaded by an earlier run are skipped)")
    parser.add_argument("--keep", action="store_true", help="keep the workdir")
    parser.add_argument("--no-ingest", action="store_true", help="baseline: the clients alone")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fs-load-"))
    started = time.monotonic()
    if args.reuse and (workdir / "load.duckdb").exists():
        db, new = workdir / "load.duckdb", workdir / "new-logs"
    else:
        db, new = prepare(workdir, args.chains_per_day)
    con_code = ("import duckdb, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
                "print(con.execute('SELECT count(*) FROM attempts').fetchone()[0])")
    before = int(subprocess.run([sys.executable, "-c", con_code, str(db)], capture_output=True, text=True,
                                check=True).stdout)
    print(f"machine: {os.cpu_count()} cores; base database {before:,} attempts (built in "
          f"{time.monotonic() - started:.0f} s); new logs {sum(p.stat().st_size for p in new.iterdir()) / 1e6:.0f} MB "
          f"in {len(list(new.iterdir()))} files; load average {os.getloadavg()[0]:.1f}", flush=True)
    result = run_load(db, None if args.no_ingest else new, args.clients, args.seconds, workdir / "dashboard.log")
    after = int(subprocess.run([sys.executable, "-c", con_code, str(db)], capture_output=True, text=True,
                               check=True).stdout)
    print(report(result))
    print(f"attempts {before:,} → {after:,} during the test; load average after {os.getloadavg()[0]:.1f}")
    if result.failures or result.ingest_failures:
        raise SystemExit(1)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
