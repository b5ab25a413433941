"""Policy violations (docs/metrics.md §5), counted per kind and workload.

- `fallback_on_disallowed_trigger`: an attempt k ≥ 2 on a different model than attempt k−1 whose trigger
  is not in the workload's `fallback_on` (an attempt without a trigger is not allowed either);
- `model_outside_chain`: an attempt whose model is not in its workload's declared chain;
- `undisclosed_fallback`: a chain counted as a fallback where disclosure is required and no attempt of
  the chain has `disclosed: true`;
- `refusal_loop`: a run of 3 or more refusals of the same prompt in one session, not interrupted by a
  success of that prompt (errors do not interrupt it).
"""

from __future__ import annotations

import uuid

import duckdb
import pandas as pd

from analytics.common import fetch_df
from analytics.facts import Facts
from fallbackscope.core.outcomes import SUCCESS
from fallbackscope.core.periods import Period, day_sql

KINDS = ("fallback_on_disallowed_trigger", "model_outside_chain", "undisclosed_fallback", "refusal_loop")
LOOP_LENGTH = 3


def refusal_loop_rows(con: duckdb.DuckDBPyConnection, multi: str, period: Period) -> pd.DataFrame:
    """Return one row per refusal loop whose first refusal's chain started in the period.

    Runs are found over all stored attempts (a loop may cross a week boundary) and counted in the day of
    the chain of their first refusal. `multi` names the temp table of the period's multi-attempt chains
    (it gives the start day of a chain whose first refusal is not its first attempt, and how late the
    period's chains run). Only prompts refused near the period are examined, and only the successes
    between a candidate's first and last refusal, since nothing else can interrupt one of its runs.
    Columns: day, workload (of the first refusal), refusals.
    """
    empty = pd.DataFrame({"day": pd.Series(dtype="int64"), "workload": pd.Series(dtype=object),
                          "refusals": pd.Series(dtype="int64")})
    keys, key_params = "", []
    if not period.whole:
        # a counted run starts with a refusal in one of the period's chains: at or after `since`, and no
        # later than the last attempt of the period's chains
        last = con.execute(f"SELECT max(ts) FROM {multi}").fetchone()[0]
        cond, key_params = period.where_since("ts")
        if period.until is not None:
            cond += " AND ts <= ?"
            key_params = key_params + [max(period.until, last) if last is not None else period.until]
        keys = (f" AND prompt_fp IN (SELECT prompt_fp FROM attempts WHERE outcome = 'refusal'"
                f" AND prompt_fp IS NOT NULL AND {cond})")
    ref = f"fs_loop_ref_{uuid.uuid4().hex[:10]}"
    con.execute(f"""
        CREATE TEMP TABLE {ref} AS
        WITH ref AS (
            SELECT coalesce(session_id, 'chain:' || chain_id) AS skey, prompt_fp, ts, chain_id, attempt_index,
                workload
            FROM attempts WHERE outcome = 'refusal' AND prompt_fp IS NOT NULL{keys}
        )
        SELECT * FROM ref WHERE (skey, prompt_fp) IN (
            SELECT skey, prompt_fp FROM ref GROUP BY skey, prompt_fp HAVING count(*) >= {LOOP_LENGTH})
    """, key_params)
    lo, hi = con.execute(f"SELECT min(ts), max(ts) FROM {ref}").fetchone()
    if lo is None:
        con.execute(f"DROP TABLE IF EXISTS {ref}")
        return empty
    cond, params = period.where("l.first.ts")
    try:
        return fetch_df(con, f"""
            WITH cand AS (
                SELECT skey, prompt_fp, min(ts) AS lo, max(ts) AS hi FROM {ref} GROUP BY skey, prompt_fp
            ), succ AS (
                SELECT coalesce(session_id, 'chain:' || chain_id) AS skey, prompt_fp, ts, chain_id, attempt_index
                FROM attempts
                WHERE ts >= ? AND ts <= ? AND {SUCCESS} AND prompt_fp IN (SELECT prompt_fp FROM cand)
            ), ev AS (
                SELECT skey, prompt_fp, ts, chain_id, attempt_index, workload, true AS refused FROM {ref}
                UNION ALL
                SELECT s.skey, s.prompt_fp, s.ts, s.chain_id, s.attempt_index, NULL, false
                FROM succ s JOIN cand c USING (skey, prompt_fp) WHERE s.ts >= c.lo AND s.ts <= c.hi
            ), runs AS (
                SELECT ev.*, count(*) FILTER (WHERE NOT refused) OVER (
                    PARTITION BY skey, prompt_fp ORDER BY ts, chain_id, attempt_index
                    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run_no
                FROM ev
            ), loops AS (
                SELECT count(*) FILTER (WHERE refused) AS refusals,
                    arg_min(struct_pack(chain_id, attempt_index, ts, workload),
                            struct_pack(ts, chain_id, attempt_index)) FILTER (WHERE refused) AS first
                FROM runs GROUP BY skey, prompt_fp, run_no
                HAVING count(*) FILTER (WHERE refused) >= {LOOP_LENGTH}
            ), starts AS (
                SELECT DISTINCT chain_id, chain_day FROM {multi}
                WHERE chain_id IN (SELECT first.chain_id FROM loops WHERE first.attempt_index > 1)
            )
            SELECT CASE WHEN l.first.attempt_index = 1 THEN {day_sql('l.first.ts')} ELSE st.chain_day END AS day,
                l.first.workload AS workload, l.refusals
            FROM loops l LEFT JOIN starts st ON st.chain_id = l.first.chain_id
            WHERE CASE WHEN l.first.attempt_index = 1 THEN {cond} ELSE st.chain_id IS NOT NULL END
            ORDER BY day, workload
        """, [lo, hi] + params)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {ref}")


def violation_rows(facts: Facts) -> pd.DataFrame:
    """Return policy violations per chain day, workload and kind: columns day, workload, kind, count."""
    policy = facts.policy
    parts: list[pd.DataFrame] = []

    tr = facts.transitions
    if not tr.empty:
        allowed = [
            (str(t) in policy.for_workload(str(w)).fallback_on) if isinstance(t, str) else False
            for w, t in zip(tr["workload"], tr["trigger"], strict=True)
        ]
        bad = tr[[not a for a in allowed]]
        parts.append(_count(bad, "fallback_on_disallowed_trigger"))

    if facts.chains_of:
        attempts = pd.concat([facts.firsts[["day", "workload", "model", "n"]],
                              facts.laters[["day", "workload", "model", "n"]]])
        outside = [
            isinstance(m, str) and str(w) in facts.chains_of and m not in facts.chains_of[str(w)]
            for w, m in zip(attempts["workload"], attempts["model"], strict=True)
        ]
        parts.append(_count(attempts[outside], "model_outside_chain"))

    required = {w for w, rules in policy.workloads.items() if rules.require_disclosure}
    if required:
        f, m = facts.firsts, facts.multi
        f_hit = f[f["workload"].isin(required) & f["pinned"] & ~f["disclosed"]]
        m_pinned = m[m["workload"].isin(required) & m["pinned"] & ~m["first_disclosed"]]
        m_fallback = m[m["workload"].isin(required) & multi_fallback(m) & ~m["any_disclosed"]]
        undisclosed = pd.concat([
            f_hit[["day", "workload", "n"]],
            m_pinned[["day", "workload", "n"]].assign(n=-m_pinned["n"]),
            m_fallback[["day", "workload", "n"]],
        ])
        parts.append(_count(undisclosed, "undisclosed_fallback"))

    if not facts.loops.empty:
        parts.append(_count(facts.loops.assign(n=1), "refusal_loop"))

    parts = [p for p in parts if not p.empty]
    if not parts:
        return pd.DataFrame({"day": pd.Series(dtype="int64"), "workload": pd.Series(dtype=object),
                             "kind": pd.Series(dtype=object), "count": pd.Series(dtype="int64")})
    out = pd.concat(parts, ignore_index=True)
    return out[out["count"] != 0].reset_index(drop=True)


def multi_fallback(m: pd.DataFrame) -> pd.Series:
    """Return, for rows of the multi-attempt chain cube, whether those chains count as fallbacks (§6.2)."""
    changed = m["late_resolved"] & (m["resolver_model"].astype(object) != m["first_model"].astype(object))
    return m["pinned"] | changed


def _count(df: pd.DataFrame, kind: str) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=["day", "workload", "kind", "count"])
    out = df.groupby(["day", "workload"], dropna=False)["n"].sum().reset_index(name="count")
    out["kind"] = kind
    return out[["day", "workload", "kind", "count"]]


def violations(facts: Facts, by_day: bool = False) -> pd.DataFrame:
    """Return the policy violations of the period: columns kind, workload, count (plus day when asked),
    sorted by kind then workload; kinds and workloads without a violation are left out."""
    rows = violation_rows(facts)
    keys = ["day", "kind", "workload"] if by_day else ["kind", "workload"]
    if rows.empty:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in keys} | {"count": pd.Series(dtype="int64")})
    out = rows.groupby(keys, dropna=False)["count"].sum().reset_index()
    out = out[out["count"] > 0]
    out["count"] = out["count"].astype("int64")
    return out.sort_values(keys).reset_index(drop=True)
