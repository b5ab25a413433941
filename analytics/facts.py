"""The facts every metric of one analysed period is derived from, computed in a few set-based queries.

Most chains have one attempt. Everything a one-attempt chain contributes can be read off its first
attempt, so the first attempts of the period are summarised straight into a small *cube* (one row per
day × workload × model × outcome × … combination) without grouping by chain. Only the chains with two
or more attempts get a per-chain summary (`multi`), built once with one window pass, and their
contributions are added as corrections. Every chain metric of SPEC §6 is a sum over these cubes, so
rolling up by day, week, workload or model afterwards works on a few thousand rows.

A chain — with all its attempts, credits and sessions — belongs to the day of its first attempt
(`attempt_index = 1`); every attempt of a chain is at or after that time.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from analytics.common import SUCCESS, Period, TimeKey, day_sql, day_to_date, fetch_df, temp_names
from analytics.credits import credit_rows
from analytics.policy import refusal_loop_rows
from fallbackscope.policy import Policy, resolve_policy
from fallbackscope.modelnames import normalise_model
from fallbackscope.prices import PriceTable, install_price_rows, token_cost_sql


# Columns kept for the attempts of multi-attempt chains.
_MULTI_COLS = (
    "attempt_id, chain_id, attempt_index, ts, workload, session_id, model, \"trigger\", outcome, accepted,"
    " disclosed, refusal_category, error_class, cost_usd, input_tokens, output_tokens, cache_read_tokens,"
    " cache_write_5m_tokens, cache_write_1h_tokens, is_batch, inference_geo, speed, credit_minted_fp"
)


@dataclass(frozen=True)
class Facts:
    """The summarised facts of one period; every DataFrame is keyed by the chain's `day` and `workload`.

    - `firsts`: first attempts, by day, workload, model, outcome, refusal_category, error_class, success,
      pinned, disclosed, has_session → n, cost, priced, first_us.
    - `laters`: attempts k ≥ 2, by the same attempt keys → n, cost, priced, first_us.
    - `multi`: chains of ≥ 2 attempts, by their chain-level flags → n, pre_resolver_cost, …
    - `transitions`: attempts k ≥ 2 on a different model than attempt k−1, by trigger → n.
    - `sessions`: sessions and refused sessions by `bucket` (per `session_key`) and workload
      (`workload` null = all workloads together); session-less chains are counted in `firsts`/`multi`.
    - `counterfactual`: resolved chains priced at the workload's top tier → cf_usd, cf_unpriced, resolved.
    - `credits`: one row per minted credit (SPEC §6.5) with its outcome, credited tokens and savings.
    - `loops`: one row per refusal loop (SPEC §5).
    """

    period: Period
    policy: Policy
    session_key: TimeKey | None
    chains_of: dict[str, tuple[str, ...]]
    top_tier: dict[str, str | None]
    firsts: pd.DataFrame
    laters: pd.DataFrame
    multi: pd.DataFrame
    transitions: pd.DataFrame
    sessions: pd.DataFrame
    counterfactual: pd.DataFrame
    credits: pd.DataFrame
    loops: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)

    def workloads(self) -> list[str]:
        """Return the workloads with chains in the period, sorted."""
        return sorted({str(w) for w in self.firsts["workload"].dropna().unique()})

    def chain_count(self) -> int:
        """Return the number of chains in the period."""
        return int(self.firsts["n"].sum())


def bucket_sql(day: str, key: TimeKey | None) -> str:
    """Return SQL for the bucket of a day-number column: the day itself, its week's Monday, or 0."""
    if key == "day":
        return day
    if key == "week":
        return f"({day} - ({day} + 3) % 7)"
    return "0"


def normalised_chains(policy: Policy, table: PriceTable) -> dict[str, tuple[str, ...]]:
    """Return each workload's declared chain with its models normalised like stored models."""
    out = {}
    for name, rules in policy.workloads.items():
        if rules.chain:
            out[name] = tuple(normalise_model(m, table.aliases) or m for m in rules.chain)
    return out


def collect(
    con: duckdb.DuckDBPyConnection,
    period: Period | None = None,
    policy: Policy | None = None,
    *,
    session_key: TimeKey | None = None,
) -> Facts:
    """Compute the Facts of `period` (default: everything) under `policy` (default: the one in force).

    `session_key` buckets sessions by day or ISO week (a session counts in every bucket where it has a
    chain); None counts them over the whole period. Returns a frozen Facts.
    """
    period = period or Period()
    policy = resolve_policy(con, policy)
    table = install_price_rows(con)
    chains_of = normalised_chains(policy, table)
    p_first, p_params = period.where("ts")
    p_since, s_params = period.where_since("ts")

    with temp_names(con, "multi", "mchain", "tier", "top") as t:
        con.execute(f"CREATE TEMP TABLE {t['tier']} (workload VARCHAR, model VARCHAR, tier INTEGER)")
        tier_rows = [[w, m, i] for w, chain in chains_of.items() for i, m in enumerate(chain)]
        if tier_rows:
            con.executemany(f"INSERT INTO {t['tier']} VALUES (?, ?, ?)", tier_rows)

        # 1. every attempt of the period's multi-attempt chains, with its predecessor's model
        con.execute(
            f"""
            CREATE TEMP TABLE {t['multi']} AS
            WITH m2 AS (
                SELECT chain_id FROM attempts WHERE attempt_index = 2 AND {p_since}
            ), fm AS (
                SELECT chain_id FROM attempts
                WHERE attempt_index = 1 AND {p_first} AND chain_id IN (SELECT chain_id FROM m2)
            ), rows AS (
                SELECT {_MULTI_COLS} FROM attempts
                WHERE attempt_index >= 2 AND {p_since} AND chain_id IN (SELECT chain_id FROM fm)
                UNION ALL
                SELECT {_MULTI_COLS} FROM attempts
                WHERE attempt_index = 1 AND {p_first} AND chain_id IN (SELECT chain_id FROM m2)
            )
            SELECT r.*, {SUCCESS} AS success,
                lag(model) OVER w AS prev_model,
                first_value(model) OVER w AS first_model,
                first_value({day_sql('ts')}) OVER w AS chain_day,
                first_value(workload) OVER w AS chain_workload,
                min(CASE WHEN {SUCCESS} THEN attempt_index END) OVER (
                    PARTITION BY chain_id ORDER BY attempt_index
                    ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS rk
            FROM rows r
            WINDOW w AS (PARTITION BY chain_id ORDER BY attempt_index
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            """,
            s_params + p_params + s_params + p_params,
        )
        con.execute(f"""CREATE TEMP TABLE {t['mchain']} AS
            SELECT m.chain_id,
                any_value(m.chain_day) AS day, any_value(m.chain_workload) AS workload,
                any_value(m.first_model) AS first_model,
                max(m.session_id) FILTER (WHERE m.attempt_index = 1) AS session_id,
                coalesce(bool_or(m.attempt_index = 1 AND m.success), false) AS first_success,
                coalesce(bool_or(m.attempt_index = 1 AND m.outcome = 'refusal'), false) AS first_refusal,
                coalesce(bool_or(m.attempt_index = 1 AND m."trigger" = 'pinned'), false) AS pinned,
                coalesce(bool_or(m.attempt_index = 1 AND m.disclosed), false) AS first_disclosed,
                coalesce(bool_or(m.outcome = 'refusal'), false) AS any_refusal,
                coalesce(bool_or(m.disclosed), false) AS any_disclosed,
                any_value(m.rk) AS rk,
                max(m.model) FILTER (WHERE m.attempt_index = m.rk) AS resolver_model,
                coalesce(bool_or(m.model <> m.first_model), false) AS escalated,
                arg_min(m."trigger", m.attempt_index) FILTER (WHERE m.model <> m.first_model) AS esc_trigger,
                coalesce(bool_or(m.attempt_index >= 2 AND m.model = m.prev_model), false) AS retried,
                coalesce(sum(m.cost_usd) FILTER (WHERE m.rk IS NULL OR m.attempt_index < m.rk), 0) AS pre_cost,
                count(*) FILTER (WHERE m.rk IS NULL OR m.attempt_index < m.rk) AS pre_n,
                count(*) FILTER (WHERE (m.rk IS NULL OR m.attempt_index < m.rk) AND m.cost_usd IS NULL)
                    AS pre_unpriced,
                max(tr.tier) FILTER (WHERE m.attempt_index >= 2) AS max_later_tier
            FROM {t['multi']} m
            LEFT JOIN {t['tier']} tr ON tr.workload = m.chain_workload AND tr.model = m.model
            GROUP BY m.chain_id
        """)
        multi = fetch_df(con, f"""
            SELECT c.day, c.workload, c.first_model, c.session_id IS NOT NULL AS has_session,
                c.first_success, c.first_refusal, c.pinned, c.first_disclosed, c.any_refusal, c.any_disclosed,
                c.rk IS NOT NULL AS resolved, coalesce(c.rk >= 2, false) AS late_resolved,
                c.resolver_model, c.escalated, c.esc_trigger, c.retried,
                coalesce(c.max_later_tier > ft.tier, false) AS higher,
                count(*) AS n,
                coalesce(sum(c.pre_cost) FILTER (WHERE c.escalated), 0) AS overhead,
                coalesce(sum(c.pre_n) FILTER (WHERE c.escalated), 0) AS overhead_attempts,
                coalesce(sum(c.pre_unpriced) FILTER (WHERE c.escalated), 0) AS overhead_unpriced
            FROM {t['mchain']} c LEFT JOIN {t['tier']} ft ON ft.workload = c.workload AND ft.model = c.first_model
            GROUP BY ALL
        """)

        # 2. the cubes of first attempts and of later attempts
        firsts = fetch_df(con, f"""
            SELECT day, workload, model, outcome, refusal_category, error_class, success, pinned, disclosed,
                has_session, count(*) AS n, sum(cost_usd) AS cost, count(cost_usd) AS priced,
                min(us) AS first_us
            FROM (
                SELECT {day_sql('ts')} AS day, workload, model, outcome, refusal_category, error_class,
                    {SUCCESS} AS success, coalesce("trigger" = 'pinned', false) AS pinned,
                    coalesce(disclosed, false) AS disclosed, session_id IS NOT NULL AS has_session,
                    cost_usd, epoch_us(ts) AS us
                FROM attempts WHERE attempt_index = 1 AND {p_first}
            )
            GROUP BY ALL
        """, p_params)
        laters = fetch_df(con, f"""
            SELECT chain_day AS day, chain_workload AS workload, model, outcome, refusal_category, error_class,
                count(*) AS n, sum(cost_usd) AS cost, count(cost_usd) AS priced, min(epoch_us(ts)) AS first_us
            FROM {t['multi']} WHERE attempt_index >= 2
            GROUP BY ALL
        """)
        transitions = fetch_df(con, f"""
            SELECT chain_day AS day, chain_workload AS workload, "trigger", count(*) AS n
            FROM {t['multi']} WHERE attempt_index >= 2 AND model <> prev_model
            GROUP BY ALL
        """)

        # 3. sessions: a session counts in every bucket (and workload) where it has a chain
        bucket_f, bucket_m = bucket_sql("day", session_key), bucket_sql("day", session_key)
        sessions = fetch_df(con, f"""
            WITH s AS (
                SELECT {bucket_f} AS bucket, workload, session_id, outcome = 'refusal' AS refused
                FROM (SELECT {day_sql('ts')} AS day, workload, session_id, outcome FROM attempts
                      WHERE attempt_index = 1 AND {p_first} AND session_id IS NOT NULL)
                UNION ALL
                SELECT {bucket_m}, workload, session_id, true
                FROM {t['mchain']} WHERE session_id IS NOT NULL AND any_refusal AND NOT first_refusal
            ), per AS (
                SELECT bucket, workload, grouping(workload) AS g, bool_or(refused) AS refused
                FROM s GROUP BY GROUPING SETS ((bucket, workload, session_id), (bucket, session_id))
            )
            SELECT bucket, CASE WHEN g = 0 THEN workload END AS workload, count(*) AS sessions,
                count(*) FILTER (WHERE refused) AS refused_sessions
            FROM per GROUP BY bucket, g, workload
        """, p_params)

        # 4. the top tier of each workload and the counterfactual cost of resolving there
        top_tier = _top_tiers(firsts, laters, chains_of, table)
        counterfactual = _counterfactual(con, t, top_tier, p_first, p_params, firsts)

        # 5. cache credits and refusal loops
        credits = credit_rows(con, t["multi"], p_first, p_params)
        loops = refusal_loop_rows(con, period)

    return Facts(
        period=period, policy=policy, session_key=session_key, chains_of=chains_of, top_tier=top_tier,
        firsts=firsts, laters=laters, multi=multi, transitions=transitions, sessions=sessions,
        counterfactual=counterfactual, credits=credits, loops=loops,
    )


def _top_tiers(
    firsts: pd.DataFrame, laters: pd.DataFrame, chains_of: dict[str, tuple[str, ...]], table: PriceTable
) -> dict[str, str | None]:
    """Return each workload's top tier: the last model of its declared chain, else the highest
    input-price model seen in it during the period (priced at the period's last day; ties by name)."""
    seen = pd.concat([firsts[["workload", "model", "day"]], laters[["workload", "model", "day"]]])
    out: dict[str, str | None] = {}
    if seen.empty:
        return out
    last_day = day_to_date(int(seen["day"].max()))
    for workload, group in seen.groupby("workload", dropna=True):
        workload = str(workload)
        if workload in chains_of:
            out[workload] = chains_of[workload][-1]
            continue
        best: tuple[float, str] | None = None
        for model in sorted({str(m) for m in group["model"].dropna().unique()}):
            price = _input_price(table, model, last_day)
            if price is not None and (best is None or (price, model) > best):
                best = (price, model)
        out[workload] = best[1] if best else None
    return out


def _input_price(table: PriceTable, model: str, when: dt.date) -> float | None:
    rows = [r for r in table.price if r.model == model and r.valid_from <= when]
    if not rows:
        rows = [r for r in table.price if r.model == model]
        if not rows:
            return None
        return min(rows, key=lambda r: r.valid_from).input
    return max(rows, key=lambda r: r.valid_from).input


def _counterfactual(
    con: duckdb.DuckDBPyConnection,
    t: dict[str, str],
    top_tier: dict[str, str | None],
    p_first: str,
    p_params: list[Any],
    firsts: pd.DataFrame,
) -> pd.DataFrame:
    """Return, per chain day and workload, the resolvers' tokens priced at the workload's top tier."""
    con.execute(f"CREATE TEMP TABLE {t['top']} (workload VARCHAR, top_model VARCHAR)")
    rows = [[w, m] for w, m in top_tier.items()]
    if rows:
        con.executemany(f"INSERT INTO {t['top']} VALUES (?, ?)", rows)
    cost = token_cost_sql("r", "p", web_search_usd=0.0)
    # Price per resolver day: price rows start at UTC midnight, so one lookup per (workload, day) is exact.
    return fetch_df(con, f"""
        WITH r AS (
            SELECT {day_sql('ts')} AS day, {day_sql('ts')} AS own_day, workload, input_tokens, output_tokens,
                cache_read_tokens, cache_write_5m_tokens, cache_write_1h_tokens, is_batch, inference_geo
            FROM attempts WHERE attempt_index = 1 AND {p_first} AND {SUCCESS}
            UNION ALL
            SELECT chain_day, {day_sql('ts')}, chain_workload, input_tokens, output_tokens, cache_read_tokens,
                cache_write_5m_tokens, cache_write_1h_tokens, is_batch, inference_geo
            FROM {t['multi']} WHERE attempt_index = rk AND rk >= 2
        ), days AS (
            SELECT DISTINCT r.workload, r.own_day, t.top_model,
                to_timestamp(r.own_day * 86400.0) AS at
            FROM r JOIN {t['top']} t USING (workload)
        ), price_day AS (
            SELECT d.workload, d.own_day, p.* EXCLUDE (model, valid_from), p.model AS price_model
            FROM days d ASOF LEFT JOIN price_rows p ON d.top_model = p.model AND d.at >= p.valid_from
        )
        SELECT r.day, r.workload, count(*) AS resolved,
            sum(cf) AS cf_usd, count(*) FILTER (WHERE cf IS NULL) AS cf_unpriced
        FROM (
            SELECT r.day, r.workload,
                CASE WHEN p.price_model IS NULL THEN NULL ELSE {cost} END AS cf
            FROM (SELECT *, NULL::VARCHAR AS speed, 0 AS web_search_requests FROM r) r
            LEFT JOIN price_day p ON p.workload = r.workload AND p.own_day = r.own_day
        ) r
        GROUP BY ALL
    """, p_params)
