"""Chain linking and triggers (docs/metrics.md §4): which chain each attempt joins, and what follows from it.

Rules, strongest first: the app's `chain_id`; a presented credit token joins the chain of the
refusal that minted it; the hops of one server-side response are one chain; the same `prompt_fp` in
the same session (or workload) joins the most recent such chain when that chain's last attempt was
not a success and is less than 10 minutes older; else a new chain, named after its first attempt.

Membership is sequential (each attempt sees the chains as they stood before it), so this is one
plain loop over tuples in time order (`Linker`), seeded with the stored chains as they stood before the
first attempt linked (`preload_sql`). Chains do not depend on load order: stored attempts later than
a new one, in the scopes it can reach, are linked again with it (`ingest.relink`), keeping their chains'
stored ids (`keep_stored_ids`). Attempts no rule can tie to another are chains of one, linked with column
operations (`link_rows`). Both engines link with these; where a rule is written in two languages (SQL and
Arrow for the scope, Python and Arrow for `pinned`), the two stand side by side here and a test checks
they agree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fallbackscope.core.outcomes import succeeded
from ingest.extract import gc_paused, release_memory

LINK_WINDOW_US = 10 * 60 * 1_000_000
LINK_SLICE = 100_000  # rows the sequential linker turns into Python objects at a time

# The columns `Linker.link` reads, in this order.
LINK_COLUMNS = (
    "attempt_id", "ts_us", "scope", "prompt_fp", "given_chain_id", "credit_presented_fp", "credit_minted_fp",
    "line_no", "hop", "hop_mode", "outcome", "accepted", "model", "error_class", "given_trigger",
    "intended_model",
)


# The columns of a stored attempt `Linker.from_stored` reads, in this order.
STORED_COLUMNS = (
    "chain_id", "ts_us", "attempt_index", "scope", "prompt_fp", "credit_minted_fp", "model", "outcome", "accepted",
    "error_class",
)


# -- the link scope: the session, else the workload (docs/metrics.md §4 rule 4) ---------------------------


def scope_sql(alias: str = "") -> str:
    """Return the SQL expression of an attempt's link scope (`s:<session_id>`, else `w:<workload>`);
    `alias` qualifies the columns. DuckDB and Spark SQL read it alike."""
    a = f"{alias}." if alias else ""
    return f"CASE WHEN {a}session_id IS NOT NULL THEN 's:' || {a}session_id ELSE 'w:' || {a}workload END"


def scope_arrow(sessions: pa.ChunkedArray, workloads: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return the link scope of each row, as `scope_sql` computes it, with Arrow compute."""
    workloads = pc.cast(workloads, pa.string())
    return pc.if_else(pc.is_null(sessions), pc.binary_join_element_wise("w:", workloads, ""),
                      pc.binary_join_element_wise("s:", sessions, ""))


# -- the trigger of a chain's first attempt: `pinned` or none (docs/metrics.md §1, §4) -------------------


def first_trigger(intended_model: str | None, model: str | None) -> str | None:
    """Return the trigger of a chain's first attempt: `pinned` when the app wanted another model."""
    return "pinned" if intended_model is not None and intended_model != model else None


def first_trigger_arrow(intended_model: pa.ChunkedArray, model: pa.ChunkedArray) -> pa.ChunkedArray:
    """Return `first_trigger` of each row, with Arrow compute."""
    intended = pc.cast(intended_model, pa.string())
    pinned = pc.and_kleene(pc.is_valid(intended), pc.fill_null(pc.not_equal(intended, pc.cast(model, pa.string())),
                                                                True))
    return pc.if_else(pinned, "pinned", pa.scalar(None, pa.string()))


# -- the stored chains new attempts may join ---------------------------------------------------------------


def preload_sql(before_us: int) -> str:
    """Return the SQL of the stored attempts, before `before_us` (epoch microseconds), of the chains the
    attempts being linked may join, as STORED_COLUMNS.

    Over `attempts` and a relation `fresh` (ts_us, prompt_fp, given_chain_id, credit_presented_fp) of the
    attempts being linked (for stored ones linked again, `given_chain_id` is their stored chain): the chains
    they name, chains whose refusal minted a credit they present, and chains with their prompt that ran in the
    linking window before the first of them. `Linker.from_stored` keys prompts by scope.
    """
    before = int(before_us)
    return f"""
WITH wanted AS (
  SELECT chain_id FROM attempts
    WHERE prompt_fp IN (SELECT prompt_fp FROM fresh WHERE prompt_fp IS NOT NULL)
      AND epoch_us(ts) >= (SELECT min(ts_us) FROM fresh) - {LINK_WINDOW_US}
  UNION SELECT chain_id FROM attempts
    WHERE credit_minted_fp IN (SELECT credit_presented_fp FROM fresh WHERE credit_presented_fp IS NOT NULL)
  UNION SELECT given_chain_id FROM fresh WHERE given_chain_id IS NOT NULL)
SELECT a.chain_id, epoch_us(a.ts) AS ts_us, a.attempt_index, {scope_sql("a")} AS scope, a.prompt_fp,
  a.credit_minted_fp, a.model, a.outcome, a.accepted, a.error_class
FROM attempts a WHERE a.chain_id IN (SELECT chain_id FROM wanted) AND epoch_us(a.ts) < {before}
"""


class ChainState:
    """A chain as linking sees it: its size and its last attempt."""

    __slots__ = ("attempts", "last_ts", "model", "outcome", "accepted", "error_class")

    def __init__(self, attempts: int, last_ts: int, model: str | None, outcome: str, accepted: bool | None,
                 error_class: str | None) -> None:
        self.attempts = attempts
        self.last_ts = last_ts
        self.model = model
        self.outcome = outcome
        self.accepted = accepted
        self.error_class = error_class

    @property
    def succeeded(self) -> bool:
        return succeeded(self.outcome, self.accepted)

    def trigger_after(self) -> str | None:
        """Return the trigger an attempt after this chain's last one gets when none is given."""
        if self.outcome == "refusal":
            return "refusal"
        if self.accepted is False:
            return "quality"
        return self.error_class


class Linker:
    """Assigns chains to attempts fed in time order, after preloading the stored chains they may join."""

    def __init__(self) -> None:
        self.chains: dict[str, ChainState] = {}
        self.minted: dict[str, str] = {}  # credit fingerprint → chain of the minting refusal
        self.by_prompt: dict[tuple[str, str], str] = {}  # (scope, prompt_fp) → most recent chain
        self.record_chain: dict[int, str] = {}  # record → chain of its first hop (this file)
        # When set, only chains that a later attempt could join keep state (memory on large files):
        # those whose chain id, prompt or minted credit appears again. None keeps every chain.
        self.rejoinable: tuple[set, set, set] | None = None

    @classmethod
    def from_stored(cls, stored: Iterable[tuple], first_ts: int) -> Linker:
        """Return a linker seeded with stored attempts (rows of STORED_COLUMNS, any order) of the chains a
        file's attempts may join: each chain's size, last time and last attempt by (ts, attempt index);
        per (scope, prompt) the chain of its latest attempt, if that is no older than the window before
        the file's first attempt (`first_ts`); per minted credit its chain."""
        linker = cls()
        last: dict[str, tuple] = {}
        counts: dict[str, int] = {}
        latest_ts: dict[str, int] = {}
        prompt: dict[tuple[str, str], tuple[int, str]] = {}
        for row in stored:
            chain, ts, index, scope, prompt_fp, minted_fp = row[:6]
            counts[chain] = counts.get(chain, 0) + 1
            latest_ts[chain] = max(latest_ts.get(chain, ts), ts)
            if chain not in last or (ts, index) >= (last[chain][1], last[chain][2]):
                last[chain] = row
            if prompt_fp is not None:
                key = (scope, prompt_fp)
                if key not in prompt or ts >= prompt[key][0]:
                    prompt[key] = (ts, chain)
            if minted_fp is not None:
                linker.minted[minted_fp] = chain
        for chain, row in last.items():
            linker.chains[chain] = ChainState(counts[chain], latest_ts[chain], *row[6:10])
        for key, (ts, chain) in prompt.items():
            if ts >= first_ts - LINK_WINDOW_US:
                linker.by_prompt[key] = chain
        return linker

    def link(self, rows: Iterable[tuple]) -> tuple[list[str], list[int], list[str | None], list[str]]:
        """Return chain_id, attempt_index, trigger and fallback_mode for rows of LINK_COLUMNS in time order."""
        chain_ids: list[str] = []
        indexes: list[int] = []
        triggers: list[str | None] = []
        modes: list[str] = []
        chains, minted, by_prompt = self.chains, self.minted, self.by_prompt
        record_chain = self.record_chain
        rejoinable = self.rejoinable
        for (attempt_id, ts, scope, prompt_fp, chain, presented, minted_fp, record_no, hop, hop_mode, outcome,
             accepted, model, error_class, given_trigger, intended_model) in _with_record_credit(rows):
            if chain is None:
                if presented is not None:
                    chain = minted.get(presented)
                if chain is None and hop > 1:
                    chain = record_chain.get(record_no)
                if chain is None and prompt_fp is not None:
                    candidate = by_prompt.get((scope, prompt_fp))
                    if candidate is not None:
                        last = chains[candidate]
                        if not last.succeeded and 0 <= ts - last.last_ts < LINK_WINDOW_US:
                            chain = candidate
                if chain is None:
                    chain = attempt_id
            if hop == 1:
                record_chain[record_no] = chain
            state = chains.get(chain)
            if state is None:
                index = 1
                trigger = first_trigger(intended_model, model)
                mode = hop_mode or "none"
                if (rejoinable is None or hop or chain in rejoinable[0] or prompt_fp in rejoinable[1]
                        or minted_fp in rejoinable[2]):
                    chains[chain] = ChainState(1, ts, model, outcome, accepted, error_class)
            else:
                index = state.attempts + 1
                trigger = given_trigger or state.trigger_after()
                changed = model is not None and state.model is not None and model != state.model
                mode = hop_mode or ("client" if changed else "none")
                state.attempts = index
                state.last_ts, state.model, state.outcome = ts, model, outcome
                state.accepted, state.error_class = accepted, error_class
            if minted_fp is not None and (rejoinable is None or minted_fp in rejoinable[2]):
                minted[minted_fp] = chain
            if prompt_fp is not None and (rejoinable is None or prompt_fp in rejoinable[1]):
                by_prompt[(scope, prompt_fp)] = chain
            chain_ids.append(chain)
            indexes.append(index)
            triggers.append(trigger)
            modes.append(mode)
        return chain_ids, indexes, triggers, modes


_PRESENTED, _RECORD, _HOP = (LINK_COLUMNS.index(c) for c in ("credit_presented_fp", "line_no", "hop"))


def _with_record_credit(rows: Iterable[tuple]) -> Iterator[tuple]:
    """Yield the rows, each with the credit its request presented (for linking only).

    The hops of one server-side response come in a run (same record, hop 1, 2, …); only the serving hop
    carries the presented credit, yet the request presented it for all of them, so every hop of the run
    joins the minting refusal's chain (docs/metrics.md §4 rules 2 and 3). Other rows pass with their own credit.
    """
    run: list[tuple] = []
    for row in rows:
        if run and (not row[_HOP] or row[_RECORD] != run[0][_RECORD] or row[_HOP] <= run[-1][_HOP]):
            yield from _flush(run)
            run = []
        if row[_HOP]:
            run.append(row)
        else:
            yield row
    yield from _flush(run)


def _flush(run: list[tuple]) -> Iterator[tuple]:
    presented = next((row[_PRESENTED] for row in reversed(run) if row[_PRESENTED] is not None), None)
    for row in run:
        yield row if row[_PRESENTED] == presented else (*row[:_PRESENTED], presented, *row[_PRESENTED + 1:])


# -- the order of linking, and linking rows in it ----------------------------------------------------------

# The order attempts are linked in: time, then the app's attempt number (none as 0), then load order, then
# their place in the file (docs/metrics.md §4). Load order only breaks exact ties between files.
LINK_ORDER = ("ts_us", "given_attempt", "load_id", "line_no", "record_no", "hop")
RECORD_SHIFT = 1 << 32  # a record's key across loads: load id × RECORD_SHIFT + line


def in_link_order(table: pa.Table) -> pa.Table:
    """Return attempt rows (with `ts` or `ts_us`, and `load_id` when from several loads) sorted in
    `LINK_ORDER` (no copy when they are so already)."""
    keys = {}
    for name in LINK_ORDER:
        if name == "ts_us":
            keys[name] = table.column("ts_us" if "ts_us" in table.column_names else "ts")  # a timestamp sorts as µs
        elif name == "given_attempt":
            keys[name] = pc.fill_null(table.column(name), 0)
        elif name in table.column_names:
            keys[name] = table.column(name)
    order = pc.sort_indices(pa.table(keys), [(name, "ascending") for name in keys])
    if not pc.all(pc.equal(order, pa.array(range(len(order)), order.type))).as_py():
        table = table.take(order)  # logs are usually in time order already: then no copy
    return table


def keep_stored_ids(chain_ids: list[str], stored_ids: list[str | None], fixed: set[str]) -> list[str]:
    """Return the chain ids of attempts linked again with stored ones (rows in link order), renamed so that a
    chain keeps the id it was first stored with (docs/metrics.md §4).

    `stored_ids` holds each stored row's chain id as stored (None for new attempts); `fixed` the ids that
    name a chain already (the app's chain ids, and chains seeded from attempts before these rows). Every other
    chain is named after its first attempt by the linker; of the chains holding a stored chain's earliest row
    here, that one takes the stored chain's id back (a chain holding the earliest rows of several takes the
    earliest one's), so a late attempt heading a chain or two stored chains merging never renames them.
    """
    earliest: dict[str, int] = {}
    for i, stored in enumerate(stored_ids):
        if stored is not None and stored not in fixed and stored not in earliest:
            earliest[stored] = i
    rename: dict[str, str] = {}
    for stored, i in earliest.items():  # in order of their earliest row: the earlier claim wins
        chain = chain_ids[i]
        if chain not in fixed and chain not in rename:
            rename[chain] = stored
    return [rename.get(chain, chain) for chain in chain_ids] if rename else chain_ids


LINK_RESULTS = ("chain_id", "attempt_index", "trigger", "fallback_mode")
_RESULT_TYPES = (pa.string(), pa.int32(), pa.string(), pa.string())


def link_rows(linker: Linker, rows: pa.Table, stored: pa.ChunkedArray | None = None, *,
              release: bool = True) -> dict[str, pa.Array]:
    """Return LINK_RESULTS for rows in `LINK_ORDER` (with `ts_us`, `load_id` when from several loads), from a
    linker seeded with the chains they may join; `stored` marks rows stored already, linked again.

    Rows that no rule can tie to another — their chain id, prompt and credit occur nowhere else, stored
    or here, and they are no server-side hop — are chains of one, linked with column operations; the rest go
    through the sequential linker, in order. Stored rows always do, and keep their chains' ids. `release`:
    hand freed memory back to the system afterwards (a large file's load; not each small group of Spark's).
    """
    fixed = set(linker.chains) if stored is not None else set()
    repeated_chains = _repeated(rows.column("given_chain_id")) | set(linker.chains)
    repeated_prompts = _repeated(rows.column("prompt_fp")) | {fp for _, fp in linker.by_prompt}
    presented = set(pc.unique(rows.column("credit_presented_fp")).drop_null().to_pylist())
    linker.rejoinable = (repeated_chains, repeated_prompts, presented)
    masks = [
        pc.is_in(rows.column("given_chain_id"), pa.array(list(repeated_chains), pa.string())),
        pc.is_in(rows.column("prompt_fp"), pa.array(list(repeated_prompts), pa.string())),
        pc.is_valid(rows.column("credit_presented_fp")),
        pc.is_in(rows.column("credit_minted_fp"), pa.array(list(presented), pa.string())),
        pc.not_equal(rows.column("hop"), 0),
    ]
    linked_mask = _any_true(*masks, *([stored] if stored is not None else []))
    n = rows.num_rows
    columns = {
        "chain_id": pc.coalesce(rows.column("given_chain_id"), rows.column("attempt_id")),
        "attempt_index": pa.chunked_array([pa.array(np.ones(n, np.int32))]),
        "trigger": first_trigger_arrow(rows.column("intended_model"), rows.column("model")),
        "fallback_mode": pa.chunked_array([pa.array(np.full(n, "none", object), pa.string())]),
    }
    linked_rows = rows.filter(linked_mask)
    if linked_rows.num_rows:
        results = _link_sequentially(linker, linked_rows)
        if stored is not None:
            stored_ids = linked_rows.column("stored_chain_id").to_pylist()
            fixed |= set(pc.unique(rows.column("given_chain_id")).drop_null().to_pylist())
            chains = keep_stored_ids(results[0].to_pylist(), stored_ids, fixed)
            results[0] = pa.array(chains, pa.string())
        for name, values in zip(columns, results, strict=True):
            columns[name] = pc.replace_with_mask(columns[name].combine_chunks(), linked_mask.combine_chunks(),
                                                 values)
    if release:
        release_memory()  # what sorting and linking freed, before the insert (the load's peak)
    return {name: _whole(values) for name, values in columns.items()}


def _whole(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _link_sequentially(linker: Linker, rows: pa.Table) -> list[pa.Array]:
    """Return chain_id, attempt_index, trigger and fallback_mode of rows (in link order) from the linker."""
    scope = scope_arrow(rows.column("session_id"), rows.column("workload"))
    record = rows.column("line_no")
    if "load_id" in rows.column_names:  # rows of several loads: a record is told by its load and line
        record = pc.add(pc.multiply(rows.column("load_id"), RECORD_SHIFT), record)
    inputs = rows.select([c for c in LINK_COLUMNS if c not in ("ts_us", "scope", "line_no")])
    inputs = (inputs.append_column("ts_us", rows.column("ts_us")).append_column("scope", scope)
              .append_column("line_no", record))
    inputs = inputs.select(list(LINK_COLUMNS))
    outputs: list[list[pa.Array]] = [[], [], [], []]
    with gc_paused():
        _link_slices(linker, inputs, outputs, _RESULT_TYPES)
    return [pa.concat_arrays(arrays) if arrays else pa.array([], kind)
            for arrays, kind in zip(outputs, _RESULT_TYPES, strict=True)]


def _link_slices(linker: Linker, inputs: pa.Table, outputs: list[list[pa.Array]], types: tuple) -> None:
    hops = inputs.column("hop")
    offset = 0
    while offset < inputs.num_rows:
        # in slices, so the Python objects of a large file never all exist at once; a slice never ends
        # inside the hops of one response, which the linker reads as one run
        end = min(offset + LINK_SLICE, inputs.num_rows)
        while end < inputs.num_rows and hops[end].as_py() > 1:
            end += 1
        part = inputs.slice(offset, end - offset)
        offset = end
        values = [column.to_pylist() for column in part.columns]
        for out, result, kind in zip(outputs, linker.link(zip(*values, strict=True)), types, strict=True):
            out.append(pa.array(result, kind))
        del values


def _any_true(*masks: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray:
    """Return the element-wise OR of boolean masks, nulls counting as false."""
    result = pc.fill_null(masks[0], False)
    for mask in masks[1:]:
        result = pc.or_(result, pc.fill_null(mask, False))
    return result if isinstance(result, pa.ChunkedArray) else pa.chunked_array([result])


def _repeated(column: pa.ChunkedArray) -> set:
    """Return the non-null values that occur more than once in a column."""
    counts = pc.value_counts(column.drop_null())
    if not len(counts):
        return set()
    values, freq = counts.field("values"), counts.field("counts")
    return set(pc.filter(values, pc.greater(freq, 1)).to_pylist())
