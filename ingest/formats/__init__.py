"""Input formats, one module each (STYLE: adding a format touches one file plus its tests)."""

from ingest.formats import anthropic, batch, exchange, sse

LINE_FORMATS = {exchange.NAME: exchange, anthropic.NAME: anthropic, batch.NAME: batch}
ALL_FORMATS = (exchange.NAME, anthropic.NAME, sse.NAME, batch.NAME)

__all__ = ["ALL_FORMATS", "LINE_FORMATS", "anthropic", "batch", "exchange", "sse"]
