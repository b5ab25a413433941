"""The weekly JSON report (docs/metrics.md §7.1): exactly its keys, its default week, empty databases and weeks."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from fallbackscope.core.policy import parse_policy_toml
from fallbackscope.render.report import default_week, weekly_report

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"

TOP_KEYS = {"week", "start", "end", "totals", "refusal_rate", "session_refusal_rate", "previous_week", "drift",
            "refusals_by_category", "refusals_by_model", "workloads", "errors", "cache_credit", "policy_violations",
            "coverage", "warnings"}
RATE_KEYS = {"value", "numerator", "denominator", "ci95_low", "ci95_high"}
WORKLOAD_KEYS = {"workload", "chains", "attempts", "unpriced_attempts", "cost_incomplete_attempts", "sessions",
                 "refusal_rate",
                 "session_refusal_rate", "slo", "slo_source", "slo_met", "unknown_stop_attempts", "fallback_rate",
                 "escalation_rate", "unresolved_rate", "resolution", "cost_usd", "blended_cost_per_request",
                 "escalation_overhead_usd", "top_tier_counterfactual_usd", "start_tier_advice"}
CREDIT_KEYS = {"credits_minted", "credits_unredeemable", "redeemed", "rejected", "unconfirmed", "expired", "forfeited",
               "redemption_rate", "credited_tokens", "savings_usd", "missed_savings_usd", "unpriced_credits"}


def _two_weeks(adb):
    # week 10 (2026-03-02 … 03-08): 10 chains, 1 refused; week 11: 10 chains, 4 refused
    for i in range(10):
        adb.chain(f"a{i}", f"2026-03-03 10:{i:02d}", (H, "refusal" if i < 1 else "ok", {"cost_usd": 0.001}),
                  workload="chat", session_id=f"s{i // 2}")
    for i in range(10):
        steps = [(H, "refusal", {"cost_usd": 0.001, "refusal_category": "cyber"}), (S, "ok", {"cost_usd": 0.01})] \
            if i < 4 else [(H, "ok", {"cost_usd": 0.001, "input_tokens": 100})]
        adb.chain(f"b{i}", f"2026-03-10 10:{i:02d}", *steps, workload="chat", session_id=f"t{i // 2}")
    adb.chain("err", "2026-03-11 09:00", (S, "error", {"error_class": "overloaded"}), (S, "ok"), workload="docs")


def test_report_has_exactly_the_stable_keys(adb):
    _two_weeks(adb)
    policy = parse_policy_toml(f"[workloads.chat]\nchain = ['{H}', '{S}', '{OP}']\nrefusal_slo = 0.3\n")
    report = weekly_report(adb.writer, "2026-W11", policy)
    assert set(report) == TOP_KEYS
    assert set(report["totals"]) == {"attempts", "chains", "sessions", "cost_usd", "unpriced_attempts",
                                       "unknown_stop_attempts", "cost_incomplete_attempts"}
    assert set(report["refusal_rate"]) == RATE_KEYS and set(report["session_refusal_rate"]) == RATE_KEYS
    assert set(report["previous_week"]) == {"refusal_rate", "coverage"}
    assert set(report["previous_week"]["refusal_rate"]) == RATE_KEYS
    assert set(report["drift"]) == {"delta", "z", "p_value", "significant"}
    assert all(set(c) == {"category", "refused_attempts", "share"} for c in report["refusals_by_category"])
    assert all(set(m) == {"model", "attempts", "refused_attempts", "attempt_refusal_rate"}
               for m in report["refusals_by_model"])
    assert all(set(w) == WORKLOAD_KEYS for w in report["workloads"])
    for w in report["workloads"]:
        assert all(set(r) == {"model", "share"} for r in w["resolution"])
        assert all(set(a) == {"from_model", "to_model", "escalation_rate", "break_even", "advice"}
                   for a in w["start_tier_advice"])
    assert all(set(e) == {"error_class", "attempts"} for e in report["errors"])
    assert set(report["cache_credit"]) == CREDIT_KEYS
    assert all(set(v) == {"kind", "workload", "count"} for v in report["policy_violations"])
    json.dumps(report)  # plain JSON values only


def test_report_numbers_for_a_hand_made_week(adb):
    _two_weeks(adb)
    policy = parse_policy_toml(f"[workloads.chat]\nchain = ['{H}', '{S}', '{OP}']\nrefusal_slo = 0.3\n")
    report = weekly_report(adb.writer, "2026-W11", policy)
    assert (report["week"], report["start"], report["end"]) == ("2026-W11", "2026-03-09T00:00:00Z",
                                                                  "2026-03-16T00:00:00Z")
    # chains: 10 chat + 1 docs; attempts 14 + 2; sessions t0..t4 + chain:err; cost 4×0.011 + 6×0.001
    assert report["totals"] == {"attempts": 16, "chains": 11, "sessions": 6, "cost_usd": pytest.approx(0.05),
                                "unpriced_attempts": 0, "unknown_stop_attempts": 0,
                                "cost_incomplete_attempts": 0}
    assert report["refusal_rate"]["numerator"] == 4 and report["refusal_rate"]["denominator"] == 11
    # sessions: t0 (b0, b1 refused), t1 (b2, b3 refused) → 2 of 6
    assert (report["session_refusal_rate"]["numerator"], report["session_refusal_rate"]["denominator"]) == (2, 6)
    assert report["previous_week"]["refusal_rate"]["numerator"] == 1
    assert report["drift"]["delta"] == pytest.approx(4 / 11 - 1 / 10)
    assert report["refusals_by_category"] == [{"category": "cyber", "refused_attempts": 4, "share": 1.0}]
    by_model = {m["model"]: m for m in report["refusals_by_model"]}
    assert (by_model[H]["attempts"], by_model[H]["refused_attempts"]) == (10, 4)
    assert report["errors"] == [{"error_class": "overloaded", "attempts": 1}]
    chat = next(w for w in report["workloads"] if w["workload"] == "chat")
    assert (chat["chains"], chat["sessions"], chat["refusal_rate"]) == (10, 5, 0.4)
    assert (chat["slo"], chat["session_refusal_rate"], chat["slo_met"]) == (0.3, 0.4, False)
    assert chat["resolution"] == [{"model": H, "share": 0.6}, {"model": S, "share": 0.4}, {"model": OP, "share": 0.0},
                                  {"model": "unresolved", "share": 0.0}]
    # blended = (4 × 0.011 + 6 × 0.001) / 10 = 0.005; overhead = 4 × 0.001 (the refused haiku attempts)
    assert chat["blended_cost_per_request"] == pytest.approx(0.005)
    assert chat["escalation_overhead_usd"] == pytest.approx(0.004)
    # counterfactual at opus: the six haiku answers had 100 input tokens each → 6 × 100 × 5 / 1e6
    assert chat["top_tier_counterfactual_usd"] == pytest.approx(6 * 100 * 5 / 1e6)
    assert [(a["from_model"], a["to_model"]) for a in chat["start_tier_advice"]] == [(H, S), (S, OP)]
    assert chat["start_tier_advice"][0]["escalation_rate"] == 0.4


def test_report_of_an_empty_database_has_every_key_and_nothing_in_it(adb):
    report = weekly_report(adb.writer, "2026-W11")
    assert set(report) == TOP_KEYS
    assert report["totals"] == {"attempts": 0, "chains": 0, "sessions": 0, "cost_usd": 0.0, "unpriced_attempts": 0,
                                "unknown_stop_attempts": 0, "cost_incomplete_attempts": 0}
    assert report["warnings"] == [f"no data: no chain started in {report['week']}."]
    assert report["refusal_rate"] == {"value": None, "numerator": 0, "denominator": 0, "ci95_low": None,
                                      "ci95_high": None}
    assert report["previous_week"] is None and report["drift"] is None
    assert report["workloads"] == [] and report["errors"] == [] and report["policy_violations"] == []
    assert report["cache_credit"]["credits_minted"] == 0 and report["cache_credit"]["redemption_rate"] is None
    json.dumps(report)


def test_report_of_a_week_without_traffic_between_busy_weeks(adb):
    adb.chain("a", "2026-03-03 10:00", (H, "refusal"), (S, "ok"))
    adb.chain("b", "2026-03-17 10:00", (H, "ok"))
    report = weekly_report(adb.writer, "2026-W11")
    assert report["totals"]["chains"] == 0 and report["refusal_rate"]["value"] is None
    assert report["previous_week"]["refusal_rate"]["numerator"] == 1
    assert report["drift"] is None  # this week has no chains
    following = weekly_report(adb.writer, "2026-W12")
    assert following["previous_week"] is None and following["drift"] is None


def test_default_week_is_the_last_week_that_ended_before_the_latest_attempt(adb):
    assert default_week(adb.writer, today=dt.date(2026, 3, 11)) == dt.date(2026, 3, 9)  # empty: this week
    adb.chain("a", "2026-03-12 10:00", (H, "ok"))
    assert default_week(adb.writer) == dt.date(2026, 3, 9)  # only one week of data: that week
    adb.chain("b", "2026-03-03 10:00", (H, "ok"))
    assert default_week(adb.writer) == dt.date(2026, 3, 2)  # the week before the latest attempt's
    assert weekly_report(adb.writer)["week"] == "2026-W10"
