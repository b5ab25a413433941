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

import crash_driver as driver
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
    trials = [driver.run_trial(n, TRIALS, inputs, reference, work, rng) for n in range(1, TRIALS + 1)]
    report = driver.summary(trials, reference, len(inputs.files))
    print(f"seed {seed}\n{report}")
    assert all(t.ok for t in trials), f"FALLBACKSCOPE_CRASH_SEED={seed}\n{report}"
    # the kills interrupted loads at different files, not only before or after the run
    assert len({t.files_committed_before_rerun for t in trials}) >= 2, report
