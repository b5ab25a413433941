"""The load ledger (docs/metrics.md §2, `ingest/ledger.py`): one row shape for both engines, and where the next
load of a file starts."""

from __future__ import annotations

import duckdb

from fallbackscope.core import store
from ingest import ledger
from ingest.sources import expand, file_sha256


def test_the_ledger_row_has_the_columns_of_the_loads_table_in_order():
    con = duckdb.connect()
    store.migrate(con)
    assert ledger.LOAD_COLUMNS == tuple(row[0] for row in con.execute("DESCRIBE loads").fetchall())


def test_a_file_grown_since_its_last_load_starts_where_that_load_stopped(tmp_path):
    path = tmp_path / "app.log"
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n')
    [source] = expand([str(path)])
    last = ledger.Previous(file_sha256(path), source.size, source.mtime_ns, source.size, 2)
    assert ledger.start_of(source, [last]) == ledger.Start(unchanged_sha=last.sha256)
    path.write_bytes(b'{"a": 1}\n{"a": 2}\n{"a": 3}\n')
    [grown] = expand([str(path)])
    assert ledger.start_of(grown, [last]) == ledger.Start(source.size, 2)
    path.write_bytes(b'{"a": 0}\n{"a": 2}\n{"a": 3}\n')  # rewritten, not grown: read whole
    [rewritten] = expand([str(path)])
    assert ledger.start_of(rewritten, [last]) == ledger.Start()


def overloaded() -> bytes:
    """An id-less error body: its attempt id is its content hash plus its ordinal among identical records."""
    return b'{"ts": "2026-11-02T00:00:00Z", "http_status": 529, "response": {"type": "error", "error": {"type":' \
           b' "overloaded_error"}}}\n'


def stored_ids(db) -> list[str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return [row[0] for row in con.execute("SELECT attempt_id FROM attempts ORDER BY attempt_id").fetchall()]
    finally:
        con.close()


def test_identical_records_appended_to_a_grown_file_count_on_from_those_already_read(tmp_path):
    """Issue 20 item 4: three identical id-less records, then two more appended — five attempts, as a fresh
    load of the whole file stores; a copy loaded elsewhere first (its records duplicates here) changes nothing."""
    from ingest.loader import ingest_paths

    log, copy = tmp_path / "app.log", tmp_path / "copy.log"
    log.write_bytes(overloaded() * 3)
    copy.write_bytes(overloaded() * 3 + b"\n")  # another file (a blank line more), the same records
    db = tmp_path / "grown.duckdb"
    ingest_paths(db, [str(copy)])  # the first three ids are stored by another file's load
    [first] = ingest_paths(db, [str(log)])
    assert (first.attempts_loaded, first.duplicates) == (0, 3)
    with open(log, "ab") as fh:
        fh.write(overloaded() * 2)
    [grown] = ingest_paths(db, [str(log)])
    assert (grown.records, grown.attempts_loaded, grown.duplicates) == (2, 2, 0)
    fresh = tmp_path / "fresh.duckdb"
    ingest_paths(fresh, [str(log)])
    assert stored_ids(db) == stored_ids(fresh) and len(stored_ids(fresh)) == 5
