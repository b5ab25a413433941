"""Refusal SLIs (docs/metrics.md §6.1) on small hand-made databases; the arithmetic is written next to each check."""

from __future__ import annotations

import math

import pytest

from analytics.collect import collect
from analytics.common import Rate
from analytics.refusals import (
    attempt_refusal_rate,
    period_refusal_rate,
    refusal_rate,
    refusals_by_category,
    session_refusal_rate,
    slo,
)
from analytics.rollup import compute_metrics
from analytics.summary import chain_table, present
from fallbackscope.core.periods import Period
from fallbackscope.core.policy import parse_policy_toml


def _four_chains(adb):
    # c1: refused then answered (refused chain); c2: error then refused (refused chain, refusal at k=2)
    # c3, c4: answered at once. Sessions: s1 = {c1, c2}, s2 = {c3}, c4 has no session (its own session).
    adb.chain("c1", "2026-03-02 10:00", ("claude-sonnet-4-5", "refusal"), ("claude-opus-4-8", "ok"), session_id="s1")
    adb.chain("c2", "2026-03-02 11:00", ("claude-sonnet-4-5", "error"), ("claude-sonnet-4-5", "refusal"),
              session_id="s1")
    adb.chain("c3", "2026-03-03 09:00", ("claude-sonnet-4-5", "ok"), session_id="s2")
    adb.chain("c4", "2026-03-04 09:00", ("claude-haiku-4-5", "ok"))


def test_refusal_rate_counts_chains_with_any_refused_attempt(adb):
    _four_chains(adb)
    rate = refusal_rate(collect(adb.writer)).iloc[0]
    # refused chains c1, c2 → 2 / 4 = 0.5
    assert (rate["numerator"], rate["denominator"], rate["value"]) == (2, 4, 0.5)
    assert rate["ci95_low"] == pytest.approx(Rate.of(2, 4).ci95_low)


def test_session_refusal_rate_counts_sessionless_chains_as_their_own_session(adb):
    _four_chains(adb)
    rate = session_refusal_rate(collect(adb.writer)).iloc[0]
    # sessions s1 (refused), s2, chain:c4 → 1 / 3
    assert (rate["numerator"], rate["denominator"]) == (1, 3)
    assert rate["value"] == pytest.approx(1 / 3)


def test_attempt_refusal_rate_is_per_model_over_ok_and_refusal_attempts(adb):
    _four_chains(adb)
    adb.chain("c5", "2026-03-04 10:00", ("claude-sonnet-4-5", "timeout"), ("claude-sonnet-4-5", "ok"))
    per = attempt_refusal_rate(collect(adb.writer)).set_index("model")
    # sonnet: refusals c1#1, c2#2; ok c3#1, c5#2 (errors and timeouts do not count) → 2 / 4
    assert (per.loc["claude-sonnet-4-5", "refused_attempts"], per.loc["claude-sonnet-4-5", "attempts"]) == (2, 4)
    assert per.loc["claude-sonnet-4-5", "value"] == 0.5
    # opus: one ok → 0 / 1; haiku: one ok → 0 / 1
    assert per.loc["claude-opus-4-8", "value"] == 0.0
    assert per.loc["claude-haiku-4-5", "attempts"] == 1


def test_refusals_by_category_shows_null_as_unspecified(adb):
    adb.chain("a", "2026-03-02 10:00", ("claude-sonnet-4-5", "refusal", {"refusal_category": "cyber"}))
    adb.chain("b", "2026-03-02 10:05", ("claude-sonnet-4-5", "refusal", {"refusal_category": "cyber"}))
    adb.chain("c", "2026-03-02 10:10", ("claude-sonnet-4-5", "refusal", {"refusal_category": "bio"}))
    adb.chain("d", "2026-03-02 10:15", ("claude-sonnet-4-5", "refusal"))
    cats = refusals_by_category(collect(adb.writer)).set_index("category")
    # 4 refused attempts: cyber 2 → 2/4, bio 1 → 1/4, unspecified 1 → 1/4
    assert cats["refused_attempts"].to_dict() == {"cyber": 2, "bio": 1, "unspecified": 1}
    assert cats.loc["cyber", "value"] == 0.5
    assert cats.loc["unspecified", "value"] == 0.25
    assert list(cats.index)[0] == "cyber"  # most refused first


def test_session_spanning_two_weeks_counts_in_both_and_is_refused_only_where_it_refused(adb):
    # s1: a refused chain on Sunday 2026-03-08 (week 10) and an answered chain on Monday 2026-03-09 (week 11)
    adb.chain("w10", "2026-03-08 23:50", ("claude-sonnet-4-5", "refusal"), ("claude-opus-4-8", "ok"),
              session_id="s1")
    adb.chain("w11", "2026-03-09 00:10", ("claude-sonnet-4-5", "ok"), session_id="s1")
    weekly = session_refusal_rate(collect(adb.writer, session_key="week"), by="week").set_index("week")
    # week 10: 1 session, refused → 1/1; week 11: the same session again, not refused there → 0/1
    assert (weekly.loc["2026-W10", "numerator"], weekly.loc["2026-W10", "denominator"]) == (1, 1)
    assert (weekly.loc["2026-W11", "numerator"], weekly.loc["2026-W11", "denominator"]) == (0, 1)
    # over both weeks it is one session, refused
    total = session_refusal_rate(collect(adb.writer)).iloc[0]
    assert (total["numerator"], total["denominator"]) == (1, 1)


def test_a_chain_belongs_to_the_week_of_its_first_attempt(adb):
    # the chain starts Sunday 23:59 of week 10; its refused second attempt is on Monday (week 11)
    adb.chain("late", "2026-03-08 23:59", ("claude-haiku-4-5", "error"), ("claude-haiku-4-5", "refusal"),
              gap=__import__("datetime").timedelta(minutes=2))
    weekly = refusal_rate(collect(adb.writer, session_key="week"), by="week").set_index("week")
    assert list(weekly.index) == ["2026-W10"]
    assert (weekly.loc["2026-W10", "numerator"], weekly.loc["2026-W10", "denominator"]) == (1, 1)
    # and the week-11 report does not see it at all
    assert period_refusal_rate(adb.writer, Period.of("2026-03-09", "2026-03-16")) == Rate.of(0, 0)
    assert period_refusal_rate(adb.writer, Period.of("2026-03-02", "2026-03-09")) == Rate.of(1, 1)


def test_a_session_in_two_workloads_counts_once_in_total_and_once_in_each(adb):
    adb.chain("a", "2026-03-02 10:00", ("claude-sonnet-4-5", "refusal"), session_id="s", workload="chat")
    adb.chain("b", "2026-03-02 10:05", ("claude-sonnet-4-5", "ok"), session_id="s", workload="search")
    facts = collect(adb.writer)
    per = session_refusal_rate(facts, by="workload").set_index("workload")
    assert (per.loc["chat", "numerator"], per.loc["chat", "denominator"]) == (1, 1)
    assert (per.loc["search", "numerator"], per.loc["search", "denominator"]) == (0, 1)
    total = session_refusal_rate(facts).iloc[0]
    assert (total["numerator"], total["denominator"]) == (1, 1)


def test_slo_is_met_when_the_session_rate_is_at_most_the_target_and_burn_is_rate_over_target(adb):
    _four_chains(adb)  # workload "default": 1 refused session of 3
    policy = parse_policy_toml("[workloads.default]\nrefusal_slo = 0.2\n")
    row = slo(collect(adb.writer, policy=policy)).iloc[0]
    # rate 1/3 = 0.333 > 0.2 → not met; burn = 0.3333 / 0.2 = 1.6667
    assert row["slo"] == 0.2
    assert bool(row["slo_met"]) is False
    assert row["burn_rate"] == pytest.approx((1 / 3) / 0.2)
    relaxed = slo(collect(adb.writer, policy=parse_policy_toml("[workloads.default]\nrefusal_slo = 0.5\n")))
    assert bool(relaxed.iloc[0]["slo_met"]) is True
    assert relaxed.iloc[0]["burn_rate"] == pytest.approx((1 / 3) / 0.5)


def test_default_slo_is_five_percent(adb):
    _four_chains(adb)
    assert slo(collect(adb.writer)).iloc[0]["slo"] == 0.05


def test_a_week_without_chains_has_a_null_rate_but_keeps_its_row(adb):
    adb.chain("a", "2026-03-02 10:00", ("claude-sonnet-4-5", "refusal"))
    adb.chain("b", "2026-03-16 10:00", ("claude-sonnet-4-5", "ok"))
    weekly = refusal_rate(collect(adb.writer, session_key="week"), by="week")
    assert list(weekly["week"]) == ["2026-W10", "2026-W11", "2026-W12"]
    empty = weekly.set_index("week").loc["2026-W11"]
    assert empty["denominator"] == 0 and math.isnan(empty["value"]) and math.isnan(empty["ci95_low"])


def test_attempts_without_a_stop_reason_are_counted_beside_the_refusal_rate(adb):
    # five calls logged with response bodies off (outcome ok, no stop reason) and one refusal: the rate
    # 1/6 is a lower bound, and says so through unknown_stop_attempts (docs/metrics.md §6.3)
    for i in range(5):
        adb.add(f"r{i}", 1, f"2026-03-02 10:0{i}", stop_reason=None)
    adb.add("x", 1, "2026-03-02 11:00", outcome="refusal")
    adb.add("y", 1, "2026-03-02 11:00")  # a normal answer: its stop reason is known
    adb.add("y", 2, "2026-03-02 11:00:10", stop_reason=None)  # a later attempt counts too
    total = present(chain_table(collect(adb.writer), None, False), None).iloc[0]
    assert (total["refused_chains"], total["chains"]) == (1, 7)
    assert total["unknown_stop_attempts"] == 6
    metrics = compute_metrics(adb.writer, by="workload")
    assert int(metrics["unknown_stop_attempts"].iloc[0]) == 6
