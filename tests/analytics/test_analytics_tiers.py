"""Fallback, tiers and escalation (docs/metrics.md §6.2) on hand-made chains."""

from __future__ import annotations

import pytest

from analytics.collect import collect
from analytics.tiers import (
    escalation_by_trigger,
    escalation_rate,
    fallback_rate,
    fallbacks_by_trigger,
    resolution,
    retry_rate,
    tier_order,
    unresolved_rate,
)
from fallbackscope.core.policy import parse_policy_toml

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"


def _five_chains(adb):
    adb.chain("c1", "2026-03-02 10:00", (H, "refusal"), (S, "ok"))  # escalated, fallback (resolved on sonnet)
    adb.chain("c2", "2026-03-02 10:10", (S, "ok", {"trigger": "pinned", "intended_model": H}))  # pinned fallback
    adb.chain("c3", "2026-03-02 10:20", (S, "error"), (S, "ok"))  # same-model retry: not a fallback
    adb.chain("c4", "2026-03-02 10:30", (H, "ok"))  # nothing happened
    adb.chain("c5", "2026-03-02 10:40", (H, "refusal"), (S, "refusal"))  # escalated, unresolved, no fallback


def _one(frame):
    row = frame.iloc[0]
    return int(row["numerator"]), int(row["denominator"])


def test_fallback_escalation_retry_and_unresolved_rates(adb):
    _five_chains(adb)
    facts = collect(adb.writer)
    assert _one(fallback_rate(facts)) == (2, 5)  # c1 (resolver sonnet ≠ first haiku) and c2 (pinned)
    assert _one(escalation_rate(facts)) == (2, 5)  # c1 and c5 moved to another model
    assert _one(retry_rate(facts)) == (1, 5)  # c3 retried on the same model
    assert _one(unresolved_rate(facts)) == (1, 5)  # c5 never succeeded
    assert fallback_rate(facts).iloc[0]["value"] == pytest.approx(0.4)


def test_quality_rejection_is_not_a_success(adb):
    adb.chain("q", "2026-03-02 10:00", (H, "ok", {"accepted": False}), (S, "ok"))
    facts = collect(adb.writer)
    assert _one(fallback_rate(facts)) == (1, 1)  # resolver is the sonnet attempt
    assert _one(unresolved_rate(facts)) == (0, 1)
    assert escalation_by_trigger(facts).set_index("trigger").loc["quality", "chains"] == 1
    adb.chain("q2", "2026-03-02 11:00", (H, "ok", {"accepted": False}))
    assert _one(unresolved_rate(collect(adb.writer))) == (1, 2)


def test_chain_of_five_attempts(adb):
    # k1 haiku 529, k2 haiku 529 (retry), k3 sonnet refusal (trigger overloaded), k4 opus answer rejected
    # (trigger refusal), k5 opus ok (trigger quality, a same-model retry). Costs 0.001 … 0.005.
    adb.chain("five", "2026-03-02 10:00",
              (H, "error", {"cost_usd": 0.001}), (H, "error", {"cost_usd": 0.002}),
              (S, "refusal", {"cost_usd": 0.003, "had_output": True}),
              (OP, "ok", {"accepted": False, "cost_usd": 0.004}), (OP, "ok", {"cost_usd": 0.005}))
    facts = collect(adb.writer)
    assert _one(fallback_rate(facts)) == (1, 1)  # resolver opus (k5) ≠ haiku
    assert _one(escalation_rate(facts)) == (1, 1)
    assert _one(retry_rate(facts)) == (1, 1)  # k2 and k5 repeat their predecessor's model: one chain
    assert _one(unresolved_rate(facts)) == (0, 1)
    # the first change of model is k3, made on trigger "overloaded"
    assert escalation_by_trigger(facts)[["trigger", "chains"]].values.tolist() == [["overloaded", 1]]
    # fallbacks (k ≥ 2 on another model than k−1): k3 (overloaded) and k4 (refusal); k2, k5 are retries
    per = fallbacks_by_trigger(facts).set_index("trigger")["fallbacks"].to_dict()
    assert per == {"overloaded": 1, "refusal": 1}
    share = resolution(facts).set_index("model")
    assert share.loc[OP, "chains_resolved"] == 1 and share.loc["unresolved", "chains_resolved"] == 0
    # overhead: everything before the resolver k5 = 0.001 + 0.002 + 0.003 + 0.004 = 0.010
    from analytics.costs import costs
    assert costs(facts, by=None).iloc[0]["escalation_overhead_usd"] == pytest.approx(0.010)


def test_resolution_share_follows_the_declared_tier_order_and_ends_with_unresolved(adb):
    _five_chains(adb)
    policy = parse_policy_toml(f'[workloads.default]\nchain = ["{H}", "{S}", "{OP}"]\n')
    res = resolution(collect(adb.writer, policy=policy))
    assert list(res["model"]) == [H, S, OP, "unresolved"]
    # resolved by haiku: c4 → 1/5; sonnet: c1, c2, c3 → 3/5; opus: none → 0/5; unresolved c5 → 1/5
    assert list(res["chains_resolved"]) == [1, 3, 0, 1]
    assert list(res["value"]) == pytest.approx([0.2, 0.6, 0.0, 0.2])
    assert list(res["tier"].astype(object).where(res["tier"].notna(), None)) == [1, 2, 3, None]


def test_tier_order_without_a_declared_chain_is_the_order_models_first_appear(adb):
    adb.chain("a", "2026-03-02 10:00", (S, "refusal"), (OP, "ok"))
    adb.chain("b", "2026-03-02 09:00", (H, "ok"))
    facts = collect(adb.writer)
    assert tier_order(facts, "default") == [H, S, OP]


def test_declared_chain_models_are_normalised_like_stored_models(adb):
    adb.chain("a", "2026-03-02 10:00", (S, "ok"))
    policy = parse_policy_toml('[workloads.default]\nchain = ["claude-sonnet-4-5-20250929", "claude-opus-4-8"]\n')
    facts = collect(adb.writer, policy=policy)
    assert facts.chains_of["default"] == (S, OP)
    assert tier_order(facts, "default") == [S, OP]


def test_rates_by_week_and_workload(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal"), (S, "ok"), workload="chat")
    adb.chain("b", "2026-03-09 10:00", (H, "ok"), workload="chat")
    adb.chain("c", "2026-03-09 10:00", (H, "ok"), workload="docs")
    facts = collect(adb.writer, session_key="week")
    got = fallback_rate(facts, by="week,workload")
    rows = {(r["week"], r["workload"]): (r["numerator"], r["denominator"]) for r in got.to_dict("records")}
    # every week × workload is listed; docs had no chain in week 10
    assert rows == {("2026-W10", "chat"): (1, 1), ("2026-W10", "docs"): (0, 0),
                    ("2026-W11", "chat"): (0, 1), ("2026-W11", "docs"): (0, 1)}
