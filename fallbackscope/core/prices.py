"""The price table (docs/metrics.md §6.3): loading, model-name normalisation and the cost of an attempt in SQL."""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

import duckdb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from fallbackscope.core.tomlconfig import parse_toml_model, read_text_file


class PriceRow(BaseModel):
    """One dated row of USD-per-million-token prices for one model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    valid_from: dt.date
    input: float = Field(ge=0)
    cache_write_5m: float = Field(ge=0)
    cache_write_1h: float = Field(ge=0)
    cache_read: float = Field(ge=0)
    output: float = Field(ge=0)
    fast_input: float | None = Field(default=None, ge=0)
    fast_output: float | None = Field(default=None, ge=0)
    band_threshold: int | None = Field(default=None, gt=0)
    band_input: float | None = Field(default=None, ge=0)
    band_cache_write_5m: float | None = Field(default=None, ge=0)
    band_cache_write_1h: float | None = Field(default=None, ge=0)
    band_cache_read: float | None = Field(default=None, ge=0)
    band_output: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bands_complete(self) -> PriceRow:
        band = [self.band_input, self.band_cache_write_5m, self.band_cache_write_1h, self.band_cache_read,
                self.band_output]
        if self.band_threshold is not None and any(v is None for v in band):
            raise ValueError("band_threshold needs all five band_* prices")
        if (self.fast_input is None) != (self.fast_output is None):
            raise ValueError("fast_input and fast_output go together")
        return self


class PriceTable(BaseModel):
    """The whole price table: rows, aliases and the per-search price of web search."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    web_search_usd: float = Field(default=0.01, ge=0)
    aliases: dict[str, str] = Field(default_factory=dict)
    price: list[PriceRow] = Field(default_factory=list)

    def models(self) -> list[str]:
        """Return the priced model ids, sorted."""
        return sorted({row.model for row in self.price})


def default_toml() -> str:
    """Return the text of the price table shipped in the package."""
    return (resources.files("fallbackscope.core") / "prices.toml").read_text(encoding="utf-8")


def parse_price_toml(text: str, source: str = "price table") -> PriceTable:
    """Parse and validate price-table TOML; a bad file raises UsageError naming the key."""
    table = parse_toml_model(text, PriceTable, source, "price table")
    return table.model_copy(update={"aliases": {k.lower(): v.lower() for k, v in table.aliases.items()}})


def read_price_file(path: Path) -> str:
    """Return the text of a price file given on the command line, validated."""
    text = read_text_file(path, "price file")
    parse_price_toml(text, str(path))
    return text


def stored_toml(con: duckdb.DuckDBPyConnection) -> str:
    """Return the price table in force for a database: the last one stored, else the default."""
    row = con.execute("SELECT toml FROM price_table ORDER BY set_at DESC LIMIT 1").fetchone()
    return row[0] if row else default_toml()


def table_in_force(con: duckdb.DuckDBPyConnection) -> PriceTable:
    """Return the parsed price table in force for a database."""
    return parse_price_toml(stored_toml(con))


PRICE_COLUMNS = (
    "input", "cache_write_5m", "cache_write_1h", "cache_read", "output", "fast_input", "fast_output",
    "band_threshold", "band_input", "band_cache_write_5m", "band_cache_write_1h", "band_cache_read",
    "band_output",
)


def install_price_rows(con: duckdb.DuckDBPyConnection, table: PriceTable | None = None) -> PriceTable:
    """Create (or replace) the TEMP table `price_rows` of this connection from a price table.

    Columns: model, valid_from (TIMESTAMPTZ, UTC midnight), PRICE_COLUMNS and valid_until (the next
    row's valid_from, else infinity; join with `PRICE_JOIN`). Defaults to the
    table in force for the database. Returns the table used.
    """
    table = table or table_in_force(con)
    cols = ", ".join(f"{c} DOUBLE" for c in PRICE_COLUMNS)
    con.execute(f"CREATE OR REPLACE TEMP TABLE price_rows (model VARCHAR, valid_from TIMESTAMPTZ, {cols})")
    rows = [
        [r.model, dt.datetime.combine(r.valid_from, dt.time(), dt.UTC)] + [getattr(r, c) for c in PRICE_COLUMNS]
        for r in table.price
    ]
    if rows:
        marks = ", ".join("?" for _ in range(len(PRICE_COLUMNS) + 2))
        con.executemany(f"INSERT INTO price_rows VALUES ({marks})", rows)
    # valid_until: the next row's valid_from, so a plain equi-join with a range finds the row in force
    # (the last row's: a far-future time both DuckDB and Spark can hold, not 'infinity')
    con.execute(
        "CREATE OR REPLACE TEMP TABLE price_rows AS SELECT *, coalesce(lead(valid_from) OVER"
        " (PARTITION BY model ORDER BY valid_from), TIMESTAMPTZ '9999-12-31 00:00:00+00') AS valid_until"
        " FROM price_rows"
    )
    return table


PRICE_JOIN = ("LEFT JOIN price_rows p ON {a}.model = p.model AND {a}.ts >= p.valid_from AND {a}.ts < p.valid_until"
              # the price of an attempt's part on another model (an advisor iteration, docs/metrics.md §3.8)
              " LEFT JOIN price_rows p_side ON {a}.side_model = p_side.model AND {a}.ts >= p_side.valid_from"
              " AND {a}.ts < p_side.valid_until")


#: The multipliers of docs/metrics.md §6.3 on token terms: Message Batches, and inference in the US only.
BATCH_MULTIPLIER = 0.5
US_GEO_MULTIPLIER = 1.1
#: The token columns of a cost, with the price-row column of each.
TOKEN_PRICES = (("input_tokens", "input"), ("cache_write_5m_tokens", "cache_write_5m"),
                ("cache_write_1h_tokens", "cache_write_1h"), ("cache_read_tokens", "cache_read"),
                ("output_tokens", "output"))
#: The token columns of an attempt's part on another model, with the attempt's token column each repeats.
SIDE_COLUMNS = tuple((f"side_{column}", column) for column, _ in TOKEN_PRICES)


def multiplier_sql(batch: str, geo: str) -> str:
    """Return SQL for the multiplier of token terms: ×0.5 when boolean `batch`, ×1.1 when `geo` is 'us'."""
    return (f"(CASE WHEN {batch} THEN {BATCH_MULTIPLIER} ELSE 1.0 END)"
            f" * (CASE WHEN {geo} = 'us' THEN {US_GEO_MULTIPLIER} ELSE 1.0 END)")


def multiplier(batch: bool, geo_us: bool) -> float:
    """Return the multiplier of token terms (the Python twin of `multiplier_sql`)."""
    return (BATCH_MULTIPLIER if batch else 1.0) * (US_GEO_MULTIPLIER if geo_us else 1.0)


def banded_sql(p: str, prompt: str) -> str:
    """Return SQL: price row `p` prices this request at its prompt-size band (prompt tokens above the
    threshold; `prompt` = input + cache reads + cache writes)."""
    return f"({p}.band_threshold IS NOT NULL AND {prompt} > {p}.band_threshold)"


def fast_sql(speed: str) -> str:
    """Return SQL: the request ran in fast mode, priced at the row's fast prices — NULL (unpriced, never the
    standard price) when the row has none (docs/metrics.md §6.3)."""
    return f"({speed} = 'fast')"


def cache_scale_sql(p: str, speed: str) -> str:
    """Return SQL for the factor on cache prices: fast mode scales them by fast input / input (NULL when
    the row has no fast prices)."""
    return f"(CASE WHEN {fast_sql(speed)} THEN {p}.fast_input / nullif({p}.input, 0) ELSE 1 END)"


def band_price_sql(p: str, col: str, banded: str) -> str:
    """Return SQL for the price of column `col` of row `p`, at its band when `banded` holds."""
    return f"(CASE WHEN {banded} THEN {p}.band_{col} ELSE {p}.{col} END)"


def not_charged_sql(a: str) -> str:
    """Return SQL: attempt `a` is charged nothing whatever its tokens (docs/metrics.md §6.3) — a canceled or
    expired batch result (never run), or a refusal before any output."""
    return (f"(({a}.is_batch AND {a}.outcome IN ('canceled', 'expired'))"
            f" OR ({a}.outcome = 'refusal' AND NOT {a}.had_output))")


def prompt_sql(col: dict[str, str]) -> str:
    """Return SQL for a request's prompt tokens (input + cache reads + cache writes) from token-column expressions
    (`col[name]` for each token column of `TOKEN_PRICES`): what a prompt-size band is decided on."""
    return (f"({col['input_tokens']} + {col['cache_read_tokens']} + {col['cache_write_5m_tokens']}"
            f" + {col['cache_write_1h_tokens']})")


def token_price_sql(p: str, name: str, banded: str, fast: str) -> str:
    """Return SQL for the USD-per-million price of price column `name` of row `p`: its band price when `banded`
    holds, the fast-mode price of input and output when `fast` holds (NULL without one); cache prices before
    their fast-mode scale (`cache_scale_sql`)."""
    price = band_price_sql(p, name, banded)
    if name in ("input", "output"):
        return f"(CASE WHEN {fast} THEN {p}.fast_{name} ELSE {price} END)"
    return price


def token_cost_sql(a: str, p: str, *, web_search_usd: float = 0.01, tokens: dict[str, str] | None = None,
                   speed: str | None = None, searches: bool = True) -> str:
    """Return a SQL expression for docs/metrics.md §6.3's attempt cost, before the refusal and no-usage rules.

    `a` names a relation with the attempt's token columns, `is_batch`, `inference_geo`, `speed`;
    `p` a row of `price_rows` (NULL when the model has no price: the result is then NULL when there
    are billable tokens). `tokens` replaces the token columns by expressions (a part of the attempt),
    `speed` the speed column ('NULL': standard speed); `searches` adds the web searches (unknown ones as 0).
    """
    col = {name: f"{a}.{name}" for name, _ in TOKEN_PRICES} | (tokens or {})
    banded = banded_sql(p, prompt_sql(col))
    speed = speed or f"{a}.speed"
    fast = fast_sql(speed)

    def price(name: str) -> str:
        return token_price_sql(p, name, banded, fast)

    scale = cache_scale_sql(p, speed)
    cost = (
        f"({col['input_tokens']} * {price('input')}"
        f" + ({col['cache_write_5m_tokens']} * {price('cache_write_5m')}"
        f" + {col['cache_write_1h_tokens']} * {price('cache_write_1h')}"
        f" + {col['cache_read_tokens']} * {price('cache_read')}) * {scale}"
        f" + {col['output_tokens']} * {price('output')}) / 1e6"
    )
    multiplier = multiplier_sql(f"{a}.is_batch", f"{a}.inference_geo")
    if not searches:
        return f"({cost} * {multiplier})"
    return f"({cost} * {multiplier} + {web_search_sql(a, web_search_usd)})"


def token_term_sql(a: str, p: str, column: str) -> str:
    """Return SQL for the USD cost of one token column of attempt `a` (a column of `TOKEN_PRICES`) at price row
    `p`, priced as `token_cost_sql` prices it: the band of the attempt's whole prompt, fast-mode prices (NULL
    without them), cache prices scaled in fast mode, the batch and geo multipliers. 0 for no tokens; NULL for
    tokens without a price. The five terms of an attempt add up to its token cost (web searches apart):
    reconciliation compares each with its line of the bill (docs/metrics.md §10)."""
    name = dict(TOKEN_PRICES)[column]
    speed = f"{a}.speed"
    banded = banded_sql(p, prompt_sql({c: f"{a}.{c}" for c, _ in TOKEN_PRICES}))
    price = token_price_sql(p, name, banded, fast_sql(speed))
    if name not in ("input", "output"):
        price = f"({price} * {cache_scale_sql(p, speed)})"
    return (f"(CASE WHEN {a}.{column} = 0 THEN 0.0 ELSE {a}.{column} * {price} / 1e6"
            f" * {multiplier_sql(f'{a}.is_batch', f'{a}.inference_geo')} END)")


def web_search_sql(a: str, web_search_usd: float) -> str:
    """Return SQL for the web-search term of a cost; searches a format did not report (NULL) count as none,
    and the attempt's `cost_complete` says the total is a lower bound (docs/metrics.md §3.8)."""
    return f"coalesce({a}.web_search_requests, 0) * {web_search_usd}"


def side_cost_sql(a: str, p: str, p_side: str, *, web_search_usd: float = 0.01) -> str:
    """Return SQL for the token cost of an attempt with a part on another model (`side_model`, docs/metrics.md
    §3.8): the rest of its tokens at `p`, the part at `p_side` (standard speed), web searches once."""
    rest = {whole: f"({a}.{whole} - coalesce({a}.{part}, 0))" for part, whole in SIDE_COLUMNS}
    part = {whole: f"coalesce({a}.{part}, 0)" for part, whole in SIDE_COLUMNS}
    return (f"({token_cost_sql(a, p, tokens=rest, searches=False)}"
            f" + {token_cost_sql(a, p_side, tokens=part, speed='NULL', searches=False)}"
            f" + {web_search_sql(a, web_search_usd)})")


def token_cost(row: PriceRow, tokens: dict[str, float], *, banded: bool, batch: bool, geo_us: bool) -> float:
    """Return the USD cost of (summed) tokens at a price row, standard speed, no web searches: the Python
    twin of `token_cost_sql` for the top-tier counterfactual. `banded`: price at the row's band."""
    usd = sum(float(tokens[col]) * float(getattr(row, f"band_{name}") if banded else getattr(row, name))
              for col, name in TOKEN_PRICES) / 1e6
    return usd * multiplier(batch, geo_us)


def attempt_cost_sql(a: str, p: str, *, web_search_usd: float = 0.01) -> str:
    """Return SQL for `attempts.cost_usd` (docs/metrics.md §6.3), including the rules that make it 0 or NULL.

    Needs `PRICE_JOIN`'s two rows: `p` for the attempt's model and `p_side` for its part on another model.
    """
    billable = (
        f"({a}.input_tokens + {a}.output_tokens + {a}.cache_read_tokens + {a}.cache_write_5m_tokens"
        f" + {a}.cache_write_1h_tokens)"
    )
    return (
        f"(CASE WHEN {not_charged_sql(a)} THEN 0.0"
        f" WHEN {billable} = 0 THEN {web_search_sql(a, web_search_usd)}"
        f" WHEN {p}.model IS NULL THEN NULL"
        f" WHEN {a}.side_model IS NULL THEN {token_cost_sql(a, p, web_search_usd=web_search_usd)}"
        f" WHEN {p}_side.model IS NULL THEN NULL"  # a part whose model has no price: the whole cost is unknown
        f" ELSE {side_cost_sql(a, p, f'{p}_side', web_search_usd=web_search_usd)} END)"
    )


# The stored columns that hold normalised model ids (docs/metrics.md §3.6); `requested_model` is kept as sent.
NORMALISED_MODEL_COLUMNS = ("model", "intended_model", "recommended_model")


def apply_aliases(con: duckdb.DuckDBPyConnection, aliases: dict[str, str]) -> None:
    """Rename stored model ids that a table's aliases name to the model they stand for.

    Ingest applies aliases as it reads; a table stored later (`ingest --prices`) brings its aliases to the
    attempts already stored, so a model it names is priced and compared under one id (docs/metrics.md §6).
    """
    pairs = [[alias, model] for alias, model in aliases.items() if alias != model]
    if not pairs:
        return
    con.execute("CREATE OR REPLACE TEMP TABLE alias_map (alias VARCHAR, model VARCHAR)")
    con.executemany("INSERT INTO alias_map VALUES (?, ?)", pairs)
    for column in NORMALISED_MODEL_COLUMNS:
        con.execute(f"UPDATE attempts SET {column} = m.model FROM alias_map m WHERE attempts.{column} = m.alias")
    con.execute("DROP TABLE alias_map")


def reprice(con: duckdb.DuckDBPyConnection) -> None:
    """Bring the price table in force to every stored attempt: its aliases, then `cost_usd`."""
    table = install_price_rows(con)
    apply_aliases(con, table.aliases)
    cost = attempt_cost_sql("a", "p", web_search_usd=table.web_search_usd)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE repriced AS SELECT a.attempt_id, "
        f"{cost} AS cost_usd FROM attempts a {PRICE_JOIN.format(a='a')}"
    )
    con.execute("UPDATE attempts SET cost_usd = r.cost_usd FROM repriced r WHERE attempts.attempt_id = r.attempt_id")
    con.execute("DROP TABLE repriced")
