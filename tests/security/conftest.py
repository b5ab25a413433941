"""Fixtures of the security tests: the hostile database (built once), a private copy to attack."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "browser"))

import hostile  # noqa: E402


@pytest.fixture(scope="session")
def hostile_db(tmp_path_factory) -> Path:
    """The hostile database, read-only use. Built with the tests' fingerprint key (a session fixture runs
    before the per-test key is set), so its copies can be loaded into under that key."""
    from builders import KEY

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FALLBACKSCOPE_KEY", KEY)
        return hostile.build(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def hostile_copy(hostile_db, tmp_path) -> Path:
    """A private copy of the hostile database (and its policy), for tests that attack it."""
    db = tmp_path / "copy.duckdb"
    shutil.copy(hostile_db, db)
    shutil.copy(hostile_db.with_name("policy.toml"), tmp_path / "policy.toml")
    return db
