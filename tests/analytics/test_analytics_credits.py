"""Cache credits (docs/metrics.md §6.5): outcome classes, redemption rate, credited tokens, savings and missed savings.

claude-sonnet-4-5: 5m write 3.75, read 0.30 → 3.45 USD per million credited tokens;
claude-haiku-4-5: 5m write 1.25, read 0.10 → 1.15.
"""

from __future__ import annotations

import pytest

from analytics.collect import collect
from analytics.credits import credit_ladder, credit_outcomes, credit_summary

S, H = "claude-sonnet-4-5", "claude-haiku-4-5"


def _refusal(fp: str, **extra):
    return (S, "refusal", {"credit_minted_fp": fp} | extra)


def _credits(adb):
    # A: the first presentation fails (529), the second is redeemed → redeemed after 2 presentations;
    #    refused cache = read 1000 + write 500 = 1500, redeeming read 1200 → credited 1200
    adb.chain("cA", "2026-03-02 10:00", _refusal("A", cache_read_tokens=1000, cache_write_5m_tokens=500),
              (S, "error", {"credit_presented_fp": "A"}),
              (S, "ok", {"credit_presented_fp": "A", "credit_status": "redeemed", "cache_read_tokens": 1200}))
    # B: presented, 200 but not applied → rejected; next ok attempt writes 800 of refused 1000 → missed 800
    adb.chain("cB", "2026-03-02 10:10", _refusal("B", cache_write_5m_tokens=1000),
              (S, "ok", {"credit_presented_fp": "B", "credit_status": "not_applied", "credit_reason": "token_expired",
                         "cache_write_5m_tokens": 800}))
    # C: presented, 200 without any credit status → unconfirmed
    adb.chain("cC", "2026-03-02 10:20", _refusal("C"), (S, "ok", {"credit_presented_fp": "C"}))
    # D: retried exactly 5 minutes later without the credit → forfeited; missed min(2000, 300) = 300
    adb.add("cD", 1, "2026-03-02 10:30:00", S, "refusal", credit_minted_fp="D", cache_read_tokens=300)
    adb.add("cD", 2, "2026-03-02 10:35:00", S, "ok", cache_write_5m_tokens=2000)
    # E: the retry comes 5 minutes and 1 second later → expired
    adb.add("cE", 1, "2026-03-02 10:40:00", S, "refusal", credit_minted_fp="E")
    adb.add("cE", 2, "2026-03-02 10:45:01", S, "ok")
    # F: presented only by a failed attempt a minute later, nothing answered → forfeited, missed 0
    adb.add("cF", 1, "2026-03-02 10:50:00", S, "refusal", credit_minted_fp="F")
    adb.add("cF", 2, "2026-03-02 10:51:00", S, "error", credit_presented_fp="F")
    # G: minted in a batch result → unredeemable, no outcome
    adb.chain("cG", "2026-03-02 11:00", _refusal("G", is_batch=True))
    # H: redeemed by an attempt of another chain, a batch request on haiku served from `us`:
    #    refused cache = read 100 → credited min(5000, 100) = 100; savings 100 × 1.15 × 0.5 × 1.1 / 1e6
    adb.chain("cH", "2026-03-02 11:10", _refusal("H", cache_read_tokens=100))
    adb.chain("other", "2026-03-02 11:12", (H, "ok", {"credit_presented_fp": "H", "credit_status": "redeemed",
                                                    "cache_read_tokens": 5000, "is_batch": True,
                                                    "inference_geo": "us"}))


def test_each_credit_gets_the_first_outcome_that_holds(adb):
    _credits(adb)
    rows = credit_outcomes(collect(adb.writer, detail=True)).set_index("chain_id")
    assert rows["outcome"].to_dict() == {
        "cA": "redeemed", "cB": "rejected", "cC": "unconfirmed", "cD": "forfeited", "cE": "expired",
        "cF": "forfeited", "cG": None, "cH": "redeemed"}
    assert rows.loc["cB", "reason"] == "token_expired"


def test_credit_summary_counts_rates_tokens_and_savings(adb):
    _credits(adb)
    s = credit_summary(collect(adb.writer))
    assert (s.credits_minted, s.credits_unredeemable) == (8, 1)
    assert (s.redeemed, s.rejected, s.unconfirmed, s.forfeited, s.expired) == (2, 1, 1, 2, 1)
    # redemption rate = redeemed / (minted − unredeemable) = 2 / 7
    assert (s.redemption_rate.numerator, s.redemption_rate.denominator) == (2, 7)
    assert s.redemption_rate.value == pytest.approx(2 / 7)
    # credited tokens: A 1200 + H 100
    assert s.credited_tokens == 1300
    # savings: A 1200 × 3.45 / 1e6 = 0.00414; H 100 × 1.15 × 0.5 × 1.1 / 1e6 = 0.00006325
    assert s.savings_usd == pytest.approx(1200 * 3.45e-6 + 100 * 1.15e-6 * 0.5 * 1.1)
    # missed: B 800 × 3.45e-6 = 0.00276; D 300 × 3.45e-6 = 0.001035; F 0
    assert s.missed_savings_usd == pytest.approx(800 * 3.45e-6 + 300 * 3.45e-6)
    report = s.as_dict()
    assert report["redemption_rate"] == pytest.approx(2 / 7)
    assert set(report) == {"credits_minted", "credits_unredeemable", "redeemed", "rejected", "unconfirmed", "expired",
                           "forfeited", "redemption_rate", "credited_tokens", "savings_usd", "missed_savings_usd",
                           "unpriced_credits"}


def test_ladder_counts_presentations_of_redeemed_and_rejected_credits(adb):
    _credits(adb)
    ladder = credit_ladder(collect(adb.writer))
    assert ladder.values.tolist() == [["redeemed", 1, 1], ["redeemed", 2, 1], ["rejected", 1, 1]]


def test_a_credit_minted_in_a_batch_is_unredeemable_even_when_presented(adb):
    adb.chain("b", "2026-03-02 10:00", _refusal("X", is_batch=True),
              (S, "ok", {"credit_presented_fp": "X", "credit_status": "redeemed", "cache_read_tokens": 10}))
    s = credit_summary(collect(adb.writer))
    assert (s.credits_minted, s.credits_unredeemable, s.redeemed) == (1, 1, 0)
    assert s.redemption_rate.value is None  # 0 redeemable credits: a rate over nothing
    assert s.savings_usd == 0.0


def test_savings_at_an_unpriced_model_are_null_not_zero(adb):
    adb.chain("u", "2026-03-02 10:00", _refusal("U", cache_read_tokens=100),
              ("claude-mystery-9", "ok", {"credit_presented_fp": "U", "credit_status": "redeemed",
                                         "cache_read_tokens": 100, "cost_usd": None}))
    s = credit_summary(collect(adb.writer))
    assert s.redeemed == 1 and s.credited_tokens == 100
    assert s.savings_usd is None and s.unpriced_credits == 1


def test_no_credits_give_zero_counts_and_a_null_rate(adb):
    adb.chain("a", "2026-03-02 10:00", (S, "ok"))
    s = credit_summary(collect(adb.writer))
    assert (s.credits_minted, s.redeemed, s.savings_usd, s.missed_savings_usd) == (0, 0, 0.0, 0.0)
    assert s.redemption_rate.value is None


def test_credits_belong_to_the_week_of_their_chain(adb):
    from fallbackscope.core.periods import Period

    adb.add("late", 1, "2026-03-08 23:58:00", S, "error")
    adb.add("late", 2, "2026-03-09 00:01:00", S, "refusal", credit_minted_fp="L")
    week10 = credit_summary(collect(adb.writer, Period.of("2026-03-02", "2026-03-09")))
    week11 = credit_summary(collect(adb.writer, Period.of("2026-03-09", "2026-03-16")))
    assert (week10.credits_minted, week11.credits_minted) == (1, 0)
