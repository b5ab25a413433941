"""Chain linking (SPEC §4): which chain each new attempt belongs to.

Rules, strongest first: the app's `chain_id`; a presented credit token joins the chain of the
refusal that minted it; the hops of one server-side response are one chain; the same `prompt_fp` in
the same session (or workload) joins the most recent such chain when that chain's last attempt was
not a success and is less than 10 minutes older; else a new chain, named after its first attempt.

Chain membership is sequential (each attempt sees the chains as they stood before it), so it is a
plain loop over tuples in time order. What follows from membership — `attempt_index`, `trigger`,
`fallback_mode` — is window SQL in the loader (`LINK_SQL`).
"""

from __future__ import annotations

from collections.abc import Iterable

LINK_WINDOW_US = 10 * 60 * 1_000_000

# (attempt_id, ts_us, scope, prompt_fp, given_chain_id, credit_presented_fp, credit_minted_fp,
#  record_no, hop, succeeded)
LinkRow = tuple[str, int, str, str | None, str | None, str | None, str | None, int, int, bool]


class Linker:
    """Assigns chains to attempts fed in time order, after preloading the stored chains they may join."""

    def __init__(self) -> None:
        self.last: dict[str, tuple[int, bool]] = {}  # chain → (last ts, last attempt succeeded)
        self.minted: dict[str, str] = {}  # credit fingerprint → chain of the minting refusal
        self.by_prompt: dict[tuple[str, str], str] = {}  # (scope, prompt_fp) → most recent chain

    def assign(self, rows: Iterable[LinkRow]) -> list[str]:
        """Return the chain id of each row, in the order given (which must be time order)."""
        out: list[str] = []
        append = out.append
        last, minted, by_prompt = self.last, self.minted, self.by_prompt
        record_chain: dict[int, str] = {}
        for attempt_id, ts, scope, prompt_fp, chain, presented, minted_fp, record_no, hop, succeeded in rows:
            if chain is None:
                if presented is not None:
                    chain = minted.get(presented)
                if chain is None and hop > 1:
                    chain = record_chain.get(record_no)
                if chain is None and prompt_fp is not None:
                    candidate = by_prompt.get((scope, prompt_fp))
                    if candidate is not None:
                        last_ts, last_ok = last[candidate]
                        if not last_ok and 0 <= ts - last_ts < LINK_WINDOW_US:
                            chain = candidate
                if chain is None:
                    chain = attempt_id
            if hop == 1:
                record_chain[record_no] = chain
            last[chain] = (ts, succeeded)
            if minted_fp is not None:
                minted[minted_fp] = chain
            if prompt_fp is not None:
                by_prompt[(scope, prompt_fp)] = chain
            append(chain)
        return out


# Derives attempt_index, trigger and fallback_mode once chains are known. Expects `fresh` (new
# attempts, `rid` in time order), `link_arrow` (rid → chain_id) and `ctx_chain` (the last stored
# attempt of each stored chain: chain_id, attempts, model, outcome, accepted, error_class).
LINK_SQL = """
CREATE OR REPLACE TEMP TABLE linked AS
WITH w AS (
    SELECT l.rid, l.chain_id,
        row_number() OVER c AS k,
        lag(f.model) OVER c AS p_model, lag(f.outcome) OVER c AS p_outcome,
        lag(f.accepted) OVER c AS p_accepted, lag(f.error_class) OVER c AS p_error_class
    FROM fresh f JOIN link_arrow l ON f.rid = l.rid
    WINDOW c AS (PARTITION BY l.chain_id ORDER BY l.rid)
), p AS (
    SELECT w.rid, w.chain_id,
        coalesce(s.attempts, 0) + w.k AS attempt_index,
        CASE WHEN w.k = 1 THEN s.model ELSE w.p_model END AS p_model,
        CASE WHEN w.k = 1 THEN s.outcome ELSE w.p_outcome END AS p_outcome,
        CASE WHEN w.k = 1 THEN s.accepted ELSE w.p_accepted END AS p_accepted,
        CASE WHEN w.k = 1 THEN s.error_class ELSE w.p_error_class END AS p_error_class
    FROM w LEFT JOIN ctx_chain s ON s.chain_id = w.chain_id
)
SELECT p.rid, p.chain_id, p.attempt_index::INTEGER AS attempt_index,
    CASE WHEN p.attempt_index = 1 THEN
            CASE WHEN f.intended_model IS NOT NULL AND f.intended_model IS DISTINCT FROM f.model
                 THEN 'pinned' END
         ELSE coalesce(f.given_trigger,
            CASE WHEN p.p_outcome = 'refusal' THEN 'refusal'
                 WHEN p.p_accepted = false THEN 'quality'
                 ELSE p.p_error_class END)
    END AS "trigger",
    CASE WHEN f.hop_mode IS NOT NULL THEN f.hop_mode
         WHEN p.attempt_index = 1 THEN 'none'
         WHEN f.model IS DISTINCT FROM p.p_model THEN 'client'
         ELSE 'none' END AS fallback_mode
FROM p JOIN fresh f ON f.rid = p.rid
"""


def scope_of(session_id: str | None, workload: str) -> str:
    """Return the linking scope of an attempt: its session, else its workload."""
    return f"s:{session_id}" if session_id is not None else f"w:{workload}"
