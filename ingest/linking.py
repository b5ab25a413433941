"""Chain linking and triggers (docs/metrics.md §4): which chain each new attempt joins, and what follows from it.

Rules, strongest first: the app's `chain_id`; a presented credit token joins the chain of the
refusal that minted it; the hops of one server-side response are one chain; the same `prompt_fp` in
the same session (or workload) joins the most recent such chain when that chain's last attempt was
not a success and is less than 10 minutes older; else a new chain, named after its first attempt.

Membership is sequential (each attempt sees the chains as they stood before it), so this is one
plain loop over tuples in time order, seeded with the stored chains new attempts may join.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fallbackscope.core.outcomes import succeeded

LINK_WINDOW_US = 10 * 60 * 1_000_000

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
                trigger = "pinned" if intended_model is not None and intended_model != model else None
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
