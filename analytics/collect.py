"""Compute the Facts of one analysed period in a few set-based queries (docs/metrics.md §6).

Only the chains with two or more attempts are read chain by chain: their attempts are read once, each
carrying its chain's first-attempt columns through one join, and their contributions are added to the
cubes of first attempts as corrections (see `analytics.facts`).
"""

from __future__ import annotations

import math

import duckdb
import pandas as pd

from analytics.common import fetch_df, money_sum_sql, temp_names
from analytics.credits import credit_cube, credit_rows_sql
from analytics.facts import TOKENS, Facts, PriceLookup, band_code_sql, band_thresholds, normalised_chains
from analytics.sessions import session_counts
from analytics.violations import refusal_loop_rows
from fallbackscope.core.outcomes import SUCCESS, success_sql, unknown_stop_sql
from fallbackscope.core.periods import Period, TimeKey, day_sql
from fallbackscope.core.policy import Policy, resolve_policy
from fallbackscope.core.prices import PriceTable, install_price_rows, token_cost

_MULTI_NAMES = (
    "chain_id", "attempt_index", "ts", "workload", "model", "trigger", "outcome", "disclosed", "refusal_category",
    "error_class", "cost_usd", *TOKENS, "is_batch", "inference_geo", "speed", "credit_minted_fp", "cost_complete",
)


def _multi_cols(a: str) -> str:
    """Return the select list of a multi-chain attempt row from relation `a` (ids only where needed)."""
    cols = [f'{a}."{c}"' if c == "trigger" else f"{a}.{c}" for c in _MULTI_NAMES]
    return ", ".join(cols + [
        f"CASE WHEN {a}.attempt_index = 1 THEN {a}.session_id END AS session_id",
        f"CASE WHEN {a}.credit_minted_fp IS NOT NULL THEN {a}.attempt_id END AS attempt_id",
        f"{success_sql(a)} AS success", f"{unknown_stop_sql(a)} AS unknown_stop",
        f"{day_sql(a + '.ts')} AS own_day",
    ])


# A chain's first attempt is read again only for what the per-chain summary needs of it; its tokens,
# credit and error columns are counted from the cube of first attempts instead.
_TYPES = {"cost_usd": "DOUBLE", "input_tokens": "BIGINT", "output_tokens": "BIGINT", "cache_read_tokens": "BIGINT",
          "cache_write_5m_tokens": "BIGINT", "cache_write_1h_tokens": "BIGINT", "is_batch": "BOOLEAN",
          "disclosed": "BOOLEAN", "cost_complete": "BOOLEAN"}
_FIRST_NEEDS = {"chain_id", "attempt_index", "ts", "workload", "model", "trigger", "outcome", "disclosed", "cost_usd"}


def _first_cols() -> str:
    """Return the select list of a multi-attempt chain's first attempt: the rest of its columns are NULL."""
    cols = []
    for c in _MULTI_NAMES:
        name = f'"{c}"' if c == "trigger" else c
        cols.append(name if c in _FIRST_NEEDS else f"NULL::{_TYPES.get(c, 'VARCHAR')} AS {name}")
    return ", ".join(cols + [
        "session_id", "NULL::VARCHAR AS attempt_id",
        f"{SUCCESS} AS success", f"{unknown_stop_sql()} AS unknown_stop", f"{day_sql('ts')} AS own_day",
    ])



def collect(
    con: duckdb.DuckDBPyConnection,
    period: Period | None = None,
    policy: Policy | None = None,
    *,
    session_key: TimeKey | None = None,
    detail: bool = False,
) -> Facts:
    """Compute the Facts of `period` (default: everything) under `policy` (default: the one in force).

    `session_key` buckets sessions by day or ISO week (a session counts in every bucket where it has a
    chain); None counts them over the whole period. `detail` also keeps one row per credit.
    Returns a frozen Facts.
    """
    period = period or Period()
    policy = resolve_policy(con, policy)
    table = install_price_rows(con)
    chains_of = normalised_chains(policy, table)
    thresholds = band_thresholds(table)
    band = band_code_sql(thresholds)
    p_first, p_params = period.where("ts")
    p_since, s_params = period.where_since("ts")
    l_since, _ = period.where_since("l.ts")

    with temp_names(con, "multi", "mchain", "tier") as t:
        con.execute(f"CREATE TEMP TABLE {t['tier']} (workload VARCHAR, model VARCHAR, tier INTEGER)")
        tier_rows = [[w, m, i] for w, chain in chains_of.items() for i, m in enumerate(chain)]
        if tier_rows:
            con.executemany(f"INSERT INTO {t['tier']} VALUES (?, ?, ?)", tier_rows)

        # 1. every attempt of the period's multi-attempt chains, with its chain's first-attempt columns
        con.execute(
            f"""
            CREATE TEMP TABLE {t['multi']} AS
            WITH m2 AS (
                SELECT chain_id FROM attempts WHERE attempt_index = 2 AND {p_since}
            ), f1 AS MATERIALIZED (
                SELECT {_first_cols()}, {day_sql('ts')} AS chain_day, workload AS chain_workload,
                    model AS first_model
                FROM attempts
                WHERE attempt_index = 1 AND {p_first} AND chain_id IN (SELECT chain_id FROM m2)
            )
            SELECT * FROM f1
            UNION ALL
            SELECT {_multi_cols('l')}, f.chain_day, f.chain_workload, f.first_model
            FROM attempts l JOIN f1 f ON l.chain_id = f.chain_id
            WHERE l.attempt_index >= 2 AND {l_since}
            """,
            s_params + p_params + s_params,
        )
        # 2. per multi-attempt chain: where it was resolved, whether it escalated and on what trigger
        tier_join = (f"LEFT JOIN {t['tier']} tr ON tr.workload = m.chain_workload AND tr.model = m.model"
                     if tier_rows else "LEFT JOIN (SELECT NULL::INTEGER AS tier) tr ON false")
        con.execute(f"""
            CREATE TEMP TABLE {t['mchain']} AS
            SELECT m.chain_id,
                any_value(m.chain_day) AS day, any_value(m.chain_workload) AS workload,
                any_value(m.first_model) AS first_model,
                coalesce(bool_or(m.attempt_index = 1 AND m.session_id IS NOT NULL), false) AS has_session,
                coalesce(bool_or(m.attempt_index = 1 AND m.success), false) AS first_success,
                coalesce(bool_or(m.attempt_index = 1 AND m.outcome = 'refusal'), false) AS first_refusal,
                coalesce(bool_or(m.attempt_index = 1 AND m."trigger" = 'pinned'), false) AS pinned,
                coalesce(bool_or(m.attempt_index = 1 AND m.disclosed), false) AS first_disclosed,
                coalesce(bool_or(m.outcome = 'refusal'), false) AS any_refusal,
                coalesce(bool_or(m.disclosed), false) AS any_disclosed,
                min(m.attempt_index) FILTER (WHERE m.success) AS rk,
                arg_min(m.model, m.attempt_index) FILTER (WHERE m.success) AS resolver_model,
                coalesce(bool_or(m.model <> m.first_model), false) AS escalated,
                arg_min(m."trigger", m.attempt_index) FILTER (WHERE m.model <> m.first_model) AS esc_trigger,
                coalesce(max(tr.tier) FILTER (WHERE m.attempt_index >= 2)
                         > max(tr.tier) FILTER (WHERE m.attempt_index = 1), false) AS higher
            FROM {t['multi']} m
            {tier_join}
            GROUP BY m.chain_id
        """)
        multi = fetch_df(con, f"""
            SELECT day, workload, first_model, has_session, first_success, first_refusal, pinned,
                first_disclosed, any_refusal, any_disclosed, rk IS NOT NULL AS resolved,
                coalesce(rk >= 2, false) AS late_resolved, resolver_model, escalated, esc_trigger, higher,
                count(*) AS n
            FROM {t['mchain']} GROUP BY ALL
        """)
        overhead = fetch_df(con, f"""
            SELECT m.chain_day AS day, m.chain_workload AS workload,
                coalesce({money_sum_sql('m.cost_usd')}, 0) AS overhead,
                count(*) AS overhead_attempts, count(*) FILTER (WHERE m.cost_usd IS NULL) AS overhead_unpriced
            FROM {t['multi']} m JOIN {t['mchain']} c USING (chain_id)
            WHERE c.escalated AND (c.rk IS NULL OR m.attempt_index < c.rk)
            GROUP BY ALL
        """)
        pairs = fetch_df(con, f"""
            WITH p AS MATERIALIZED (
                SELECT b.chain_id, b.chain_day, b.chain_workload, b."trigger", b.model <> a.model AS changed,
                    b.model = a.model AS same
                FROM {t['multi']} b JOIN {t['multi']} a
                    ON a.chain_id = b.chain_id AND a.attempt_index = b.attempt_index - 1
                WHERE b.attempt_index >= 2
            )
            SELECT 'fallback' AS kind, chain_day AS day, chain_workload AS workload, "trigger", count(*) AS n
            FROM p WHERE changed GROUP BY ALL
            UNION ALL
            SELECT 'retry', chain_day, chain_workload, NULL, count(DISTINCT chain_id)
            FROM p WHERE same GROUP BY ALL
        """)
        transitions = pairs[pairs["kind"] == "fallback"].drop(columns="kind").reset_index(drop=True)
        retries = pairs[pairs["kind"] == "retry"][["day", "workload", "n"]].reset_index(drop=True)

        # 3. the cubes of first attempts and of later attempts
        token_sums = ", ".join(f"sum(cf_{c}) AS {c}" for c in TOKENS)
        token_cols = ", ".join(f"CASE WHEN {SUCCESS} THEN {c} END AS cf_{c}" for c in TOKENS)
        firsts = fetch_df(con, f"""
            SELECT day, workload, model, outcome, refusal_category, error_class, success, unknown_stop, pinned,
                disclosed, has_session, cf_batch, cf_geo_us, cf_band,
                count(*) AS n, {money_sum_sql('cost_usd')} AS cost, count(cost_usd) AS priced,
                count(*) FILTER (WHERE NOT cost_complete) AS incomplete, min(us) AS first_us,
                {token_sums}
            FROM (
                SELECT {day_sql('ts')} AS day, workload, model, outcome, refusal_category, error_class,
                    {SUCCESS} AS success, {unknown_stop_sql()} AS unknown_stop,
                    coalesce("trigger" = 'pinned', false) AS pinned,
                    coalesce(disclosed, false) AS disclosed, session_id IS NOT NULL AS has_session,
                    CASE WHEN {SUCCESS} THEN is_batch END AS cf_batch,
                    CASE WHEN {SUCCESS} THEN coalesce(inference_geo = 'us', false) END AS cf_geo_us,
                    CASE WHEN {SUCCESS} THEN {band} END AS cf_band,
                    cost_usd, cost_complete, epoch_us(ts) AS us, {token_cols}
                FROM attempts WHERE attempt_index = 1 AND {p_first}
            )
            GROUP BY ALL
        """, thresholds + p_params)
        laters = fetch_df(con, f"""
            SELECT chain_day AS day, chain_workload AS workload, model, outcome, refusal_category, error_class,
                unknown_stop, count(*) AS n, {money_sum_sql('cost_usd')} AS cost, count(cost_usd) AS priced,
                count(*) FILTER (WHERE NOT cost_complete) AS incomplete,
                min(epoch_us(ts)) AS first_us
            FROM {t['multi']} WHERE attempt_index >= 2
            GROUP BY ALL
        """)
        late_resolvers = fetch_df(con, f"""
            SELECT m.chain_day AS day, m.own_day, m.chain_workload AS workload, m.is_batch AS cf_batch,
                coalesce(m.inference_geo = 'us', false) AS cf_geo_us, {band} AS cf_band, count(*) AS n,
                {", ".join(f"sum(m.{c}) AS {c}" for c in TOKENS)}
            FROM {t['multi']} m JOIN {t['mchain']} c ON c.chain_id = m.chain_id AND m.attempt_index = c.rk
            WHERE c.rk >= 2
            GROUP BY ALL
        """, thresholds)

        # 3. sessions: a session counts in every bucket (and workload) where it has a chain
        # the chains with a later refusal are known already: the per-chain summary of multi-attempt chains
        sessions = session_counts(con, session_key, period,
                                  late_refused=f"SELECT chain_id FROM {t['mchain']} WHERE any_refusal")

        # 4. the top tier of each workload and the counterfactual cost of resolving there
        top_tier = _top_tiers(firsts, laters, chains_of, table)
        counterfactual = _counterfactual(firsts, late_resolvers, top_tier, table, thresholds)

        # 5. cache credits and refusal loops
        credit_sql, credit_params = credit_rows_sql(t["multi"], period)
        credits = credit_cube(con, credit_sql, credit_params)
        credit_rows = fetch_df(con, f"{credit_sql} ORDER BY day, workload, attempt_id", credit_params) if detail \
            else None
        loops = refusal_loop_rows(con, t["multi"], period)

    return Facts(
        period=period, policy=policy, session_key=session_key, chains_of=chains_of, top_tier=top_tier,
        firsts=firsts, laters=laters, multi=multi, retries=retries, overhead=overhead, transitions=transitions,
        sessions=sessions,
        counterfactual=counterfactual, credits=credits, loops=loops, credit_rows=credit_rows,
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
    last_day = int(seen["day"].max())
    prices = PriceLookup(table)
    for workload, group in seen.groupby("workload", dropna=True):
        workload = str(workload)
        if workload in chains_of:
            out[workload] = chains_of[workload][-1]
            continue
        best: tuple[float, str] | None = None
        for model in sorted({str(m) for m in group["model"].dropna().unique()}):
            row = prices.at(model, last_day) or prices.earliest(model)
            if row is not None and (best is None or (row.input, model) > best):
                best = (row.input, model)
        out[workload] = best[1] if best else None
    return out


def _counterfactual(
    firsts: pd.DataFrame, late: pd.DataFrame, top_tier: dict[str, str | None], table: PriceTable,
    thresholds: list[int],
) -> pd.DataFrame:
    """Return per chain day and workload: resolved chains, their resolver tokens priced at the top tier
    (`cf_usd`, over the priced ones) and how many could not be priced (`cf_unpriced`)."""
    early = firsts[firsts["success"].astype(bool)].assign(own_day=lambda d: d["day"])
    parts = pd.concat([early, late], ignore_index=True)
    rows: dict[tuple[int, str], list] = {}
    prices = PriceLookup(table)
    for rec in parts.to_dict("records"):
        key = (int(rec["day"]), str(rec["workload"]))
        acc = rows.setdefault(key, [0, [], 0])
        n = int(rec["n"])
        acc[0] += n
        price = prices.at(top_tier.get(key[1]), int(rec["own_day"]))
        if price is None:
            acc[2] += n
            continue
        tokens = {c: float(rec[c] or 0) for c in TOKENS}
        band_code = int(rec["cf_band"]) if pd.notna(rec["cf_band"]) else 0
        banded = price.band_threshold is not None and band_code > thresholds.index(price.band_threshold)
        acc[1].append(token_cost(price, tokens, banded=banded, batch=bool(rec["cf_batch"]),
                                 geo_us=bool(rec["cf_geo_us"])))
    # fsum: exactly rounded whatever order the engine gave the rows in
    return pd.DataFrame(
        [{"day": d, "workload": w, "resolved": a[0], "cf_usd": math.fsum(a[1]), "cf_unpriced": a[2]}
         for (d, w), a in rows.items()],
        columns=["day", "workload", "resolved", "cf_usd", "cf_unpriced"],
    )
