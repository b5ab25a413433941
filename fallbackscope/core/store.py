"""The DuckDB store: connect, numbered migrations, and the tables of docs/metrics.md §2."""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

import duckdb

from fallbackscope.core.errors import FallbackscopeError

_LOCK_WORDS = ("lock", "Conflicting", "being used")


def _migrations() -> list[tuple[int, str, str]]:
    """Return (number, name, sql) for each bundled migration, in order."""
    folder = resources.files("fallbackscope.core") / "migrations"
    found = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


BUNDLED_VERSIONS = frozenset(number for number, _, _ in _migrations())
LATEST_VERSION = max(BUNDLED_VERSIONS)


def migrate(con: duckdb.DuckDBPyConnection) -> int:
    """Apply every bundled migration not yet recorded in `schema_version`, in number order, each in its own
    transaction (one numbered below the newest applied — written on another branch — is applied too).

    Returns the schema version in force afterwards.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for number, name, sql in _migrations():
        if number in applied:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_version VALUES (?, ?, now())", [number, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.add(number)
    return max(applied, default=0)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return any(word in text for word in _LOCK_WORDS)


def _open(path: Path, read_only: bool, config: dict, wait_seconds: float) -> duckdb.DuckDBPyConnection:
    """Open the file, retrying for `wait_seconds` while another process holds its lock."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.Error as exc:
            if _is_lock_error(exc) and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                continue
            if _is_lock_error(exc):
                raise FallbackscopeError(
                    f"{path}: the database is locked by another fallbackscope process; try again when it ends."
                ) from None
            raise FallbackscopeError(f"{path}: cannot open the database ({_why_not_a_database(path, exc)}).") from None


def connect(
    db_path: str | Path,
    *,
    read_only: bool = False,
    wait_seconds: float = 0.0,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the database file, creating and migrating it when opened for writing.

    `wait_seconds` retries while another process holds the file's lock (a nightly ingest writing
    while the dashboard reads). Raises FallbackscopeError with one sentence on failure.
    """
    path = Path(db_path)
    if read_only and not path.exists():
        raise FallbackscopeError(f"{path}: no such database; load logs first with `fallbackscope ingest`.")
    con = _open(path, read_only, {"threads": threads} if threads else {}, wait_seconds)
    if read_only:
        applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()} \
            if has_table(con, "schema_version") else set()
        if not BUNDLED_VERSIONS <= applied:
            con.close()
            raise FallbackscopeError(
                f"{path}: the database schema is older than this fallbackscope; "
                "run `fallbackscope ingest` to upgrade it."
            )
    else:
        migrate(con)
    return con


def key_check_state(db_path: str | Path, *, wait_seconds: float = 0.0) -> tuple[str | None, bool]:
    """Return (the stored key check value or None, whether the database holds attempts), read without
    writing a byte: no database file gives (None, False)."""
    path = Path(db_path)
    if not path.exists():
        return None, False
    refuse_non_database(path)
    con = _open(path, True, {}, wait_seconds)
    try:
        check = None
        if has_table(con, "key_check"):
            row = con.execute("SELECT check_value FROM key_check ORDER BY set_at DESC LIMIT 1").fetchone()
            check = row[0] if row else None
        holds = has_table(con, "attempts") and con.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0]
        return check, bool(holds)
    finally:
        con.close()


def store_key_check(con: duckdb.DuckDBPyConnection, check_value: str) -> bool:
    """Store the check value of the key this run writes with (docs/metrics.md §2); returns False, storing
    nothing, when another key's value is stored and the database holds attempts."""
    row = con.execute("SELECT check_value FROM key_check ORDER BY set_at DESC LIMIT 1").fetchone()
    if row is not None and row[0] == check_value:
        return True
    if row is not None and con.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0]:
        return False
    con.execute("DELETE FROM key_check")
    con.execute("INSERT INTO key_check VALUES (?, now())", [check_value])
    return True


def has_table(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Return whether the database has table `name`. A connection of another engine (the Spark engine's)
    answers through its own `has_table`: it has no information schema."""
    own = getattr(con, "has_table", None)
    if own is not None:
        return bool(own(name))
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchone()[0]
    )


def attempt_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Return the columns of the attempts table in their stored order."""
    return [row[0] for row in con.execute("DESCRIBE attempts").fetchall()]


def refuse_non_database(path: Path) -> None:
    """Raise FallbackscopeError when `path` is plainly no database (a directory, or a file that is not
    DuckDB's); say nothing of a file that merely cannot be opened now (a writer may hold it)."""
    why = _why_not_a_database(path, None)
    if why is not None:
        raise FallbackscopeError(f"{path}: cannot open the database ({why}).")


def _why_not_a_database(path: Path, exc: Exception | None) -> str | None:
    """Return why DuckDB could not open `path`, in words (never the driver's text: it may quote a path's bytes)."""
    if path.is_dir():
        return "it is a directory, not a database file"
    if not path.parent.is_dir():
        return f"the directory {path.parent} does not exist"
    if path.is_file():
        with open(path, "rb") as fh:
            head = fh.read(12)
        if path.stat().st_size and head[8:12] != b"DUCK":
            return "it is not a DuckDB database file"
    return type(exc).__name__ if exc is not None else None
