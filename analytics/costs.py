"""Cost (docs/metrics.md §6.3): spend, unpriced attempts, blended cost per request, escalation overhead, the
top-tier counterfactual and start-tier advice.

A model without a price never costs $0: its attempts are counted as `unpriced_attempts`, and a sum is
null when every part of it is unpriced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import pandas as pd

from analytics.common import Rate, clean, ratio
from analytics.facts import Facts
from analytics.metrics import blended_cost_per_request
from analytics.summary import chain_table, parse_by, present

Advice = Literal["start_higher", "keep", "insufficient_data"]

COST_COLUMNS = ["chains", "attempts", "cost_usd", "priced_attempts", "unpriced_attempts",
                "blended_cost_per_request", "escalation_overhead_usd", "top_tier_counterfactual_usd",
                "counterfactual_unpriced"]


def costs(facts: Facts, by: str | Sequence[str] | None = "workload") -> pd.DataFrame:
    """Return spend per group: keys + chains, attempts, cost_usd, priced_attempts, unpriced_attempts,
    blended_cost_per_request (cost / chains), escalation_overhead_usd (attempts before the resolver of
    escalated chains; all attempts of unresolved ones), top_tier_counterfactual_usd (each resolved
    chain's resolver tokens at the workload's top tier) and counterfactual_unpriced; with `top_tier`
    when grouped by workload alone."""
    time_key, by_workload = parse_by(by)
    table = present(chain_table(facts, time_key, by_workload), time_key)
    keys = [c for c in ("day", "week", "workload") if c in table.columns]
    out = table[keys + [c for c in COST_COLUMNS if c in table.columns]].copy()
    out["blended_cost_per_request"] = [blended_cost_per_request(c, n)
                                       for c, n in zip(out["cost_usd"], out["chains"], strict=True)]
    out = out[keys + COST_COLUMNS]
    if keys == ["workload"]:
        out["top_tier"] = [facts.top_tier.get(str(w)) for w in out["workload"]]
    return out.reset_index(drop=True)


def mean_priced_cost(facts: Facts) -> pd.DataFrame:
    """Return per (workload, model): priced attempts and their mean cost_usd (refusals and errors
    included), the c_k of start-tier advice."""
    cols = ["workload", "model", "cost", "priced"]
    cube = pd.concat([facts.firsts[cols], facts.laters[cols]], ignore_index=True)
    cube = cube[cube["model"].notna()]
    grouped = cube.groupby(["workload", "model"])
    # fsum: exactly rounded whatever order the engine gave the rows in
    per = grouped.agg(cost=("cost", lambda values: math.fsum(values.dropna())), priced=("priced", "sum"))
    per = per.reset_index()
    per["mean_cost"] = [ratio(c, n) for c, n in zip(per["cost"], per["priced"], strict=True)]
    return per


def advise(rate: Rate, break_even: float | None) -> Advice:
    """Return `start_higher` when the Wilson lower bound of the escalation rate exceeds the break-even,
    `keep` when its upper bound is below it, else `insufficient_data`."""
    if rate.value is None or break_even is None:
        return "insufficient_data"
    if rate.ci95_low is not None and rate.ci95_low > break_even:
        return "start_higher"
    if rate.ci95_high is not None and rate.ci95_high < break_even:
        return "keep"
    return "insufficient_data"


def start_tier_advice(facts: Facts, workload: str | None = None) -> pd.DataFrame:
    """Return start-tier advice for each adjacent pair (k, k+1) of each declared chain (none for a
    workload without one): workload, from_model, to_model, chains_starting (at tier k),
    climbed (of those, chains with a later attempt on a higher tier), climb_rate (climbed / chains_starting:
    a higher tier, not just another model as `escalation_rate` counts — docs/metrics.md §6.3) with
    ci95_low / ci95_high, cost_from / cost_to (mean cost of priced attempts at each tier), break_even
    (1 − cost_from / cost_to) and advice."""
    columns = ["workload", "from_model", "to_model", "chains_starting", "climbed", "climb_rate",
               "ci95_low", "ci95_high", "cost_from", "cost_to", "break_even", "advice"]
    f, m = facts.firsts, facts.multi
    means = mean_priced_cost(facts).set_index(["workload", "model"])["mean_cost"]
    rows = []
    names = [workload] if workload is not None else facts.workloads()
    for name in names:
        chain = facts.chains_of.get(name)
        if not chain:
            continue
        for low, high in zip(chain, chain[1:], strict=False):
            starts = int(f[(f["workload"] == name) & (f["model"] == low)]["n"].sum())
            climbed = int(m[(m["workload"] == name) & (m["first_model"] == low) & m["higher"].astype(bool)]["n"].sum())
            rate = Rate.of(climbed, starts)
            c_low, c_high = clean(means.get((name, low))), clean(means.get((name, high)))
            break_even = None if c_low is None or c_high is None or not c_high else 1 - c_low / c_high
            rows.append({
                "workload": name, "from_model": low, "to_model": high, "chains_starting": starts,
                "climbed": climbed, "climb_rate": rate.value, "ci95_low": rate.ci95_low,
                "ci95_high": rate.ci95_high, "cost_from": c_low, "cost_to": c_high, "break_even": break_even,
                "advice": advise(rate, break_even),
            })
    return pd.DataFrame(rows, columns=columns)
