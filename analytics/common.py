"""Shared pieces of the analytics: Wilson rates, plain values, temporary tables (docs/metrics.md §6).

Days, weeks and the analysed period are `fallbackscope.core.periods`; success is `fallbackscope.core.outcomes`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from analytics.rates import Z95, Rate, ratio, wilson  # noqa: F401 — one definition, re-exported

# ---------------------------------------------------------------- rates (analytics.rates, without pandas)


def add_rate(df: pd.DataFrame, name: str, numerator: str, denominator: str) -> pd.DataFrame:
    """Add the columns `name`, `name_numerator`, `name_denominator`, `name_ci95_low`, `name_ci95_high`.

    Vectorised Wilson intervals; NaN (shown as null) where the denominator is 0. Returns `df` itself.
    """
    num = pd.to_numeric(df[numerator], errors="coerce").fillna(0).astype("int64").to_numpy()
    den = pd.to_numeric(df[denominator], errors="coerce").fillna(0).astype("int64").to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        n = den.astype(float)
        p = np.where(den > 0, num / np.where(den > 0, n, 1.0), np.nan)
        z2 = Z95 * Z95
        safe_n = np.where(den > 0, n, 1.0)
        centre = (p + z2 / (2 * safe_n)) / (1 + z2 / safe_n)
        half = Z95 * np.sqrt(np.clip(p * (1 - p) / safe_n + z2 / (4 * safe_n * safe_n), 0, None)) / (1 + z2 / safe_n)
        low = np.where(den > 0, np.where(num <= 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
        high = np.where(den > 0, np.where(num >= den, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    df[name] = p
    df[f"{name}_numerator"] = num
    df[f"{name}_denominator"] = den
    df[f"{name}_ci95_low"] = low
    df[f"{name}_ci95_high"] = high
    return df


RATE_COLUMNS = ["value", "numerator", "denominator", "ci95_low", "ci95_high"]


def rate_frame(table: pd.DataFrame, keys: list[str], numerator: str, denominator: str) -> pd.DataFrame:
    """Return `keys` + value, numerator, denominator, ci95_low, ci95_high of a rate over `table`'s rows."""
    out = table[keys].copy()
    tmp = add_rate(pd.DataFrame({"_n": table[numerator].values, "_d": table[denominator].values}), "r", "_n", "_d")
    for col, src in zip(RATE_COLUMNS, ["r", "r_numerator", "r_denominator", "r_ci95_low", "r_ci95_high"],
                        strict=True):
        out[col] = tmp[src].values
    return out.reset_index(drop=True)


def rate_from_row(row: pd.Series | dict[str, Any], name: str) -> Rate:
    """Return the Rate stored in the `name*` columns of a row made by `add_rate`."""
    return Rate.of(row[f"{name}_numerator"], row[f"{name}_denominator"])


RATE_SUFFIXES = ("_numerator", "_denominator", "_ci95_low", "_ci95_high")


def rate_names(columns: Sequence[str]) -> list[str]:
    """Return the names of the rates stored in `columns` by `add_rate`."""
    present = set(columns)
    return [c for c in columns if all(f"{c}{s}" in present for s in RATE_SUFFIXES)]


def clean(value: Any) -> Any:
    """Return `value` as a plain JSON-able Python value: NaN/NA → None, numpy scalars → Python."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def money(value: Any) -> float | None:
    """Return a USD amount rounded to the micro-dollar, None when unknown."""
    value = clean(value)
    return None if value is None else round(float(value), 6)


# ---------------------------------------------------------------- days and weeks


# ---------------------------------------------------------------- temporary tables


@contextmanager
def temp_names(con: duckdb.DuckDBPyConnection, *stems: str) -> Iterator[dict[str, str]]:
    """Yield unique TEMP table names for `stems` and drop those tables afterwards.

    Unique names let two analyses share a connection's catalog without clashing.
    """
    tag = uuid.uuid4().hex[:10]
    names = {stem: f"fs_{stem}_{tag}" for stem in stems}
    try:
        yield names
    finally:
        for name in names.values():
            try:
                con.execute(f"DROP TABLE IF EXISTS {name}")
            except duckdb.Error:  # the connection may already be closed
                pass


def fetch_df(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
    """Run a query and return its result as a DataFrame (strings as Python objects)."""
    return con.execute(sql, list(params)).df()


def money_sum_sql(expr: str) -> str:
    """Return SQL summing a USD expression exactly (as DECIMAL), so totals do not depend on DuckDB's
    thread count or summation order; the result is DOUBLE again."""
    return f"sum(({expr})::DECIMAL(38, 12))::DOUBLE"
