"""Prices (docs/metrics.md §6.3): every multiplier once, the SQL cost and its Python twin agree."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fallbackscope.core.prices import (
    BATCH_MULTIPLIER,
    PRICE_JOIN,
    US_GEO_MULTIPLIER,
    attempt_cost_sql,
    default_toml,
    install_price_rows,
    multiplier,
    multiplier_sql,
    parse_price_toml,
    token_cost,
    token_cost_sql,
)

TABLE = parse_price_toml(default_toml())
STANDARD = [m for m in TABLE.models() if m != "claude-haiku-5-5"]
tokens = st.integers(min_value=0, max_value=300_000)


@pytest.mark.parametrize(("batch", "geo"), [(False, None), (True, None), (False, "us"), (True, "us"),
                                            (False, "global"), (None, "us")])
def test_multipliers_in_sql_and_python_agree(batch, geo):
    got = duckdb.connect().execute(f"SELECT {multiplier_sql('?', '?')}", [batch, geo]).fetchone()[0]
    assert float(got) == pytest.approx(multiplier(bool(batch), geo == "us"))
    assert multiplier(True, True) == pytest.approx(BATCH_MULTIPLIER * US_GEO_MULTIPLIER) == pytest.approx(0.55)


@settings(max_examples=40, deadline=None)
@given(model=st.sampled_from(["claude-haiku-5-5", *STANDARD]), inp=tokens, out=tokens, read=tokens, w5=tokens,
       w1=tokens, batch=st.booleans(), geo=st.sampled_from([None, "us", "global"]))
def test_sql_cost_and_the_python_twin_agree_at_standard_speed(model, inp, out, read, w5, w1, batch, geo):
    con = duckdb.connect()
    install_price_rows(con, TABLE)
    con.execute("CREATE TABLE a AS SELECT ?::VARCHAR AS model, TIMESTAMPTZ '2026-11-02 10:00:00+00' AS ts, "
                "?::BIGINT AS input_tokens, ?::BIGINT AS output_tokens, ?::BIGINT AS cache_read_tokens, "
                "?::BIGINT AS cache_write_5m_tokens, ?::BIGINT AS cache_write_1h_tokens, ?::BOOLEAN AS is_batch, "
                "?::VARCHAR AS inference_geo, 'standard' AS speed, 0 AS web_search_requests, "
                "NULL::VARCHAR AS side_model",
                [model, inp, out, read, w5, w1, batch, geo])
    sql = con.execute(f"SELECT {token_cost_sql('a', 'p')}, p.band_threshold FROM a {PRICE_JOIN.format(a='a')}"
                      ).fetchone()
    row = next(r for r in sorted(TABLE.price, key=lambda r: r.valid_from)[::-1]
               if r.model == model and r.valid_from <= dt.date(2026, 11, 2))
    banded = row.band_threshold is not None and inp + read + w5 + w1 > row.band_threshold
    python = token_cost(row, {"input_tokens": inp, "output_tokens": out, "cache_read_tokens": read,
                              "cache_write_5m_tokens": w5, "cache_write_1h_tokens": w1},
                        banded=banded, batch=batch, geo_us=geo == "us")
    assert sql[0] == pytest.approx(python, rel=1e-12, abs=1e-12)


def test_a_hand_computed_cost_at_the_published_opus_prices():
    row = next(r for r in TABLE.price if r.model == "claude-opus-4-8")
    usd = token_cost(row, {"input_tokens": 1000, "output_tokens": 100, "cache_read_tokens": 200,
                           "cache_write_5m_tokens": 300, "cache_write_1h_tokens": 400},
                     banded=False, batch=True, geo_us=True)
    assert usd == pytest.approx((1000 * 5 + 100 * 25 + 200 * 0.5 + 300 * 6.25 + 400 * 10) / 1e6 * 0.5 * 1.1)


def test_fast_mode_on_a_model_without_fast_prices_is_unpriced_never_the_standard_price():
    con = duckdb.connect()
    install_price_rows(con, TABLE)
    con.execute("CREATE TABLE a AS SELECT * FROM (VALUES ('claude-sonnet-4-5', 'fast'), ('claude-sonnet-4-5', NULL),"
                " ('claude-opus-4-8', 'fast')) v(model, speed)")
    got = con.execute(
        f"SELECT {attempt_cost_sql('a', 'p')} FROM (SELECT *, TIMESTAMPTZ '2026-11-02 10:00:00+00' AS ts, "
        "1000 AS input_tokens, 100 AS output_tokens, 0 AS cache_read_tokens, 0 AS cache_write_5m_tokens, "
        "0 AS cache_write_1h_tokens, false AS is_batch, NULL AS inference_geo, 0 AS web_search_requests, "
        "NULL::VARCHAR AS side_model, NULL::BIGINT AS side_input_tokens, NULL::BIGINT AS side_output_tokens, "
        "NULL::BIGINT AS side_cache_read_tokens, NULL::BIGINT AS side_cache_write_5m_tokens, "
        "NULL::BIGINT AS side_cache_write_1h_tokens, "
        f"'ok' AS outcome, true AS had_output FROM a) a {PRICE_JOIN.format(a='a')} ORDER BY a.model DESC, a.speed"
    ).fetchall()
    assert got[0][0] is None  # sonnet fast: no fast prices
    assert got[1][0] == pytest.approx((1000 * 3 + 100 * 15) / 1e6)  # sonnet standard
    assert got[2][0] == pytest.approx((1000 * 10 + 100 * 50) / 1e6)  # opus fast: 10 / 50
