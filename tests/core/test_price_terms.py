"""The cost of each token column (`token_term_sql`, used by billing reconciliation, docs/metrics.md §10) is the
attempt cost's own term: the five add up to `token_cost_sql` without web searches, band, fast mode, batch and
geo included; and `not_charged_sql` is the rule `attempt_cost_sql` charges nothing by."""

from __future__ import annotations

import duckdb
import pytest

from fallbackscope.core.prices import (
    PRICE_COLUMNS,
    TOKEN_PRICES,
    default_toml,
    install_price_rows,
    not_charged_sql,
    parse_price_toml,
    token_cost_sql,
    token_term_sql,
)

COLUMNS = [column for column, _ in TOKEN_PRICES]
#: (model, speed, is_batch, inference_geo, input, 5m writes, 1h writes, reads, output)
CASES = [
    ("claude-sonnet-4-5", None, False, None, 1_000, 200, 300, 4_000, 500),
    ("claude-sonnet-4-5", None, True, "us", 1_000, 200, 300, 4_000, 500),
    ("claude-opus-4-8", "fast", False, "global", 2_000, 100, 50, 1_000, 700),
    ("claude-haiku-5-5", None, False, None, 90_000, 5_000, 4_000, 2_000, 100),  # 101k prompt tokens: the band
    ("claude-haiku-5-5", None, False, None, 90_000, 5_000, 4_000, 1_000, 100),  # 100k: not above the band
]


@pytest.fixture
def con():
    con = duckdb.connect()
    install_price_rows(con, parse_price_toml(default_toml()))
    con.execute("CREATE TABLE a (model VARCHAR, speed VARCHAR, is_batch BOOLEAN, inference_geo VARCHAR, "
                + ", ".join(f"{c} BIGINT" for c in COLUMNS) + ", web_search_requests BIGINT)")
    yield con
    con.close()


def costs(con, case) -> tuple[float, list[float]]:
    model, speed, batch, geo, inp, w5, w1, read, out = case
    con.execute("DELETE FROM a")
    con.execute("INSERT INTO a VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 7)",
                [model, speed, batch, geo, inp, w5, w1, read, out])
    terms = ", ".join(token_term_sql("a", "p", c) for c in COLUMNS)
    row = con.execute(f"SELECT {token_cost_sql('a', 'p', searches=False)}, {terms} FROM a "
                      "LEFT JOIN price_rows p ON a.model = p.model").fetchone()
    return row[0], list(row[1:])


@pytest.mark.parametrize("case", CASES)
def test_the_terms_of_the_token_columns_add_up_to_the_token_cost(con, case):
    whole, terms = costs(con, case)
    assert whole is not None and whole > 0
    assert sum(terms) == pytest.approx(whole, rel=1e-12)


def test_a_term_is_its_column_at_its_price(con):
    # sonnet, batch and us: 1M 1h writes at $6/M × 0.5 × 1.1
    _, terms = costs(con, ("claude-sonnet-4-5", None, True, "us", 0, 0, 1_000_000, 0, 0))
    assert terms[COLUMNS.index("cache_write_1h_tokens")] == pytest.approx(6 * 0.5 * 1.1)


def test_a_term_without_a_price_is_null_and_no_tokens_cost_nothing(con):
    _, terms = costs(con, ("claude-unknown-9", None, False, None, 1_000, 0, 0, 0, 0))
    assert terms == [None, 0.0, 0.0, 0.0, 0.0]
    _, fast = costs(con, ("claude-sonnet-4-5", "fast", False, None, 1_000, 0, 0, 0, 10))  # no fast prices
    assert fast[0] is None and fast[-1] is None


@pytest.mark.parametrize(("batch", "outcome", "had_output", "charged"), [
    (True, "canceled", False, False), (True, "expired", False, False), (False, "refusal", False, False),
    (False, "refusal", True, True), (False, "ok", True, True), (True, "ok", True, True),
    (False, "canceled", False, True),
])
def test_not_charged_is_a_batch_result_never_run_or_a_refusal_before_output(batch, outcome, had_output, charged):
    con = duckdb.connect()
    got = con.execute(f"SELECT NOT {not_charged_sql('a')} FROM (SELECT ? AS is_batch, ? AS outcome, "
                      "? AS had_output) a", [batch, outcome, had_output]).fetchone()[0]
    assert got is charged
    con.close()


def test_price_columns_cover_the_token_prices():
    assert {name for _, name in TOKEN_PRICES} <= set(PRICE_COLUMNS)
