"""Model-name normalisation (docs/metrics.md §3.6): API, Bedrock, Vertex and gateway spellings of one model agree."""

from __future__ import annotations

import pytest

from fallbackscope.core.modelnames import normalise_model


@pytest.mark.parametrize("name", [
    "claude-sonnet-4-5",
    "claude-sonnet-4-5-20250929",
    "anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic.claude-sonnet-4-5-20250929-v1:0:200k",
    "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-sonnet-4-5-20250929-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "claude-sonnet-4-5@20250929",
    "bedrock/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
    "anthropic/claude-sonnet-4-5-20250929",
    "vertex_ai/claude-sonnet-4-5@20250929",
    "  Claude-Sonnet-4-5-20250929 ",
])
def test_every_spelling_of_a_model_normalises_to_its_id(name):
    assert normalise_model(name, {}) == "claude-sonnet-4-5"


def test_aliases_apply_after_normalisation_and_blanks_are_none():
    assert normalise_model("us.anthropic.claude-opus-4-8-v1:0", {"claude-opus-4-8": "opus"}) == "opus"
    assert normalise_model(None, {}) is None and normalise_model("  ", {}) is None
