"""The shell side of `--engine spark` for `ingest`, `metrics` and `report weekly`: a Database over a Parquet store."""

from __future__ import annotations

import os
import re
from pathlib import Path

from fallbackscope.api import Database
from fallbackscope.core.policy import Policy
from fallbackscope.spark.session import parse_conf, spark_session

DEFAULT_STORE = "fallbackscope-store"
_COLLAPSED_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/([^/])")


def store_location(db: str | os.PathLike[str] | None) -> str:
    """Return the Parquet store of `--engine spark`: `--db`, else `$FALLBACKSCOPE_DB`, else
    `./fallbackscope-store`; a URI (`s3://bucket/prefix`) is kept as given."""
    text = str(db) if db else (os.environ.get("FALLBACKSCOPE_DB") or DEFAULT_STORE)
    return _COLLAPSED_URI.sub(r"\1://\2", text)  # a Path option turns s3://b into s3:/b


def session(master: str | None, conf: list[str] | None):
    """Return the SparkSession of a command's `--spark-master` and `--spark-conf` options."""
    return spark_session(master, parse_conf(conf or []))


class SparkDatabase(Database):
    """`fallbackscope.api.Database` over a Parquet store: every metric through the shared SQL, on Spark."""

    def __init__(self, spark, location: str, *, policy: Policy | str | Path | None = None) -> None:
        from fallbackscope.spark.store import Store

        self.path = Path(location) if "://" not in location else location  # type: ignore[assignment]
        self.store = Store(spark, location)
        self.con = self.store.connection()  # type: ignore[assignment]
        self._policy_arg = policy
        self._policy = None
        self._facts = {}

    def __repr__(self) -> str:
        return f"<fallbackscope.SparkDatabase {self.store.location!r}>"


def ingest(db, paths: list[str], *, master: str | None, conf: list[str] | None, fmt: str | None,
           workload: str | None, default_ts: str | None, batch_id: str | None, policy: Path | None,
           prices: Path | None):
    """Run `ingest --engine spark`; returns the per-file reports."""
    from fallbackscope.core.errors import UsageError
    from fallbackscope.spark.ingest import SparkLoadOptions, ingest_spark

    if prices is not None:
        raise UsageError("--prices is not supported with --engine spark yet: set prices with the DuckDB engine "
                         "or use the built-in table.")
    options = SparkLoadOptions(format=fmt, workload=workload, default_ts=default_ts, batch_id=batch_id,
                               policy_file=policy)
    return ingest_spark(session(master, conf), store_location(db), paths, options)


def metrics(db, *, master: str | None, conf: list[str] | None, since, until, by: str, policy):
    """Run `metrics --engine spark`; returns the metrics frame."""
    from analytics.rollup import compute_metrics

    database = SparkDatabase(session(master, conf), store_location(db))
    try:
        return compute_metrics(database.con, since=since, until=until, by=by, policy=policy)
    finally:
        database.close()


def database(db, *, master: str | None, conf: list[str] | None, policy) -> SparkDatabase:
    """Return the store of `report weekly --engine spark` as a Database."""
    return SparkDatabase(session(master, conf), store_location(db), policy=policy)
