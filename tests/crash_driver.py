"""Crash harness (issue 7): SIGKILL `fallbackscope ingest` at a random moment of a multi-file load, then
prove the database opens, holds no partial file, and a re-run ends with exactly the rows of a clean run.

Used by `tests/ingest/test_crash_harness.py`; also a script for the full run:

    python tests/crash_driver.py [--trials 50] [--seed N] [--workdir DIR]

The input (built once with `fallbackscope sample`): three days of realistic exchange logs (one of them
gzipped), the batch-results file, and a benchmark-style file above the loader's worker-pool threshold, so
a kill can land while worker processes parse. A clean reference database is loaded once from the same
files with the same key; its run time is the range the kill delays are drawn from. The ingest runs with
`FALLBACKSCOPE_TRACE=1`, whose phase lines on stderr tell where each kill landed.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import psutil

ROOT = Path(__file__).resolve().parents[1]
KEY = "crash-harness-key"
CLI = [sys.executable, "-m", "fallbackscope.cli"]
# the loader's trace events (ingest/loader.py `_trace`) → the phase a kill after them interrupts
_PHASE_AFTER = {
    "parse start": "parsing",
    "parse done": "dedup against stored",
    "staged": "linking",
    "linked": "inserting",
    "inserted": "committing",
    "committed": "closing (checkpoint)",
    "workers stopped": "exiting",
}
# columns that differ between two runs of the same files by design (when, and under which load id)
_RUN_COLUMNS = {"load_id", "started_at", "finished_at", "mtime_ns", "error"}


@dataclass
class Inputs:
    folder: Path
    options: list[str]
    files: list[Path]

    def argv(self, db: Path) -> list[str]:
        return [*CLI, "ingest", str(self.folder), "--db", str(db), *self.options]


@dataclass
class Reference:
    db: Path
    seconds: float
    paths: list[str]  # in load order


@dataclass
class Trial:
    number: int
    delay: float
    kill: str  # "group" (the ingest and its workers) or "main" (the ingest only; workers orphaned)
    phase: str = ""
    file_index: int = 0
    files_committed_before_rerun: int = 0
    ran_seconds: float | None = None  # how long the load took when it ended before the kill
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def env() -> dict[str, str]:
    out = {**os.environ, "FALLBACKSCOPE_KEY": KEY, "FALLBACKSCOPE_TRACE": "1", "PYTHONWARNINGS": "ignore"}
    out["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    for name in ("FALLBACKSCOPE_DB", "FALLBACKSCOPE_HOLD_BEFORE_COMMIT", "FALLBACKSCOPE_HOLD_FILE"):
        out.pop(name, None)
    return out


def build_inputs(folder: Path, *, days: int = 3, chains_per_day: int = 250, big_lines: int = 11_000) -> Inputs:
    """Write the multi-file load: day files (the middle one gzipped), batch results and, when big_lines,
    one file of that many lines (11,000 lines ≈ 29 MB: above the loader's 24 MB worker-pool threshold)."""
    folder.mkdir(parents=True, exist_ok=True)
    gen = folder.parent / (folder.name + "-gen")
    subprocess.run([*CLI, "sample", str(gen), "--days", str(days), "--chains-per-day", str(chains_per_day)],
                   check=True, capture_output=True, env=env(), cwd=ROOT)
    extras = gen / ".sample"  # what `sample` writes beside the logs: the ground truth and the batch results
    truth = json.loads((extras / "ground_truth.json").read_text())
    options = [item for pair in truth.get("ingest_options", {}).items() for item in pair]
    days_files = sorted(gen.glob("exchange-*.jsonl"))
    for i, path in enumerate(days_files):
        if i == len(days_files) // 2:
            with open(path, "rb") as src, gzip.open(folder / (path.name + ".gz"), "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            shutil.copy(path, folder / path.name)
    if (extras / "batch-results.jsonl").exists():
        shutil.copy(extras / "batch-results.jsonl", folder / "batch-results.jsonl")
    shutil.rmtree(gen)
    if big_lines:
        big = folder.parent / (folder.name + "-big")
        subprocess.run([*CLI, "sample", str(big), "--lines", str(big_lines), "--seed", "11"], check=True,
                       capture_output=True, env=env(), cwd=ROOT)
        (big / "exchange-bench.jsonl").rename(folder / "exchange-zz-large.jsonl")
        shutil.rmtree(big)
    return Inputs(folder, options, sorted(p for p in folder.iterdir() if p.is_file()))


def build_reference(inputs: Inputs, db: Path) -> Reference:
    """Load the inputs cleanly once; return the database, the run's seconds and the load order."""
    started = time.perf_counter()
    proc = subprocess.run(inputs.argv(db), capture_output=True, env=env(), cwd=ROOT)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"the clean reference load failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    con = duckdb.connect(str(db), read_only=True)
    paths = [r[0] for r in con.execute("SELECT path FROM loads WHERE status = 'ok' ORDER BY load_id").fetchall()]
    con.close()
    return Reference(db, seconds, paths)


def _phase(trace: str, exited: bool) -> tuple[str, int]:
    """Return (phase the kill interrupted, 1-based index of the file being loaded) from trace lines."""
    events = [line.split(" MiB ", 1)[1].strip() for line in trace.splitlines()
              if line.startswith("trace") and " MiB " in line]
    committed = sum(1 for e in events if e == "committed")
    if exited:
        return "finished before the kill", committed
    if not events:
        return "start-up (before the database is opened)", 1
    last = events[-1].split(" (")[0]
    if last == "closed":
        before = [e for e in events[:-1] if e != "closed"]
        if before and before[-1] == "committed":
            return "between files (checking the next)", committed + 1
        return "opening / checking the file", committed + 1
    return _PHASE_AFTER.get(last, last), committed + (0 if last == "committed" else 1)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    names = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
    return ", ".join(f'"{n}"' for n in names if n not in _RUN_COLUMNS)


def _except_both_ways(con: duckdb.DuckDBPyConnection, left: str, right: str) -> tuple[int, int]:
    extra = con.execute(f"SELECT count(*) FROM ({left} EXCEPT ALL {right})").fetchone()[0]
    missing = con.execute(f"SELECT count(*) FROM ({right} EXCEPT ALL {left})").fetchone()[0]
    return extra, missing


def check_after_kill(db: Path, ref: Reference) -> tuple[list[str], int]:
    """Open the killed run's database as the next ingest would; return (problems, files it holds)."""
    from fallbackscope.core.store import connect

    problems: list[str] = []
    try:
        con = connect(db)  # read-write: replays the WAL and migrates, as the next `ingest` does
    except Exception as exc:  # noqa: BLE001 - any failure to open is the finding
        return [f"the database does not open after the kill: {type(exc).__name__}: {exc}"], 0
    try:
        con.execute(f"ATTACH '{ref.db}' AS ref (READ_ONLY)")
        statuses = con.execute("SELECT status, count(*) FROM loads GROUP BY 1").fetchall()
        if any(status != "ok" for status, _ in statuses):
            problems.append(f"loads rows with a status other than ok after a kill: {statuses}")
        held = [r[0] for r in con.execute("SELECT path FROM loads WHERE status = 'ok' ORDER BY load_id").fetchall()]
        if held != ref.paths[: len(held)]:
            problems.append(f"the files held are not the first ones of the load order: {held}")
        if len(set(held)) != len(held):
            problems.append(f"a file was committed twice: {held}")
        cols = _columns(con, "loads")
        extra, missing = _except_both_ways(
            con, f"SELECT {cols} FROM loads WHERE status = 'ok'",
            f"SELECT {cols} FROM ref.loads WHERE status = 'ok' AND path IN (SELECT path FROM main.loads)")
        if extra or missing:
            problems.append(f"loads rows differ from the clean run's ({extra} extra, {missing} missing)")
        # every stored row belongs to a committed load, and each load holds exactly its counts
        orphans = con.execute("SELECT count(*) FROM attempts WHERE load_id NOT IN (SELECT load_id FROM loads"
                              " WHERE status = 'ok')").fetchone()[0]
        orphans += con.execute("SELECT count(*) FROM rejects WHERE load_id NOT IN (SELECT load_id FROM loads"
                               " WHERE status = 'ok')").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} attempts/rejects rows without a committed load")
        bad_counts = con.execute(
            "SELECT l.path FROM loads l WHERE l.status = 'ok' AND ("
            " l.attempts_loaded <> (SELECT count(*) FROM attempts a WHERE a.load_id = l.load_id) OR"
            " l.rejected <> (SELECT count(*) FROM rejects r WHERE r.load_id = l.load_id))").fetchall()
        if bad_counts:
            problems.append(f"loads counts do not match the rows stored for {bad_counts}")
        # per file: all of its attempts and rejects as in the clean run, or none
        for table in ("attempts", "rejects"):
            cols = _columns(con, table)
            mine = f"SELECT l.path, {_prefixed(cols, 't')} FROM {table} t JOIN loads l USING (load_id)"
            theirs = (f"SELECT l.path, {_prefixed(cols, 't')} FROM ref.{table} t JOIN ref.loads l USING (load_id)"
                      " WHERE l.path IN (SELECT path FROM main.loads WHERE status = 'ok')")
            extra, missing = _except_both_ways(con, mine, theirs)
            if extra or missing:
                problems.append(f"{table} of the files held differ from the clean run's "
                                f"({extra} extra, {missing} missing): a partial or altered file")
        return problems, len(held)
    finally:
        con.close()


def _prefixed(cols: str, alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in cols.split(","))


def check_after_rerun(db: Path, ref: Reference) -> list[str]:
    """Compare the re-run's database with the clean reference, whole tables."""
    problems = []
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(f"ATTACH '{ref.db}' AS ref (READ_ONLY)")
        for table in ("attempts", "rejects"):
            cols = _columns(con, table)
            extra, missing = _except_both_ways(con, f"SELECT {cols} FROM main.{table}",
                                               f"SELECT {cols} FROM ref.{table}")
            if extra or missing:
                problems.append(f"after the re-run, {table} differs from a clean run: {extra} extra, {missing} missing")
        cols = _columns(con, "loads")
        extra, missing = _except_both_ways(con, f"SELECT {cols} FROM main.loads WHERE status = 'ok'",
                                           f"SELECT {cols} FROM ref.loads WHERE status = 'ok'")
        if extra or missing:
            problems.append(f"after the re-run, the ok loads rows differ: {extra} extra, {missing} missing")
        other = con.execute("SELECT status, count(*) FROM loads WHERE status NOT IN ('ok', 'skipped')"
                            " GROUP BY 1").fetchall()
        if other:
            problems.append(f"after the re-run, loads rows with status {other}")
    finally:
        con.close()
    return problems


def _survivors(session: int) -> list[int]:
    found = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.pid) == session and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (OSError, psutil.Error):
            pass
    return found


def run_trial(number: int, trials: int, inputs: Inputs, ref: Reference, workdir: Path,
              rng: random.Random) -> Trial:
    """Start an ingest, SIGKILL it after a random delay, check the database, re-run it, compare.

    The delay is uniform within the trial's share of the clean run (trial k of n: [(k-1)/n, k/n) of its
    duration), so even a few trials spread their kills over the whole load.
    """
    db = workdir / f"trial-{number}.duckdb"
    for stale in workdir.glob(f"trial-{number}.duckdb*"):
        stale.unlink()
    delay = ref.seconds * (number - 1 + rng.random()) / trials
    trial = Trial(number, delay, rng.choice(["group", "group", "main"]))
    err_path = workdir / f"trial-{number}.stderr"
    with open(err_path, "wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(inputs.argv(db), stdout=subprocess.DEVNULL, stderr=err, env=env(), cwd=ROOT,
                                start_new_session=True)
        while not (exited := proc.poll() is not None) and time.monotonic() < started + trial.delay:
            time.sleep(0.01)
        if exited:
            trial.ran_seconds = time.monotonic() - started
        elif trial.kill == "group":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    if exited and proc.returncode != 0:
        trial.failures.append(f"the ingest failed on its own (exit {proc.returncode})")
    # orphaned parsing workers must not outlive the ingest (they hold no database, but would leak)
    deadline = time.monotonic() + 30
    while (left := _survivors(proc.pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        trial.failures.append(f"processes of the killed ingest still alive 30 s later: {left}")
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    trial.phase, trial.file_index = _phase(err_path.read_text(errors="replace"), exited)
    problems, held = check_after_kill(db, ref)
    trial.files_committed_before_rerun = held
    trial.failures += problems
    rerun = subprocess.run(inputs.argv(db), capture_output=True, env=env(), cwd=ROOT)
    if rerun.returncode != 0:
        trial.failures.append(f"the re-run failed (exit {rerun.returncode}): "
                              f"{rerun.stderr.decode(errors='replace')[-800:]}")
    else:
        trial.failures += check_after_rerun(db, ref)
    if trial.ok:
        for path in workdir.glob(f"trial-{number}.*"):
            path.unlink()
    return trial


def calibrate(ref: Reference, trial: Trial) -> None:
    """Shrink the range kill delays are drawn from when a whole load ran faster than the reference did
    (the machine is shared: the reference may have been slowed down), so later kills land inside loads."""
    if trial.ran_seconds is not None and trial.ran_seconds < ref.seconds:
        ref.seconds = trial.ran_seconds


def summary(trials: list[Trial], ref: Reference, files: int) -> str:
    """Return a plain-text account of the trials: kills by phase, passes and failures."""
    by_phase = collections.Counter(t.phase for t in trials)
    lines = [f"{len(trials)} trials, clean run {ref.seconds:.1f} s (shortest seen) over {files} files; "
             f"{sum(t.ok for t in trials)} passed, {sum(not t.ok for t in trials)} failed",
             f"kills: {sum(t.kill == 'group' for t in trials)} of the process group, "
             f"{sum(t.kill == 'main' for t in trials)} of the main process only"]
    lines += [f"  {count:3d}  {phase}" for phase, count in by_phase.most_common()]
    for t in trials:
        if not t.ok:
            lines.append(f"trial {t.number} (delay {t.delay:.2f} s, {t.kill}, {t.phase}, file {t.file_index}): "
                         + "; ".join(t.failures))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--no-large", action="store_true", help="leave out the file parsed by worker processes")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fs-crash-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    inputs = build_inputs(workdir / "logs", big_lines=0 if args.no_large else 11_000)
    ref = build_reference(inputs, workdir / "reference.duckdb")
    size = sum(p.stat().st_size for p in inputs.files)
    print(f"seed {seed}; {len(inputs.files)} files, {size / 1e6:.1f} MB: {', '.join(p.name for p in inputs.files)}; "
          f"clean run {ref.seconds:.2f} s; load average {os.getloadavg()[0]:.1f}", flush=True)
    rng = random.Random(seed)
    trials = []
    for n in range(1, args.trials + 1):
        trial = run_trial(n, args.trials, inputs, ref, workdir, rng)
        trials.append(trial)
        calibrate(ref, trial)
        print(f"trial {n:3d}: delay {trial.delay:6.2f} s  kill {trial.kill:<5}  file {trial.file_index}  "
              f"{trial.phase:<40} held {trial.files_committed_before_rerun}  "
              f"{'ok' if trial.ok else 'FAILED: ' + '; '.join(trial.failures)}", flush=True)
    print(summary(trials, ref, len(inputs.files)))
    if all(t.ok for t in trials):
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"kept {workdir} for inspection")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
