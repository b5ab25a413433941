"""Column operations on a file's extracted attempts (Arrow tables) that the loader stages before linking."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def any_true(*masks: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Return the element-wise OR of boolean masks, nulls counting as false."""
    result = pc.fill_null(masks[0], False)
    for mask in masks[1:]:
        result = pc.or_(result, pc.fill_null(mask, False))
    return result if isinstance(result, pa.ChunkedArray) else pa.chunked_array([result])


def repeated(column: pa.ChunkedArray) -> set:
    """Return the non-null values that occur more than once in a column."""
    counts = pc.value_counts(column.drop_null())
    if not len(counts):
        return set()
    values, freq = counts.field("values"), counts.field("counts")
    return set(pc.filter(values, pc.greater(freq, 1)).to_pylist())


def first_of_each_id(table: pa.Table) -> pa.Table:
    """Return one row per attempt id — the first by record, then hop, when a file holds an id more than
    once — in that order. Only the kept rows are copied, and no Python object is made per row."""
    order = pc.sort_indices(table, [("line_no", "ascending"), ("hop", "ascending")])
    ranked = pa.table({"attempt_id": table.column("attempt_id").take(order),
                       "rank": pa.array(np.arange(table.num_rows, dtype=np.int64))})
    first = ranked.group_by("attempt_id", use_threads=False).aggregate([("rank", "min")]).column("rank_min")
    return table.take(order.take(first.take(pc.sort_indices(first))))


def distinct_records(table: pa.Table) -> int:
    """Return how many records the rows come from: lines, or (line, record) where a line holds several."""
    if not pc.max(table.column("record_no")).as_py():
        return pc.count_distinct(table.column("line_no")).as_py()
    return table.group_by(["line_no", "record_no"]).aggregate([]).num_rows


def fill_content_ids(table: pa.Table) -> pa.Table:
    """Give records without any id a keyed hash of their content plus their ordinal among identical
    records of the file, so a renamed, gzipped or piped copy keeps the same ids."""
    filled = table.column("attempt_id").to_pylist()
    seen: dict[str, int] = {}
    last_record: dict[str, tuple[int, int]] = {}
    for i, (fp, record, hop) in enumerate(zip(table.column("content_fp").to_pylist(),
                                              zip(table.column("line_no").to_pylist(),
                                                  table.column("record_no").to_pylist(), strict=True),
                                              table.column("hop").to_pylist(), strict=True)):
        if filled[i] is None:
            if last_record.get(fp) != record:
                seen[fp] = seen.get(fp, 0) + 1
                last_record[fp] = record
            filled[i] = f"h:{fp}:{seen[fp]}" + (f"#{hop}" if hop else "")
    return table.set_column(table.schema.get_field_index("attempt_id"), "attempt_id", pa.array(filled, pa.string()))
