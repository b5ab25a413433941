"""The duplicate rule (docs/metrics.md §2), one definition for both engines.

A record is a duplicate when all its attempts are already stored, or repeat an attempt id an earlier
record of the same file holds: of equal ids the first by `FIRST_ORDER` (record, then hop) is kept. A
record is a line — or, where a line holds several records (an OTLP export's model-call spans), the pair
`RECORD_KEY` (line, ordinal in the line): counts are of those, never of lines. Records without any id get
a content id (`fill_content_ids`) before the rule is applied, so a renamed, gzipped or piped copy of a
file gives the same ids.

The DuckDB engine applies the rule with the Arrow functions below; the Spark engine with a window over
`FIRST_ORDER`, a distinct count over `RECORD_KEY` and an anti-join on the stored ids
(`fallbackscope/spark/ingest.py`), from these same names.
"""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

RECORD_KEY = ("line_no", "record_no")  # what tells one record of a file from another
FIRST_ORDER = (*RECORD_KEY, "hop")  # of attempts sharing an id in a file, the first by this order is kept


def duplicate_records(records: int, rejected: int, loaded_records: int) -> int:
    """Return how many records were duplicates: every record is loaded, a duplicate, or rejected."""
    return records - rejected - loaded_records


def in_file_order(table: pa.Table) -> pa.Table:
    """Return a file's attempt rows in the order the file holds them (`FIRST_ORDER`)."""
    return table.take(pc.sort_indices(table, [(name, "ascending") for name in FIRST_ORDER]))


def fill_content_ids(table: pa.Table, counted: dict[str, int] | None = None) -> pa.Table:
    """Give records without any id a keyed hash of their content plus their ordinal among identical
    records of the file, so a renamed, gzipped or piped copy keeps the same ids. `table` holds a file's
    rows in file order (`in_file_order`); `counted`: for a grown file's new records, how many of each content
    hash the file held before them (`ledger.content_ordinals`), so the ordinals count on."""
    filled = table.column("attempt_id").to_pylist()
    seen: dict[str, int] = dict(counted or {})
    last_record: dict[str, tuple[int, int]] = {}
    records = zip(*(table.column(name).to_pylist() for name in RECORD_KEY), strict=True)
    for i, (fp, record, hop) in enumerate(zip(table.column("content_fp").to_pylist(), records,
                                              table.column("hop").to_pylist(), strict=True)):
        if filled[i] is None:
            if last_record.get(fp) != record:
                seen[fp] = seen.get(fp, 0) + 1
                last_record[fp] = record
            filled[i] = content_id(fp, seen[fp], hop)
    return table.set_column(table.schema.get_field_index("attempt_id"), "attempt_id", pa.array(filled, pa.string()))


def content_id(content_fp: str, ordinal: int, hop: int) -> str:
    """Return the attempt id of an id-less record's attempt: `h:<content hash>:<ordinal>`, `#<hop>` for a hop."""
    return f"h:{content_fp}:{ordinal}" + (f"#{hop}" if hop else "")


# The ordinal of a content id (`content_id`), in SQL both engines read: `h:<hash>:<ordinal>[#<hop>]`.
CONTENT_ORDINAL_SQL = "CAST(split_part(split_part(attempt_id, ':', 3), '#', 1) AS BIGINT)"
CONTENT_HASH_SQL = "split_part(attempt_id, ':', 2)"


def first_of_each_id(table: pa.Table) -> pa.Table:
    """Return one row per attempt id — the first by `FIRST_ORDER` when a file holds an id more than
    once — in that order. Only the kept rows are copied, and no Python object is made per row."""
    order = pc.sort_indices(table, [(name, "ascending") for name in FIRST_ORDER])
    ranked = pa.table({"attempt_id": table.column("attempt_id").take(order),
                       "rank": pa.array(np.arange(table.num_rows, dtype=np.int64))})
    first = ranked.group_by("attempt_id", use_threads=False).aggregate([("rank", "min")]).column("rank_min")
    return table.take(order.take(first.take(pc.sort_indices(first))))


def distinct_records(table: pa.Table) -> int:
    """Return how many records the rows come from (`RECORD_KEY`)."""
    if not pc.max(table.column("record_no")).as_py():  # one record per line: the lines suffice (faster)
        return pc.count_distinct(table.column("line_no")).as_py()
    return table.group_by(list(RECORD_KEY)).aggregate([]).num_rows


def own_attempts(table: pa.Table, counted: dict[str, int] | None = None) -> pa.Table:
    """Return a file's attempt rows (in file order) with content ids filled (counting on from `counted`), the
    first of each id: the attempts the file holds."""
    if table.column("attempt_id").null_count:
        table = fill_content_ids(table, counted)
    if pc.count_distinct(table.column("attempt_id")).as_py() != table.num_rows:
        table = first_of_each_id(table)
    return table


def unstored(con: duckdb.DuckDBPyConnection, table: pa.Table) -> tuple[pa.Table, pa.Array]:
    """Return the rows of `table` whose attempt id is not stored yet, and the ids that were (the duplicates
    a load of them holds)."""
    con.complete()  # DuckDB wants any open result finished before a register
    con.register("new_ids", table.select(["attempt_id"]))
    stored = con.sql("SELECT attempt_id FROM attempts"
                     " WHERE attempt_id IN (SELECT attempt_id FROM new_ids)").to_arrow_table()
    con.unregister("new_ids")
    if not stored.num_rows:
        return table, pa.array([], pa.string())
    stored_ids = stored.column(0).combine_chunks()
    return table.filter(pc.invert(pc.is_in(table.column("attempt_id"), stored_ids))), stored_ids


def new_attempts(con: duckdb.DuckDBPyConnection, table: pa.Table, has_stored: bool,
                 counted: dict[str, int] | None = None) -> tuple[pa.Table, pa.Array]:
    """Return a file's attempt rows (in file order) that are no duplicates — content ids filled (counting on
    from `counted`), the first of each id, none whose id is stored already — and the ids that were stored
    already (the duplicates this load holds)."""
    table = own_attempts(table, counted)
    if not has_stored:
        return table, pa.array([], pa.string())
    return unstored(con, table)
