"""The Spark engine's store: a folder (local path or URI) of Parquet datasets instead of a DuckDB file.

    STORE/attempts/day=YYYY-MM-DD/   the attempts table, Hive-partitioned by UTC day (the export's layout)
    STORE/loads/  STORE/rejects/  STORE/policy/

The column lists and types of `attempts` and `loads` come from the DuckDB schema (`fallbackscope/core/migrations`),
so the two engines store the same tables (a ledger row is `ingest.ledger.LoadRow` in both). Rows are only ever
appended; a run appends only new attempt ids.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from fallbackscope.core.config import KEY_ENV, load_key
from fallbackscope.core.errors import FallbackscopeError

if TYPE_CHECKING:
    from ingest.ledger import LoadRow


def _spark_type(duck: str) -> str:
    return {"VARCHAR": "STRING", "INTEGER": "INT", "BIGINT": "BIGINT", "DOUBLE": "DOUBLE", "BOOLEAN": "BOOLEAN",
            "TIMESTAMP WITH TIME ZONE": "TIMESTAMP"}.get(duck, duck)


def _table_columns() -> dict[str, list[tuple[str, str]]]:
    """Return (name, DuckDB type) of the columns of `attempts` and `loads`, as the migrations make them."""
    import duckdb

    from fallbackscope.core import store

    con = duckdb.connect()
    try:
        store.migrate(con)
        return {table: [(row[0], row[1]) for row in con.execute(f"DESCRIBE {table}").fetchall()]
                for table in ("attempts", "loads")}
    finally:
        con.close()


_COLUMNS = _table_columns()
ATTEMPT_COLUMNS = _COLUMNS["attempts"]
# a store written before the ledger had the resume columns reads them as NULL (loaded again whole if grown)
LOADS_SCHEMA = ", ".join(f"`{n}` {_spark_type(t)}" for n, t in _COLUMNS["loads"])
REJECTS_SCHEMA = "load_id BIGINT, path STRING, line_no BIGINT, byte_offset BIGINT, reason STRING"
TEXT_SCHEMA = "set_at TIMESTAMP, source STRING, toml STRING"


def is_uri(location: str) -> bool:
    return "://" in location


class Store:
    """The Parquet datasets of one store, read and appended through a SparkSession."""

    def __init__(self, spark, location: str | Path) -> None:
        self.spark = spark
        self.location = str(location).rstrip("/")
        if not is_uri(self.location):
            self.location = str(Path(self.location).resolve())

    def _path(self, name: str) -> str:
        return f"{self.location}/{name}"

    def key(self) -> bytes:
        """Return the fingerprint key: `$FALLBACKSCOPE_KEY`, else `<store>.key` beside a local store."""
        if is_uri(self.location):
            key = load_key(Path("unused"), create=False) if _env_key() else None
            if key is None:
                raise FallbackscopeError(f"{self.location}: a store in object storage needs ${KEY_ENV} set.")
            return key
        return load_key(Path(self.location))

    def _read(self, name: str, schema: str):
        try:
            return self.spark.read.schema(schema).parquet(self._path(name)) if self._exists(name) else \
                self.spark.createDataFrame([], schema)
        except Exception as exc:  # unreadable store: one line
            raise FallbackscopeError(f"{self._path(name)}: cannot read the store ({_first_line(exc)}).") from None

    def _exists(self, name: str) -> bool:
        jvm = self.spark.sparkContext._jvm
        conf = self.spark.sparkContext._jsc.hadoopConfiguration()
        path = jvm.org.apache.hadoop.fs.Path(self._path(name))
        return bool(path.getFileSystem(conf).exists(path))

    def attempts(self):
        """Return the stored attempts (every column in table order; `day` dropped), empty when none."""
        schema = ", ".join(f"`{n}` {_spark_type(t)}" for n, t in ATTEMPT_COLUMNS)
        if not self._exists("attempts"):
            return self.spark.createDataFrame([], schema)
        frame = self.spark.read.option("basePath", self._path("attempts")).parquet(self._path("attempts"))
        return frame.select([n for n, _ in ATTEMPT_COLUMNS])

    def loads(self):
        return self._read("loads", LOADS_SCHEMA)

    def next_load_id(self) -> int:
        last = self.loads().agg({"load_id": "max"}).first()[0]
        return int(last or 0) + 1

    def append_loads(self, rows: list[LoadRow]) -> None:
        """Append ledger rows (`ingest.ledger.LoadRow`, the DuckDB engine's row)."""
        if rows:
            frame = self.spark.createDataFrame([row.values() for row in rows], LOADS_SCHEMA)
            frame.coalesce(1).write.mode("append").parquet(self._path("loads"))

    def append_rejects(self, rows: list[tuple]) -> None:
        if rows:
            self.spark.createDataFrame(rows, REJECTS_SCHEMA).coalesce(1).write.mode("append").parquet(
                self._path("rejects"))

    def append_policy(self, source: str, toml: str, when: dt.datetime) -> None:
        self.spark.createDataFrame([(when, source, toml)], TEXT_SCHEMA).coalesce(1).write.mode("append").parquet(
            self._path("policy"))

    def append_attempts(self, frame) -> None:
        """Append attempts (columns in table order) to their day partitions."""
        from pyspark.sql import functions as F

        (frame.withColumn("day", F.date_format("ts", "yyyy-MM-dd"))
         .repartition("day").sortWithinPartitions("ts", "attempt_id")
         .write.mode("append").partitionBy("day").parquet(self._path("attempts")))

    def connection(self):
        """Return a SparkConnection with `attempts`, `loads`, `rejects`, `policy` and `price_table` views."""
        from fallbackscope.spark.sqlconn import SparkConnection

        # cached: the analytics scan attempts a dozen times per report
        return SparkConnection(self.spark, {
            "attempts": self.attempts().cache(), "loads": self.loads(),
            "rejects": self._read("rejects", REJECTS_SCHEMA), "policy": self._read("policy", TEXT_SCHEMA),
            "price_table": self._read("price_table", TEXT_SCHEMA),
        })


def _env_key() -> bool:
    import os

    return bool(os.environ.get(KEY_ENV, "").strip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
