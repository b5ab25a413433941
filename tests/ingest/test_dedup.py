"""The duplicate rule (docs/metrics.md §2, `ingest/dedup.py`): of equal attempt ids in a file the first record's
is kept (then the first hop), records are told apart by line and ordinal in the line, and content ids count
identical records of a file. Both engines use these functions and names; tests/spark/test_engine_rules.py
loads the same files into both."""

from __future__ import annotations

import pyarrow as pa

from ingest import dedup


def attempts(*rows: tuple) -> pa.Table:
    """Rows of (attempt_id, line_no, record_no, hop, content_fp)."""
    names = ("attempt_id", "line_no", "record_no", "hop", "content_fp")
    types = (pa.string(), pa.int64(), pa.int32(), pa.int32(), pa.string())
    return pa.table({n: pa.array([r[i] for r in rows], t) for i, (n, t) in enumerate(zip(names, types, strict=True))})


def test_of_equal_ids_the_first_record_of_the_file_is_kept_then_the_first_hop():
    table = attempts(("b", 2, 0, 0, None), ("a", 1, 1, 0, None), ("a", 1, 0, 2, None), ("a", 1, 0, 1, None),
                     ("b", 3, 0, 0, None))
    kept = dedup.first_of_each_id(table)
    assert list(zip(*(kept.column(n).to_pylist() for n in dedup.FIRST_ORDER), strict=True)) == [(1, 0, 1), (2, 0, 0)]
    assert kept.column("attempt_id").to_pylist() == ["a", "b"]


def test_records_are_counted_by_line_and_ordinal_in_the_line_not_by_line():
    one_per_line = attempts(("a", 1, 0, 1, None), ("a#2", 1, 0, 2, None), ("b", 2, 0, 0, None))
    assert dedup.distinct_records(one_per_line) == 2  # the hops of a response are one record
    spans = attempts(("a", 1, 0, 0, None), ("b", 1, 1, 0, None), ("c", 1, 2, 0, None), ("d", 2, 0, 0, None))
    assert dedup.distinct_records(spans) == 4
    assert dedup.duplicate_records(records=6, rejected=1, loaded_records=4) == 1


def test_identical_records_without_ids_get_their_ordinal_among_identical_records_of_the_file():
    table = attempts((None, 1, 0, 0, "fp"), (None, 2, 0, 1, "fp"), (None, 2, 0, 2, "fp"), (None, 2, 1, 0, "fp"),
                     ("x", 3, 0, 0, None), (None, 4, 0, 0, "other"))
    filled = dedup.fill_content_ids(dedup.in_file_order(table.take([5, 3, 0, 4, 2, 1])))
    assert filled.column("attempt_id").to_pylist() == [
        "h:fp:1", "h:fp:2#1", "h:fp:2#2", "h:fp:3", "x", "h:other:1"]
