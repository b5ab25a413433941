"""Fixtures of the dashboard tests: the committed sample loaded once per session, a copy to change."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "browser"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analytics"))  # AttemptDB

from dashboard_support import load_sample  # noqa: E402


@pytest.fixture(scope="session")
def sample(tmp_path_factory) -> tuple[Path, dict]:
    """The committed sample in a database built once per session: (path, ground truth). Read-only use."""
    db = tmp_path_factory.mktemp("dashboard-sample") / "sample.duckdb"
    truth = load_sample(db)
    return db, truth


@pytest.fixture
def sample_copy(sample, tmp_path) -> Path:
    """A private copy of the sample database, for tests that change it."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(sample[0], db)
    return db
