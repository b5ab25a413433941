"""Input formats, one module each (STYLE: adding a format touches one file plus its tests)."""

from ingest.formats import anthropic, batch, bedrock, exchange, litellm, otel, shared, sse

# detection asks each in this order: the specific shapes of other tools' logs before the lenient `exchange`
LINE_FORMATS = {
    bedrock.NAME: bedrock, otel.NAME: otel, litellm.NAME: litellm,
    exchange.NAME: exchange, anthropic.NAME: anthropic, batch.NAME: batch,
}
ALL_FORMATS = (exchange.NAME, anthropic.NAME, sse.NAME, batch.NAME, bedrock.NAME, otel.NAME, litellm.NAME)


def shape_of(obj: dict, own: str | None = None) -> str | None:
    """Return what a record looks like when it is not of format `own`, in words with the option that reads it
    (for its reject reason, docs/metrics.md §3.8); None when it has no shape fallbackscope knows."""
    if shared.looks_like_converse(obj):
        return shared.CONVERSE_WITHOUT_ENVELOPE
    for module in LINE_FORMATS.values():
        if module.NAME != own and module.looks_like(obj):
            return f"{module.SHAPE}: use --format {module.NAME}"
    if obj.get("object") == "chat.completion" or "choices" in obj:
        return "an OpenAI-format chat completion, which no format reads"
    return None


__all__ = ["ALL_FORMATS", "LINE_FORMATS", "anthropic", "batch", "bedrock", "exchange", "litellm", "otel", "shape_of",
           "sse"]
