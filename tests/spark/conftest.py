"""One local SparkSession for every Spark test, with all of Spark's files under one folder the tests scan."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

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
    from pyspark.sql import SparkSession

    from fallbackscope.spark.session import spark_session

    for name in ("local", "tmp", "warehouse", "checkpoint", "logs"):
        (spark_root / name).mkdir()
    config = spark_root / "log4j2.properties"
    config.write_text(LOG4J.format(path=spark_root / "logs" / "spark.log"))
    java = f"-Djava.io.tmpdir={spark_root / 'tmp'} -Dlog4j2.configurationFile=file:{config}"
    os.environ["PYSPARK_PYTHON"] = sys.executable
    session = (SparkSession.builder.master("local[2]").appName("fallbackscope-tests")
               .config("spark.ui.enabled", "false")
               .config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", "1")
               .config("spark.default.parallelism", "2")
               # tiny data: compiling generated code costs more than it saves
               .config("spark.sql.codegen.wholeStage", "false")
               .config("spark.sql.codegen.factoryMode", "NO_CODEGEN")
               .config("spark.local.dir", str(spark_root / "local"))
               .config("spark.sql.warehouse.dir", str(spark_root / "warehouse"))
               .config("spark.checkpoint.dir", str(spark_root / "checkpoint"))
               .config("spark.driver.extraJavaOptions", java)
               .config("spark.executor.extraJavaOptions", java)
               .getOrCreate())
    session.sparkContext.setCheckpointDir(str(spark_root / "checkpoint"))
    yield spark_session()  # the active session, with fallbackscope's required settings applied
    session.stop()
