"""Sessions per bucket and workload (docs/metrics.md §6): a session counts in every bucket (and workload)
where it has a chain, and as refused there when one of those chains had a refused attempt."""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb

from fallbackscope.core.periods import Period, TimeKey, bucket_sql, day_sql

if TYPE_CHECKING:  # the session rows' SQL is needed without pandas (`alert`); only `session_counts` loads it
    import pandas as pd


def chain_refusals_sql(first: str = "TRUE", later: str = "TRUE", late_refused: str | None = None) -> str:
    """Return SQL with one row per chain whose first attempt satisfies `first`: `chain_id, ts` (its first
    attempt's time), `workload, session_id, refused` (one of its attempts was refused) — the rows every
    session count is made from (docs/metrics.md §6). `later` filters the attempts k ≥ 2 searched for
    refusals (both SQL conditions on `attempts`; bind their parameters in that order). A caller that already
    knows which chains had a later refusal passes that query as `late_refused` (one `chain_id` column):
    the attempts are then not searched again, and `later` is not used."""
    late = late_refused or (f"SELECT DISTINCT chain_id FROM attempts "
                            f"WHERE attempt_index >= 2 AND outcome = 'refusal' AND {later}")
    return f"""
        SELECT f.chain_id, f.ts, f.workload, f.session_id, f.refused OR late.chain_id IS NOT NULL AS refused
        FROM (SELECT chain_id, ts, workload, session_id, outcome = 'refusal' AS refused
              FROM attempts WHERE attempt_index = 1 AND {first}) f
        LEFT JOIN ({late}) late USING (chain_id)
    """


def session_days_sql(first: str = "TRUE", later: str = "TRUE", late_refused: str | None = None) -> str:
    """Return SQL with one row per UTC day, workload and session id that has a chain starting that day:
    `day, workload, session_id, refused` (one of those chains had a refused attempt). Every session count
    by day is made from these rows (docs/metrics.md §6): a session counts in each bucket where it has a
    row, and as refused there when one of its rows there is. `first` filters chains by their first attempt,
    `later` the attempts k ≥ 2 searched for refusals (both SQL conditions on `attempts`; bind their
    parameters in that order). Windows shorter than a day count the rows of `chain_refusals_sql` at their
    timestamps instead (`analytics.windows`)."""
    return f"""
        SELECT {day_sql('ts')} AS day, workload, session_id, bool_or(refused) AS refused
        FROM ({chain_refusals_sql(f"session_id IS NOT NULL AND ({first})", later, late_refused)})
        GROUP BY day, workload, session_id
    """


def session_counts(con: duckdb.DuckDBPyConnection, session_key: TimeKey | None, period: Period,
                   late_refused: str | None = None) -> pd.DataFrame:
    """Return sessions (with a session id) and refused sessions per bucket and workload, and per bucket
    over all workloads (`workload` null). Sessions are counted per workload first; the all-workload
    count only regroups the few sessions seen in more than one workload. `late_refused`: see
    `chain_refusals_sql`."""
    from analytics.common import fetch_df

    p_first, p_params = period.where("ts")
    p_since, s_params = period.where_since("ts")
    return fetch_df(con, f"""
        WITH per AS MATERIALIZED (
            SELECT {bucket_sql("day", session_key)} AS bucket, workload, session_id, bool_or(refused) AS refused
            FROM ({session_days_sql(p_first, p_since, late_refused)}) GROUP BY ALL
        ), spread AS (
            SELECT bucket, count(*) - 1 AS extra,
                count(*) FILTER (WHERE refused) - CAST(bool_or(refused) AS INTEGER) AS refused_extra
            FROM per GROUP BY bucket, session_id HAVING count(*) > 1
        )
        SELECT bucket, workload, count(*) AS sessions, count(*) FILTER (WHERE refused) AS refused_sessions
        FROM per GROUP BY bucket, workload
        UNION ALL
        SELECT p.bucket, NULL, p.sessions - coalesce(x.extra, 0), p.refused - coalesce(x.refused_extra, 0)
        FROM (SELECT bucket, count(*) AS sessions, count(*) FILTER (WHERE refused) AS refused
              FROM per GROUP BY bucket) p
        LEFT JOIN (SELECT bucket, sum(extra) AS extra, sum(refused_extra) AS refused_extra
                   FROM spread GROUP BY bucket) x USING (bucket)
    """, p_params + ([] if late_refused else s_params))
