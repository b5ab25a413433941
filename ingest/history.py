"""Taking loads back (docs/metrics.md §2): `loads forget` and `ingest --reload` remove a file's loads so that the
database equals a fresh load of the files that remain, in their load order.

A removal deletes the loads' attempts, rejects, link inputs and duplicates rows and gives their ledger rows the
status `forgotten` (or `replaced`, for a reload); rows are never deleted from the ledger. An attempt it removes
that a remaining load held as a duplicate is restored from that load's file — the holder first in load order
(`POSITION_SQL`) —, and the chains the removed and restored attempts touched are linked again
(`ingest.relink.relink_stored`). The loader reads the files and writes the rows; this module says which.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from fallbackscope.core.errors import FallbackscopeError
from ingest.linking import scope_sql
from ingest.sources import Source, file_sha256, is_url

# Where each `ok` load stands in the load order a fresh load of the remaining files follows: a file's place is
# its first load still in force — the first `ok` or `replaced` load of its path since the path was last
# forgotten (a reload keeps the place of the load it replaced; a grown file's loads share its first's).
POSITION_SQL = """
SELECT l.load_id, (SELECT min(m.load_id) FROM loads m WHERE m.path = l.path AND m.status IN ('ok', 'replaced')
                     AND m.load_id > coalesce((SELECT max(f.load_id) FROM loads f
                                               WHERE f.path = l.path AND f.status = 'forgotten'), 0)) AS position
FROM loads l WHERE l.status = 'ok'
"""

LISTED = ("load_id", "path", "format", "options", "started_at", "records", "loaded", "duplicates", "rejected",
          "status")


def ledger_rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Return the ledger as `fallbackscope loads` lists it (LISTED), in load order."""
    rows = con.execute("SELECT load_id, path, format, options, started_at, records, records - duplicates - rejected,"
                       " duplicates, rejected, status FROM loads ORDER BY load_id").fetchall()
    return [dict(zip(LISTED, row, strict=True)) for row in rows]


def location_of(target: str) -> str:
    """Return how the ledger names a file given on the command line (its resolved path, a URL as given, `-`)."""
    from pathlib import Path

    if target == "-" or is_url(target):
        return target
    return str(Path(target).resolve())


def loads_to_forget(con: duckdb.DuckDBPyConnection, targets: list[str]) -> list[int]:
    """Return the `ok` loads that `loads forget ID|PATH...` removes: every load of each file named, by a load
    id or by path (a grown file's loads go together). Raises FallbackscopeError for a target with none."""
    found: set[int] = set()
    for target in targets:
        if target.isdigit():
            row = con.execute("SELECT path FROM loads WHERE load_id = ?", [int(target)]).fetchone()
            if row is None:
                raise FallbackscopeError(f"loads forget: there is no load {target}.")
            path = row[0]
        else:
            path = location_of(target)
        ids = [r[0] for r in con.execute("SELECT load_id FROM loads WHERE path = ? AND status = 'ok'",
                                         [path]).fetchall()]
        if not ids:
            raise FallbackscopeError(f"loads forget: {target}: no load of it is in force (see `fallbackscope loads`).")
        found.update(ids)
    return sorted(found)


def file_loads(con: duckdb.DuckDBPyConnection, location: str) -> list[int]:
    """Return the `ok` loads of a file (its path), oldest first."""
    return [r[0] for r in con.execute("SELECT load_id FROM loads WHERE path = ? AND status = 'ok' ORDER BY load_id",
                                      [location]).fetchall()]


def last_options(con: duckdb.DuckDBPyConnection, load_ids: list[int]) -> dict[str, Any]:
    """Return the options of the newest of `load_ids` (none recorded: all unset)."""
    row = con.execute("SELECT options FROM loads WHERE load_id = ?", [max(load_ids)]).fetchone()
    return json.loads(row[0]) if row and row[0] else {}


@dataclass(frozen=True)
class Holder:
    """A remaining load that held removed attempts as duplicates: what is needed to read them again."""

    load_id: int
    path: str
    sha256: str | None
    file_size: int | None
    start_byte: int
    lines_before: int  # lines of the file before `start_byte`
    lines_read: int | None
    format: str | None
    options: dict[str, Any]


@dataclass
class Removed:
    """What a removal took away: its attempts as linking seeds, and the removed ids each remaining load holds."""

    seeds: pa.Table
    attempts: int
    held: dict[int, list[str]]  # holder load → the removed attempt ids it restores


def remove(con: duckdb.DuckDBPyConnection, load_ids: list[int], status: str, keep: pa.Array | None = None) -> Removed:
    """Remove the rows of `load_ids` (inside the caller's transaction) and give their ledger rows `status`;
    return what went. `keep`: ids a reload stores again itself, so no other load restores them."""
    con.complete()
    con.register("gone_loads", pa.table({"load_id": pa.array(load_ids, pa.int64())}))
    seeds = con.sql(f"""
SELECT epoch_us(ts) AS ts_us, {scope_sql()} AS scope, prompt_fp, chain_id AS given_chain_id, credit_presented_fp,
  credit_minted_fp FROM attempts WHERE load_id IN (SELECT load_id FROM gone_loads)""").to_arrow_table()
    keep_ids = keep if keep is not None else pa.array([], pa.string())
    con.register("kept_ids", pa.table({"attempt_id": keep_ids}))
    holders = con.execute(f"""
WITH pos AS ({POSITION_SQL}),
removed AS (SELECT attempt_id FROM attempts WHERE load_id IN (SELECT load_id FROM gone_loads)
            AND attempt_id NOT IN (SELECT attempt_id FROM kept_ids)),
holding AS (SELECT d.attempt_id, d.load_id, p.position FROM duplicates d JOIN pos p ON p.load_id = d.load_id
            WHERE d.attempt_id IN (SELECT attempt_id FROM removed)
              AND d.load_id NOT IN (SELECT load_id FROM gone_loads))
SELECT attempt_id, arg_min(load_id, (position, load_id)) FROM holding GROUP BY attempt_id""").fetchall()
    con.unregister("kept_ids")
    for table in ("attempts", "link_inputs", "rejects", "duplicates"):
        con.execute(f"DELETE FROM {table} WHERE load_id IN (SELECT load_id FROM gone_loads)")
    con.execute("UPDATE loads SET status = ? WHERE load_id IN (SELECT load_id FROM gone_loads)", [status])
    con.unregister("gone_loads")
    held: dict[int, list[str]] = {}
    for attempt_id, holder in holders:
        held.setdefault(holder, []).append(attempt_id)
    return Removed(seeds, seeds.num_rows, held)


def holder(con: duckdb.DuckDBPyConnection, load_id: int) -> Holder:
    """Return what is needed to read again the records a load read."""
    row = con.execute("SELECT path, sha256, file_size, coalesce(start_byte, 0), format, options, lines_read"
                      " FROM loads WHERE load_id = ?", [load_id]).fetchone()
    path, sha, size, start, fmt, options, lines_read = row
    before = con.execute("SELECT lines_read FROM loads WHERE path = ? AND status = 'ok' AND load_id < ?"
                         " AND bytes_read = ? ORDER BY load_id DESC LIMIT 1", [path, load_id, start]).fetchone()
    return Holder(load_id, path, sha, size, start, before[0] if before and start else 0, lines_read, fmt,
                  json.loads(options) if options else {})


def check_unchanged(item: Holder, source: Source | None) -> None:
    """Raise FallbackscopeError naming the file when the records a load read cannot be read again as they were:
    standard input, a file gone, or one that no longer begins with the bytes that load read."""
    if item.path == "-":
        raise FallbackscopeError(f"load {item.load_id} read standard input, which cannot be read again to restore "
                                 "the attempts it held; nothing was changed.")
    try:
        same = source is not None and item.sha256 is not None and item.file_size is not None and (
            file_sha256(item.path, item.file_size if not source.compressed else None) == item.sha256)
    except OSError:
        same = False
    if not same:
        raise FallbackscopeError(f"{item.path}: gone or changed since load {item.load_id} read it, so the attempts "
                                 "it held cannot be restored; nothing was changed.")


def begins_as_loaded(con: duckdb.DuckDBPyConnection, source: Source, load_ids: list[int]) -> bool:
    """Return whether a file still begins with the bytes its loads read (the newest one's size and sha256)."""
    size, sha = con.execute("SELECT file_size, sha256 FROM loads WHERE load_id = ?", [max(load_ids)]).fetchone()
    if sha is None or size is None or source.size is None or source.size < size:
        return False
    try:
        return file_sha256(source.location, None if source.compressed else size) == sha
    except OSError:
        return False
