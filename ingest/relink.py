"""Linking against the store (docs/metrics.md §4): chains do not depend on load order.

Linking is causal: an attempt's chain depends only on the attempts before it in link order. So when attempts
arrive (or are removed, `loads forget`) at time `t0` and later, what is stored before `t0` stands, and only the
stored attempts from `t0` on that the change can reach are linked again, with the new ones, from the chains
as they stood before `t0` (`linking.preload_sql`). What a change can reach: the link scopes (session, else
workload) it touches, grown to every scope a chain, an app chain id or a credit token ties to them
(`closure_sql`, to a fixed point). Their rows (`stored_rows_sql`) carry what the app gave for linking from
`link_inputs`. Both engines run this SQL: DuckDB here (`link_file`), Spark through its SQL connection.

A nightly file later than everything stored finds nothing to link again: one `max(ts)` look-up.
"""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ingest.linking import LINK_RESULTS, LINK_WINDOW_US, Linker, in_link_order, link_rows, preload_sql, scope_sql

# what the linker reads of each attempt, stored or new (`linking.link_rows`), in this order
LINK_INPUTS = (
    "attempt_id", "ts_us", "session_id", "workload", "prompt_fp", "given_chain_id", "credit_presented_fp",
    "credit_minted_fp", "line_no", "hop", "hop_mode", "outcome", "accepted", "model", "error_class",
    "given_trigger", "intended_model", "given_attempt", "record_no", "load_id",
)
# what a stored row held, to tell what linking it again changed
STORED_RESULTS = tuple(f"stored_{name}" for name in LINK_RESULTS)
# the columns of `link_inputs` (migration 004), written for every new attempt that has any of them
LINK_INPUT_TABLE = ("attempt_id", "load_id", "given_chain_id", "given_attempt", "given_trigger", "record_no")
LINK_INPUT_WANTED = ("given_chain_id IS NOT NULL OR given_attempt IS NOT NULL OR given_trigger IS NOT NULL"
                     " OR record_no <> 0")


def closure_sql(t0: int) -> str:
    """Return the SQL of the link scopes of stored attempts from `t0` on that a change reaches, over `attempts`,
    `relink_scopes` (scope: the scopes reached so far) and `fresh` (ts_us, scope, prompt_fp, given_chain_id,
    credit_presented_fp, credit_minted_fp: the attempts that arrive or leave, `given_chain_id` their chain).

    Reached: the scopes of chains holding an attempt reached, of chains those attempts may join (named, by a
    credit they present, by their prompt in their scope within the window) and of attempts presenting a credit
    minted by one of them. Run until no new scope comes back."""
    t0 = int(t0)
    return f"""
WITH later AS (
  SELECT chain_id, {scope_sql()} AS scope, prompt_fp, credit_presented_fp, credit_minted_fp
  FROM attempts WHERE epoch_us(ts) >= {t0}),
touch AS (
  SELECT scope, prompt_fp, given_chain_id AS chain_id, credit_presented_fp, credit_minted_fp FROM fresh
  UNION ALL SELECT scope, prompt_fp, chain_id, credit_presented_fp, credit_minted_fp FROM later
    WHERE scope IN (SELECT scope FROM relink_scopes)),
wanted AS (
  SELECT chain_id FROM touch WHERE chain_id IS NOT NULL
  UNION SELECT chain_id FROM attempts
    WHERE credit_minted_fp IN (SELECT credit_presented_fp FROM touch WHERE credit_presented_fp IS NOT NULL)
  UNION SELECT a.chain_id FROM attempts a JOIN touch t ON a.prompt_fp = t.prompt_fp AND {scope_sql("a")} = t.scope
    WHERE epoch_us(a.ts) >= {t0 - LINK_WINDOW_US})
SELECT DISTINCT scope FROM later
WHERE chain_id IN (SELECT chain_id FROM wanted)
   OR credit_presented_fp IN (SELECT credit_minted_fp FROM touch WHERE credit_minted_fp IS NOT NULL)
"""


def stored_rows_sql(t0: int) -> str:
    """Return the SQL of the stored attempts from `t0` on in `relink_scopes`, as LINK_INPUTS + STORED_RESULTS.

    A hop's `hop_mode` is its stored fallback mode (hops take it as they are); what the app gave comes from
    `link_inputs` (no row there: it gave nothing)."""
    return f"""
SELECT a.attempt_id, epoch_us(a.ts) AS ts_us, a.session_id, a.workload, a.prompt_fp, l.given_chain_id,
  a.credit_presented_fp, a.credit_minted_fp, a.line_no, a.hop, CASE WHEN a.hop > 0 THEN a.fallback_mode END AS hop_mode,
  a.outcome, a.accepted, a.model, a.error_class, l.given_trigger, a.intended_model, l.given_attempt,
  coalesce(l.record_no, 0) AS record_no, a.load_id, a.chain_id AS stored_chain_id,
  a.attempt_index AS stored_attempt_index, a."trigger" AS stored_trigger, a.fallback_mode AS stored_fallback_mode
FROM attempts a LEFT JOIN link_inputs l ON l.attempt_id = a.attempt_id
WHERE epoch_us(a.ts) >= {int(t0)} AND {scope_sql("a")} IN (SELECT scope FROM relink_scopes)
"""


def reached_scopes(con: Any, t0: int, seeds: set[str]) -> list[str]:
    """Return the link scopes a change reaches (`closure_sql` to a fixed point, from the scopes `seeds` of the
    attempts in relation `fresh`), left registered as relation `relink_scopes`. `con`: a DuckDB connection or
    the Spark engine's SQL connection."""
    scopes = set(seeds)
    while True:
        _register(con, "relink_scopes", pd.DataFrame({"scope": pd.Series(sorted(scopes), dtype=object)}))
        found = {row[0] for row in con.execute(closure_sql(t0)).fetchall()}
        if found <= scopes:
            return sorted(scopes)
        con.unregister("relink_scopes")
        scopes |= found


def changed(rows: pa.Table, results: dict[str, pa.Array]) -> pa.Table:
    """Return attempt_id and LINK_RESULTS of the stored rows (those with STORED_RESULTS) whose results differ."""
    differs = None
    for name in LINK_RESULTS:
        old, new = rows.column(f"stored_{name}"), results[name]
        diff = pc.fill_null(pc.not_equal(old, new), True)
        both_null = pc.and_(pc.is_null(old), pc.is_null(new))
        diff = pc.and_not(diff, both_null)
        differs = diff if differs is None else pc.or_(differs, diff)
    out = pa.table({"attempt_id": rows.column("attempt_id"), **results})
    return out.filter(differs)


# -- the DuckDB engine ----------------------------------------------------------------------------------------


def link_file(con: duckdb.DuckDBPyConnection, fresh: pa.Table, has_stored: bool,
              load_id: int) -> tuple[pa.Table, pa.Table | None]:
    """Return a file's new attempts (`fresh`, in link order) with LINK_RESULTS appended, and the stored attempts
    whose LINK_RESULTS change (attempt_id + LINK_RESULTS; None when none can)."""
    ts_us = pc.cast(fresh.column("ts"), pa.int64())
    inputs = link_inputs_of(fresh, ts_us, load_id)
    if not has_stored:
        return _appended(fresh, link_rows(Linker(), inputs.drop_columns(["load_id"]))), None
    t0 = pc.min(ts_us).as_py()
    latest = con.execute("SELECT epoch_us(max(ts)) FROM attempts").fetchone()[0]
    # a late file (stored attempts after its first) links again the stored attempts it reaches
    linker, stored = _against_store(con, seeds_of(inputs), t0, relink=latest is not None and latest >= t0)
    if not stored.num_rows:
        return _appended(fresh, link_rows(linker, inputs.drop_columns(["load_id"]))), None
    rows = in_link_order(pa.concat_tables([_with_stored(inputs), stored], promote_options="permissive"))
    is_stored = pc.is_valid(rows.column("stored_chain_id"))
    results = link_rows(linker, rows, is_stored)
    mine = {name: values.filter(pc.invert(is_stored)) for name, values in results.items()}
    relinked = changed(rows.filter(is_stored), {name: values.filter(is_stored) for name, values in results.items()})
    return _appended(fresh, mine), relinked


def relink_stored(con: duckdb.DuckDBPyConnection, seeds: pa.Table) -> pa.Table | None:
    """Link again the stored attempts that attempts which left or arrived (`seeds`: relation `fresh` of
    `closure_sql`, their chain as `given_chain_id`) reach, from the first of them on; return those whose
    LINK_RESULTS changed (attempt_id + LINK_RESULTS), None when none are left to link."""
    if not seeds.num_rows:
        return None
    linker, stored = _against_store(con, seeds, pc.min(seeds.column("ts_us")).as_py(), relink=True)
    if not stored.num_rows:
        return None
    rows = in_link_order(stored)
    results = link_rows(linker, rows, pa.chunked_array([pa.array(np.ones(rows.num_rows, bool))]))
    return changed(rows, results)


def _against_store(con: duckdb.DuckDBPyConnection, seeds: pa.Table, t0: int,
                   relink: bool) -> tuple[Linker, pa.Table]:
    """Return the linker seeded with the stored chains as they stood before `t0`, and (when `relink`) the stored
    attempts from `t0` on that the `seeds` reach (LINK_INPUTS + STORED_RESULTS; else none)."""
    _register(con, "fresh", seeds)
    stored = _empty_stored()
    if relink:
        reached_scopes(con, t0, set(seeds.column("scope").to_pylist()))
        stored = con.sql(stored_rows_sql(t0)).to_arrow_table()
        con.unregister("relink_scopes")
        if stored.num_rows:  # the chains they may join count too
            con.unregister("fresh")
            _register(con, "fresh", pa.concat_tables([seeds, seeds_of(_as_inputs(stored),
                                                                    chain=stored.column("stored_chain_id"))]))
    linker = Linker.from_stored(con.execute(preload_sql(t0)).fetchall(), t0)
    con.unregister("fresh")
    return linker, stored


def _empty_stored() -> pa.Table:
    return pa.table({name: pa.array([], pa.string()) for name in ("attempt_id", "stored_chain_id")})


def write_relinked(con: duckdb.DuckDBPyConnection, relinked: pa.Table | None) -> None:
    """Give stored attempts the chains, indexes, triggers and fallback modes they were linked again to."""
    if relinked is None or not relinked.num_rows:
        return
    _register(con, "relinked_arrow", relinked)
    con.execute('UPDATE attempts SET chain_id = r.chain_id, attempt_index = r.attempt_index, "trigger" = r."trigger",'
                " fallback_mode = r.fallback_mode FROM relinked_arrow r WHERE attempts.attempt_id = r.attempt_id")
    con.unregister("relinked_arrow")


def _register(con: Any, name: str, table: Any) -> None:
    con.complete()  # DuckDB wants any open result finished before a register
    con.register(name, table)


def link_inputs_of(fresh: pa.Table, ts_us: pa.ChunkedArray, load_id: int) -> pa.Table:
    """Return LINK_INPUTS of a file's new attempts (dictionary columns decoded)."""
    columns = {}
    for name in LINK_INPUTS:
        if name == "ts_us":
            columns[name] = ts_us
        elif name == "load_id":
            columns[name] = pa.array(np.full(fresh.num_rows, load_id, np.int64))
        else:
            column = fresh.column(name)
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            columns[name] = column
    return pa.table(columns)


def _with_stored(inputs: pa.Table) -> pa.Table:
    for name, kind in zip(STORED_RESULTS, (pa.string(), pa.int32(), pa.string(), pa.string()), strict=True):
        inputs = inputs.append_column(name, pa.nulls(inputs.num_rows, kind))
    return inputs


def _as_inputs(stored: pa.Table) -> pa.Table:
    return stored.select(list(LINK_INPUTS)).cast(pa.schema([(n, stored.schema.field(n).type) for n in LINK_INPUTS]))


def _scopes(rows: pa.Table) -> pa.ChunkedArray:
    from ingest.linking import scope_arrow

    return scope_arrow(rows.column("session_id"), rows.column("workload"))


def seeds_of(rows: pa.Table, chain: pa.ChunkedArray | None = None) -> pa.Table:
    """Return relation `fresh` of `preload_sql` and `closure_sql` for rows of LINK_INPUTS (their stored chain
    as `given_chain_id` where none was given)."""
    given = rows.column("given_chain_id")
    if chain is not None:
        given = pc.coalesce(given, chain)
    return pa.table({"ts_us": rows.column("ts_us"), "scope": _scopes(rows), "prompt_fp": rows.column("prompt_fp"),
                     "given_chain_id": given, "credit_presented_fp": rows.column("credit_presented_fp"),
                     "credit_minted_fp": rows.column("credit_minted_fp")})


def _appended(fresh: pa.Table, results: dict[str, pa.Array]) -> pa.Table:
    for name in LINK_RESULTS:
        fresh = fresh.append_column(name, results[name])
    return fresh
