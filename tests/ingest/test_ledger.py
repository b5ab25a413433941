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
