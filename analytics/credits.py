"""Cache credits (docs/metrics.md §6.5): what became of each credit a refusal minted, and what it saved or missed.

Each redeemable credit gets the first outcome that holds: `redeemed`, `rejected`, `unconfirmed` (an attempt
presenting it got a 2xx with `credit_status` redeemed / not_applied / none), `forfeited` (the chain went
on within 5 minutes of the refusal but no 2xx attempt presented it) or `expired`. Credits minted in
batch results are `unredeemable` and get no outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import duckdb
import pandas as pd

from analytics.common import Rate, fetch_df, money, money_sum_sql
from analytics.facts import Facts
from fallbackscope.core.outcomes import GOT_2XX
from fallbackscope.core.periods import Period, day_sql, day_to_date
from fallbackscope.core.prices import band_price_sql, banded_sql, cache_scale_sql, multiplier_sql

OUTCOMES = ("redeemed", "rejected", "unconfirmed", "forfeited", "expired")
FIVE_MINUTES_US = 300_000_000
_CACHE = "(cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens)"
_PROMPT = "(input_tokens + cache_read_tokens + cache_write_5m_tokens + cache_write_1h_tokens)"


def write_minus_read_sql(p: str, a: str) -> str:
    """Return SQL for USD per token of (5m cache write price − cache read price) of price row `p`.

    Applied to the attempt columns `{a}_prompt`, `{a}_speed`, `{a}_batch`, `{a}_geo`: the prompt-size band
    and fast-mode scaling the attempt was billed at, ×0.5 for batch and ×1.1 for `us` inference.
    """
    banded = banded_sql(p, f"{a}_prompt")
    diff = f"({band_price_sql(p, 'cache_write_5m', banded)} - {band_price_sql(p, 'cache_read', banded)})"
    scale = cache_scale_sql(p, f"{a}_speed")
    mult = multiplier_sql(f"{a}_batch", f"{a}_geo")
    return f"({diff} * {scale} * {mult} / 1e6)"


def credit_rows_sql(multi: str, period: Period) -> tuple[str, list[Any]]:
    """Return a query and its parameters with one row per credit minted in the period's chains.

    Columns: attempt_id (the minting refusal), chain_id, day, workload, is_batch, outcome (None for a
    batch-minted credit), reason (of a rejection), presentations, credited_tokens, savings_usd,
    missed_savings_usd (None where not applicable or unpriced). `multi` names the temp table of the
    period's multi-attempt chains made by `analytics.collect.collect`; `price_rows` must be installed.
    """
    w_redeem = write_minus_read_sql("pr", "r")
    w_next = write_minus_read_sql("pn", "n")
    p_first, p_params = period.where("ts")
    # a credit is presented after the refusal that minted it, so never before the period starts
    p_since, s_params = period.where_since("ts")
    sql = f"""
        WITH minted AS (
            SELECT attempt_id, chain_id, attempt_index AS k, ts, {day_sql('ts')} AS day, workload, is_batch,
                credit_minted_fp AS fp, {_CACHE} AS refused_cache
            FROM attempts
            WHERE attempt_index = 1 AND {p_first} AND outcome = 'refusal' AND credit_minted_fp IS NOT NULL
            UNION ALL
            SELECT attempt_id, chain_id, attempt_index, ts, chain_day, chain_workload, is_batch,
                credit_minted_fp, {_CACHE}
            FROM {multi}
            WHERE attempt_index >= 2 AND outcome = 'refusal' AND credit_minted_fp IS NOT NULL
        ), pres AS (
            SELECT credit_presented_fp AS fp, attempt_id, ts, model, {GOT_2XX} AS ok2xx, credit_status,
                credit_reason, cache_read_tokens, is_batch, inference_geo, speed, {_PROMPT} AS prompt
            FROM attempts
            WHERE credit_presented_fp IS NOT NULL AND {p_since} AND credit_presented_fp IN (SELECT fp FROM minted)
        ), pagg AS (
            SELECT fp, count(*) AS presentations,
                arg_min(struct_pack(ts, model, cache_read_tokens, is_batch, inference_geo, speed, prompt),
                        struct_pack(ts, attempt_id))
                    FILTER (WHERE ok2xx AND credit_status = 'redeemed') AS r,
                coalesce(bool_or(ok2xx AND credit_status = 'not_applied'), false) AS rejected,
                arg_min(credit_reason, struct_pack(ts, attempt_id))
                    FILTER (WHERE ok2xx AND credit_status = 'not_applied') AS reason,
                coalesce(bool_or(ok2xx AND (credit_status IS NULL
                    OR credit_status NOT IN ('redeemed', 'not_applied'))), false) AS unconfirmed
            FROM pres GROUP BY fp
        ), later AS (
            SELECT m.attempt_id,
                coalesce(bool_or(epoch_us(l.ts) - epoch_us(m.ts) <= {FIVE_MINUTES_US}), false) AS retry_5m,
                arg_min(struct_pack(l.ts, l.model,
                                    writes := l.cache_write_5m_tokens + l.cache_write_1h_tokens,
                                    l.is_batch, l.inference_geo, l.speed,
                                    prompt := l.input_tokens + l.cache_read_tokens + l.cache_write_5m_tokens
                                              + l.cache_write_1h_tokens),
                        l.attempt_index) FILTER (WHERE l.outcome = 'ok') AS n
            FROM minted m JOIN {multi} l ON l.chain_id = m.chain_id AND l.attempt_index > m.k
            GROUP BY m.attempt_id
        ), c AS (
            SELECT m.*, coalesce(pa.presentations, 0) AS presentations, pa.reason,
                pa.r.ts AS r_ts, pa.r.model AS r_model, pa.r.cache_read_tokens AS r_read,
                pa.r.is_batch AS r_batch, pa.r.inference_geo AS r_geo, pa.r.speed AS r_speed,
                pa.r.prompt AS r_prompt,
                lt.n.ts AS n_ts, lt.n.model AS n_model, lt.n.writes AS n_writes, lt.n.is_batch AS n_batch,
                lt.n.inference_geo AS n_geo, lt.n.speed AS n_speed, lt.n.prompt AS n_prompt,
                CASE WHEN m.is_batch THEN NULL
                     WHEN pa.r IS NOT NULL THEN 'redeemed'
                     WHEN coalesce(pa.rejected, false) THEN 'rejected'
                     WHEN coalesce(pa.unconfirmed, false) THEN 'unconfirmed'
                     WHEN coalesce(lt.retry_5m, false) THEN 'forfeited'
                     ELSE 'expired' END AS outcome
            FROM minted m LEFT JOIN pagg pa USING (fp) LEFT JOIN later lt USING (attempt_id)
        ), cr AS (
            SELECT c.*, {w_redeem} AS r_unit, pr.model IS NOT NULL AS r_priced
            FROM c LEFT JOIN price_rows pr
                ON c.r_model = pr.model AND c.r_ts >= pr.valid_from AND c.r_ts < pr.valid_until
        ), cn AS (
            SELECT cr.*, {w_next} AS n_unit, pn.model IS NOT NULL AS n_priced
            FROM cr LEFT JOIN price_rows pn
                ON cr.n_model = pn.model AND cr.n_ts >= pn.valid_from AND cr.n_ts < pn.valid_until
        )
        SELECT attempt_id, chain_id, day, workload, is_batch, outcome,
            CASE WHEN outcome = 'rejected' THEN reason END AS reason,
            presentations,
            CASE WHEN outcome = 'redeemed' THEN least(r_read, refused_cache) END AS credited_tokens,
            CASE WHEN outcome = 'redeemed' AND r_priced THEN least(r_read, refused_cache) * r_unit END
                AS savings_usd,
            CASE WHEN outcome IN ('rejected', 'forfeited') THEN
                CASE WHEN n_model IS NULL AND n_ts IS NULL THEN 0.0
                     WHEN n_priced THEN least(n_writes, refused_cache) * n_unit END
            END AS missed_savings_usd
        FROM cn
    """
    return sql, p_params + s_params


def credit_cube(con: duckdb.DuckDBPyConnection, credit_sql: str, params: list[Any]) -> pd.DataFrame:
    """Return the credits of `credit_rows_sql`'s query, counted by day, workload, is_batch,
    outcome, reason and presentations: n, credited_tokens, savings_usd (sum of the priced ones),
    savings_unpriced, missed_savings_usd, missed_unpriced."""
    return fetch_df(con, f"""
        SELECT day, workload, is_batch, outcome, reason, presentations, count(*) AS n,
            coalesce(sum(credited_tokens), 0) AS credited_tokens,
            {money_sum_sql('savings_usd')} AS savings_usd,
            count(*) FILTER (WHERE outcome = 'redeemed' AND savings_usd IS NULL) AS savings_unpriced,
            {money_sum_sql('missed_savings_usd')} AS missed_savings_usd,
            count(*) FILTER (WHERE outcome IN ('rejected', 'forfeited') AND missed_savings_usd IS NULL)
                AS missed_unpriced
        FROM ({credit_sql}) GROUP BY ALL
    """, params)


def priced_total(known: pd.Series, parts: int, unpriced: int) -> float | None:
    """Return the sum of the priced amounts; None when there are parts and none is priced; 0 over none."""
    if parts == 0:
        return 0.0
    if unpriced >= parts:
        return None
    # fsum: exactly rounded whatever the order of the rows, which no engine promises
    return math.fsum(float(v) for v in known.fillna(0))


@dataclass(frozen=True)
class CreditSummary:
    """The cache-credit outcome of a period (docs/metrics.md §6.5 and the report's `cache_credit`)."""

    credits_minted: int
    credits_unredeemable: int
    redeemed: int
    rejected: int
    unconfirmed: int
    expired: int
    forfeited: int
    redemption_rate: Rate
    credited_tokens: int
    savings_usd: float | None
    missed_savings_usd: float | None
    unpriced_credits: int

    def as_dict(self) -> dict[str, Any]:
        """Return the report's `cache_credit` (docs/metrics.md §7.1): every field in order, the redemption
        rate as its value, money rounded to the micro-dollar."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, Rate) else (
                money(value) if f.name.endswith("_usd") else value)
        return out


def summarise(cube: pd.DataFrame) -> CreditSummary:
    """Return the CreditSummary of credit-cube rows (all of them, or one group's)."""
    n = cube["n"].astype("int64")
    outcome = cube["outcome"]
    counts = {name: int(n[outcome == name].sum()) for name in OUTCOMES}
    minted = int(n.sum())
    unredeemable = int(n[cube["is_batch"].astype(bool)].sum()) if minted else 0
    missed_rows = outcome.isin(["rejected", "forfeited"])
    return CreditSummary(
        credits_minted=minted,
        credits_unredeemable=unredeemable,
        redemption_rate=Rate.of(counts["redeemed"], minted - unredeemable),
        credited_tokens=int(cube["credited_tokens"].fillna(0).sum()),
        savings_usd=priced_total(cube["savings_usd"], counts["redeemed"], int(cube["savings_unpriced"].sum())),
        missed_savings_usd=priced_total(cube["missed_savings_usd"], int(n[missed_rows].sum()),
                                        int(cube["missed_unpriced"].sum())),
        unpriced_credits=int(cube["savings_unpriced"].sum() + cube["missed_unpriced"].sum()),
        **counts,
    )


def credit_summary(facts: Facts) -> CreditSummary:
    """Return the CreditSummary of the whole analysed period."""
    return summarise(facts.credits)


def credit_outcomes(facts: Facts) -> pd.DataFrame:
    """Return one row per minted credit (facts collected with `detail=True`): attempt_id of the minting
    refusal, chain_id, day (a date), workload, is_batch, outcome, reason, presentations, credited_tokens,
    savings_usd, missed_savings_usd."""
    if facts.credit_rows is None:
        raise ValueError("collect the facts with detail=True to list credits one by one")
    df = facts.credit_rows.copy()
    df["day"] = [day_to_date(int(d)) for d in df["day"]]
    for col in ("outcome", "reason"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df.reset_index(drop=True)


def credit_ladder(facts: Facts) -> pd.DataFrame:
    """Return, per outcome (redeemed, rejected) and number of attempts that presented the credit, how many
    credits: columns outcome, presentations, credits."""
    cube = facts.credits[facts.credits["outcome"].isin(["redeemed", "rejected"])]
    if cube.empty:
        return pd.DataFrame({"outcome": pd.Series(dtype=object), "presentations": pd.Series(dtype="int64"),
                             "credits": pd.Series(dtype="int64")})
    out = cube.groupby(["outcome", "presentations"])["n"].sum().reset_index(name="credits")
    out["credits"] = out["credits"].astype("int64")
    return out.sort_values(["outcome", "presentations"]).reset_index(drop=True)
