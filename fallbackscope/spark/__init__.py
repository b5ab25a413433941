"""The Spark engine (issue 8): the same ingest and metrics as the DuckDB engine, on Apache Spark.

Nothing here is imported by the DuckDB path; `pyspark` and `sqlglot` are imported only when a Spark
command runs (`pip install 'fallbackscope[spark]'`).
"""
