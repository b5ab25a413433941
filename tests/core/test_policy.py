"""The policy file (docs/metrics.md §5): parsing, defaults, one-line errors."""

from __future__ import annotations

import pytest

from fallbackscope.core.errors import ExitCode, UsageError
from fallbackscope.core.policy import (
    DEFAULT_FALLBACK_ON,
    default_policy,
    load_policy_file,
    parse_policy_toml,
    read_policy_file,
)

H, S, OP = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"

SPEC_EXAMPLE = """
[workloads.support-chat]
chain = ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-8"]   # tier order
fallback_on = ["refusal", "quality", "server_error", "overloaded", "timeout"]
require_disclosure = true
refusal_slo = 0.05          # target for session_refusal_rate
"""


def test_the_spec_example_parses():
    policy = parse_policy_toml(SPEC_EXAMPLE)
    rules = policy.for_workload("support-chat")
    assert rules.chain == (H, S, OP)
    assert rules.fallback_on == ("refusal", "quality", "server_error", "overloaded", "timeout")
    assert rules.require_disclosure is True and rules.refusal_slo == 0.05


def test_a_workload_without_a_section_and_keys_left_out_get_the_defaults():
    policy = parse_policy_toml("[workloads.chat]\nrequire_disclosure = true\n")
    chat, other = policy.for_workload("chat"), policy.for_workload("other")
    assert chat.chain is None and chat.refusal_slo == 0.05 and chat.fallback_on == DEFAULT_FALLBACK_ON
    assert other.require_disclosure is False and other.chain is None
    assert set(DEFAULT_FALLBACK_ON) == {"refusal", "quality", "rate_limit", "server_error", "timeout", "overloaded",
                                        "connection"}
    assert default_policy().workloads == {}


@pytest.mark.parametrize(("text", "key"), [
    ("[workloads.chat]\nrefusal_slo = 2\n", "workloads.chat.refusal_slo"),
    ("[workloads.chat]\nrefusal_slo = 'five'\n", "workloads.chat.refusal_slo"),
    ("[workloads.chat]\nrequire_disclosure = 'yes'\n", "workloads.chat.require_disclosure"),
    ("[workloads.chat]\nchain = []\n", "workloads.chat.chain"),
    ("[workloads.chat]\nfallback_on = ['Refusal!']\n", "workloads.chat.fallback_on"),
    ("[workloads.chat]\nfallback_on = ['refusal', 'qualty']\n", "workloads.chat.fallback_on"),
    ("[workloads.chat]\nfalback_on = ['refusal']\n", "workloads.chat.falback_on"),
    ("[workload.chat]\nchain = ['x']\n", "workload"),
])
def test_a_bad_policy_is_a_one_line_usage_error_naming_the_key(text, key):
    with pytest.raises(UsageError) as info:
        parse_policy_toml(text, "policy.toml")
    message = str(info.value)
    assert message.startswith("policy.toml: bad policy at `") and f"`{key}`" in message
    if "fallback_on" in key:
        assert "is not a trigger (one of " in message
    if key.endswith(("falback_on", "workload")):
        assert message.endswith("unknown key (a typo?).")
    assert "\n" not in message
    assert info.value.exit_code == ExitCode.USAGE


def test_a_policy_that_is_not_toml_is_a_one_line_usage_error():
    with pytest.raises(UsageError) as info:
        parse_policy_toml("[workloads.chat\nchain = 1", "p.toml")
    assert str(info.value).startswith("p.toml: not valid TOML") and "\n" not in str(info.value)


def test_policy_files_are_read_validated_and_missing_ones_named(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    assert read_policy_file(path) == SPEC_EXAMPLE  # the text, for `ingest --policy` to store
    assert load_policy_file(path).for_workload("support-chat").require_disclosure is True
    with pytest.raises(UsageError, match="missing.toml: cannot read the policy file"):
        read_policy_file(tmp_path / "missing.toml")


def test_a_refusal_slo_given_as_a_percentage_says_it_is_a_fraction():
    with pytest.raises(UsageError, match=r"refusal_slo is a fraction between 0 and 1 \(5% is 0.05\), not 5\.$"):
        parse_policy_toml("[workloads.chat]\nrefusal_slo = 5\n")


def test_the_slo_source_says_whether_the_policy_set_the_target():
    policy = parse_policy_toml("[workloads.a]\nrefusal_slo = 0.02\n[workloads.b]\nchain = ['claude-haiku-4-5']\n")
    assert policy.for_workload("a").slo_source == "policy"
    assert policy.for_workload("b").slo_source == "default"  # a section without the key
    assert policy.for_workload("unknown").slo_source == "default"
    assert default_policy().for_workload("a").refusal_slo == 0.05
