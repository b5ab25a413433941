"""Load (issue 7): `fallbackscope dashboard` answers every request of concurrent clients while
`fallbackscope ingest` writes the same database in another process. CI-sized run of `benchmarks/load.py`
(the full run is 20 clients for 60 s: `python benchmarks/load.py`)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from fallbackscope.sample import SampleSpec, generate

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = int(os.environ.get("FALLBACKSCOPE_LOAD_CLIENTS", "5"))
SECONDS = float(os.environ.get("FALLBACKSCOPE_LOAD_SECONDS", "10"))


def _load_module():
    spec = importlib.util.spec_from_file_location("bench_load", ROOT / "benchmarks" / "load.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_concurrent_clients_get_only_2xx_answers_while_an_ingest_writes(sample_copy, tmp_path, monkeypatch):
    bench = _load_module()
    monkeypatch.setattr(bench, "KEY", "sample-key")  # the key the sample database was loaded with
    new = tmp_path / "new-logs"
    generate(new, SampleSpec(seed=99, days=6, start=dt.date(2026, 11, 16), chains_per_day=150, with_batch=False))
    (new / "ground_truth.json").unlink()
    result = bench.run_load(sample_copy, new, CLIENTS, SECONDS, tmp_path / "dashboard.log")
    text = bench.report(result)
    print(text)
    assert result.failures == [], text
    assert result.ingest_failures == [], text
    assert result.ingest_files_loaded >= 1, f"the ingest loaded new files during the test\n{text}"
    kinds = {kind for kind, values in result.latencies.items() if values}
    assert {"page html", "layout", "dependencies", "scripts", "callback router", "callback filters",
            "callback nav", "callback page"} <= kinds, text
    assert result.requests >= 8 * CLIENTS, text
