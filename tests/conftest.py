from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from builders import KEY  # noqa: E402

# Tests that must share one process when the suite runs on several (pytest-xdist, `--dist loadgroup` in
# pyproject.toml): the Spark tests share one SparkSession, the ones that start Spark from the command line (a plain
# Python, a standalone cluster) a DuckDB baseline; the browser tests share one Chromium install.
_GROUPS = (("spark/test_cluster.py", "spark-cli"), ("spark/test_plain_python.py", "spark-cli"), ("spark/", "spark"),
           ("browser/", "browser"))


def pytest_collection_modifyitems(config, items) -> None:
    here = Path(__file__).parent
    for item in items:
        where = item.path.relative_to(here).as_posix() if item.path.is_relative_to(here) else ""
        group = next((name for prefix, name in _GROUPS if where.startswith(prefix)), None)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture(autouse=True)
def fixed_key(monkeypatch):
    """Every test runs with a known fingerprint key, so expected fingerprints can be computed."""
    monkeypatch.setenv("FALLBACKSCOPE_KEY", KEY)
    monkeypatch.delenv("FALLBACKSCOPE_DB", raising=False)


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "t.duckdb"
