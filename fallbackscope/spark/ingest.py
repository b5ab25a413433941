"""Spark ingest: the DuckDB engine's extraction, linking and pricing, run on Spark, written as Parquet.

    STORE/attempts/day=YYYY-MM-DD/*.parquet   every column of `attempts`, in table order (the export's layout)
    STORE/loads/*.parquet                     the ledger: one row per input file per run (`ingest.ledger.LoadRow`)
    STORE/rejects/*.parquet                   load_id, path, line_no, byte_offset, reason (never content)
    STORE/duplicates, link_inputs, relinks    as the DuckDB tables; relinks: stored attempts linked again
    STORE/policy/*.parquet                    policies given with --policy (set_at, source, toml)

Atomic per file: a run appends its rows, each with its file's load id, then the ledger rows of all its files in
one Parquet file — the commit marker. Readers and later runs see only rows whose load has a ledger row
(`fallbackscope.spark.store`), so a run that fails leaves nothing anyone reads, and its re-run starts afresh.

One definition of every rule, shared with the DuckDB engine (docs/metrics.md §11):
- inputs: `ingest.sources.expand` lists them (gzip told by its magic bytes), `ingest.detect` names their format,
  `ingest.ledger` says which to skip and where a grown file's new records start, and gets the same row;
- records → attempt rows: `ingest.sources.line_ranges` cuts uncompressed files into line-aligned byte ranges
  parsed by `ingest.extract.extract_lines` inside `mapInArrow`; gzip and SSE files are parsed whole by
  `ingest.parse.Parser` (in the executor's process);
- duplicates: `ingest.dedup` — content ids per file (a grown file's counting on, `ledger.content_ordinals`), the
  first of each id by `dedup.FIRST_ORDER`, records counted by `dedup.RECORD_KEY`, ids already stored left out;
- chains: `ingest.linking` and `ingest.relink`, per group of attempts that can link (`fallbackscope.spark.linking`);
- cost: `fallbackscope.core.prices.attempt_cost_sql` over `price_rows`, transpiled by the SQL adapter.

A run loads only attempts whose id is not stored yet, so running it again writes nothing new.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from fallbackscope.core import prices
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.core.outcomes import unknown_stop_sql
from fallbackscope.spark import linking as slinking
from fallbackscope.spark import store as sstore
from ingest import dedup, ledger, relink
from ingest.columns import FIELD_NAMES, SCHEMA
from ingest.detect import check_format, detect_format, parse_default_ts
from ingest.formats import sse
from ingest.ledger import FileReport, LoadRow, Start
from ingest.loader import LoadOptions
from ingest.message import Context
from ingest.settings import read_policy
from ingest.sources import Source, expand, file_sha256, line_ranges

UNIT_BYTES = 64 * 1024 * 1024  # nominal size of the byte range one task parses

_PLAIN = pa.schema([pa.field(f.name, pa.int64() if f.name == "ts" else f.type) for f in SCHEMA])
_EXTRA = [("file_idx", pa.int32()), ("unit_idx", pa.int32()), ("kind", pa.string()), ("byte_offset", pa.int64()),
          ("reason", pa.string()), ("records", pa.int64()), ("lines", pa.int64()), ("naive", pa.int64())]
UNIT_OUT = pa.schema(list(_PLAIN) + [pa.field(n, t) for n, t in _EXTRA])
_DDL = {pa.string(): "STRING", pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
UNIT_OUT_DDL = ", ".join(f"`{f.name}` {_DDL[f.type]}" for f in UNIT_OUT)


# ------------------------------------------------------------------------------ reading on executors


def _unit_batches(ctx: Context, unit: dict) -> Iterator[pa.RecordBatch]:
    """Parse one work unit (a byte range, or a whole gzip or SSE file from its start) into output rows:
    attempts (`a`), rejects (`r`) and one stats row (`s`: records, lines, timestamps without an offset, and in
    `byte_offset` where reading ended). Line numbers are relative to the unit's start."""
    from ingest.extract import extract_lines
    from ingest.parse import Parser, counted, gather
    from ingest.sources import read_range, source_at

    fmt, start = unit["format"], unit["start"]
    if unit["whole"]:
        source = source_at(unit["location"], unit["compressed"], unit["size"])
        parsed = Parser(ctx, workers=0).parse(source, fmt, start)
        parts, rejects, records, lines, end = parsed.parts, parsed.rejects, parsed.records, parsed.lines, parsed.end
        naive = parsed.naive_ts
    else:
        out, naive = counted(extract_lines, fmt, read_range(unit["location"], start, unit["end"]), start, ctx)
        (parts, rejects, records, lines), end = gather([out]), unit["end"]
    for table in parts:
        yield _with_extra(pa.table({name: _plain(table.column(name), name) for name in FIELD_NAMES}), unit, "a")
    if rejects:
        n = len(rejects)
        rej = pa.table({name: pa.nulls(n, _PLAIN.field(name).type) for name in FIELD_NAMES})
        rej = rej.set_column(rej.schema.get_field_index("line_no"), "line_no",
                             pa.array([line for line, _, _ in rejects], pa.int64()))
        yield _with_extra(rej, unit, "r", byte_offset=[o for _, o, _ in rejects], reason=[r for _, _, r in rejects])
    stats = pa.table({name: pa.nulls(1, _PLAIN.field(name).type) for name in FIELD_NAMES})
    yield _with_extra(stats, unit, "s", records=[records], lines=[lines], byte_offset=[end], naive=[naive])


def _plain(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if name == "ts":
        column = column.cast(pa.int64())
    return column


def _with_extra(table: pa.Table, unit: dict, kind: str, **values) -> pa.RecordBatch:
    n = table.num_rows
    cols = {name: table.column(name) for name in FIELD_NAMES}
    cols["file_idx"] = pa.array([unit["file_idx"]] * n, pa.int32())
    cols["unit_idx"] = pa.array([unit["unit_idx"]] * n, pa.int32())
    cols["kind"] = pa.array([kind] * n, pa.string())
    for name, kind_type in _EXTRA[3:]:
        cols[name] = pa.array(values.get(name, [None] * n), kind_type)
    return pa.Table.from_pydict(cols, schema=UNIT_OUT).combine_chunks().to_batches()[0] if n else \
        pa.RecordBatch.from_pylist([], schema=UNIT_OUT)


def _parse_units(shared):
    """Return the `mapInArrow` function parsing work units with the Context broadcast as `shared` (the key travels
    as a broadcast value, read on the executor: never in the function's pickle nor in the Spark configuration)."""
    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        ctx: Context = shared.value
        for batch in batches:
            for unit in batch.to_pylist():
                for out in _unit_batches(ctx, unit):
                    if out.num_rows:
                        yield out
    return parse


# ------------------------------------------------------------------------------ files on the driver


@dataclass
class _File:
    """An input file this run reads: where it starts, and what its report and ledger row will say."""

    source: Source
    sha256: str
    start: Start
    report: FileReport
    lines: int = 0  # lines read, from `start`
    end: int = 0  # where reading ended
    resume: tuple[int, int] = (0, 0)


def _units(files: list[_File]) -> list[dict]:
    """Return the work units: line-aligned byte ranges of uncompressed line files, gzip and SSE files whole."""
    units = []
    for idx, item in enumerate(files):
        source, start = item.source, item.start.byte
        whole = source.compressed or item.report.format == sse.NAME
        ranges = [(start, source.size)] if whole else line_ranges(source.location, start, source.size, UNIT_BYTES)
        for u, (a, b) in enumerate(ranges):
            units.append({"file_idx": idx, "unit_idx": u, "location": source.location, "format": item.report.format,
                          "compressed": source.compressed, "start": a, "end": b, "size": source.size, "whole": whole})
    return units


# ------------------------------------------------------------------------------ the run


@dataclass
class SparkLoadOptions:
    format: str | None = None
    workload: str | None = None
    default_ts: str | None = None
    batch_id: str | None = None
    policy_file: Path | None = None

    def as_json(self) -> str:
        """Return the options that shape how records are read, as the `options` JSON of a `loads` row."""
        return LoadOptions(self.format, self.workload, self.default_ts, self.batch_id).as_json()


def ingest_spark(spark, store_uri: str, paths: list[str], options: SparkLoadOptions | None = None,
                 key: bytes | None = None) -> list[FileReport]:
    """Load the files named into the Parquet store at `store_uri`; return one report per file."""
    options = options or SparkLoadOptions()
    check_format(options.format)
    default_ts = parse_default_ts(options.default_ts)
    if "-" in paths:
        raise UsageError("--engine spark reads files, not standard input.")
    sources = expand(paths)
    store = sstore.Store(spark, store_uri)
    key = key if key is not None else store.key()  # a key other than the store's is refused before any write
    started = dt.datetime.now(dt.UTC)
    policy = read_policy(options.policy_file)
    if policy is not None:
        store.append_policy(policy.source, policy.toml, started)
    con = store.connection()
    table = prices.install_price_rows(con)
    ctx = Context(key, dict(table.aliases), options.workload, default_ts, options.batch_id)

    previous = ledger.previous_loads(con)
    loaded = ledger.loaded_shas(con)
    next_id = store.next_load_id()
    reports: list[FileReport] = []
    rows: list[LoadRow] = []
    todo: list[_File] = []
    for source in sources:
        try:
            start = ledger.start_of(source, previous.get(source.location, []))
            sha = start.unchanged_sha or file_sha256(source.location)
            fmt = None if sha in loaded else options.format or detect_format(source.head())
        except OSError as exc:
            raise FallbackscopeError(f"{source.display}: cannot read the file ({type(exc).__name__}).") from None
        if fmt is None:
            reports.append(FileReport(source.display, "skipped", load_id=next_id))
            rows.append(ledger.skipped_row(next_id, source, sha, started))
        else:
            loaded.add(sha)
            reports.append(FileReport(source.display, "ok", fmt, load_id=next_id))
            todo.append(_File(source, sha, start, reports[-1], end=start.byte))
        next_id += 1
    if todo:
        try:
            _run(spark, store, con, ctx, todo, table.web_search_usd)
        except Exception as exc:
            if isinstance(exc, FallbackscopeError):
                raise
            own = _own_sentence(exc)
            if own is not None:  # an executor's own one-sentence error (an object gone, unreadable): as it was said
                raise FallbackscopeError(f"{own.rstrip('.')}; nothing of this run was committed.") from None
            raise FallbackscopeError(f"{store.location}: the Spark job failed ({_job_error(exc)}); nothing of "
                                     "this run was committed.") from None
    for item in todo:
        ledger.judge(item.report)  # records, none loaded: a failed file (docs/metrics.md §2)
    rows.extend(ledger.loaded_row(f.report, f.source, f.sha256, started, f.start, f.resume, options.as_json())
                for f in todo)
    store.append_key_check(key, started)
    store.append_loads(sorted(rows, key=lambda row: row.load_id))  # last: the commit marker of every file
    con.close()
    return reports


def _run(spark, store, con, ctx: Context, todo: list[_File], web_search_usd: float) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    units = _units(todo)
    unit_frame = spark.createDataFrame(
        units or [], "file_idx INT, unit_idx INT, location STRING, format STRING, compressed BOOLEAN, start BIGINT,"
                     " `end` BIGINT, size BIGINT, whole BOOLEAN")
    shared = spark.sparkContext.broadcast(ctx)
    parsed = (unit_frame.repartition(max(1, len(units)))
              .mapInArrow(_parse_units(shared), UNIT_OUT_DDL)
              .persist(StorageLevel.DISK_ONLY))
    try:
        # unit-relative line numbers → relative to where the file was read from (`rel`), and file line numbers
        stats = parsed.where("kind = 's'").select("file_idx", "unit_idx", "records", "lines", "byte_offset",
                                                  "naive").collect()
        starts = []
        for row in sorted(stats, key=lambda r: (r.file_idx, r.unit_idx)):
            item = todo[row.file_idx]
            starts.append((row.file_idx, row.unit_idx, item.lines, item.lines + item.start.line))
            item.lines += row.lines
            item.end = max(item.end, row.byte_offset)
            item.report.records += row.records
            item.report.naive_ts += row.naive
        shift = spark.createDataFrame(starts, "file_idx INT, unit_idx INT, rel BIGINT, line_base BIGINT")
        rows = parsed.where("kind <> 's'").join(F.broadcast(shift), ["file_idx", "unit_idx"])
        _rejects(store, todo, rows.where("kind = 'r'").select(
            "file_idx", (F.col("line_no") + F.col("rel")).alias("line_no"), "byte_offset", "reason").collect())
        attempts = (rows.where("kind = 'a'").withColumn("line_no", F.col("line_no") + F.col("line_base"))
                    .drop("kind", "byte_offset", "reason", "records", "lines", "naive", "rel", "line_base",
                          "unit_idx"))
        attempts = _merged_nested(attempts, F)  # nested spans of one call: one attempt (docs/metrics.md §3.8)
        counted = {i: ledger.content_ordinals(con, f.source.location) for i, f in enumerate(todo) if f.start.byte}
        attempts = _with_content_ids(attempts, counted)
        load_ids = spark.createDataFrame([(i, f.report.load_id) for i, f in enumerate(todo)],
                                         "file_idx INT, load_id BIGINT")
        # the duplicate rule: the first of equal ids (by file, then `dedup.FIRST_ORDER`); an id stored is a duplicate
        first = Window.partitionBy("attempt_id").orderBy("file_idx", *dedup.FIRST_ORDER)
        firsts = attempts.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
        stored_ids = store.attempts().select("attempt_id")
        held = firsts.join(stored_ids, "attempt_id", "left_semi").join(F.broadcast(load_ids), "file_idx")
        store.append_frame("duplicates", held.select("load_id", "attempt_id"))
        fresh = (firsts.join(stored_ids, "attempt_id", "left_anti").join(F.broadcast(load_ids), "file_idx")
                 .persist(StorageLevel.DISK_ONLY))
        loaded_records = {}
        for row in fresh.groupBy("file_idx").agg(
                F.count("*").alias("n"), F.countDistinct(*dedup.RECORD_KEY).alias("records"),
                F.sum(F.expr(unknown_stop_sql()).cast("int")).alias("unknown")).collect():
            todo[row.file_idx].report.attempts_loaded = row.n
            todo[row.file_idx].report.no_stop_reason = row.unknown or 0
            loaded_records[row.file_idx] = row.records
        for idx, item in enumerate(todo):
            report = item.report
            report.duplicates = dedup.duplicate_records(report.records, report.rejected, loaded_records.get(idx, 0))
        if not loaded_records:
            fresh.unpersist()
            return  # every attempt is stored already
        new = fresh.select(*[F.col("ts").alias("ts_us") if n == "ts_us" else F.col(n) for n in relink.LINK_INPUTS])
        mine, relinked = slinking.linked(spark, con, new)
        final = fresh.join(mine.drop("relinked"), "attempt_id").withColumn("ts", F.timestamp_micros("ts"))
        final.createOrReplaceTempView("fs_spark_linked")
        picked = []
        for name, kind in sstore.ATTEMPT_COLUMNS:
            if name == "cost_usd":
                picked.append(prices.attempt_cost_sql("f", "p", web_search_usd=web_search_usd) + " AS cost_usd")
            else:
                picked.append(f'CAST(f."{name}" AS {kind}) AS "{name}"')
        priced = con.execute(f"SELECT {', '.join(picked)} FROM fs_spark_linked f "
                             + prices.PRICE_JOIN.format(a="f")).frame
        store.append_attempts(priced)
        spark.catalog.dropTempView("fs_spark_linked")
        store.append_frame("link_inputs", fresh.where(relink.LINK_INPUT_WANTED).select(*relink.LINK_INPUT_TABLE))
        # stored attempts linked again: committed with the run's last ledger row
        commit_id = max(f.report.load_id for f in todo)
        store.append_frame("relinks", relinked.select("attempt_id", F.lit(commit_id).cast("bigint").alias("load_id"),
                                                      "chain_id", "attempt_index", "trigger", "fallback_mode"))
        fresh.unpersist()
    finally:
        parsed.unpersist()
        # the key leaves the executors with the run; not `destroy()`: PySpark may still hold the variable in a later
        # job's closure (a run that failed after parsing), and a destroyed one fails that job
        shared.unpersist()


def _rejects(store, todo: list[_File], rejects: list) -> None:
    """Count and store the rejects (line numbers relative to where each file was read from), and set where
    each file's next load starts (`ledger.resume_point`, which may mark an unfinished last line)."""
    by_file: dict[int, list[tuple[int, int, str]]] = {}
    for r in sorted(rejects, key=lambda r: (r.file_idx, r.line_no)):
        by_file.setdefault(r.file_idx, []).append((r.line_no, r.byte_offset, r.reason))
    stored = []
    for idx, item in enumerate(todo):
        found = by_file.get(idx, [])
        item.resume = ledger.resume_point(item.source, item.report.format, found, item.start, item.lines, item.end)
        item.report.count_rejects([reason for _, _, reason in found])
        stored.extend((item.report.load_id, item.report.path, line + item.start.line, offset, reason)
                      for line, offset, reason in found)
    store.append_rejects(stored)


def _merged_nested(attempts, F):
    """Merge the nested spans of one call with the DuckDB loader's own function (`otel_nesting.merge_nested`), per
    file, in the files whose spans name a parent."""
    nested = [row.file_idx for row in attempts.where("parent_key IS NOT NULL").select("file_idx").distinct().collect()]
    if not nested:
        return attempts
    inside = F.col("file_idx").isin(nested)

    def merge(group: pa.Table) -> pa.Table:
        from ingest.formats.otel_nesting import merge_nested

        return merge_nested(group).select(group.column_names)

    return attempts.where(~inside).unionByName(
        attempts.where(inside).groupBy("file_idx").applyInArrow(merge, attempts.schema))


def _with_content_ids(attempts, counted: dict[int, dict[str, int]]):
    """Give id-less records their content id with the DuckDB loader's own function, per file in file order
    (`counted`: per grown file, the ordinals its earlier loads read)."""
    needing = attempts.where("attempt_id IS NULL")
    if needing.isEmpty():
        return attempts
    keep = attempts.where("attempt_id IS NOT NULL")

    def fill(group: pa.Table) -> pa.Table:
        file_idx = group.column("file_idx")[0].as_py()
        return dedup.fill_content_ids(dedup.in_file_order(group), counted.get(file_idx))

    return keep.unionByName(needing.groupBy("file_idx").applyInArrow(fill, needing.schema))


def _own_sentence(exc: BaseException) -> str | None:
    """Return the sentence of a FallbackscopeError an executor raised (it names a file and a reason, never a
    record), from the Python worker's traceback that Spark passes back; None when there is none."""
    marker = f"{FallbackscopeError.__name__}: "
    for line in reversed(str(exc).splitlines()):
        head, found, sentence = line.strip().partition(marker)
        # the exception's name, qualified or not, then its sentence: `fallbackscope.core.errors.FallbackscopeError: …`
        if found and sentence and (not head or all(part.isidentifier() for part in head.rstrip(".").split("."))):
            return sentence[:500]
    return None


def _job_error(exc: BaseException) -> str:
    """Return the last line of a Spark or Python worker error that names its type (never a record)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0] or "Exception" in line.split(":")[0]]
    text = (named or lines or [type(exc).__name__])[-1]
    return text.split(":")[0][:120]
