"""fallbackscope: see, price and govern LLM model fallbacks.

`fallbackscope.open(path)` opens a database read-only for notebook use (see `fallbackscope.api`).
"""

from __future__ import annotations

__version__ = "0.1.0"


def open(db_path=None, *, policy=None):  # noqa: A001 - the notebook entry point reads best as `open`
    """Return a read-only `fallbackscope.api.Database` for a database file (metrics as DataFrames)."""
    from fallbackscope.api import open as _open

    return _open(db_path, policy=policy)
