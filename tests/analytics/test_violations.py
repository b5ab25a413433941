"""The policy in force and the violations counted against it (docs/metrics.md §5)."""

from __future__ import annotations

from analytics.collect import collect
from analytics.violations import violations
from fallbackscope.core.policy import (
    default_policy,
    parse_policy_toml,
    policy_in_force,
    resolve_policy,
)

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"

def test_the_policy_in_force_is_the_last_stored_one_else_the_default(adb):
    assert policy_in_force(adb.writer) == default_policy()
    adb.set_policy("[workloads.a]\nrefusal_slo = 0.1\n")
    adb.writer.execute("INSERT INTO policy VALUES (now() + INTERVAL 1 SECOND, 'second.toml', ?)",
                       ["[workloads.b]\nrefusal_slo = 0.2\n"])
    stored = policy_in_force(adb.writer)
    assert set(stored.workloads) == {"b"}
    # a policy given for the run replaces the stored one whole
    assert set(resolve_policy(adb.writer, parse_policy_toml("[workloads.c]\n")).workloads) == {"c"}


def _kinds(frame):
    return {(r["kind"], r["workload"]): r["count"] for r in frame.to_dict("records")}


def test_fallback_on_a_trigger_the_workload_does_not_allow_is_a_violation(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "error", {"error_class": "rate_limit"}), (S, "ok"), workload="chat")
    adb.chain("b", "2026-03-02 10:01", (H, "refusal"), (S, "ok"), workload="chat")
    adb.chain("c", "2026-03-02 10:02", (H, "error", {"error_class": "rate_limit"}), (H, "ok"), workload="chat")
    policy = parse_policy_toml("[workloads.chat]\nfallback_on = ['refusal']\n")
    # a: moved haiku → sonnet on rate_limit (not allowed) → 1; b: on refusal (allowed); c: same model, no fallback
    assert _kinds(violations(collect(adb.writer, policy=policy))) == {("fallback_on_disallowed_trigger", "chat"): 1}
    # the default policy allows rate_limit
    assert _kinds(violations(collect(adb.writer))) == {}


def test_models_outside_the_declared_chain_count_per_attempt(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal"), (OP, "ok"), (OP, "ok"), workload="chat")
    adb.chain("b", "2026-03-02 10:01", (OP, "ok"), workload="free")  # no declared chain: never outside
    policy = parse_policy_toml(f"[workloads.chat]\nchain = ['{H}', '{S}']\n")
    assert _kinds(violations(collect(adb.writer, policy=policy))) == {("model_outside_chain", "chat"): 2}


def test_undisclosed_fallbacks_count_per_chain_where_disclosure_is_required(adb):
    adb.chain("a", "2026-03-02 10:00", (H, "refusal"), (S, "ok"), workload="chat")  # fallback, not disclosed
    adb.chain("b", "2026-03-02 10:01", (H, "refusal"), (S, "ok", {"disclosed": True}), workload="chat")
    adb.chain("c", "2026-03-02 10:02", (S, "ok", {"trigger": "pinned", "intended_model": H}), workload="chat")
    adb.chain("d", "2026-03-02 10:03", (S, "ok", {"trigger": "pinned", "disclosed": True}), workload="chat")
    adb.chain("e", "2026-03-02 10:04", (H, "refusal"), (S, "ok"), workload="quiet")  # disclosure not required
    policy = parse_policy_toml("[workloads.chat]\nrequire_disclosure = true\n")
    # a (escalated fallback) and c (pinned) have no disclosed attempt → 2
    assert _kinds(violations(collect(adb.writer, policy=policy))) == {("undisclosed_fallback", "chat"): 2}


def test_refusal_loops_need_three_refusals_of_one_prompt_not_interrupted_by_a_success(adb):
    # s1: refusal, refusal, error, refusal of prompt P → one loop (errors do not break the run)
    for i, outcome in enumerate(["refusal", "refusal", "error", "refusal"]):
        adb.chain(f"s1-{i}", f"2026-03-02 10:0{i}", (S, outcome, {"prompt_fp": "P"}), session_id="s1")
    # s2: refusal, refusal, ok, refusal → no loop
    for i, outcome in enumerate(["refusal", "refusal", "ok", "refusal"]):
        adb.chain(f"s2-{i}", f"2026-03-02 11:0{i}", (S, outcome, {"prompt_fp": "P"}), session_id="s2")
    # s3: six refusals in a row are one run, one loop; a success of another prompt does not interrupt it
    for i in range(6):
        adb.chain(f"s3-{i}", f"2026-03-02 12:0{i}", (S, "refusal", {"prompt_fp": "Q"}), session_id="s3")
    adb.chain("s3-x", "2026-03-02 12:02:30", (S, "ok", {"prompt_fp": "other"}), session_id="s3")
    # no session: a chain of three refused attempts of the same prompt is its own session → one loop
    adb.chain("solo", "2026-03-02 13:00", (H, "refusal", {"prompt_fp": "R"}), (S, "refusal", {"prompt_fp": "R"}),
              (OP, "refusal", {"prompt_fp": "R"}))
    found = violations(collect(adb.writer))
    assert _kinds(found) == {("refusal_loop", "default"): 3}


def test_a_refusal_loop_counts_in_the_week_of_its_first_refusal(adb):
    from fallbackscope.core.periods import Period

    for i, day in enumerate(["2026-03-08 23:57", "2026-03-08 23:59", "2026-03-09 00:01"]):
        adb.chain(f"l{i}", day, (S, "refusal", {"prompt_fp": "P"}), session_id="s")
    week10 = violations(collect(adb.writer, Period.of("2026-03-02", "2026-03-09")))
    week11 = violations(collect(adb.writer, Period.of("2026-03-09", "2026-03-16")))
    assert _kinds(week10) == {("refusal_loop", "default"): 1}
    assert _kinds(week11) == {}
