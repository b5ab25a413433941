from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import KEY  # noqa: E402


@pytest.fixture(autouse=True)
def fixed_key(monkeypatch):
    """Every test runs with a known fingerprint key, so expected fingerprints can be computed."""
    monkeypatch.setenv("FALLBACKSCOPE_KEY", KEY)
    monkeypatch.delenv("FALLBACKSCOPE_DB", raising=False)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "t.duckdb"
