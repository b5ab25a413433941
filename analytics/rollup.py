"""`fallbackscope metrics` (docs/metrics.md §7): every metric of a period, one row per day, week, workload, model
or refusal category (`fallbackscope.render.metrics_table` lays it out as a table, JSON or CSV).

Rates are stored flat as `<rate>`, `<rate>_numerator`, `<rate>_denominator`, `<rate>_ci95_low`,
`<rate>_ci95_high`; the JSON rendering nests each as `{value, numerator, denominator, ci95_low, ci95_high}`.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import duckdb
import pandas as pd

from analytics import refusals, tiers
from analytics.collect import collect
from analytics.common import add_rate
from analytics.credits import summarise
from analytics.facts import Facts
from analytics.metrics import REGISTRY, blended_cost_per_request, burn_rate, refusal_lower_bound_warning, slo_met
from analytics.policy_names import policy_name_warnings
from analytics.summary import chain_table, keys_for, present, with_keys
from analytics.violations import KINDS, violation_rows
from fallbackscope.core.errors import UsageError
from fallbackscope.core.periods import Period
from fallbackscope.core.policy import Policy

By = Literal["day", "week", "workload", "model", "category"]
BY_CHOICES: tuple[str, ...] = ("day", "week", "workload", "model", "category")

#: the rates of the chain table, in the metrics table's column order (definitions: analytics.metrics.REGISTRY)
_RATES = ("refusal_rate", "fallback_rate", "escalation_rate", "retry_rate", "unresolved_rate",
          "session_refusal_rate", "error_rate")
_SHOWN = {"errors"}  # numerators the table keeps as a column of their own


def compute_metrics(
    con: duckdb.DuckDBPyConnection,
    *,
    since: str | dt.date | dt.datetime | None = None,
    until: str | dt.date | dt.datetime | None = None,
    by: str = "week",
    policy: Policy | str | None = None,
) -> pd.DataFrame:
    """Return the metrics of the chains that started in [since, until), one row per `by` group.

    `by` is day, week or workload (chain metrics: rates, sessions, cost, credits, violations), model
    (attempt metrics) or category (refused attempts). Raises UsageError for another `by` or bad bounds.
    The frame's `attrs` hold `chains` (0: the period has no data) and `warnings` (policy names that match
    nothing, refusal rates that are lower bounds), for the caller to say.
    """
    if by not in BY_CHOICES:
        raise UsageError(f"--by `{by}` is not one of {', '.join(BY_CHOICES)}.")
    period = Period.of(since, until)
    time_key = by if by in ("day", "week") else None
    policy = _policy(con, policy)
    facts = collect(con, period, policy, session_key=time_key)  # type: ignore[arg-type]
    if by == "model":
        out = model_metrics(facts)
    elif by == "category":
        out = category_metrics(facts)
    else:
        out = chain_metrics(facts, time_key, by == "workload")  # type: ignore[arg-type]
        if by == "week":
            out = _with_drift(con, out)
    unknown = int(facts.firsts.loc[facts.firsts["unknown_stop"].astype(bool), "n"].sum()
                  + facts.laters.loc[facts.laters["unknown_stop"].astype(bool), "n"].sum())
    lower_bound = [w for w in (refusal_lower_bound_warning(unknown),) if w]
    out.attrs.update(chains=facts.chain_count(), warnings=lower_bound + policy_name_warnings(con, policy))
    return out


def _policy(con: duckdb.DuckDBPyConnection, policy: Policy | str | None) -> Policy:
    from fallbackscope.core.policy import resolve_policy

    return resolve_policy(con, policy)


def chain_metrics(facts: Facts, time_key: Literal["day", "week"] | None, by_workload: bool) -> pd.DataFrame:
    """Return the chain metrics of `facts` per day / week (filled) and/or workload (see module doc)."""
    keys = keys_for(time_key, by_workload)
    t = chain_table(facts, time_key, by_workload)
    out = t[keys + ["chains", "attempts", "sessions"]].copy()
    for name in _RATES:
        metric = REGISTRY[name]
        out[metric.numerator] = t[metric.numerator]
        add_rate(out, name, metric.numerator, metric.denominator)
        if metric.numerator not in _SHOWN:
            out = out.drop(columns=[metric.numerator])
    out["unknown_stop_attempts"] = t["unknown_stop_attempts"]
    out["cost_incomplete_attempts"] = t["cost_incomplete_attempts"]
    out["cost_usd"] = t["cost_usd"]
    out["unpriced_attempts"] = t["unpriced_attempts"]
    out["blended_cost_per_request"] = [blended_cost_per_request(c, n)
                                       for c, n in zip(t["cost_usd"], t["chains"], strict=True)]
    out["escalation_overhead_usd"] = t["escalation_overhead_usd"]
    out["top_tier_counterfactual_usd"] = t["top_tier_counterfactual_usd"]
    out = out.merge(_credit_columns(facts, time_key, keys), on=keys, how="left")
    out = out.merge(_violation_columns(facts, time_key, keys), on=keys, how="left")
    for col in ("credits_minted", "credits_unredeemable", "credits_redeemed", "redemption_rate_numerator",
                "redemption_rate_denominator", "credited_tokens", "policy_violations",
                *(f"violations_{k}" for k in KINDS)):
        out[col] = out[col].fillna(0).astype("int64")
    for col in ("savings_usd", "missed_savings_usd"):
        out[col] = out[col].where(out[col].notna() | (out["credits_minted"] > 0), 0.0)
    if by_workload and not time_key:
        out["slo"] = [facts.policy.for_workload(str(w)).refusal_slo for w in out["workload"]]
        out["slo_met"] = [slo_met(r, s) for r, s in zip(out["session_refusal_rate"], out["slo"], strict=True)]
        out["slo_burn_rate"] = [burn_rate(r, s) for r, s in zip(out["session_refusal_rate"], out["slo"], strict=True)]
        out["top_tier"] = [facts.top_tier.get(str(w)) for w in out["workload"]]
    return present(out, time_key)


def _credit_columns(facts: Facts, time_key: Literal["day", "week"] | None, keys: list[str]) -> pd.DataFrame:
    credits = with_keys(facts.credits, time_key)
    rows = []
    for group, part in credits.groupby(keys, dropna=False) if not credits.empty else []:
        s = summarise(part)
        values = group if isinstance(group, tuple) else (group,)
        rows.append(dict(zip(keys, values, strict=True)) | {
            "credits_minted": s.credits_minted, "credits_unredeemable": s.credits_unredeemable,
            "credits_redeemed": s.redeemed,
            "redemption_rate_numerator": s.redemption_rate.numerator,
            "redemption_rate_denominator": s.redemption_rate.denominator,
            "credited_tokens": s.credited_tokens, "savings_usd": s.savings_usd,
            "missed_savings_usd": s.missed_savings_usd,
        })
    cols = keys + ["credits_minted", "credits_unredeemable", "credits_redeemed", "redemption_rate_numerator",
                   "redemption_rate_denominator", "credited_tokens", "savings_usd", "missed_savings_usd"]
    out = pd.DataFrame(rows, columns=cols)
    for k in keys:
        out[k] = out[k].astype("int64") if k in ("bucket", "_all") else out[k].astype(object)
    full = add_rate(out, "redemption_rate", "redemption_rate_numerator", "redemption_rate_denominator")
    return full


def _violation_columns(facts: Facts, time_key: Literal["day", "week"] | None, keys: list[str]) -> pd.DataFrame:
    rows = with_keys(violation_rows(facts), time_key)
    cols = keys + ["policy_violations"] + [f"violations_{k}" for k in KINDS]
    if rows.empty:
        out = pd.DataFrame(columns=cols)
    else:
        wide = rows.pivot_table(index=keys, columns="kind", values="count", aggfunc="sum", fill_value=0)
        wide = wide.reindex(columns=list(KINDS), fill_value=0)
        wide.columns = [f"violations_{k}" for k in wide.columns]
        wide["policy_violations"] = wide.sum(axis=1)
        out = wide.reset_index()[cols]
    for k in keys:
        out[k] = out[k].astype("int64") if k in ("bucket", "_all") else out[k].astype(object)
    return out


def _with_drift(con: duckdb.DuckDBPyConnection, out: pd.DataFrame) -> pd.DataFrame:
    """Add drift_delta, drift_z, drift_p_value, drift_significant: each week against the week before."""
    rows = out.to_dict("records")
    if not rows:
        return out.assign(drift_delta=[], drift_z=[], drift_p_value=[], drift_significant=[])
    from fallbackscope.core.periods import parse_week

    first = parse_week(str(rows[0]["week"]))
    previous = refusals.period_refusal_rate(con, Period.week(first - dt.timedelta(days=7)))
    deltas, zs, ps, sig = [], [], [], []
    for row in rows:
        current = refusals.Rate.of(row["refusal_rate_numerator"], row["refusal_rate_denominator"])
        d = refusals.drift(current, previous)
        deltas.append(d.delta if d else None)
        zs.append(d.z if d else None)
        ps.append(d.p_value if d else None)
        sig.append(d.significant if d else None)
        previous = current
    return out.assign(drift_delta=deltas, drift_z=zs, drift_p_value=ps, drift_significant=sig)


def model_metrics(facts: Facts) -> pd.DataFrame:
    """Return per model: attempts, refused_attempts, attempt_refusal_rate (over ok + refusal attempts),
    errors, error_rate, cost_usd, unpriced_attempts, chains_resolved and resolution_share (of all chains)."""
    cols = ["model", "outcome", "error_class", "n", "cost", "priced"]
    cube = pd.concat([facts.firsts[cols], facts.laters[cols]], ignore_index=True)
    cube = cube[cube["model"].notna()]
    if cube.empty:
        base = pd.DataFrame({"model": pd.Series(dtype=object)})
    else:
        cube = cube.assign(
            answered=cube["n"].where(cube["outcome"].isin(["ok", "refusal"]), 0),
            refused=cube["n"].where(cube["outcome"] == "refusal", 0),
            errors=cube["n"].where(cube["error_class"].notna(), 0),
        )
        base = cube.groupby("model")[["n", "answered", "refused", "errors", "cost", "priced"]].sum().reset_index()
    out = pd.DataFrame({"model": base["model"].astype(object) if len(base) else pd.Series(dtype=object)})
    out["attempts"] = base.get("n", pd.Series(dtype="int64")).astype("int64")
    out["answered_attempts"] = base.get("answered", pd.Series(dtype="int64")).astype("int64")
    out["refused_attempts"] = base.get("refused", pd.Series(dtype="int64")).astype("int64")
    add_rate(out, "attempt_refusal_rate", "refused_attempts", "answered_attempts")
    out = out.drop(columns=["attempt_refusal_rate_numerator", "attempt_refusal_rate_denominator"])
    out["attempt_refusal_rate_numerator"] = out["refused_attempts"]
    out["attempt_refusal_rate_denominator"] = out["answered_attempts"]
    out["errors"] = base.get("errors", pd.Series(dtype="int64")).astype("int64")
    add_rate(out, "error_rate", "errors", "attempts")
    priced = base.get("priced", pd.Series(dtype="int64")).astype("int64")
    cost = base.get("cost", pd.Series(dtype=float)).astype(float)
    out["cost_usd"] = cost.where(~((priced == 0) & (out["attempts"] > 0))).values
    out["unpriced_attempts"] = (out["attempts"] - priced).astype("int64")
    res = tiers.resolution(facts, by_workload=False)
    res = res[res["model"] != tiers.UNRESOLVED][["model", "chains_resolved"]]
    out = out.merge(res, on="model", how="left")
    out["chains_resolved"] = out["chains_resolved"].fillna(0).astype("int64")
    out["all_chains"] = facts.chain_count()
    add_rate(out, "resolution_share", "chains_resolved", "all_chains")
    out = out.drop(columns=["all_chains"])
    return out.sort_values(["attempts", "model"], ascending=[False, True]).reset_index(drop=True)


def category_metrics(facts: Facts) -> pd.DataFrame:
    """Return per refusal category: refused_attempts and share (of all refused attempts) with its interval."""
    df = refusals.refusals_by_category(facts)
    return df.rename(columns={"value": "share", "numerator": "share_numerator",
                              "denominator": "share_denominator", "ci95_low": "share_ci95_low",
                              "ci95_high": "share_ci95_high"})
