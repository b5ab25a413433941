"""Roll the facts of a period up into chain counts per group: per day, ISO week, workload, or all.

Every chain metric of docs/metrics.md §6.1–§6.3 is a ratio or a sum of the counts made here. A chain's counts come
from its first attempt (the `firsts` cube) plus, for chains of two or more attempts, a correction from
the `multi` cube: e.g. refused chains = chains whose first attempt was refused + multi-attempt chains
whose first attempt was not refused but a later one was.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import pandas as pd

from analytics.facts import Facts
from fallbackscope.core.errors import UsageError
from fallbackscope.core.periods import TimeKey, bucket_days, date_to_day, day_to_date, week_label

ALL = "_all"
BY_WORDS = ("day", "week", "workload")


def parse_by(by: str | Sequence[str] | None) -> tuple[TimeKey | None, bool]:
    """Return (time key, by workload) of a grouping such as "week", "workload", "week,workload" or None.

    Raises UsageError naming the accepted words for anything else.
    """
    if by is None:
        return None, False
    words = by.split(",") if isinstance(by, str) else list(by)
    words = [str(w).strip().lower() for w in words if str(w).strip()]
    if words in (["all"], []):
        return None, False
    bad = [w for w in words if w not in BY_WORDS]
    times = [w for w in words if w in ("day", "week")]
    if bad or len(times) > 1 or len(set(words)) != len(words):
        raise UsageError(f"cannot group by `{','.join(words)}`; use day, week, workload or "
                         "day/week together with workload.")
    return (times[0] if times else None), "workload" in words  # type: ignore[return-value]


def keys_for(time_key: TimeKey | None, by_workload: bool) -> list[str]:
    """Return the group columns of a grouping: `bucket` and/or `workload`, else the constant `_all`."""
    keys = (["bucket"] if time_key else []) + (["workload"] if by_workload else [])
    return keys or [ALL]


def bucket_of_days(days: pd.Series, time_key: TimeKey | None) -> pd.Series:
    """Return the bucket (a day number; for weeks the Monday's) of each day number."""
    return pd.Series(bucket_days(days.to_numpy(), time_key), index=days.index)


def with_keys(df: pd.DataFrame, time_key: TimeKey | None) -> pd.DataFrame:
    """Return a copy of a day-keyed frame with its `bucket` and the constant `_all` column added."""
    out = df.copy()
    out["bucket"] = bucket_of_days(out["day"], time_key) if "day" in out else 0
    out[ALL] = 0
    return out


def _total(df: pd.DataFrame, keys: list[str], col: str, mask: pd.Series | None = None) -> pd.Series:
    sub = df if mask is None else df[mask.fillna(False).astype(bool)]
    if sub.empty:
        return pd.Series(dtype="float64")
    grouped = sub.groupby(keys, dropna=False)[col]
    if pd.api.types.is_float_dtype(sub[col]):
        # money: exactly rounded sums, so the result does not depend on the order the engine gave the rows in
        return grouped.agg(lambda values: math.fsum(values.dropna()))
    return grouped.sum()


def _b(series: pd.Series) -> pd.Series:
    return series.fillna(False).astype(bool)


def chain_table(facts: Facts, time_key: TimeKey | None = None, by_workload: bool = False,
                *, fill: bool = True) -> pd.DataFrame:
    """Return chain, attempt, session and cost counts per group.

    Columns: the group keys (`bucket` day number and/or `workload`, else `_all`), chains, attempts,
    sessions, refused_chains, refused_sessions, resolved_chains, unresolved_chains, fallback_chains,
    escalated_chains, retried_chains, errors, unknown_stop_attempts (outcome ok, stop reason unknown: the
    refusal counts are then a lower bound), cost_incomplete_attempts (part of their cost unknown, e.g. web
    searches a span did not report: the cost is then a lower bound), cost_usd (NaN when every attempt is unpriced),
    priced_attempts, unpriced_attempts, escalation_overhead_usd, overhead_unpriced,
    top_tier_counterfactual_usd, counterfactual_unpriced. With `fill`, days or weeks without traffic
    between the period's bounds get a row of zeros.
    """
    if facts.session_key != time_key:
        raise ValueError(f"facts were collected with sessions per {facts.session_key}, not {time_key}")
    keys = keys_for(time_key, by_workload)
    f, lat, m = (with_keys(x, time_key) for x in (facts.firsts, facts.laters, facts.multi))
    rt, oh = with_keys(facts.retries, time_key), with_keys(facts.overhead, time_key)
    cf = with_keys(facts.counterfactual, time_key)

    m_late_refusal = _b(m["any_refusal"]) & ~_b(m["first_refusal"])
    m_fallback = ~_b(m["pinned"]) & _b(m["late_resolved"]) & (
        m["resolver_model"].astype(object) != m["first_model"].astype(object))
    parts = {
        "chains": _total(f, keys, "n"),
        "attempts_first": _total(f, keys, "n"),
        "attempts_later": _total(lat, keys, "n"),
        "refused_first": _total(f, keys, "n", f["outcome"] == "refusal"),
        "refused_late": _total(m, keys, "n", m_late_refusal),
        "resolved_first": _total(f, keys, "n", _b(f["success"])),
        "resolved_late": _total(m, keys, "n", ~_b(m["first_success"]) & _b(m["resolved"])),
        "fallback_first": _total(f, keys, "n", _b(f["pinned"])),
        "fallback_late": _total(m, keys, "n", m_fallback),
        "escalated_chains": _total(m, keys, "n", _b(m["escalated"])),
        "retried_chains": _total(rt, keys, "n"),
        "errors_first": _total(f, keys, "n", f["error_class"].notna()),
        "errors_later": _total(lat, keys, "n", lat["error_class"].notna()),
        "unknown_first": _total(f, keys, "n", _b(f["unknown_stop"])),
        "unknown_later": _total(lat, keys, "n", _b(lat["unknown_stop"])),
        "incomplete_first": _total(f, keys, "incomplete"),
        "incomplete_later": _total(lat, keys, "incomplete"),
        "cost_first": _total(f, keys, "cost"),
        "cost_later": _total(lat, keys, "cost"),
        "priced_first": _total(f, keys, "priced"),
        "priced_later": _total(lat, keys, "priced"),
        "escalation_overhead_usd": _total(oh, keys, "overhead"),
        "overhead_attempts": _total(oh, keys, "overhead_attempts"),
        "overhead_unpriced": _total(oh, keys, "overhead_unpriced"),
        "cf_known": _total(cf, keys, "cf_usd"),
        "cf_resolved": _total(cf, keys, "resolved"),
        "counterfactual_unpriced": _total(cf, keys, "cf_unpriced"),
        "sessionless": _total(f, keys, "n", ~_b(f["has_session"])),
        "sessionless_refused_first": _total(f, keys, "n", ~_b(f["has_session"]) & (f["outcome"] == "refusal")),
        "sessionless_refused_late": _total(m, keys, "n", ~_b(m["has_session"]) & m_late_refusal),
    }
    t = pd.DataFrame({k: v for k, v in parts.items()})
    if t.empty:
        t = pd.DataFrame(columns=list(parts), index=pd.MultiIndex.from_tuples([], names=keys)
                         if len(keys) > 1 else pd.Index([], name=keys[0]))
    t.index = t.index.set_names(keys)
    t = t.fillna(0)
    s = _sessions(facts, keys, by_workload)
    t = t.join(s, how="outer").fillna(0) if not s.empty else t.assign(sessions_with_id=0, refused_with_id=0)
    t = t.reset_index()
    if t.empty:
        t = pd.DataFrame(columns=keys + list(parts) + ["sessions_with_id", "refused_with_id"])
    out = pd.DataFrame({k: t[k] for k in keys})
    as_int = lambda col: pd.to_numeric(t[col], errors="coerce").fillna(0).astype("int64")  # noqa: E731
    out["chains"] = as_int("chains")
    out["attempts"] = as_int("attempts_first") + as_int("attempts_later")
    out["sessions"] = as_int("sessions_with_id") + as_int("sessionless")
    out["refused_chains"] = as_int("refused_first") + as_int("refused_late")
    out["refused_sessions"] = (as_int("refused_with_id") + as_int("sessionless_refused_first")
                               + as_int("sessionless_refused_late"))
    out["resolved_chains"] = as_int("resolved_first") + as_int("resolved_late")
    out["unresolved_chains"] = out["chains"] - out["resolved_chains"]
    out["fallback_chains"] = as_int("fallback_first") + as_int("fallback_late")
    out["escalated_chains"] = as_int("escalated_chains")
    out["retried_chains"] = as_int("retried_chains")
    out["errors"] = as_int("errors_first") + as_int("errors_later")
    out["unknown_stop_attempts"] = as_int("unknown_first") + as_int("unknown_later")
    out["cost_incomplete_attempts"] = as_int("incomplete_first") + as_int("incomplete_later")
    out["priced_attempts"] = as_int("priced_first") + as_int("priced_later")
    out["unpriced_attempts"] = out["attempts"] - out["priced_attempts"]
    cost = pd.to_numeric(t["cost_first"]).astype(float) + pd.to_numeric(t["cost_later"]).astype(float)
    out["cost_usd"] = cost.where(~((out["priced_attempts"] == 0) & (out["unpriced_attempts"] > 0)))
    overhead = pd.to_numeric(t["escalation_overhead_usd"]).astype(float)
    oh_n, oh_unpriced = as_int("overhead_attempts"), as_int("overhead_unpriced")
    out["escalation_overhead_usd"] = overhead.where(~((oh_n > 0) & (oh_n == oh_unpriced)))
    out["overhead_unpriced"] = oh_unpriced
    cf_resolved, cf_unpriced = as_int("cf_resolved"), as_int("counterfactual_unpriced")
    cf_value = pd.to_numeric(t["cf_known"]).astype(float)
    out["top_tier_counterfactual_usd"] = cf_value.where(~((cf_resolved > 0) & (cf_resolved == cf_unpriced)))
    out["counterfactual_unpriced"] = cf_unpriced
    if fill and time_key:
        out = fill_buckets(out, facts, time_key, by_workload)
    if keys == [ALL] and out.empty:  # the total of nothing is one row of zeros
        zero = {c: 0 for c in out.columns}
        zero.update({ALL: 0, "cost_usd": 0.0, "escalation_overhead_usd": 0.0, "top_tier_counterfactual_usd": 0.0})
        out = pd.DataFrame([zero], columns=out.columns)
    return out.sort_values(keys).reset_index(drop=True)


def _sessions(facts: Facts, keys: list[str], by_workload: bool) -> pd.DataFrame:
    s = facts.sessions.copy()
    s = s[s["workload"].notna()] if by_workload else s[s["workload"].isna()]
    s[ALL] = 0
    s = s.rename(columns={"sessions": "sessions_with_id", "refused_sessions": "refused_with_id"})
    if s.empty:
        return pd.DataFrame()
    return s.groupby(keys, dropna=False)[["sessions_with_id", "refused_with_id"]].sum()


def bucket_bounds(facts: Facts, time_key: TimeKey, present: pd.Series) -> list[int]:
    """Return every bucket between the period's bounds (else the data's first and last), in order."""
    step = 7 if time_key == "week" else 1
    period = facts.period
    lo = hi = None
    if period.since is not None:
        lo = int(bucket_of_days(pd.Series([date_to_day(period.since.date())]), time_key).iloc[0])
    if period.until is not None:
        last = period.until - dt.timedelta(microseconds=1)
        hi = int(bucket_of_days(pd.Series([date_to_day(last.date())]), time_key).iloc[0])
    if len(present):
        lo = int(present.min()) if lo is None else lo
        hi = int(present.max()) if hi is None else hi
    if lo is None or hi is None or hi < lo:
        return sorted({int(b) for b in present})
    if (hi - lo) // step > 5000:  # an open-ended period: do not invent thousands of empty buckets
        lo, hi = (int(present.min()), int(present.max())) if len(present) else (lo, lo)
    return list(range(lo, hi + 1, step))


def fill_buckets(out: pd.DataFrame, facts: Facts, time_key: TimeKey, by_workload: bool) -> pd.DataFrame:
    """Return `out` with a zero row for every bucket (× workload) of the period that has no chain."""
    buckets = bucket_bounds(facts, time_key, out["bucket"])
    if by_workload:
        workloads = sorted({str(w) for w in out["workload"].dropna()})
        grid = pd.MultiIndex.from_product([buckets, workloads], names=["bucket", "workload"])
        keys = ["bucket", "workload"]
    else:
        grid = pd.Index(buckets, name="bucket")
        keys = ["bucket"]
    if len(grid) == 0:
        return out
    filled = out.set_index(keys).reindex(grid)
    counts = [c for c in filled.columns if c not in ("cost_usd", "escalation_overhead_usd",
                                                      "top_tier_counterfactual_usd")]
    filled[counts] = filled[counts].fillna(0).astype("int64")
    empty = filled["chains"] == 0
    for money_col in ("cost_usd", "escalation_overhead_usd", "top_tier_counterfactual_usd"):
        filled.loc[empty & filled[money_col].isna(), money_col] = 0.0
    return filled.reset_index()


def present(df: pd.DataFrame, time_key: TimeKey | None) -> pd.DataFrame:
    """Return a frame with its internal keys made readable: `bucket` → `day` (a date) or `week`
    (`2026-W47`); the constant `_all` dropped."""
    out = df.copy()
    if "bucket" in out:
        if time_key == "week":
            out.insert(0, "week", [week_label(day_to_date(int(b))) for b in out["bucket"]])
        elif time_key == "day":
            out.insert(0, "day", [day_to_date(int(b)) for b in out["bucket"]])
        out = out.drop(columns=["bucket"])
    if ALL in out:
        out = out.drop(columns=[ALL])
    return out.reset_index(drop=True)


