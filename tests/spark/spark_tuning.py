"""Spark settings for the tests' tiny inputs on two shared cores; none changes a result.

One shuffle partition, and no code generation (compiling costs more than it saves); for the short-lived JVMs the
quick JIT compiler only and the serial collector (fewer busy threads)."""

JVM_TUNING = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
SPARK_TUNING = ("--spark-conf", "spark.sql.shuffle.partitions=1", "--spark-conf", "spark.sql.codegen.wholeStage=false",
                "--spark-conf", "spark.sql.codegen.factoryMode=NO_CODEGEN",
                "--spark-conf", f"spark.driver.extraJavaOptions={JVM_TUNING}",
                "--spark-conf", f"spark.executor.extraJavaOptions={JVM_TUNING}")
