"""The settings `ingest` stores beside the attempts (docs/metrics.md §2): the policy given with `--policy`
(the default for analysis) and the price table given with `--prices`, which reprices every stored attempt."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from fallbackscope.core import prices
from fallbackscope.core.policy import read_policy_file


@dataclass(frozen=True)
class Setting:
    """A settings file as stored: where it came from and its TOML text."""

    source: str
    toml: str


def read_policy(path: Path | None) -> Setting | None:
    """Return the policy file to store (checked as a policy), or None when none was given."""
    return Setting(str(path), read_policy_file(path)) if path is not None else None


def read_prices(path: Path | None) -> Setting | None:
    """Return the price file to store (checked as a price table), or None when none was given."""
    return Setting(str(path), prices.read_price_file(path)) if path is not None else None


def store_settings(con: duckdb.DuckDBPyConnection, policy_file: Path | None, prices_file: Path | None) -> None:
    """Store the policy and price files given, if any; new prices reprice every stored attempt in the same
    transaction, so no reader sees attempts priced by two tables."""
    policy = read_policy(policy_file)
    if policy is not None:
        con.execute("INSERT INTO policy VALUES (now(), ?, ?)", [policy.source, policy.toml])
    price_file = read_prices(prices_file)
    if price_file is not None:
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO price_table VALUES (now(), ?, ?)", [price_file.source, price_file.toml])
        prices.reprice(con)
        con.execute("COMMIT")
