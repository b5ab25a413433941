"""Input formats, one module each (STYLE: adding a format touches one file plus its tests)."""

from ingest.formats import anthropic, batch, bedrock, exchange, litellm, otel, sse

# detection asks each in this order: the specific shapes of other tools' logs before the lenient `exchange`
LINE_FORMATS = {
    bedrock.NAME: bedrock, otel.NAME: otel, litellm.NAME: litellm,
    exchange.NAME: exchange, anthropic.NAME: anthropic, batch.NAME: batch,
}
ALL_FORMATS = (exchange.NAME, anthropic.NAME, sse.NAME, batch.NAME, bedrock.NAME, otel.NAME, litellm.NAME)

__all__ = ["ALL_FORMATS", "LINE_FORMATS", "anthropic", "batch", "bedrock", "exchange", "litellm", "otel", "sse"]
