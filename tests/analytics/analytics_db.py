"""A fresh fallbackscope database filled with hand-made attempt rows (sensible defaults for every NOT NULL
column), for the analytics tests."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from fallbackscope.core.store import connect

UTC = dt.UTC
ERROR_STATUS = {"overloaded": 529, "rate_limit": 429, "server_error": 500, "invalid_request": 400, "auth": 401,
                "timeout": None, "connection": None}


def at(text: str) -> dt.datetime:
    """Return an aware UTC datetime from `2026-03-02 10:00` (seconds optional)."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return dt.datetime.strptime(text, fmt).replace(tzinfo=UTC)


class AttemptDB:
    """A fresh fallbackscope database filled with hand-made attempts.

    `add` takes one attempt (chain, 1-based index, time, model, outcome, any other column); `chain` adds a
    whole chain from (model, outcome) steps. Defaults fill the NOT NULL columns the way the ingester would:
    http_status and error_class from the outcome, the trigger of attempt k ≥ 2 from attempt k−1, the
    fallback_mode from the model change, tokens 0 and cost 0.0 unless given.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con: duckdb.DuckDBPyConnection | None = connect(path)
        self.columns = [r[0] for r in self.con.execute("DESCRIBE attempts").fetchall()]
        self._last: dict[str, dict[str, Any]] = {}
        self._n = 0

    def add(self, chain: str, k: int, ts: str | dt.datetime, model: str | None = "claude-sonnet-4-5",
            outcome: str = "ok", **cols: Any) -> dict[str, Any]:
        """Insert one attempt and return its row."""
        assert self.con is not None, "the database was already opened for reading"
        self._n += 1
        when = at(ts) if isinstance(ts, str) else ts
        prev = self._last.get(chain)
        error_class = cols.pop("error_class", None)
        if outcome == "error" and error_class is None:
            error_class = "overloaded"
        if outcome in ("timeout", "connection"):
            error_class = error_class or outcome
        default_status = 200 if outcome in ("ok", "refusal") else ERROR_STATUS.get(error_class or "", 500)
        if k >= 2 and "trigger" not in cols and prev is not None:
            if prev["outcome"] == "refusal":
                cols["trigger"] = "refusal"
            elif prev["outcome"] == "ok" and prev.get("accepted") is False:
                cols["trigger"] = "quality"
            elif prev.get("error_class"):
                cols["trigger"] = prev["error_class"]
        if k >= 2 and prev is not None and "fallback_mode" not in cols:
            cols["fallback_mode"] = "client" if prev["model"] != model else "none"
        row: dict[str, Any] = {
            "attempt_id": cols.pop("attempt_id", f"{chain}#{k}#{self._n}"),
            "load_id": 1, "ts": when, "surface": "anthropic", "workload": "default", "session_id": None,
            "chain_id": chain, "attempt_index": k, "model": model, "requested_model": model,
            "http_status": default_status, "error_class": error_class, "outcome": outcome,
            "stop_reason": "refusal" if outcome == "refusal" else ("end_turn" if outcome == "ok" else None),
            "fallback_mode": "none", "is_batch": False, "is_stream": False,
            "input_tokens": 0, "output_tokens": 0, "cache_write_5m_tokens": 0, "cache_write_1h_tokens": 0,
            "cache_read_tokens": 0, "web_search_requests": 0, "had_output": outcome == "ok",
            "cost_usd": 0.0, "hop": 1,
        }
        row.update(cols)
        unknown = set(row) - set(self.columns)
        assert not unknown, f"no such columns: {unknown}"
        names = list(row)
        self.con.execute(
            f"INSERT INTO attempts ({', '.join(chr(34) + n + chr(34) for n in names)}) "
            f"VALUES ({', '.join('?' for _ in names)})", [row[n] for n in names])
        self._last[chain] = row
        return row

    def chain(self, chain: str, start: str | dt.datetime, *steps: tuple, gap: dt.timedelta = dt.timedelta(seconds=30),
              **common: Any) -> None:
        """Insert a chain: each step is (model, outcome) or (model, outcome, {column: value}), `gap` apart."""
        when = at(start) if isinstance(start, str) else start
        for k, step in enumerate(steps, start=1):
            model, outcome = step[0], step[1]
            extra = dict(common) | (step[2] if len(step) > 2 else {})
            self.add(chain, k, when + gap * (k - 1), model, outcome, **extra)

    def set_policy(self, toml: str, source: str = "test-policy.toml") -> None:
        """Store a policy as `ingest --policy` would."""
        assert self.con is not None
        self.con.execute("INSERT INTO policy VALUES (now(), ?, ?)", [source, toml])

    @property
    def writer(self) -> duckdb.DuckDBPyConnection:
        """The read-write connection (analytics run on it as well)."""
        assert self.con is not None
        return self.con

    def close(self) -> None:
        """Close the writer so that the file can be opened read-only."""
        if self.con is not None:
            self.con.close()
            self.con = None


@contextmanager
def scratch_db() -> Iterator[AttemptDB]:
    """Yield an AttemptDB in a fresh temporary folder (for hypothesis examples, which cannot take tmp_path)."""
    with tempfile.TemporaryDirectory() as folder:
        db = AttemptDB(Path(folder) / "r.duckdb")
        try:
            yield db
        finally:
            db.close()
