"""The Spark engine's store: a folder (local path or URI) of Parquet datasets instead of a DuckDB file.

    STORE/attempts/day=YYYY-MM-DD/   the attempts table, Hive-partitioned by UTC day (the export's layout)
    STORE/loads/                     the ledger, written last by a run: its commit marker
    STORE/rejects/  STORE/duplicates/  STORE/link_inputs/  STORE/relinks/  STORE/policy/  STORE/key_check/

The column lists and types of `attempts` and `loads` come from the DuckDB schema (`fallbackscope/core/migrations`),
so the two engines store the same tables (a ledger row is `ingest.ledger.LoadRow` in both). Rows are only ever
appended, each carrying its `load_id`, and the ledger is appended last: a row whose load has no ledger row
belongs to a run that did not finish, and every reader leaves it out (`COMMITTED_SQL`). Stored attempts a later
run links again (docs/metrics.md §4) keep their row; their new chain, index, trigger and fallback mode are
appended to `relinks` and read over it, the latest committed one winning (`ATTEMPTS_SQL`). Read the store
through `Store.attempts()` / `Store.connection()` — or, from DuckDB, `duckdb_views` —, not its files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from fallbackscope.core.config import KEY_ENV, key_check_value, key_mismatch, load_key, writing_key
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
DUPLICATES_SCHEMA = "load_id BIGINT, attempt_id STRING"
LINK_INPUTS_SCHEMA = ("attempt_id STRING, load_id BIGINT, given_chain_id STRING, given_attempt BIGINT,"
                      " given_trigger STRING, record_no INT")
RELINKS_SCHEMA = "attempt_id STRING, load_id BIGINT, chain_id STRING, attempt_index INT, `trigger` STRING," \
                 " fallback_mode STRING"
KEY_CHECK_SCHEMA = "check_value STRING, set_at TIMESTAMP"
_RELINKED = ("chain_id", "attempt_index", "trigger", "fallback_mode")

# Rows of a run that finished: their load has a ledger row. Over relations `loads` and `{table}` (DuckDB SQL; the
# Spark store runs it transpiled).
COMMITTED_SQL = "SELECT * FROM {table} WHERE load_id IN (SELECT load_id FROM loads)"


def attempts_sql(raw: str = "attempts_raw", relinks: str = "relinks_raw") -> str:
    """Return the SQL of the stored attempts as readers see them, over relations `loads`, `raw` (the attempts'
    Parquet) and `relinks`: committed rows only, each with its latest committed relink."""
    picked = ", ".join(f'coalesce(r."{n}", a."{n}") AS "{n}"' if n in _RELINKED else f'a."{n}"'
                       for n, _ in ATTEMPT_COLUMNS)
    return f"""
WITH r AS (
  SELECT *, row_number() OVER (PARTITION BY attempt_id ORDER BY load_id DESC) AS fs_n
  FROM {relinks} WHERE load_id IN (SELECT load_id FROM loads))
SELECT {picked}
FROM {raw} a LEFT JOIN (SELECT * FROM r WHERE fs_n = 1) r ON r.attempt_id = a.attempt_id
WHERE a.load_id IN (SELECT load_id FROM loads)
"""


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
        """Return the fingerprint key: `$FALLBACKSCOPE_KEY`, else `<store>.key` beside a local store. A key
        whose check value is not the stored one is refused while the store holds attempts (docs/metrics.md §2)."""
        stored = self._read("key_check", KEY_CHECK_SCHEMA).orderBy("set_at", ascending=False).first()
        check = stored.check_value if stored is not None else None
        holds = check is not None and not self.attempts().limit(1).isEmpty()
        if is_uri(self.location):
            if not _env_key():
                raise FallbackscopeError(f"{self.location}: a store in object storage needs ${KEY_ENV} set.")
            key = load_key(Path("unused"), create=False)
            if holds and key_check_value(key) != check:
                raise key_mismatch(self.location)
            return key
        return writing_key(Path(self.location), check, holds)

    def append_key_check(self, key: bytes, when: dt.datetime) -> None:
        """Store the key's check value, unless it is the one stored."""
        value = key_check_value(key)
        stored = self._read("key_check", KEY_CHECK_SCHEMA).orderBy("set_at", ascending=False).first()
        if stored is None or stored.check_value != value:
            self._append([(value, when)], KEY_CHECK_SCHEMA, "key_check")

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

    def _raw_attempts(self):
        schema = ", ".join(f"`{n}` {_spark_type(t)}" for n, t in ATTEMPT_COLUMNS)
        if not self._exists("attempts"):
            return self.spark.createDataFrame([], schema)
        frame = self.spark.read.option("basePath", self._path("attempts")).parquet(self._path("attempts"))
        return frame.select([n for n, _ in ATTEMPT_COLUMNS])

    def attempts(self):
        """Return the stored attempts as readers see them (`attempts_sql`: committed, relinked; every column in
        table order, `day` dropped), empty when none."""
        from fallbackscope.spark.sqlconn import to_spark_sql

        self.loads().createOrReplaceTempView("loads")
        self._raw_attempts().createOrReplaceTempView("attempts_raw")
        if not self._exists("relinks"):
            return self.spark.sql(to_spark_sql(COMMITTED_SQL.format(table="attempts_raw")))
        self._read("relinks", RELINKS_SCHEMA).createOrReplaceTempView("relinks_raw")
        return self.spark.sql(to_spark_sql(attempts_sql()))

    def committed(self, name: str, schema: str):
        """Return the rows of dataset `name` whose load has a ledger row."""
        from fallbackscope.spark.sqlconn import to_spark_sql

        self.loads().createOrReplaceTempView("loads")
        self._read(name, schema).createOrReplaceTempView(f"{name}_raw")
        return self.spark.sql(to_spark_sql(COMMITTED_SQL.format(table=f"{name}_raw")))

    def loads(self):
        return self._read("loads", LOADS_SCHEMA)

    def next_load_id(self) -> int:
        """Return the next load id: past every id in the ledger, and past those of rows a run that did not finish
        left behind (never committed later by a load that takes their id)."""
        last = int(self.loads().agg({"load_id": "max"}).first()[0] or 0)
        for name, schema in (("rejects", REJECTS_SCHEMA), ("relinks", RELINKS_SCHEMA),
                             ("duplicates", DUPLICATES_SCHEMA), ("link_inputs", LINK_INPUTS_SCHEMA)):
            if self._exists(name):
                last = max(last, int(self._read(name, schema).agg({"load_id": "max"}).first()[0] or 0))
        if self._exists("attempts"):
            last = max(last, int(self._raw_attempts().agg({"load_id": "max"}).first()[0] or 0))
        return last + 1

    def _append(self, rows: list[tuple], schema: str, name: str) -> None:
        if rows:
            self.spark.createDataFrame(rows, schema).coalesce(1).write.mode("append").parquet(self._path(name))

    def append_loads(self, rows: list[LoadRow]) -> None:
        """Append ledger rows (`ingest.ledger.LoadRow`, the DuckDB engine's row) — last: they commit the run."""
        self._append([row.values() for row in rows], LOADS_SCHEMA, "loads")

    def append_rejects(self, rows: list[tuple]) -> None:
        self._append(rows, REJECTS_SCHEMA, "rejects")

    def append_policy(self, source: str, toml: str, when: dt.datetime) -> None:
        self._append([(when, source, toml)], TEXT_SCHEMA, "policy")

    def append_frame(self, name: str, frame) -> None:
        """Append a DataFrame to dataset `name` (`duplicates`, `link_inputs`, `relinks`)."""
        frame.write.mode("append").parquet(self._path(name))

    def append_attempts(self, frame) -> None:
        """Append attempts (columns in table order) to their day partitions."""
        from pyspark.sql import functions as F

        (frame.withColumn("day", F.date_format("ts", "yyyy-MM-dd"))
         .repartition("day").sortWithinPartitions("ts", "attempt_id")
         .write.mode("append").partitionBy("day").parquet(self._path("attempts")))

    def connection(self):
        """Return a SparkConnection with the store's tables as views (committed rows only): `attempts`, `loads`,
        `rejects`, `duplicates`, `link_inputs`, `policy` and `price_table`."""
        from fallbackscope.spark.sqlconn import SparkConnection

        # cached: the analytics scan attempts a dozen times per report
        return SparkConnection(self.spark, {
            "attempts": self.attempts().cache(), "loads": self.loads(),
            "rejects": self.committed("rejects", REJECTS_SCHEMA),
            "duplicates": self.committed("duplicates", DUPLICATES_SCHEMA),
            "link_inputs": self.committed("link_inputs", LINK_INPUTS_SCHEMA),
            "policy": self._read("policy", TEXT_SCHEMA), "price_table": self._read("price_table", TEXT_SCHEMA),
        })


def duckdb_views(con, location: str | Path) -> None:
    """Create DuckDB views `attempts`, `loads` and `rejects` over a local store's Parquet, as the Spark engine's
    readers see them (`attempts_sql`): for reading a store with DuckDB."""
    root = Path(location)

    def files(pattern: str) -> str | None:
        return str(root / pattern).replace("'", "''") if list(root.glob(pattern)) else None

    loads = files("loads/*.parquet")
    # by name: a store's older ledger files lack the columns later migrations added (read as NULL)
    con.execute(f"CREATE OR REPLACE VIEW loads AS SELECT * FROM read_parquet('{loads}', union_by_name = true)"
                if loads else "CREATE OR REPLACE VIEW loads AS SELECT NULL::BIGINT AS load_id WHERE false")
    for name, schema in (("rejects", REJECTS_SCHEMA), ("relinks", RELINKS_SCHEMA)):
        found = files(f"{name}/*.parquet")
        empty = ", ".join(f"NULL::{_duck_type(kind)} AS {col}" for col, kind in
                          (part.strip().rsplit(" ", 1) for part in schema.replace("`", "").split(",")))
        con.execute(f"CREATE OR REPLACE VIEW {name}_raw AS " +
                    (f"SELECT * FROM read_parquet('{found}')" if found else f"SELECT {empty} WHERE false"))
    rejects_sql = COMMITTED_SQL.format(table="rejects_raw")
    con.execute(f"CREATE OR REPLACE VIEW rejects AS {rejects_sql}")
    found = files("attempts/*/*.parquet")
    if found:
        con.execute("CREATE OR REPLACE VIEW attempts_raw AS SELECT * EXCLUDE (day) FROM "
                    f"read_parquet('{found}', hive_partitioning = true)")
    else:
        empty = ", ".join(f'NULL::{t} AS "{n}"' for n, t in ATTEMPT_COLUMNS)
        con.execute(f"CREATE OR REPLACE VIEW attempts_raw AS SELECT {empty} WHERE false")
    con.execute(f"CREATE OR REPLACE VIEW attempts AS {attempts_sql()}")


def _duck_type(spark: str) -> str:
    return {"STRING": "VARCHAR", "INT": "INTEGER", "TIMESTAMP": "TIMESTAMPTZ"}.get(spark.upper(), spark.upper())


def _env_key() -> bool:
    import os

    return bool(os.environ.get(KEY_ENV, "").strip())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
