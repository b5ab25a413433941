"""One local SparkSession for every Spark test, with all of Spark's files under one folder the tests scan."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from spark_tuning import JVM_TUNING

pytest.importorskip("pyspark")
pytest.importorskip("sqlglot")

# the Spark tests load the DuckDB engine's hand-made cases (tests/ingest) into both engines
INGEST_CASES = str(Path(__file__).resolve().parents[1] / "ingest")
if INGEST_CASES not in sys.path:
    sys.path.append(INGEST_CASES)

LOG4J = """\
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {path}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d %p %c: %m%n
"""


@pytest.fixture(scope="session")
def spark_root(tmp_path_factory) -> Path:
    """The folder holding Spark's local dirs, temp dir, warehouse, checkpoints and its log file."""
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(scope="session")
def spark(spark_root):
    """The tests' local session, built by fallbackscope's own session code: its workers run the Python it
    chooses (no PYSPARK_PYTHON set here, so the tests run what users run)."""
    from fallbackscope.spark.session import spark_session

    for name in ("local", "tmp", "warehouse", "checkpoint", "logs"):
        (spark_root / name).mkdir()
    config = spark_root / "log4j2.properties"
    config.write_text(LOG4J.format(path=spark_root / "logs" / "spark.log"))
    # short-lived JVMs on two shared cores (spark_tuning.py)
    java = f"-Djava.io.tmpdir={spark_root / 'tmp'} -Dlog4j2.configurationFile=file:{config} {JVM_TUNING}"
    session = spark_session("local[2]", {
        "spark.app.name": "fallbackscope-tests",
        "spark.sql.shuffle.partitions": "1",
        "spark.default.parallelism": "2",
        # tiny data: compiling generated code costs more than it saves
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.local.dir": str(spark_root / "local"),
        "spark.sql.warehouse.dir": str(spark_root / "warehouse"),
        "spark.checkpoint.dir": str(spark_root / "checkpoint"),
        "spark.driver.extraJavaOptions": java,
        "spark.executor.extraJavaOptions": java,
    })
    session.sparkContext.setCheckpointDir(str(spark_root / "checkpoint"))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def duckdb_runs(tmp_path_factory):
    """`ingest`, `metrics` and `report weekly` of `engine_runs.INPUTS` on the DuckDB engine, run once: what the
    Spark runs of the plain-Python and cluster tests must equal. Returns (results, database)."""
    from engine_runs import engine_results, user_env

    folder = tmp_path_factory.mktemp("duckdb-runs")
    db = folder / "fs.duckdb"
    return engine_results(folder, str(db), user_env()), db
