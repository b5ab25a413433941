"""Billing reconciliation (docs/metrics.md §10), computed by hand: billed vs logged tokens per day × model × token
type, coverage, unbilled usage, billed vs computed USD, the gap split into what coverage explains and the price
gap with the token type that carries it, an unpriced model, items listed apart, the weekly report's key.

Default list prices (USD per million: input / 5m write / 1h write / cache read / output): claude-sonnet-4-5
3 / 3.75 / 6 / 0.30 / 15, claude-opus-4-8 5 / … / 25, claude-haiku-4-5 1 / … / 5; web search $0.01.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from analytics import reconcile as rec
from fallbackscope.billing import store_bill
from fallbackscope.core import store
from fallbackscope.core.periods import Period
from fallbackscope.render.report import compute_weekly
from fallbackscope.render.weekly import render_md

D1, D2, D3 = dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 4)  # Monday to Wednesday of 2026-W10
WEEK = Period.week(D1)


def usage(day, model, tier="standard", **tokens) -> rec.BilledUsage:
    return rec.BilledUsage(day, model, tier, **tokens)


def cost(day, cents: str, model=None, token_type=None, cost_type="tokens", tier="standard", description=None):
    return rec.BilledCost(day, cost_type, Decimal(cents) / 100, model=model, token_type=token_type,
                          raw_token_type=token_type, service_tier=tier, description=description)


@pytest.fixture
def reconciled(adb):
    """Logs of three days and a bill that matches, misses, and misprices them; stored with store_bill."""
    sonnet, opus, haiku = "claude-sonnet-4-5", "claude-opus-4-8", "claude-haiku-4-5"
    # day 1: an exact match on sonnet: 100k input, 20k output, 50k reads, 10k 5m writes, and a batch attempt
    # with 20k input (×0.5); a refusal before any output and a bedrock attempt are not charged / not anthropic
    adb.add("c1", 1, "2026-03-02 09:00", sonnet, input_tokens=100_000, output_tokens=20_000,
            cache_read_tokens=50_000, cache_write_5m_tokens=10_000)
    adb.add("c2", 1, "2026-03-02 10:00", sonnet, is_batch=True, service_tier="batch", input_tokens=20_000)
    adb.add("c3", 1, "2026-03-02 11:00", sonnet, "refusal", had_output=False, input_tokens=5_000)
    adb.add("c4", 1, "2026-03-02 12:00", sonnet, surface="bedrock", input_tokens=7_000)
    # day 2: opus logged 80k input, 8k output (computed $0.40 + $0.20) while the bill holds 25% more;
    # sonnet writes 40k tokens to the 1-hour cache (40k × $6 = $0.24), billed as such
    adb.add("c5", 1, "2026-03-03 09:00", opus, input_tokens=80_000, output_tokens=8_000)
    adb.add("c6", 1, "2026-03-03 10:00", sonnet, cache_write_1h_tokens=40_000)
    # day 3: haiku 200k input, 40k output ($0.20 + $0.20), 3 web searches; billed output at $6 instead of $5;
    # a model without a price; sonnet output nobody billed; a priority-tier attempt
    adb.add("c7", 1, "2026-03-04 09:00", haiku, input_tokens=200_000, output_tokens=40_000, web_search_requests=3)
    adb.add("c8", 1, "2026-03-04 10:00", "claude-mystery-1", input_tokens=10_000, output_tokens=1_000)
    adb.add("c9", 1, "2026-03-04 11:00", sonnet, output_tokens=5_000)
    adb.add("c10", 1, "2026-03-04 12:00", sonnet, service_tier="priority", input_tokens=1_000)
    adb.close()
    adb.bill = rec.Bill(D1, dt.date(2026, 3, 9), usage=(
        usage(D1, "claude-sonnet-4-5-20250929", uncached_input=100_000, output=20_000, cache_read=50_000,
              cache_write_5m=10_000),
        usage(D1, "claude-sonnet-4-5-20250929", "batch", uncached_input=20_000),
        usage(D2, "claude-opus-4-8", uncached_input=100_000, output=10_000),
        usage(D2, "claude-sonnet-4-5-20250929", cache_write_1h=40_000),
        usage(D3, "claude-haiku-4-5-20251001", uncached_input=200_000, output=40_000, web_search=4),
        usage(D3, "claude-mystery-1", uncached_input=10_000, output=1_000),
        usage(D3, "claude-sonnet-4-5", "priority", uncached_input=1_000),
    ), costs=(
        cost(D1, "30", "claude-sonnet-4-5-20250929", "uncached_input"),
        cost(D1, "3", "claude-sonnet-4-5-20250929", "uncached_input", tier="batch"),
        cost(D1, "30", "claude-sonnet-4-5-20250929", "output"),
        cost(D1, "1.5", "claude-sonnet-4-5-20250929", "cache_read"),
        cost(D1, "3.75", "claude-sonnet-4-5-20250929", "cache_write_5m"),
        cost(D2, "50", "claude-opus-4-8", "uncached_input"),
        cost(D2, "25", "claude-opus-4-8", "output"),
        cost(D2, "24", "claude-sonnet-4-5-20250929", "cache_write_1h"),
        cost(D3, "20", "claude-haiku-4-5-20251001", "uncached_input"),
        cost(D3, "24", "claude-haiku-4-5-20251001", "output"),
        cost(D3, "10", "claude-mystery-1", "uncached_input"),
        cost(D3, "5", "claude-mystery-1", "output"),
        cost(D3, "4", cost_type="web_search", tier=None, description="Web Search Usage"),
        cost(D3, "7.5", cost_type="code_execution", tier=None, description="Code Execution Usage"),
    ))
    result = store_bill(adb.path, adb.bill)
    con = store.connect(adb.path, read_only=True)
    yield con, result
    con.close()


def row(con, day, model, token_type):
    found = con.execute("SELECT billed, logged, billed_usd, computed_usd FROM reconciliation WHERE day = ? AND "
                        "model IS NOT DISTINCT FROM ? AND token_type = ?", [day, model, token_type]).fetchall()
    assert len(found) == 1, (day, model, token_type, found)
    return found[0]


def day_model(frame, day, model):
    match = frame[(frame["day"].astype(str).str[:10] == str(day)) & (
        frame["model"].isna() if model is None else frame["model"] == model)]
    assert len(match) == 1, (day, model)
    return match.iloc[0]


def test_an_exact_day_has_coverage_1_and_no_gap(reconciled):
    con, result = reconciled
    # input: 100k standard + 20k batch billed and logged; $0.30 + $0.03 billed, 100k × 3 + 20k × 3 × 0.5 computed
    assert row(con, D1, "claude-sonnet-4-5", "uncached_input") == (120_000, 120_000, pytest.approx(0.33),
                                                                  pytest.approx(0.33))
    assert row(con, D1, "claude-sonnet-4-5", "output") == (20_000, 20_000, pytest.approx(0.30), pytest.approx(0.30))
    assert row(con, D1, "claude-sonnet-4-5", "cache_read") == (50_000, 50_000, pytest.approx(0.015),
                                                              pytest.approx(0.015))
    assert row(con, D1, "claude-sonnet-4-5", "cache_write_5m") == (10_000, 10_000, pytest.approx(0.0375),
                                                                  pytest.approx(0.0375))
    day1 = day_model(result.model_days, D1, "claude-sonnet-4-5")
    assert day1["billed_usd"] == pytest.approx(0.6825)
    assert day1["computed_usd"] == pytest.approx(0.6825)
    assert day1["coverage"] == pytest.approx(1.0)
    assert day1["explained_usd"] == pytest.approx(0.0)
    assert day1["price_gap_usd"] == pytest.approx(0.0, abs=1e-12)
    assert pd.isna(day1["gap_token_type"])


def test_a_quarter_more_billed_is_coverage_0_8_and_the_gap_is_explained(reconciled):
    con, result = reconciled
    assert row(con, D2, "claude-opus-4-8", "uncached_input") == (100_000, 80_000, pytest.approx(0.50),
                                                                pytest.approx(0.40))
    assert row(con, D2, "claude-opus-4-8", "output") == (10_000, 8_000, pytest.approx(0.25), pytest.approx(0.20))
    opus = day_model(result.model_days, D2, "claude-opus-4-8")
    # coverage 0.8 on both types, weighted by billed USD: 0.8; gap $0.75 − $0.60 = $0.15 = $0.75 × (1 − 0.8)
    assert opus["coverage"] == pytest.approx(0.8)
    assert opus["billed_usd"] - opus["computed_usd"] == pytest.approx(0.15)
    assert opus["explained_usd"] == pytest.approx(0.15)
    assert opus["price_gap_usd"] == pytest.approx(0.0, abs=1e-12)
    assert pd.isna(opus["gap_token_type"])


def test_one_hour_cache_writes_billed_and_logged_as_such_match(reconciled):
    con, result = reconciled
    # 40k × $6 (the 1h price; at the 5m price it would be $0.15)
    assert row(con, D2, "claude-sonnet-4-5", "cache_write_1h") == (40_000, 40_000, pytest.approx(0.24),
                                                                  pytest.approx(0.24))
    sonnet = day_model(result.model_days, D2, "claude-sonnet-4-5")
    assert (sonnet["coverage"], sonnet["price_gap_usd"]) == (pytest.approx(1.0), pytest.approx(0.0, abs=1e-12))


def test_a_rate_the_price_table_lacks_is_a_price_gap_on_its_token_type(reconciled):
    con, result = reconciled
    # output billed $0.24 for 40k tokens ($6/M) where the table says $5/M: computed $0.20
    assert row(con, D3, "claude-haiku-4-5", "output") == (40_000, 40_000, pytest.approx(0.24), pytest.approx(0.20))
    haiku = day_model(result.model_days, D3, "claude-haiku-4-5")
    assert haiku["coverage"] == pytest.approx(1.0)
    assert haiku["explained_usd"] == pytest.approx(0.0)
    assert haiku["price_gap_usd"] == pytest.approx(0.04)
    assert haiku["gap_token_type"] == "output"


def test_a_model_without_a_price_has_no_computed_cost_and_is_listed(reconciled):
    con, result = reconciled
    assert row(con, D3, "claude-mystery-1", "uncached_input") == (10_000, 10_000, pytest.approx(0.10), None)
    mystery = day_model(result.model_days, D3, "claude-mystery-1")
    assert pd.isna(mystery["computed_usd"]) and pd.isna(mystery["price_gap_usd"])
    assert bool(mystery["unpriced"])
    assert result.summary.unpriced_models == ("claude-mystery-1",)
    assert any("claude-mystery-1" in w for w in result.warnings)


def test_logged_usage_nobody_billed_is_unbilled(reconciled):
    con, result = reconciled
    assert row(con, D3, "claude-sonnet-4-5", "output") == (None, 5_000, None, pytest.approx(0.075))
    sonnet = day_model(result.model_days, D3, "claude-sonnet-4-5")
    assert sonnet["unbilled"] == 5_000
    # nothing billed to weigh a coverage by: nothing is explained, all of it is a price gap on output
    assert (sonnet["explained_usd"], sonnet["price_gap_usd"]) == (pytest.approx(0.0), pytest.approx(-0.075))
    assert sonnet["gap_token_type"] == "output"
    assert [(r["model"], r["token_type"], r["logged"]) for r in result.unbilled.to_dict("records")] == [
        ("claude-sonnet-4-5", "output", 5_000)]


def test_web_searches_are_compared_per_day(reconciled):
    con, result = reconciled
    assert row(con, D3, None, "web_search") == (4, 3, pytest.approx(0.04), pytest.approx(0.03))
    web = day_model(result.model_days, D3, None)
    # coverage 3/4: explained $0.04 × 0.25 = $0.01, price gap $0.04 × 0.75 − $0.03 = 0
    assert (web["coverage"], web["explained_usd"]) == (pytest.approx(0.75), pytest.approx(0.01))
    assert web["price_gap_usd"] == pytest.approx(0.0, abs=1e-12)


def test_priority_tier_and_code_execution_are_listed_apart_not_compared(reconciled):
    con, result = reconciled
    items = {(r["kind"], r["model"], r["token_type"]): r for r in result.apart.to_dict("records")}
    assert items[("priority_tier", "claude-sonnet-4-5", "uncached_input")]["billed"] == 1_000
    assert items[("priority_tier", "claude-sonnet-4-5", "uncached_input")]["logged"] == 1_000
    code = next(r for r in result.apart.to_dict("records") if r["kind"] == "code_execution")
    assert code["billed_usd"] == pytest.approx(0.075) and code["description"] == "Code Execution Usage"
    # the priority attempt's 1k input is not in the compared rows (no sonnet input row on day 3)
    assert con.execute("SELECT count(*) FROM reconciliation WHERE day = ? AND model = 'claude-sonnet-4-5' AND "
                       "token_type = 'uncached_input'", [D3]).fetchone()[0] == 0


def test_the_week_adds_up(reconciled):
    con, result = reconciled
    s = rec.period_summary(con, WEEK)
    # billed: 0.6825 + 0.75 + 0.24 + 0.44 + 0.15 (unpriced) + 0.04 (web); computed over the priced models:
    # 0.6825 + 0.60 + 0.24 + 0.40 + 0.075 (unbilled sonnet) + 0.03
    assert s.days == 3
    assert s.billed_usd == pytest.approx(2.3025)
    assert s.computed_usd == pytest.approx(2.0275)
    # coverage: Σ billed USD × coverage ÷ Σ billed USD = (2.3025 − 0.15 − 0.01) ÷ 2.3025
    assert s.coverage == pytest.approx(2.1425 / 2.3025)
    assert s.explained_usd == pytest.approx(0.16)
    assert s.price_gap_usd == pytest.approx(0.04 - 0.075)
    # billed − computed = explained + price gap + the unpriced model's billed USD
    assert s.billed_usd - s.computed_usd == pytest.approx(s.explained_usd + s.price_gap_usd + 0.15)
    assert result.summary == s
    days = rec.coverage_by_day(con, WEEK)
    assert [str(d)[:10] for d in days["day"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    assert list(days["coverage"]) == pytest.approx([1.0, (0.6 + 0.24) / 0.99, (0.44 + 0.15 + 0.03) / 0.63])
    assert list(days["unpriced_models"]) == [0, 0, 1]
    by_model = rec.gap_by_model(con, WEEK).fillna({"model": "web search"}).set_index("model")
    assert by_model.loc["claude-haiku-4-5", "gap_token_type"] == "output"
    assert by_model.loc["claude-sonnet-4-5", "price_gap_usd"] == pytest.approx(-0.075)


def test_the_weekly_report_carries_the_weeks_reconciliation(reconciled):
    con, _ = reconciled
    report = compute_weekly(con, "2026-W10").as_dict()
    assert list(report)[-1] == "reconciliation"
    assert report["reconciliation"]["coverage"] == pytest.approx(2.1425 / 2.3025)
    assert report["reconciliation"]["billed_usd"] == pytest.approx(2.3025)
    assert report["reconciliation"]["computed_usd"] == pytest.approx(2.0275)
    assert report["reconciliation"]["price_gap_usd"] == pytest.approx(-0.035)
    assert "reconciliation" not in compute_weekly(con, "2026-W11").as_dict()
    md = render_md(report)
    assert "- **Billing:** logs saw 93.1% of the billed usage on" in md and "price gap -$0.04" in md
    assert "Billing:" not in render_md(compute_weekly(con, "2026-W11").as_dict())


def test_a_second_run_replaces_its_days_without_duplicating_rows(reconciled, adb):
    con, first = reconciled
    query = "SELECT * EXCLUDE (fetched_at) FROM {} ORDER BY ALL"
    before = [con.execute(query.format(t)).fetchall() for t in ("reconciliation", "reconciliation_apart")]
    con.close()
    assert store_bill(adb.path, adb.bill).rows == first.rows
    again = store.connect(adb.path, read_only=True)
    try:
        assert [again.execute(query.format(t)).fetchall() for t in ("reconciliation", "reconciliation_apart")] \
            == before
    finally:
        again.close()
    # a bill that says less replaces the whole of its days
    store_bill(adb.path, rec.Bill(D1, D2, usage=(usage(D1, "claude-sonnet-4-5", uncached_input=120_000),)))
    last = store.connect(adb.path, read_only=True)
    try:
        rows = last.execute("SELECT model, token_type, billed, logged FROM reconciliation WHERE day = ?", [D1])
        assert sorted(rows.fetchall()) == [("claude-sonnet-4-5", "cache_read", 0, 50_000),
                                           ("claude-sonnet-4-5", "cache_write_5m", 0, 10_000),
                                           ("claude-sonnet-4-5", "output", 0, 20_000),
                                           ("claude-sonnet-4-5", "uncached_input", 120_000, 120_000)]
        assert last.execute("SELECT count(*) FROM reconciliation WHERE day > ?", [D1]).fetchone()[0] > 0
    finally:
        last.close()


def test_token_gaps_add_up_to_their_day_and_model(reconciled):
    con, result = reconciled
    gaps = rec.token_gaps(con, WEEK)
    priced = gaps[gaps["computed_usd"].notna()]
    for (day, model), part in priced.groupby(["day", "model"], dropna=False):
        whole = day_model(result.model_days, str(day)[:10], None if pd.isna(model) else model)
        billed, computed = part["billed_usd"].fillna(0).sum(), part["computed_usd"].sum()
        assert part["explained_usd"].sum() + part["price_gap_usd"].sum() == pytest.approx(billed - computed)
        assert part["explained_usd"].sum() == pytest.approx(whole["explained_usd"])


def test_usage_without_a_model_is_listed_apart_not_mixed_with_web_searches(adb):
    adb.add("w", 1, "2026-03-02 09:00", "claude-sonnet-4-5", web_search_requests=2)
    adb.close()
    bill = rec.Bill(D1, D2, usage=(usage(D1, None, uncached_input=500, web_search=2),))
    result = store_bill(adb.path, bill)
    con = store.connect(adb.path, read_only=True)
    try:
        assert con.execute("SELECT model, token_type, billed, logged FROM reconciliation").fetchall() == [
            (None, "web_search", 2, 2)]
    finally:
        con.close()
    assert [(r["kind"], r["token_type"], r["billed"]) for r in result.apart.to_dict("records")] == [
        ("no_model", "uncached_input", 500)]
