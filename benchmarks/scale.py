"""Scale (issue 7): a 10,000,000-attempt database built the way a user builds it, end to end.

    python benchmarks/scale.py [--files 10] [--lines-per-file 1000000] [--keep-inputs] [--out DIR]

Steps, each a subprocess of the CLI under `/usr/bin/time -v` (maximum resident set size of the largest
process it waited for) with the whole process tree sampled by psutil every 50 ms (sum of RSS, the ingest's
parsing workers included):
1. `fallbackscope sample DIR --lines N --seed k` once per file (k = 1 … files): realistic ~2.6 KB lines
   over 28 days (the generator's benchmark mode; seeds give disjoint ids, so the files add up);
2. `fallbackscope ingest LOGDIR` — every file in one run, as a nightly job would after a backlog;
3. the database's size on disk; the inputs are deleted unless `--keep-inputs` (≈ 2.6 GB a million lines);
4. `fallbackscope metrics` (all weeks), `report weekly --format json` and `--format html`;
5. `fallbackscope dashboard` (dashboard.app.serve, waitress on 127.0.0.1): start → first page answered,
   then each page's callbacks as the browser POSTs them, default filters (cold, then cached) and a new
   date range; its peak memory is the server's VmHWM read before it stops.
Limit (issue 7): memory under 2 GB in every step. Results are printed and written as JSON beside the
database (`scale.json`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIMIT = 2 * 10**9  # bytes: "memory stays under 2 GB throughout"
CLI = [sys.executable, "-m", "fallbackscope.cli"]


def _sibling(name: str):
    """Return benchmarks/<name>.py as a module (by path: `dashboard` and `ingest` name the app's packages)."""
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))  # after the packages: benchmarks/dashboard.py imports `synthetic`
    spec = importlib.util.spec_from_file_location(f"bench_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


class TreeSampler(threading.Thread):
    """Sample the summed RSS of a process and all its descendants until stopped; keep the peak."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.peak = 0
        self.peak_procs = 0
        self.largest = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                rss = []
                for p in procs:
                    try:
                        rss.append(p.memory_info().rss)
                    except psutil.Error:
                        pass
                if sum(rss) > self.peak:
                    self.peak, self.peak_procs = sum(rss), len(rss)
                self.largest = max(self.largest, *rss, 0)
            except psutil.Error:
                pass
            self._done.wait(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join()


def measured(label: str, argv: list[str], env: dict | None = None) -> dict:
    """Run argv under /usr/bin/time -v with the process tree sampled; return seconds and peak memory."""
    seconds, tree_peak, max_rss = _sibling("ingest").run_measured(argv, env=env)
    print(f"{label:<28} {seconds:9.2f} s   tree peak {tree_peak / 2**30:5.2f} GiB   max RSS {max_rss / 2**30:5.2f} GiB",
          flush=True)
    return {"step": label, "seconds": round(seconds, 2), "max_rss": max_rss, "tree_peak": tree_peak}


def _disk(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file() and
               not p.name.endswith(".key"))


def dashboard_step(db: Path, out: Path) -> dict:
    """Serve the dashboard; return start-up and per-page callback times and the server's peak memory."""
    bench = _sibling("dashboard")
    log = out / "dashboard.log"
    server = bench.Dashboard(db, bench._free_port(), log)
    sampler = TreeSampler(server.proc.pid)
    sampler.start()
    result: dict = {"step": "dashboard"}
    try:
        t_layout = time.perf_counter() - server.started
        per_page = bench.pages(server.deps)
        sync = next(d for d in server.deps if "url.search" in d["output"] and "filters.data" in d["output"])
        _, first = server.callback(sync, {"url.search": ""})
        default = first["filters"]["data"]
        t_first, _ = server.callback(per_page["overview"], {"filters.data": default})
        result["layout_served_s"] = round(t_layout, 2)
        result["first_page_s"] = round(time.perf_counter() - server.started, 2)
        result["first_overview_call_s"] = round(t_first, 2)
        last = dt.date.fromisoformat(default["until"])
        pages = {}
        for i, (name, dep) in enumerate(per_page.items()):
            t_default, _ = server.callback(dep, {"filters.data": default})
            cached = min(server.callback(dep, {"filters.data": default})[0] for _ in range(3))
            t_range, _ = server.callback(dep, {"filters.data": bench.store(last - dt.timedelta(days=6 + 3 * i), last)})
            pages[name] = {"default_s": round(t_default, 3), "cached_s": round(cached, 3),
                           "new_range_s": round(t_range, 3)}
            print(f"  page {name:<12} default {t_default:6.3f} s  cached {cached:6.3f} s  new range {t_range:6.3f} s",
                  flush=True)
        result["pages"] = pages
        gets = {}
        for path in ("/", "/refusals", "/chains", "/costs", "/reliability", "/data"):
            started = time.perf_counter()
            status, _ = bench._get(server.url + path)
            gets[path] = round(time.perf_counter() - started, 3)
            if status != 200:
                raise SystemExit(f"GET {path} answered {status}")
        result["page_html_s"] = gets
        with open(f"/proc/{server.proc.pid}/status") as fh:
            hwm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
        result["max_rss"] = hwm
    finally:
        sampler.stop()
        server.close()
    result["tree_peak"] = sampler.peak
    print(f"{'dashboard':<28} first page {result['first_page_s']:.2f} s after start   tree peak "
          f"{sampler.peak / 2**30:5.2f} GiB   VmHWM {result['max_rss'] / 2**30:5.2f} GiB", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--lines-per-file", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "scale")
    parser.add_argument("--keep-inputs", action="store_true")
    parser.add_argument("--reuse-db", action="store_true", help="skip sample+ingest when the database exists")
    args = parser.parse_args()

    out: Path = args.out
    logs = out / "logs"
    db = out / "scale.duckdb"
    env = {**os.environ, "FALLBACKSCOPE_KEY": os.environ.get("FALLBACKSCOPE_KEY", "scale-key")}
    mem = psutil.virtual_memory().total / 2**30
    print(f"machine: {os.cpu_count()} cores, {mem:.1f} GiB; load average {os.getloadavg()}", flush=True)
    steps: list[dict] = []
    facts: dict = {"cores": os.cpu_count(), "memory_gib": round(mem, 1), "started": dt.datetime.now(dt.UTC)
                   .isoformat(timespec="seconds"), "load_before": os.getloadavg()}

    if not (args.reuse_db and db.exists()):
        if out.exists():
            shutil.rmtree(out)
        logs.mkdir(parents=True)
        gen_seconds = 0.0
        for k in range(1, args.files + 1):
            gen = out / f"gen-{k}"
            step = measured(f"sample {k}/{args.files}", [*CLI, "sample", str(gen), "--lines",
                                                         str(args.lines_per_file), "--seed", str(k)], env=env)
            (gen / "exchange-bench.jsonl").rename(logs / f"exchange-{k:02d}.jsonl")
            shutil.rmtree(gen)
            gen_seconds += step["seconds"]
            steps.append(step)
        size = sum(p.stat().st_size for p in logs.iterdir())
        facts["input_bytes"] = size
        facts["sample_seconds"] = round(gen_seconds, 2)
        print(f"inputs: {args.files} files, {size / 1e9:.2f} GB; generated in {gen_seconds:.1f} s", flush=True)
        facts["load_before_ingest"] = os.getloadavg()
        ingest = measured("ingest", [*CLI, "ingest", str(logs), "--db", str(db)], env=env)
        steps.append(ingest)
        if not args.keep_inputs:
            shutil.rmtree(logs)
    con_code = ("import duckdb,sys,json; c=duckdb.connect(sys.argv[1], read_only=True); "
                "c.execute('SET enable_progress_bar = false'); print(json.dumps("
                "c.execute('SELECT count(*), count(DISTINCT chain_id), min(ts)::VARCHAR, max(ts)::VARCHAR FROM "
                "attempts').fetchone() + c.execute(\"SELECT count(*), sum(records) FROM loads WHERE "
                "status='ok'\").fetchone()))")
    counts = json.loads(subprocess.run([sys.executable, "-c", con_code, str(db)], capture_output=True, check=True,
                                       text=True).stdout.strip().splitlines()[-1])
    facts.update(attempts=counts[0], chains=counts[1], first_ts=counts[2], last_ts=counts[3], files_loaded=counts[4],
                 records=counts[5], db_bytes=_disk(db))
    print(f"database: {counts[0]:,} attempts, {counts[1]:,} chains, {counts[2]} … {counts[3]}; "
          f"{facts['db_bytes'] / 1e9:.2f} GB on disk", flush=True)
    if "records" in facts and any(s["step"] == "ingest" for s in steps):
        ingest = next(s for s in steps if s["step"] == "ingest")
        ingest["lines_per_s"] = round(counts[5] / ingest["seconds"])
        print(f"ingest: {ingest['lines_per_s']:,} lines/s", flush=True)

    steps.append(measured("metrics (by week)", [*CLI, "metrics", "--db", str(db)], env=env))
    steps.append(measured("metrics (by day)", [*CLI, "metrics", "--db", str(db), "--by", "day"], env=env))
    for fmt in ("json", "html"):
        target = out / f"report.{fmt}"
        steps.append(measured(f"report weekly {fmt}", [*CLI, "report", "weekly", "--db", str(db), "--format", fmt,
                                                         "--out", str(target)], env=env))
    steps.append(dashboard_step(db, out))
    facts["load_after"] = os.getloadavg()
    facts["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    worst = max(max(s.get("max_rss", 0), s.get("tree_peak", 0)) for s in steps)
    facts["worst_memory"] = worst
    facts["under_2gb"] = worst < LIMIT
    (out / "scale.json").write_text(json.dumps({"facts": facts, "steps": steps}, indent=2, default=str) + "\n")
    print(f"worst memory of any step: {worst / 2**30:.2f} GiB ({worst / 1e9:.2f} GB) — under 2 GB: "
          f"{'yes' if worst < LIMIT else 'NO'}", flush=True)


if __name__ == "__main__":
    main()
