"""Model-name normalisation (docs/metrics.md §3.6), light enough for ingest worker processes."""

from __future__ import annotations

import re

_REGION_PREFIX = re.compile(r"^(?:us|eu|apac|ap|global|us-gov|jp|au|ca)\.")
_BEDROCK_VERSION = re.compile(r"-v\d+(?::\d+)?(?::\d+k)?$")  # `-v1:0`, and `-v1:0:200k` context variants
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|latest)$")


def normalise_model(name: str | None, aliases: dict[str, str]) -> str | None:
    """Return the normalised model id of an API, Bedrock or Vertex model name.

    `claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`; Bedrock `anthropic.claude-…-v1:0`,
    `us.`/`global.` inference profiles and ARNs likewise; Vertex `…@20250929` likewise; a gateway's
    provider route (`bedrock/us.anthropic.…`, `anthropic/claude-…`) likewise; then aliases.
    """
    if name is None:
        return None
    text = name.strip().lower()
    if not text:
        return None
    # ARN resources (`inference-profile/…`) and gateway routes (LiteLLM's `bedrock/…`, `anthropic/…`)
    text = text.rsplit("/", 1)[-1]
    text = _REGION_PREFIX.sub("", text)
    if text.startswith("anthropic."):
        text = text[len("anthropic."):]
    text = text.split("@", 1)[0]
    text = _BEDROCK_VERSION.sub("", text)
    text = _DATE_SUFFIX.sub("", text)
    return aliases.get(text, text)
