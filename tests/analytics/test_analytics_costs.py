"""Cost (docs/metrics.md §6.3): spend, unpriced attempts, overhead, the top-tier counterfactual and start-tier advice.

Prices used (USD per million tokens: input / 5m write / 1h write / read / output):
claude-opus-4-8 5 / 6.25 / 10 / 0.50 / 25, claude-sonnet-4-5 3 / 3.75 / 6 / 0.30 / 15, claude-haiku-4-5
1 / 1.25 / 2 / 0.10 / 5, claude-haiku-5-5 0.10 / 0.125 / 0.20 / 0.01 / 0.50 up to 100k prompt tokens and
0.50 / 0.625 / 1.00 / 0.05 / 2.50 above.
"""

from __future__ import annotations

import math

import pytest

from analytics.collect import collect
from analytics.common import Rate
from analytics.costs import costs, start_tier_advice
from fallbackscope.core.policy import parse_policy_toml

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"


def null(value) -> bool:
    """True for a missing value, whether a DataFrame holds it as None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _policy(chain: list[str], workload: str = "default"):
    models = ", ".join(f'"{m}"' for m in chain)
    return parse_policy_toml(f"[workloads.{workload}]\nchain = [{models}]\n")


def _total(adb, **kw):
    return costs(collect(adb.writer, **kw), by=None).iloc[0]


def test_cost_sums_priced_attempts_and_counts_unpriced_ones(adb):
    adb.chain("a", "2026-03-02 10:00", (S, "ok", {"cost_usd": 0.01}))
    adb.chain("b", "2026-03-02 10:05", ("claude-mystery-9", "ok", {"cost_usd": None, "input_tokens": 50}))
    adb.chain("c", "2026-03-02 10:10", (H, "refusal", {"cost_usd": 0.0}))
    row = _total(adb)
    assert row["cost_usd"] == pytest.approx(0.01)  # 0.01 + 0.0; the unknown model adds nothing …
    assert row["unpriced_attempts"] == 1  # … and is counted instead
    assert row["blended_cost_per_request"] == pytest.approx(0.01 / 3)


def test_a_workload_whose_attempts_are_all_unpriced_has_no_cost_never_zero(adb):
    adb.chain("a", "2026-03-02 10:00", ("claude-mystery-9", "ok", {"cost_usd": None, "input_tokens": 50}))
    row = _total(adb)
    assert null(row["cost_usd"])
    assert null(row["blended_cost_per_request"])
    assert row["unpriced_attempts"] == 1


def test_escalation_overhead_is_the_cost_before_the_resolver(adb):
    adb.chain("c1", "2026-03-02 10:00", (H, "refusal", {"cost_usd": 0.002, "had_output": True}),
              (S, "ok", {"cost_usd": 0.01}))
    adb.chain("c2", "2026-03-02 10:05", (H, "error", {"cost_usd": 0.001}), (S, "refusal", {"cost_usd": 0.003}))
    adb.chain("c3", "2026-03-02 10:10", (S, "error", {"cost_usd": 0.005}), (S, "ok", {"cost_usd": 0.01}))
    # c1 escalated and resolved: 0.002; c2 escalated, unresolved: all of it, 0.001 + 0.003;
    # c3 only retried on the same model: not escalated → 0.002 + 0.004 = 0.006
    assert _total(adb)["escalation_overhead_usd"] == pytest.approx(0.006)


def test_top_tier_counterfactual_prices_resolver_tokens_at_the_last_declared_tier(adb):
    adb.chain("r1", "2026-03-02 10:00", (H, "ok", {"input_tokens": 1000, "output_tokens": 200}))
    adb.chain("r2", "2026-03-02 10:05", (H, "refusal"),
              (S, "ok", {"input_tokens": 2000, "output_tokens": 100, "cache_read_tokens": 1000,
                         "cache_write_5m_tokens": 400, "is_batch": True}))
    adb.chain("r3", "2026-03-02 10:10", (H, "ok", {"input_tokens": 1000, "inference_geo": "us"}))
    adb.chain("u", "2026-03-02 10:15", (H, "refusal", {"input_tokens": 9999}))  # unresolved: not counted
    row = _total(adb, policy=_policy([H, S, OP]))
    # at opus-4-8: r1 (1000×5 + 200×25)/1e6 = 0.01
    #              r2 (2000×5 + 100×25 + 1000×0.5 + 400×6.25)/1e6 = 0.0155, ×0.5 batch = 0.00775
    #              r3 1000×5/1e6 = 0.005, ×1.1 us = 0.0055
    assert row["top_tier_counterfactual_usd"] == pytest.approx(0.01 + 0.00775 + 0.0055)
    assert row["counterfactual_unpriced"] == 0


def test_top_tier_without_a_declared_chain_is_the_highest_input_price_model_seen(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal"), (S, "refusal"))
    adb.chain("b", "2026-03-02 10:05", (H, "ok", {"input_tokens": 1_000_000}))
    facts = collect(adb.writer)
    assert facts.top_tier == {"default": S}  # sonnet input 3 > haiku 1
    # b's resolver at sonnet: 1e6 × 3 / 1e6 = 3.00
    assert costs(facts, by=None).iloc[0]["top_tier_counterfactual_usd"] == pytest.approx(3.0)


def test_counterfactual_uses_the_prompt_size_band_of_each_resolver(adb):
    adb.chain("small", "2026-03-02 10:00", (H, "ok", {"input_tokens": 50_000}))
    adb.chain("big", "2026-03-02 10:05", (H, "ok", {"input_tokens": 150_000}))
    row = _total(adb, policy=_policy([H, "claude-haiku-5-5"]))
    # small: 50,000 × 0.10 / 1e6 = 0.005; big (> 100k): 150,000 × 0.50 / 1e6 = 0.075
    assert row["top_tier_counterfactual_usd"] == pytest.approx(0.005 + 0.075)


def test_counterfactual_at_an_unpriced_top_tier_is_null_not_zero(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "ok", {"input_tokens": 100}))
    row = _total(adb, policy=_policy([H, "claude-mystery-9"]))
    assert null(row["top_tier_counterfactual_usd"])
    assert row["counterfactual_unpriced"] == 1


def test_start_tier_advice_says_start_higher_keep_or_insufficient_data(adb):
    # workload "up": 20 chains start at haiku; 18 refuse there (cost 0.009) and are answered by sonnet
    # (0.01); 2 are answered by haiku (0.009). c_haiku = 0.009, c_sonnet = 0.01 → break-even = 1 − 0.9 = 0.1;
    # e = 18/20 = 0.9 with Wilson lower bound ≈ 0.699 > 0.1 → start_higher
    for i in range(20):
        steps = [(H, "refusal", {"cost_usd": 0.009, "had_output": True}), (S, "ok", {"cost_usd": 0.01})] if i < 18 \
            else [(H, "ok", {"cost_usd": 0.009})]
        adb.chain(f"up{i}", f"2026-03-02 10:{i:02d}", *steps, workload="up")
    # workload "keep": 20 chains answered at haiku (0.005), 2 chains that start at sonnet (0.01)
    # → break-even = 1 − 0.005/0.01 = 0.5; e = 0/20 with upper bound 3.841459/23.841459 = 0.161 < 0.5 → keep
    for i in range(20):
        adb.chain(f"k{i}", f"2026-03-02 11:{i:02d}", (H, "ok", {"cost_usd": 0.005}), workload="keep")
    for i in range(2):
        adb.chain(f"ks{i}", f"2026-03-02 12:{i:02d}", (S, "ok", {"cost_usd": 0.01}), workload="keep")
    policy = parse_policy_toml(
        f'[workloads.up]\nchain = ["{H}", "{S}"]\n[workloads.keep]\nchain = ["{H}", "{S}", "{OP}"]\n'
        f'[workloads.none]\nrefusal_slo = 0.1\n')
    advice = start_tier_advice(collect(adb.writer, policy=policy))
    rows = {(r["workload"], r["from_model"]): r for r in advice.to_dict("records")}
    up = rows[("up", H)]
    assert up["climb_rate"] == pytest.approx(0.9)
    assert up["ci95_low"] == pytest.approx(Rate.of(18, 20).ci95_low)
    assert up["break_even"] == pytest.approx(0.1)
    assert up["advice"] == "start_higher"
    keep = rows[("keep", H)]
    assert (keep["climb_rate"], keep["break_even"]) == (0.0, pytest.approx(0.5))
    assert keep["ci95_high"] == pytest.approx(3.841459 / 23.841459, abs=1e-6)
    assert keep["advice"] == "keep"
    # no chain starts at opus' predecessor sonnet? two do, but opus was never used: no c_{k+1}
    assert rows[("keep", S)]["to_model"] == OP
    assert null(rows[("keep", S)]["break_even"])
    assert rows[("keep", S)]["advice"] == "insufficient_data"
    assert {w for w, _ in rows} == {"up", "keep"}  # workloads without a declared chain get no advice


def test_start_tier_advice_without_chains_starting_at_k_is_insufficient(adb):
    adb.chain("a", "2026-03-02 10:00", (S, "ok", {"cost_usd": 0.01}))
    adb.chain("b", "2026-03-02 10:01", (H, "refusal", {"cost_usd": 0.002, "had_output": True}),
              (S, "ok", {"cost_usd": 0.01}), workload="other")
    advice = start_tier_advice(collect(adb.writer, policy=_policy([H, S])))
    row = advice.iloc[0]
    assert (row["from_model"], row["to_model"], row["chains_starting"]) == (H, S, 0)
    assert null(row["climb_rate"])
    assert row["advice"] == "insufficient_data"


def test_costs_by_workload_name_each_top_tier(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "ok", {"cost_usd": 0.001}), workload="chat")
    adb.chain("b", "2026-03-02 10:00", (S, "ok", {"cost_usd": 0.002}), workload="docs")
    per = costs(collect(adb.writer, policy=_policy([H, S, OP], "chat")), by="workload").set_index("workload")
    assert per.loc["chat", "top_tier"] == OP and per.loc["docs", "top_tier"] == S
    assert per.loc["docs", "cost_usd"] == pytest.approx(0.002)
