"""One SparkSession configured the way fallbackscope's SQL expects it (UTC, microsecond Parquet times), whose
Python workers can run fallbackscope's code (docs/spark.md).

Where the workers' Python comes from: `PYSPARK_PYTHON` when set (PySpark reads it), else the setting
`spark.pyspark.python`; else, in local mode, the Python running fallbackscope — PySpark's own default, `python3`
on the PATH, is rarely the virtual environment fallbackscope was installed into. On a cluster the workers'
Python is the cluster's (`python3` on each node's PATH unless one of those two settings names another), and
fallbackscope's own code is shipped to the executors (`fallbackscope.spark.ship`).
"""

from __future__ import annotations

import os
import sys
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

    Under `spark-submit` the master and conf come from its command line. Either way the required SQL settings
    are applied, the workers' Python is chosen (`workers_python`) and, on a cluster, the code is shipped.
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
        conf_all = {**DEFAULT_CONF, **(conf or {}), **REQUIRED_CONF}
        for key, value in conf_all.items():
            builder = builder.config(key, value)
        try:
            active = builder.getOrCreate()
        except Exception as exc:  # Java missing, bad master URL, …: one line, not a JVM trace
            raise FallbackscopeError(f"cannot start Spark ({_first_line(exc)}).") from None
        if "log4j2.configurationFile" not in conf_all.get("spark.driver.extraJavaOptions", ""):
            active.sparkContext.setLogLevel("ERROR")  # a log configuration of the user's own keeps its levels
    _prepare_workers(active.sparkContext)
    for key, value in REQUIRED_CONF.items():
        if not key.startswith("spark.sql.execution.arrow") or active.conf.get(key, None) is None:
            active.conf.set(key, value)
    return active


def workers_python(master: str, python_setting: str | None) -> str | None:
    """Return the Python the workers must start, or None where PySpark's own choice stands: `PYSPARK_PYTHON`
    when set; else the `spark.pyspark.python` setting; else, for a local master, the running interpreter."""
    if os.environ.get("PYSPARK_PYTHON"):
        return None
    if python_setting:
        return python_setting
    return sys.executable if is_local(master) else None


def is_local(master: str) -> bool:
    """Return whether a master URL runs everything on this machine (`local[*]`, `local[4]`, `local-cluster[…]`)."""
    return master.startswith("local")


def _prepare_workers(sc) -> None:
    """Point `sc`'s Python workers at `workers_python`, and ship the code to a cluster's executors."""
    from fallbackscope.spark import ship

    python = workers_python(sc.master, sc.getConf().get("spark.pyspark.python"))
    if python:
        # PySpark reads PYSPARK_PYTHON once, when the context starts, into the `pythonExec` every Python function
        # it sends to the executors names; `spark.pyspark.python` it leaves to spark-submit
        sc.pythonExec = python
    if not is_local(sc.master):
        try:
            ship.ship(sc)
        except (OSError, ImportError) as exc:
            raise FallbackscopeError(f"cannot ship fallbackscope's code to the executors ({_first_line(exc)}).") \
                from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
