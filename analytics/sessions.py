"""Sessions per bucket and workload (docs/metrics.md §6): a session counts in every bucket (and workload)
where it has a chain, and as refused there when one of those chains had a refused attempt."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from analytics.common import fetch_df
from fallbackscope.core.periods import TimeKey, bucket_sql, day_sql


def session_counts(con: duckdb.DuckDBPyConnection, multi: str, mchain: str, session_key: TimeKey | None,
              p_first: str, p_params: list[Any]) -> pd.DataFrame:
    """Return sessions (with a session id) and refused sessions per bucket and workload, and per bucket
    over all workloads (`workload` null). Sessions are counted per workload first; the all-workload
    count only regroups the few sessions seen in more than one workload."""
    bucket = bucket_sql("day", session_key)
    bucket_m = bucket_sql("m.chain_day", session_key)
    return fetch_df(con, f"""
        WITH s AS (
            SELECT {bucket} AS bucket, workload, session_id, outcome = 'refusal' AS refused
            FROM (SELECT {day_sql('ts')} AS day, workload, session_id, outcome FROM attempts
                  WHERE attempt_index = 1 AND {p_first} AND session_id IS NOT NULL)
            UNION ALL
            SELECT {bucket_m}, m.chain_workload, m.session_id, true
            FROM {multi} m JOIN {mchain} c USING (chain_id)
            WHERE m.attempt_index = 1 AND m.session_id IS NOT NULL AND c.any_refusal AND NOT c.first_refusal
        ), per AS MATERIALIZED (
            SELECT bucket, workload, session_id, bool_or(refused) AS refused
            FROM s GROUP BY bucket, workload, session_id
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
    """, p_params)
