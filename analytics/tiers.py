"""Fallback, tiers and escalation (docs/metrics.md §6.2): fallback, unresolved, escalation and retry rates, the
resolution share per model in tier order, escalation by trigger and fallbacks per trigger."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analytics.common import RATE_COLUMNS, rate_frame
from analytics.facts import Facts
from analytics.summary import chain_table, parse_by, present

UNRESOLVED = "unresolved"
UNKNOWN_TRIGGER = "unknown"


def _chain_rate(facts: Facts, by: str | Sequence[str] | None, numerator: str) -> pd.DataFrame:
    time_key, by_workload = parse_by(by)
    table = present(chain_table(facts, time_key, by_workload), time_key)
    keys = [c for c in ("day", "week", "workload") if c in table.columns]
    return rate_frame(table, keys, numerator, "chains")


def fallback_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `fallback_rate` = chains counted as fallback (resolver's model differs from the first
    attempt's, or the first attempt was pinned) / chains, per group: keys + value, numerator,
    denominator, ci95_low, ci95_high."""
    return _chain_rate(facts, by, "fallback_chains")


def unresolved_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `unresolved_rate` = chains without a successful attempt / chains, per group."""
    return _chain_rate(facts, by, "unresolved_chains")


def escalation_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `escalation_rate` = chains with a later attempt on a different model than the first /
    chains, per group."""
    return _chain_rate(facts, by, "escalated_chains")


def retry_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `retry_rate` = chains with a same-model retry (attempt k on attempt k−1's model) / chains."""
    return _chain_rate(facts, by, "retried_chains")


def tier_order(facts: Facts, workload: str) -> list[str]:
    """Return a workload's models in tier order: its declared chain, then the other models it used in
    the period in the order they first appeared."""
    declared = list(facts.chains_of.get(workload, ()))
    seen = pd.concat([facts.firsts[["workload", "model", "first_us"]],
                      facts.laters[["workload", "model", "first_us"]]])
    seen = seen[(seen["workload"] == workload) & seen["model"].notna()]
    first = seen.groupby("model")["first_us"].min().reset_index().sort_values(["first_us", "model"])
    return declared + [str(m) for m in first["model"] if str(m) not in declared]


def _resolved_by(facts: Facts) -> pd.DataFrame:
    """Return chains resolved per (workload, model) of the resolver."""
    f, m = facts.firsts, facts.multi
    a = f[f["success"].astype(bool)][["workload", "model", "n"]]
    late = m[~m["first_success"].astype(bool) & m["resolved"].astype(bool)]
    b = late[["workload", "resolver_model", "n"]].rename(columns={"resolver_model": "model"})
    both = pd.concat([a, b], ignore_index=True)
    return both.groupby(["workload", "model"], dropna=False)["n"].sum().reset_index()


def resolution(facts: Facts, by_workload: bool = True) -> pd.DataFrame:
    """Return the resolution share per model: chains resolved by that model / chains, plus a
    `unresolved` row, in tier order.

    Columns: workload (when `by_workload`), tier (1-based; None for unresolved), model, chains_resolved,
    value, numerator, denominator, ci95_low, ci95_high.
    """
    resolved = _resolved_by(facts)
    chains = facts.firsts.groupby("workload")["n"].sum()
    rows = []
    groups = [(w, [w]) for w in facts.workloads()] if by_workload else [(None, facts.workloads())]
    for label, members in groups:
        total = int(chains[chains.index.isin(members)].sum())
        if label is not None:
            order = tier_order(facts, label)
        else:
            order = _overall_order(facts)
        sub = resolved[resolved["workload"].isin(members)]
        per_model = sub.groupby("model")["n"].sum()
        models = order + [str(m) for m in per_model.index if str(m) not in order]
        for i, model in enumerate(models, start=1):
            rows.append({"workload": label, "tier": i, "model": model,
                         "chains_resolved": int(per_model.get(model, 0)), "chains": total})
        rows.append({"workload": label, "tier": None, "model": UNRESOLVED,
                     "chains_resolved": total - int(per_model.sum()), "chains": total})
    table = pd.DataFrame(rows, columns=["workload", "tier", "model", "chains_resolved", "chains"])
    rates = rate_frame(table, [], "chains_resolved", "chains")
    out = pd.concat([table.drop(columns="chains"), rates], axis=1)
    out["tier"] = out["tier"].astype("Int64")
    return out if by_workload else out.drop(columns="workload")


def _overall_order(facts: Facts) -> list[str]:
    seen = pd.concat([facts.firsts[["model", "first_us"]], facts.laters[["model", "first_us"]]])
    seen = seen[seen["model"].notna()]
    first = seen.groupby("model")["first_us"].min().reset_index().sort_values(["first_us", "model"])
    return [str(m) for m in first["model"]]


def escalation_by_trigger(facts: Facts, by_workload: bool = False) -> pd.DataFrame:
    """Return escalated chains by the trigger of their first change of model, each as a rate over all
    chains (so they add up to `escalation_rate`): [workload,] trigger, chains, value, numerator,
    denominator, ci95_low, ci95_high."""
    m = facts.multi[facts.multi["escalated"].astype(bool)]
    keys = (["workload"] if by_workload else []) + ["trigger"]
    trig = m["esc_trigger"].astype(object).where(m["esc_trigger"].notna(), UNKNOWN_TRIGGER)
    per = m.assign(trigger=trig).groupby(keys)["n"].sum().reset_index(name="escalated")
    if per.empty:
        return pd.DataFrame(columns=[*keys, "chains", *RATE_COLUMNS])
    if by_workload:
        totals = facts.firsts.groupby("workload")["n"].sum()
        per["all"] = [int(totals.get(w, 0)) for w in per["workload"]]
    else:
        per["all"] = facts.chain_count()
    out = per.rename(columns={"escalated": "chains"})
    out = pd.concat([out.drop(columns="all"), rate_frame(out, [], "chains", "all")], axis=1)
    out["chains"] = out["chains"].astype("int64")
    return out.sort_values([*keys[:-1], "chains", "trigger"],
                           ascending=[True] * (len(keys) - 1) + [False, True]).reset_index(drop=True)


def fallbacks_by_trigger(facts: Facts, by_workload: bool = False) -> pd.DataFrame:
    """Return fallbacks (attempts k ≥ 2 on a different model than attempt k−1) counted by trigger:
    [workload,] trigger, fallbacks; most frequent first."""
    tr = facts.transitions
    keys = (["workload"] if by_workload else []) + ["trigger"]
    if tr.empty:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in keys} | {"fallbacks": pd.Series(dtype="int64")})
    trig = tr["trigger"].astype(object).where(tr["trigger"].notna(), UNKNOWN_TRIGGER)
    out = tr.assign(trigger=trig).groupby(keys)["n"].sum().reset_index(name="fallbacks")
    out["fallbacks"] = out["fallbacks"].astype("int64")
    return out.sort_values([*keys[:-1], "fallbacks", "trigger"],
                           ascending=[True] * (len(keys) - 1) + [False, True]).reset_index(drop=True)
