"""A DuckDB-connection look-alike over Spark SQL, so the analytics' one set of SQL runs on both engines.

The analytics modules call `con.execute(sql, params)`, `executemany`, `.df()`, `.fetchone()` and
`.fetchall()` with DuckDB SQL. Here each statement is bound (its `?` parameters become literals, rendered
by SQLGlot so quoting is the dialect's), transpiled with `sqlglot.transpile(read="duckdb", write="spark")`
plus the few rewrites below that SQLGlot leaves to the engine, and run by `spark.sql`:

- `CREATE [OR REPLACE] TEMP TABLE t AS SELECT …` → the query, materialised (`localCheckpoint`), as temp
  view `t`; `CREATE TEMP TABLE t (cols)` + `INSERT INTO t VALUES (?, …)` → a DataFrame of those rows;
  `DROP TABLE [IF EXISTS] t` → drop the temp view.
- `epoch_us(ts)` → `unix_micros(ts)`; `WITH x AS MATERIALIZED (…)` → a plain CTE (Spark has no hint).

Nothing here knows a metric: the SQL is the analytics' own, unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

UTC = dt.UTC


def _sqlglot():
    import sqlglot
    from sqlglot import exp

    return sqlglot, exp


class SparkSQLError(Exception):
    """A statement Spark could not run (the transpiled SQL is attached for debugging)."""


def to_spark_sql(sql: str, params: Sequence[Any] = ()) -> str:
    """Return DuckDB `sql` with `params` bound, as Spark SQL."""
    sqlglot, exp = _sqlglot()
    tree = _bound(sql, params)
    tree = tree.transform(_rewrite)
    return tree.sql(dialect="spark")


def _bound(sql: str, params: Sequence[Any]):
    """Parse DuckDB `sql` and replace its `?` placeholders, in textual order, by literals."""
    sqlglot, exp = _sqlglot()
    from sqlglot.tokens import TokenType

    params = list(params)
    if params:
        tokens = sqlglot.Dialect.get_or_raise("duckdb").tokenize(sql)
        marks = [t for t in tokens if t.token_type == TokenType.PLACEHOLDER]
        if len(marks) != len(params):
            raise SparkSQLError(f"{len(marks)} placeholders but {len(params)} parameters")
        pieces, pos = [], 0
        for token, value in zip(marks, params, strict=True):
            pieces.append(sql[pos:token.start])
            pieces.append(_literal(value).sql(dialect="duckdb"))
            pos = token.end + 1
        pieces.append(sql[pos:])
        sql = "".join(pieces)
    return sqlglot.parse_one(sql, read="duckdb")


def _literal(value: Any):
    """Return a SQLGlot literal expression of a Python parameter value."""
    _, exp = _sqlglot()
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int):
        return exp.Literal.number(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise SparkSQLError("non-finite parameter")
        return exp.Cast(this=exp.Literal.number(repr(value)), to=exp.DataType.build("DOUBLE"))
    if isinstance(value, decimal.Decimal):
        return exp.Literal.number(str(value))
    if isinstance(value, dt.datetime):
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        text = aware.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00"
        return exp.Cast(this=exp.Literal.string(text), to=exp.DataType.build("TIMESTAMPTZ"))
    if isinstance(value, dt.date):
        return exp.Cast(this=exp.Literal.string(value.isoformat()), to=exp.DataType.build("DATE"))
    if isinstance(value, str):
        return exp.Literal.string(value)
    raise SparkSQLError(f"unsupported parameter type {type(value).__name__}")


def _rewrite(node):
    """Rewrite the DuckDB constructs SQLGlot passes through unchanged into Spark's equivalents."""
    _, exp = _sqlglot()
    if isinstance(node, exp.Anonymous) and node.name.lower() == "epoch_us":
        return exp.Anonymous(this="unix_micros", expressions=node.expressions)
    if isinstance(node, exp.CTE) and node.args.get("materialized") is not None:
        node.set("materialized", None)  # in place, so the transform goes on into the CTE's query
    return node


class Result:
    """The result of one statement: a Spark DataFrame (or nothing), read like a DuckDB relation."""

    def __init__(self, frame) -> None:
        self.frame = frame

    def df(self) -> pd.DataFrame:
        """Return the rows as a pandas DataFrame; times as UTC-aware timestamps, like DuckDB's TIMESTAMPTZ."""
        if self.frame is None:
            return pd.DataFrame()
        out = self.frame.toPandas()
        for name, kind in self.frame.dtypes:
            if kind == "timestamp" and name in out.columns:
                out[name] = pd.to_datetime(out[name]).dt.tz_localize(UTC)
        return out

    def fetchall(self) -> list[tuple]:
        """Return the rows as tuples (timestamps as aware UTC datetimes)."""
        if self.frame is None:
            return []
        return [tuple(_py(v) for v in row) for row in self.frame.collect()]

    def fetchone(self) -> tuple | None:
        """Return the first row as a tuple, None when there is none."""
        if self.frame is None:
            return None
        rows = self.frame.limit(1).collect()
        return tuple(_py(v) for v in rows[0]) if rows else None

    def to_arrow_table(self):
        """Return the rows as an Arrow table."""
        return self.frame.toArrow()


def _py(value: Any) -> Any:
    """Spark hands naive datetimes in the Python process's local time; make them aware UTC."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.astimezone(UTC)
    return value


class SparkConnection:
    """The subset of `duckdb.DuckDBPyConnection` the analytics use, on a SparkSession.

    `tables` maps table names (`attempts`, `policy`, `price_table`, …) to DataFrames registered as
    temp views; temp tables the analytics create become temp views too.
    """

    def __init__(self, spark, tables: dict[str, Any] | None = None) -> None:
        self.spark = spark
        self._pending: dict[str, tuple[Any, list[tuple]]] = {}  # temp tables being filled by INSERTs
        self._views: set[str] = set()
        self._frames = list((tables or {}).values())
        for name, frame in (tables or {}).items():
            frame.createOrReplaceTempView(name)
            self._views.add(name)

    # -- the duckdb API ----------------------------------------------------------------------

    def execute(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Run one DuckDB statement on Spark; returns a Result (`.df()`, `.fetchone()`, `.fetchall()`)."""
        _, exp = _sqlglot()
        tree = _bound(sql, params or ())
        if isinstance(tree, exp.Create) and str(tree.args.get("kind", "")).upper() == "TABLE":
            return self._create(tree)
        if isinstance(tree, exp.Drop):
            name = tree.this.name if isinstance(tree.this, exp.Table) else tree.find(exp.Table).name
            self._drop(name)
            return Result(None)
        if isinstance(tree, exp.Insert):
            raise SparkSQLError("INSERT runs only through executemany on the Spark engine")
        return Result(self._run(tree))

    def sql(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        """Same as `execute` (DuckDB's relational API name)."""
        return self.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `INSERT INTO temp_table VALUES (?, …)` for every row (the rows become the table's DataFrame)."""
        _, exp = _sqlglot()
        import sqlglot

        tree = sqlglot.parse_one(sql, read="duckdb")
        if not isinstance(tree, exp.Insert):
            raise SparkSQLError("executemany runs only INSERT INTO a temp table on the Spark engine")
        name = tree.this.name if isinstance(tree.this, exp.Table) else tree.find(exp.Table).name
        schema, existing = self._pending[name]
        kinds = [part.rsplit(" ", 1)[1] for part in schema.split(", ")]
        existing.extend(tuple(_for_spark(v, k) for v, k in zip(row, kinds, strict=True)) for row in rows)
        self.spark.createDataFrame(existing, schema).createOrReplaceTempView(name)

    def has_table(self, name: str) -> bool:
        """Return whether `name` is a table (a registered view) of this connection."""
        return name in self._views or name in self._pending

    def register(self, name: str, frame: Any) -> None:
        """Register a pandas DataFrame or an Arrow table as temp view `name`."""
        self.spark.createDataFrame(frame).createOrReplaceTempView(name)
        self._views.add(name)

    def unregister(self, name: str) -> None:
        self._drop(name)

    def close(self) -> None:
        """Drop the temp views this connection made (the SparkSession stays up for the next command)."""
        for name in list(self._views):
            self._drop(name)
        for frame in self._frames:
            frame.unpersist()

    def complete(self) -> None:
        """Nothing to finish: Spark results are not streamed."""

    # -- helpers ----------------------------------------------------------------------------

    def _run(self, tree):
        text = tree.transform(_rewrite).sql(dialect="spark")
        try:
            return self.spark.sql(text)
        except Exception as exc:  # AnalysisException, ParseException: show what Spark saw
            raise SparkSQLError(f"{_first_line(exc)}\n-- Spark SQL:\n{text}") from None

    def _create(self, tree) -> Result:
        _, exp = _sqlglot()
        target = tree.this
        if isinstance(target, exp.Schema):  # CREATE TEMP TABLE t (col TYPE, …)
            name = target.this.name
            fields = [(col.name, col.args["kind"].sql(dialect="spark")) for col in target.expressions]
            schema = ", ".join(f"`{n}` {t}" for n, t in fields)
            self._pending[name] = (schema, [])
            self.spark.createDataFrame([], schema).createOrReplaceTempView(name)
        else:
            name = target.name
            frame = self._run(tree.expression).localCheckpoint(eager=True)
            frame.createOrReplaceTempView(name)
        self._views.add(name)
        return Result(None)

    def _drop(self, name: str) -> None:
        self.spark.catalog.dropTempView(name)
        self._pending.pop(name, None)
        self._views.discard(name)


def _for_spark(value: Any, kind: str) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if kind.upper() in ("DOUBLE", "FLOAT") and isinstance(value, int | decimal.Decimal):
        return float(value)
    return value


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
