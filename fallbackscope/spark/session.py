"""One SparkSession configured the way fallbackscope's SQL expects it (UTC, microsecond Parquet times)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from fallbackscope.core.errors import FallbackscopeError, UsageError

DEFAULT_MASTER = "local[*]"

# Settings the shared SQL relies on; a user's --spark-conf cannot change them.
REQUIRED_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # DuckDB (and the Parquet export) read INT64 microseconds as TIMESTAMPTZ; Spark's INT96 default is legacy
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # only the day partitions a run writes are replaced
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}
# Defaults a user may override.
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
}


def parse_conf(pairs: Iterable[str]) -> dict[str, str]:
    """Return `--spark-conf key=value` options as a dict; raises UsageError for a malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--spark-conf `{pair}` is not key=value.")
        out[key.strip()] = value
    return out


def spark_session(master: str | None = None, conf: dict[str, str] | None = None):
    """Return the active SparkSession, or build one on `master` with `conf` (plus the required settings).

    Under `spark-submit` a session already exists (its master and conf come from the command line);
    it is used as it is, with the required SQL settings applied.
    """
    import warnings

    # PySpark 4.3 warns on every pandas conversion that pandas 3 is "not yet fully supported"; the equality
    # tests are what vouch for the conversions fallbackscope uses
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise FallbackscopeError("--engine spark needs PySpark: pip install 'fallbackscope[spark]'.") from None
    active = SparkSession.getActiveSession()
    if active is None:
        builder = SparkSession.builder.appName("fallbackscope")
        if master or "PYSPARK_GATEWAY_PORT" not in os.environ:  # set when spark-submit started the JVM
            builder = builder.master(master or DEFAULT_MASTER)
        for key, value in {**DEFAULT_CONF, **(conf or {}), **REQUIRED_CONF}.items():
            builder = builder.config(key, value)
        try:
            active = builder.getOrCreate()
        except Exception as exc:  # Java missing, bad master URL, …: one line, not a JVM trace
            raise FallbackscopeError(f"cannot start Spark ({_first_line(exc)}).") from None
        active.sparkContext.setLogLevel("ERROR")
    for key, value in REQUIRED_CONF.items():
        if not key.startswith("spark.sql.execution.arrow") or active.conf.get(key, None) is None:
            active.conf.set(key, value)
    return active


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
