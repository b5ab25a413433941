"""Refusal SLIs (docs/metrics.md §6.1): chain, session and attempt refusal rates, categories, drift and the SLO."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import duckdb
import pandas as pd

from analytics.common import RATE_COLUMNS, Rate, rate_frame
from analytics.facts import Facts
from analytics.metrics import burn_rate, slo_met
from analytics.summary import chain_table, parse_by, present
from fallbackscope.core.periods import Period
from fallbackscope.core.policy import Policy

SIGNIFICANCE = 0.01


def _chain_rate(facts: Facts, by: str | Sequence[str] | None, numerator: str, denominator: str) -> pd.DataFrame:
    time_key, by_workload = parse_by(by)
    table = present(chain_table(facts, time_key, by_workload), time_key)
    keys = [c for c in ("day", "week", "workload") if c in table.columns]
    return rate_frame(table, keys, numerator, denominator)


def refusal_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `refusal_rate` = chains with ≥ 1 refused attempt / chains, per group of `by`
    (day, week, workload, week+workload or None): the group keys + value, numerator, denominator,
    ci95_low, ci95_high (value NaN over no chains)."""
    return _chain_rate(facts, by, "refused_chains", "chains")


def session_refusal_rate(facts: Facts, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Return `session_refusal_rate` = sessions with a refused chain / sessions, per group (a session counts
    in every group where it has a chain); same columns as `refusal_rate`."""
    return _chain_rate(facts, by, "refused_sessions", "sessions")


def _attempt_cube(facts: Facts) -> pd.DataFrame:
    cols = ["day", "workload", "model", "outcome", "refusal_category", "error_class", "n", "cost", "priced"]
    return pd.concat([facts.firsts[cols], facts.laters[cols]], ignore_index=True)


def attempt_refusal_rate(facts: Facts) -> pd.DataFrame:
    """Return per model: attempts (outcome ok or refusal), refused_attempts and `attempt_refusal_rate`
    as value, numerator, denominator, ci95_low, ci95_high; sorted by refused attempts, then model."""
    cube = _attempt_cube(facts)
    answered = cube[cube["outcome"].isin(["ok", "refusal"]) & cube["model"].notna()]
    if answered.empty:
        return pd.DataFrame(columns=["model", "attempts", "refused_attempts", *RATE_COLUMNS])
    per = answered.assign(refused=answered["n"].where(answered["outcome"] == "refusal", 0))
    per = per.groupby("model")[["n", "refused"]].sum().reset_index()
    per = per.rename(columns={"n": "attempts", "refused": "refused_attempts"})
    per["attempts"] = per["attempts"].astype("int64")
    per["refused_attempts"] = per["refused_attempts"].astype("int64")
    rates = rate_frame(per, ["model"], "refused_attempts", "attempts")
    out = per.merge(rates, on="model")
    return out.sort_values(["refused_attempts", "model"], ascending=[False, True]).reset_index(drop=True)


def refusals_by_category(facts: Facts) -> pd.DataFrame:
    """Return per refusal category (null shown as `unspecified`): refused_attempts and its share of all
    refused attempts as value, numerator, denominator, ci95_low, ci95_high; most refused first."""
    cube = _attempt_cube(facts)
    refused = cube[cube["outcome"] == "refusal"]
    if refused.empty:
        return pd.DataFrame(columns=["category", "refused_attempts", *RATE_COLUMNS])
    cat = refused["refusal_category"].astype(object).where(refused["refusal_category"].notna(), "unspecified")
    per = refused.assign(category=cat).groupby("category")["n"].sum().reset_index()
    per = per.rename(columns={"n": "refused_attempts"})
    per["refused_attempts"] = per["refused_attempts"].astype("int64")
    per["all"] = int(per["refused_attempts"].sum())
    out = per.merge(rate_frame(per, ["category"], "refused_attempts", "all"), on="category").drop(columns="all")
    return out.sort_values(["refused_attempts", "category"], ascending=[False, True]).reset_index(drop=True)


@dataclass(frozen=True)
class Drift:
    """This period's refusal rate minus the previous one, with a pooled two-proportion z test."""

    delta: float
    z: float | None
    p_value: float | None
    significant: bool

    def as_dict(self) -> dict[str, Any]:
        """Return the report's `{delta, z, p_value, significant}`."""
        return asdict(self)


def drift(current: Rate, previous: Rate, alpha: float = SIGNIFICANCE) -> Drift | None:
    """Return the Drift of `current` against `previous`; None when either has no chains.

    z and p are None (and the change not significant) when the pooled standard error is 0.
    """
    if current.denominator == 0 or previous.denominator == 0:
        return None
    x1, n1, x2, n2 = current.numerator, current.denominator, previous.numerator, previous.denominator
    delta = x1 / n1 - x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return Drift(delta, None, None, False)
    z = delta / se
    p = math.erfc(abs(z) / math.sqrt(2))
    return Drift(delta, z, p, p < alpha)


def period_refusal_rate(con: duckdb.DuckDBPyConnection, period: Period) -> Rate:
    """Return the chain refusal rate of a period straight from the database (cheaper than full facts)."""
    p_first, params = period.where("ts")
    p_since, s_params = period.where_since("ts")
    chains, refused = con.execute(f"""
        WITH f AS (SELECT chain_id FROM attempts WHERE attempt_index = 1 AND {p_first})
        SELECT (SELECT count(*) FROM f),
               (SELECT count(DISTINCT chain_id) FROM attempts
                WHERE outcome = 'refusal' AND {p_since} AND chain_id IN (SELECT chain_id FROM f))
    """, params + s_params).fetchone()
    return Rate.of(refused, chains)


def slo(facts: Facts) -> pd.DataFrame:
    """Return the SLO of each workload of `facts` (see `slo_table`)."""
    return slo_table(present(chain_table(facts, None, True), None), facts.policy)


def slo_table(per_workload: pd.DataFrame, policy: Policy) -> pd.DataFrame:
    """Return per workload of a per-workload chain table: sessions, refused_sessions,
    session_refusal_rate (value and interval), slo (the target), slo_met (rate ≤ target; None without
    sessions) and burn_rate (rate / target) — docs/metrics.md §6.1."""
    rows = []
    for rec in per_workload.to_dict("records"):
        target = policy.for_workload(str(rec["workload"])).refusal_slo
        rate = Rate.of(rec["refused_sessions"], rec["sessions"])
        rows.append({
            "workload": rec["workload"], "sessions": int(rec["sessions"]),
            "refused_sessions": int(rec["refused_sessions"]),
            "session_refusal_rate": rate.value, "ci95_low": rate.ci95_low, "ci95_high": rate.ci95_high,
            "slo": target, "slo_met": slo_met(rate.value, target), "burn_rate": burn_rate(rate.value, target),
        })
    return pd.DataFrame(rows, columns=SLO_COLUMNS)


SLO_COLUMNS = ["workload", "sessions", "refused_sessions", "session_refusal_rate", "ci95_low", "ci95_high",
               "slo", "slo_met", "burn_rate"]
