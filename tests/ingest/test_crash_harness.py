"""Crash safety (issue 7): `fallbackscope ingest` SIGKILLed at random moments of a multi-file load.

After each kill the database opens, holds only whole files (each file's rows exactly as a clean run
stores them, or none), its `loads` rows match what is stored, and a re-run ends with exactly the rows of
a clean run. The driver is `tests/crash_driver.py`.

CI runs FALLBACKSCOPE_CRASH_TRIALS (default 5) trials over small files parsed in the ingest process;
the full run is `FALLBACKSCOPE_CRASH_TRIALS=50`, which adds a file large enough for the worker pool
(or `python tests/crash_driver.py --trials 50`). FALLBACKSCOPE_CRASH_SEED replays a failing run.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import crash_driver as driver
import psutil
import pytest

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("FALLBACKSCOPE_CRASH_TRIALS", "5"))
FULL = TRIALS >= 20 or bool(os.environ.get("FALLBACKSCOPE_CRASH_LARGE"))


@pytest.fixture(scope="module")
def load(tmp_path_factory):
    work = tmp_path_factory.mktemp("crash")
    inputs = driver.build_inputs(work / "logs", days=3, chains_per_day=120 if not FULL else 250,
                                 big_lines=11_000 if FULL else 0)
    reference = driver.build_reference(inputs, work / "reference.duckdb")
    return work, inputs, reference


def test_the_clean_reference_load_holds_every_file(load):
    _, inputs, reference = load
    assert len(inputs.files) >= 4
    assert any(p.suffix == ".gz" for p in inputs.files)
    assert sorted(reference.paths) == sorted(str(p.resolve()) for p in inputs.files)


def test_sigkill_at_random_moments_never_leaves_a_partial_file_and_a_rerun_matches_a_clean_load(load):
    work, inputs, reference = load
    seed = int(os.environ.get("FALLBACKSCOPE_CRASH_SEED") or random.SystemRandom().randrange(2**32))
    rng = random.Random(seed)
    trials = []
    for n in range(1, TRIALS + 1):
        trials.append(driver.run_trial(n, TRIALS, inputs, reference, work, rng))
        driver.calibrate(reference, trials[-1])
    report = driver.summary(trials, reference, len(inputs.files))
    print(f"seed {seed}\n{report}")
    assert all(t.ok for t in trials), f"FALLBACKSCOPE_CRASH_SEED={seed}\n{report}"


KILL_WHILE_CREATING_KEY = """
import os, secrets, signal, sys
from pathlib import Path
from fallbackscope.core import config

def killed(_n):  # SIGKILL at the moment the new key's bytes are drawn, i.e. while its file is being made
    os.kill(os.getpid(), signal.SIGKILL)

secrets.token_hex = killed
config.load_key(Path(sys.argv[1]))
"""


def test_sigkill_while_the_key_file_is_created_leaves_no_empty_key_and_the_next_run_works(tmp_path):

    env = {k: v for k, v in os.environ.items() if k != "FALLBACKSCOPE_KEY"}
    db = tmp_path / "fresh.duckdb"
    key = tmp_path / "fresh.duckdb.key"
    proc = subprocess.run([sys.executable, "-c", KILL_WHILE_CREATING_KEY, str(db)], env=env, capture_output=True)
    assert proc.returncode == -9
    assert not key.exists() or len(key.read_text().strip()) == 64, "a half-made key file would block every load"
    # the next load creates the key and loads
    log = tmp_path / "one.jsonl"
    log.write_text('{"ts": "2026-11-05T10:00:00Z", "http_status": 429, "request": {"model": "claude-haiku-4-5"}}\n')
    proc = subprocess.run([sys.executable, "-m", "fallbackscope.cli", "ingest", str(log), "--db", str(db)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert len(key.read_text().strip()) == 64
    # the killed run's unfinished temporary key may remain: private like the key, and never used
    assert all(p.stat().st_mode & 0o077 == 0 for p in tmp_path.iterdir() if p.name.startswith("."))


def test_parsing_workers_leave_when_the_ingest_is_killed_alone(tmp_path):
    """The OOM killer picks one process: the ingest's own. Its orphaned parsing workers must not wait on
    their task queue for ever (each holds a few hundred MB)."""

    big = driver.build_inputs(tmp_path / "logs", days=1, chains_per_day=5, big_lines=10_500)
    large = next(p for p in big.files if p.name.endswith("large.jsonl"))
    assert large.stat().st_size > 24 * 1024 * 1024  # the loader's worker-pool threshold
    err = tmp_path / "stderr"
    with open(err, "wb") as fh:
        proc = subprocess.Popen([*driver.CLI, "ingest", str(large), "--db", str(tmp_path / "w.duckdb")],
                                env=driver.env(), stderr=fh, stdout=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        workers: list[psutil.Process] = []
        while time.monotonic() < deadline and proc.poll() is None:
            workers = [c for c in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(c.cmdline())]
            if len(workers) >= 1 and "parse start" in err.read_text():
                break
            time.sleep(0.05)
        assert proc.poll() is None and workers, "the ingest was parsing with worker processes"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 30
    while (alive := [w for w in workers if _running(w)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for w in alive:
        w.kill()
    assert alive == [], f"{len(alive)} orphaned workers still running 30 s after the ingest was killed"


def _running(proc: psutil.Process) -> bool:
    """True while the process runs (an exited one may stay a zombie until init reaps it)."""
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
