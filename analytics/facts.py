"""The facts every metric of one analysed period is derived from (data only; `analytics.collect` computes them).

Most chains have one attempt. Everything a one-attempt chain contributes can be read off its first
attempt, so the first attempts of the period are summarised straight into a small *cube* (one row per
day × workload × model × outcome × … combination) without grouping by chain. Only the chains with two
or more attempts get a per-chain summary (`multi`). Every chain metric of docs/metrics.md §6 is a sum over
these cubes, so rolling up by day, week, workload or model afterwards works on a few thousand rows.

A chain — with all its attempts, credits and sessions — belongs to the day of its first attempt
(`attempt_index = 1`); every attempt of a chain is at or after that time.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fallbackscope.core.modelnames import normalise_model
from fallbackscope.core.periods import Period, TimeKey, day_to_date
from fallbackscope.core.policy import Policy
from fallbackscope.core.prices import PriceRow, PriceTable

TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_5m_tokens", "cache_write_1h_tokens")
PROMPT = "(input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens)"


@dataclass(frozen=True)
class Facts:
    """The summarised facts of one period; every DataFrame is keyed by the chain's `day` and `workload`.

    - `firsts`: first attempts, by day, workload, model, outcome, refusal_category, error_class, success,
      pinned, disclosed, has_session (+ batch, geo and prompt band of successes) → n, cost, priced,
      first_us and token sums.
    - `laters`: attempts k ≥ 2, by the same attempt keys → n, cost, priced, first_us.
    - `multi`: chains of ≥ 2 attempts, by their chain-level flags → n.
    - `retries`: chains with a same-model retry → n; `overhead`: cost of the attempts before the resolver
      of escalated chains (all attempts of unresolved ones) → overhead, overhead_attempts, overhead_unpriced.
    - `transitions`: attempts k ≥ 2 on a different model than attempt k−1, by trigger → n.
    - `sessions`: sessions with a session id and the refused ones, by `bucket` and workload
      (`workload` null = all workloads together); session-less chains are counted in the cubes.
    - `counterfactual`: resolved chains and their resolver tokens priced at the workload's top tier.
    - `credits`: minted credits by day, workload, batch, outcome, reason and presentations.
    - `loops`: one row per refusal loop (docs/metrics.md §5).
    - `credit_rows`: one row per credit, only when collected with `detail=True`.
    """

    period: Period
    policy: Policy
    session_key: TimeKey | None
    chains_of: dict[str, tuple[str, ...]]
    top_tier: dict[str, str | None]
    firsts: pd.DataFrame
    laters: pd.DataFrame
    multi: pd.DataFrame
    retries: pd.DataFrame
    overhead: pd.DataFrame
    transitions: pd.DataFrame
    sessions: pd.DataFrame
    counterfactual: pd.DataFrame
    credits: pd.DataFrame
    loops: pd.DataFrame
    credit_rows: pd.DataFrame | None = None

    def workloads(self) -> list[str]:
        """Return the workloads with chains in the period, sorted."""
        return sorted({str(w) for w in self.firsts["workload"].dropna().unique()})

    def chain_count(self) -> int:
        """Return the number of chains in the period."""
        return int(self.firsts["n"].sum())


def normalised_chains(policy: Policy, table: PriceTable) -> dict[str, tuple[str, ...]]:
    """Return each workload's declared chain with its models normalised like stored models."""
    out = {}
    for name, rules in policy.workloads.items():
        if rules.chain:
            out[name] = tuple(normalise_model(m, table.aliases) or m for m in rules.chain)
    return out


def band_thresholds(table: PriceTable) -> list[int]:
    """Return the distinct prompt-size band thresholds of the price table, ascending."""
    return sorted({r.band_threshold for r in table.price if r.band_threshold is not None})


def band_code_sql(thresholds: list[int]) -> str:
    """Return SQL for how many of the thresholds an attempt's prompt exceeds (bound as ? parameters)."""
    if not thresholds:
        return "0"
    return "(" + " + ".join(f"CAST({PROMPT} > ? AS INTEGER)" for _ in thresholds) + ")"


class PriceLookup:
    """The price row of a model on a day (price rows start at UTC midnight), memoised."""

    def __init__(self, table: PriceTable) -> None:
        self._rows: dict[str, list[PriceRow]] = {}
        for row in table.price:
            self._rows.setdefault(row.model, []).append(row)
        for rows in self._rows.values():
            rows.sort(key=lambda r: r.valid_from)
        self._memo: dict[tuple[str, int], PriceRow | None] = {}

    def at(self, model: str | None, day: int) -> PriceRow | None:
        """Return the row of `model` in force on day number `day`; None when it has no price then."""
        if model is None:
            return None
        key = (model, int(day))
        if key not in self._memo:
            when = day_to_date(int(day))
            found = [r for r in self._rows.get(model, []) if r.valid_from <= when]
            self._memo[key] = found[-1] if found else None
        return self._memo[key]

    def earliest(self, model: str) -> PriceRow | None:
        """Return the first row of `model`, None when it is not priced at all."""
        rows = self._rows.get(model)
        return rows[0] if rows else None
