"""Reliability (docs/metrics.md §6.4): attempts per error class and outcome, fallbacks per trigger and policy
violations per kind."""

from __future__ import annotations

import pandas as pd

from analytics.common import RATE_COLUMNS, rate_frame
from analytics.facts import Facts
from analytics.tiers import fallbacks_by_trigger
from analytics.violations import violations

__all__ = ["errors", "outcomes", "fallbacks_by_trigger", "violations"]


def _attempts(facts: Facts) -> pd.DataFrame:
    cols = ["workload", "outcome", "error_class", "n"]
    return pd.concat([facts.firsts[cols], facts.laters[cols]], ignore_index=True)


def errors(facts: Facts, by_workload: bool = False) -> pd.DataFrame:
    """Return attempts per error class with their share of all attempts (of the workload when
    `by_workload`): [workload,] error_class, attempts, value, numerator, denominator, ci95_low,
    ci95_high; most frequent first."""
    cube = _attempts(facts)
    keys = (["workload"] if by_workload else []) + ["error_class"]
    failed = cube[cube["error_class"].notna()]
    if failed.empty:
        return pd.DataFrame(columns=[*keys, "attempts", *RATE_COLUMNS])
    per = failed.groupby(keys)["n"].sum().reset_index(name="attempts")
    if by_workload:
        totals = cube.groupby("workload")["n"].sum()
        per["all"] = [int(totals.get(w, 0)) for w in per["workload"]]
    else:
        per["all"] = int(cube["n"].sum())
    per["attempts"] = per["attempts"].astype("int64")
    out = pd.concat([per.drop(columns="all"), rate_frame(per, [], "attempts", "all")], axis=1)
    return out.sort_values([*keys[:-1], "attempts", "error_class"],
                           ascending=[True] * (len(keys) - 1) + [False, True]).reset_index(drop=True)


def outcomes(facts: Facts) -> pd.DataFrame:
    """Return attempts per outcome (ok, refusal, error, timeout, connection, canceled, expired):
    outcome, attempts, value, numerator, denominator, ci95_low, ci95_high."""
    cube = _attempts(facts)
    if cube.empty:
        return pd.DataFrame(columns=["outcome", "attempts", *RATE_COLUMNS])
    per = cube.groupby("outcome")["n"].sum().reset_index(name="attempts")
    per["attempts"] = per["attempts"].astype("int64")
    per["all"] = int(per["attempts"].sum())
    out = pd.concat([per.drop(columns="all"), rate_frame(per, [], "attempts", "all")], axis=1)
    return out.sort_values(["attempts", "outcome"], ascending=[False, True]).reset_index(drop=True)
