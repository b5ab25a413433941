"""Fixtures of the analytics tests; the helper itself lives in `analytics_db.py`."""

from __future__ import annotations

import pytest
from analytics_db import AttemptDB


@pytest.fixture
def adb(tmp_path) -> AttemptDB:
    """A fresh database at tmp_path/x.duckdb with the attempt helper."""
    db = AttemptDB(tmp_path / "x.duckdb")
    yield db
    db.close()
