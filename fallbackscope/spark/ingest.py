"""Spark ingest: the DuckDB engine's extraction, linking and pricing, run on Spark, written as Parquet.

    STORE/attempts/day=YYYY-MM-DD/*.parquet   every column of `attempts`, in table order (the export's layout)
    STORE/loads/*.parquet                     the ledger: one row per input file per run
    STORE/rejects/*.parquet                   load_id, path, line_no, byte_offset, reason (never content)
    STORE/policy/*.parquet                    policies given with --policy (set_at, source, toml)

One definition of every rule, shared with the DuckDB engine:
- records → attempt rows: `ingest.extract.extract_lines` / `extract_sse` inside `mapInArrow`, on line-aligned
  byte ranges of each file (whole files when gzipped or SSE); content ids by `ingest.tables.fill_content_ids`
  per file;
- chains: `ingest.linking.Linker`, per group of attempts that can link with each other (a session, or a
  workload without sessions, merged where an app chain id or a credit token crosses groups), by
  one `mapInArrow` pass per partition over rows sorted by group; stored chains the new attempts may join
  are replayed into the linker first;
- cost: `fallbackscope.core.prices.attempt_cost_sql` over `price_rows`, transpiled by the SQL adapter.

A run loads only attempts whose id is not stored yet, so running it again writes nothing new.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from fallbackscope.core import prices
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.spark import store as sstore
from ingest import linking
from ingest.columns import FIELD_NAMES, SCHEMA
from ingest.formats import ALL_FORMATS, sse
from ingest.ledger import FileReport
from ingest.message import Context

UNIT_BYTES = 64 * 1024 * 1024  # nominal size of the byte range one task parses
GZIP_BLOCK = 16 * 1024 * 1024

_PLAIN = pa.schema([pa.field(f.name, pa.int64() if f.name == "ts" else f.type) for f in SCHEMA])
_EXTRA = [("file_idx", pa.int32()), ("unit_idx", pa.int32()), ("kind", pa.string()), ("byte_offset", pa.int64()),
          ("reason", pa.string()), ("records", pa.int64()), ("lines", pa.int64())]
UNIT_OUT = pa.schema(list(_PLAIN) + [pa.field(n, t) for n, t in _EXTRA])
_DDL = {pa.string(): "STRING", pa.int64(): "BIGINT", pa.int32(): "INT", pa.float64(): "DOUBLE", pa.bool_(): "BOOLEAN"}
UNIT_OUT_DDL = ", ".join(f"`{f.name}` {_DDL[f.type]}" for f in UNIT_OUT)


# ------------------------------------------------------------------------------ reading on executors


def _read_range(path: str, start: int, end: int) -> bytes:
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path) if "://" in path else (fs.LocalFileSystem(), path)
    with filesystem.open_input_file(inner) as fh:
        fh.seek(start)
        return fh.read(end - start)


def _aligned(path: str, start: int, end: int, size: int) -> tuple[int, bytes]:
    """Return (offset, bytes) of the lines that start in [start, end): the Hadoop rule, so every line is
    read by exactly one range."""
    if start > 0:
        lead = _read_range(path, start - 1, min(size, end + 1))
        cut = lead.find(b"\n")
        begin = start - 1 + cut + 1 if cut >= 0 else size
    else:
        begin = 0
    if begin >= end:
        return begin, b""
    data = _read_range(path, begin, end)
    if end < size and not data.endswith(b"\n"):
        tail = b""
        pos = end
        while pos < size:
            piece = _read_range(path, pos, min(size, pos + 1 << 16))
            cut = piece.find(b"\n")
            if cut >= 0:
                tail += piece[:cut + 1]
                break
            tail += piece
            pos += len(piece)
        data += tail
    return begin, data


def _open_stream(path: str):
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(path) if "://" in path else (fs.LocalFileSystem(), path)
    raw = filesystem.open_input_stream(inner, compression=None)
    return gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw


def _unit_batches(ctx: Context, unit: dict) -> Iterator[pa.RecordBatch]:
    """Parse one work unit (a byte range, or a whole compressed or SSE file) into output rows."""
    from ingest.extract import extract_lines, extract_sse, from_ipc

    fmt, path = unit["format"], unit["path"]
    outputs = []
    if unit["whole"]:
        with _open_stream(path) as stream:
            if fmt == sse.NAME:
                outputs.append(extract_sse(stream.read(), 0, ctx))
            else:
                offset, carry = 0, b""
                while True:
                    block = stream.read(GZIP_BLOCK)
                    data = carry + block
                    if not block:
                        if data:
                            outputs.append(extract_lines(fmt, data, offset, ctx))
                        break
                    cut = data.rfind(b"\n") + 1
                    if cut:
                        outputs.append(extract_lines(fmt, data[:cut], offset, ctx))
                        offset += cut
                    carry = data[cut:]
    else:
        begin, data = _aligned(path, unit["start"], unit["end"], unit["size"])
        outputs.append(extract_lines(fmt, data, begin, ctx))
    lines = records = 0
    for out in outputs:  # chunk-relative line numbers → unit-relative
        if out.rows:
            table = from_ipc(out.ipc)
            table = pa.table({name: _plain(table.column(name), name) for name in FIELD_NAMES})
            if lines:
                table = table.set_column(table.schema.get_field_index("line_no"), "line_no",
                                         pa.compute.add(table.column("line_no"), lines))
            yield _with_extra(table, unit, "a")
        if out.rejects:
            n = len(out.rejects)
            rej = pa.table({name: pa.nulls(n, _PLAIN.field(name).type) for name in FIELD_NAMES})
            rej = rej.set_column(rej.schema.get_field_index("line_no"), "line_no",
                                 pa.array([line + lines for line, _, _ in out.rejects], pa.int64()))
            yield _with_extra(rej, unit, "r", byte_offset=[o for _, o, _ in out.rejects],
                              reason=[r for _, _, r in out.rejects])
        lines += out.lines
        records += out.records
    stats = pa.table({name: pa.nulls(1, _PLAIN.field(name).type) for name in FIELD_NAMES})
    yield _with_extra(stats, unit, "s", records=[records], lines=[lines])


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


def _parse_units(ctx: Context):
    def parse(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for unit in batch.to_pylist():
                for out in _unit_batches(ctx, unit):
                    if out.num_rows:
                        yield out
    return parse


# ------------------------------------------------------------------------------ files on the driver


@dataclass
class InputFile:
    path: str
    display: str
    size: int
    compressed: bool
    format: str = "exchange"
    sha256: str = ""


def list_inputs(paths: list[str]) -> list[InputFile]:
    """Return the input files named (files, directories recursively in name order, globs; local or URIs)."""
    import glob as globmod

    from pyarrow import fs

    out: list[InputFile] = []
    for name in paths:
        if name == "-":
            raise UsageError("--engine spark reads files, not standard input.")
        if "://" in name:
            filesystem, inner = fs.FileSystem.from_uri(name)
            scheme = name.split("://", 1)[0]
            info = filesystem.get_file_info(inner)
            if info.type == fs.FileType.Directory:
                infos = sorted((i for i in filesystem.get_file_info(fs.FileSelector(inner, recursive=True))
                                if i.type == fs.FileType.File and not i.base_name.startswith(".")),
                               key=lambda i: i.path)
            elif info.type == fs.FileType.File:
                infos = [info]
            else:
                raise FallbackscopeError(f"{name}: no such file or directory.")
            out.extend(InputFile(f"{scheme}://{i.path}", f"{scheme}://{i.path}", i.size, i.path.endswith(".gz"))
                       for i in infos)
            continue
        matches = sorted(globmod.glob(name)) if globmod.has_magic(name) else [name]
        if not matches:
            raise FallbackscopeError(f"{name}: no such file or directory.")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
            elif path.exists():
                files = [path]
            else:
                raise FallbackscopeError(f"{match}: no such file or directory.")
            for p in files:
                out.append(InputFile(str(p.resolve()), str(p), p.stat().st_size, p.name.endswith(".gz")))
    return out


def _head_and_hash(item: InputFile) -> tuple[bytes, str]:
    """Return the first 64 KiB of the decompressed file (for format detection) and the sha256 of its bytes."""
    from pyarrow import fs

    filesystem, inner = fs.FileSystem.from_uri(item.path) if "://" in item.path else (fs.LocalFileSystem(),
                                                                                        item.path)
    digest = hashlib.sha256()
    try:
        with filesystem.open_input_stream(inner, compression=None) as raw:
            first = b""
            while True:
                block = raw.read(GZIP_BLOCK)
                if not block:
                    break
                if not first:
                    first = block
                digest.update(block)
        head = first
        if item.compressed:
            with gzip.GzipFile(fileobj=io.BytesIO(first)) as gz:
                try:
                    head = gz.read(65536)
                except (EOFError, OSError):
                    head = b""
    except OSError as exc:
        raise FallbackscopeError(f"{item.display}: cannot read the file ({type(exc).__name__}).") from None
    return head[:65536], digest.hexdigest()


def _units(files: list[InputFile]) -> list[dict]:
    units = []
    for idx, item in enumerate(files):
        whole = item.compressed or item.format == sse.NAME or item.size <= UNIT_BYTES
        ranges = [(0, item.size)] if whole else [(a, min(a + UNIT_BYTES, item.size))
                                                 for a in range(0, item.size, UNIT_BYTES)]
        for u, (a, b) in enumerate(ranges):
            units.append({"file_idx": idx, "unit_idx": u, "path": item.path, "format": item.format,
                          "start": a, "end": b, "size": item.size, "whole": whole})
    return units


# ------------------------------------------------------------------------------ the run


@dataclass
class SparkLoadOptions:
    format: str | None = None
    workload: str | None = None
    default_ts: str | None = None
    batch_id: str | None = None
    policy_file: Path | None = None


def ingest_spark(spark, store_uri: str, paths: list[str], options: SparkLoadOptions | None = None,
                 key: bytes | None = None) -> list[FileReport]:
    """Load the files named into the Parquet store at `store_uri`; return one report per file."""
    from pyspark.sql import functions as F

    from ingest.detect import detect_format, parse_default_ts

    options = options or SparkLoadOptions()
    if options.format is not None and options.format not in ALL_FORMATS:
        raise UsageError(f"--format: unknown format {options.format!r} (one of {', '.join(ALL_FORMATS)}).")
    default_ts = parse_default_ts(options.default_ts)
    store = sstore.Store(spark, store_uri)
    started = dt.datetime.now(dt.UTC)
    if options.policy_file is not None:
        from fallbackscope.core.policy import read_policy_file

        store.append_policy(str(options.policy_file), read_policy_file(options.policy_file), started)
    con = store.connection()
    table = prices.install_price_rows(con)
    ctx = Context(key if key is not None else store.key(), dict(table.aliases), options.workload, default_ts,
                  options.batch_id)

    files = list_inputs(paths)
    loaded_shas = store.loaded_shas()
    next_id = store.next_load_id()
    reports: list[FileReport] = []
    todo: list[InputFile] = []
    for item in files:
        head, item.sha256 = _head_and_hash(item)
        item.format = options.format or detect_format(head)
        if item.sha256 in loaded_shas:
            reports.append(FileReport(item.display, "skipped", load_id=next_id))
        else:
            todo.append(item)
            loaded_shas.add(item.sha256)
            reports.append(FileReport(item.display, "ok", item.format, load_id=next_id))
        next_id += 1
    by_idx = {i: r for i, r in enumerate(r for r in reports if r.status == "ok")}
    if todo:
        try:
            _run(spark, store, con, ctx, todo, by_idx, table.web_search_usd, F)
        except Exception as exc:
            if isinstance(exc, FallbackscopeError):
                raise
            raise FallbackscopeError(f"{store.location}: the Spark job failed ({_job_error(exc)}); nothing was "
                                     "recorded in the ledger.") from None
    finished = dt.datetime.now(dt.UTC)
    store.append_loads([(r.load_id, r.path, item.sha256, r.format, started, finished, r.records,
                         r.attempts_loaded, r.duplicates, r.rejected, r.status)
                        for r, item in zip(reports, files, strict=True)])
    con.close()
    return reports


def _run(spark, store, con, ctx: Context, todo: list[InputFile], by_idx: dict[int, FileReport],
         web_search_usd: float, F) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import Window

    units = _units(todo)
    unit_frame = spark.createDataFrame(
        units, "file_idx INT, unit_idx INT, path STRING, format STRING, start BIGINT, `end` BIGINT, size BIGINT,"
               " whole BOOLEAN")
    parsed = (unit_frame.repartition(max(1, len(units)))
              .mapInArrow(_parse_units(ctx), UNIT_OUT_DDL)
              .persist(StorageLevel.DISK_ONLY))
    try:
        # unit-relative line numbers → file line numbers
        stats = parsed.where("kind = 's'").select("file_idx", "unit_idx", "records", "lines").collect()
        starts, running = [], {}
        for row in sorted(stats, key=lambda r: (r.file_idx, r.unit_idx)):
            starts.append((row.file_idx, row.unit_idx, running.get(row.file_idx, 0)))
            running[row.file_idx] = running.get(row.file_idx, 0) + row.lines
            by_idx[row.file_idx].records += row.records
        shift = spark.createDataFrame(starts, "file_idx INT, unit_idx INT, line_base BIGINT")
        rows = (parsed.where("kind <> 's'").join(F.broadcast(shift), ["file_idx", "unit_idx"])
                .withColumn("line_no", F.col("line_no") + F.col("line_base")))
        rejects = rows.where("kind = 'r'").select("file_idx", "line_no", "byte_offset", "reason").collect()
        for r in rejects:
            report = by_idx[r.file_idx]
            report.rejected += 1
            report.reasons[r.reason] = report.reasons.get(r.reason, 0) + 1
        store.append_rejects([(by_idx[r.file_idx].load_id, by_idx[r.file_idx].path, r.line_no, r.byte_offset,
                               r.reason) for r in rejects])
        attempts = rows.where("kind = 'a'").drop("kind", "byte_offset", "reason", "records", "lines", "line_base",
                                                 "unit_idx")
        attempts = _with_content_ids(attempts)
        # the first of equal ids (by file, record, hop) is kept; an id already stored is a duplicate
        first = Window.partitionBy("attempt_id").orderBy("file_idx", "line_no", "hop")
        fresh = (attempts.withColumn("_n", F.row_number().over(first)).where("_n = 1").drop("_n")
                 .join(store.attempts().select("attempt_id"), "attempt_id", "left_anti")
                 .persist(StorageLevel.DISK_ONLY))
        for row in fresh.groupBy("file_idx").agg(F.count("*").alias("n"),
                                                 F.countDistinct("line_no").alias("recs")).collect():
            report = by_idx[row.file_idx]
            report.attempts_loaded = row.n
            report.duplicates = -row.recs  # loaded records, for now
        for report in by_idx.values():  # records = loaded + duplicates + rejected
            report.duplicates = report.records - report.rejected + min(report.duplicates, 0)
        if not any(r.attempts_loaded for r in by_idx.values()):
            fresh.unpersist()
            return  # every attempt is stored already
        linked = _linked(spark, store, fresh, F)
        load_ids = spark.createDataFrame([(i, r.load_id) for i, r in by_idx.items()], "file_idx INT, load_id BIGINT")
        final = (fresh.join(linked, "attempt_id").join(F.broadcast(load_ids), "file_idx")
                 .withColumn("ts", F.timestamp_micros("ts")))
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
        fresh.unpersist()
    finally:
        parsed.unpersist()


def _with_content_ids(attempts):
    """Give id-less records their content id with the DuckDB loader's own function, per file."""
    from ingest.dedup import fill_content_ids

    needing = attempts.where("attempt_id IS NULL")
    if needing.isEmpty():
        return attempts
    keep = attempts.where("attempt_id IS NOT NULL")

    def fill(group: pa.Table) -> pa.Table:
        order = pa.compute.sort_indices(group, [("line_no", "ascending"), ("hop", "ascending")])
        return fill_content_ids(group.take(order))

    return keep.unionByName(needing.groupBy("file_idx").applyInArrow(fill, needing.schema))


# ------------------------------------------------------------------------------ linking


LINK_OUT = "attempt_id STRING, chain_id STRING, attempt_index INT, trigger STRING, fallback_mode STRING"


def _scope(F, frame):
    return F.when(F.col("session_id").isNull(), F.concat(F.lit("w:"), F.col("workload"))) \
        .otherwise(F.concat(F.lit("s:"), F.col("session_id")))


def _linked(spark, store, fresh, F):
    """Return attempt_id, chain_id, attempt_index, trigger, fallback_mode of the fresh attempts (docs/metrics.md §4)."""
    new = fresh.select(
        "attempt_id", F.col("ts").alias("ts_us"), _scope(F, fresh).alias("scope"), "prompt_fp", "given_chain_id",
        "credit_presented_fp", "credit_minted_fp", (F.col("file_idx").cast("long") * (1 << 32) + F.col("line_no"))
        .alias("line_no"), "hop", "hop_mode", "outcome", "accepted", "model", "error_class", "given_trigger",
        "intended_model", F.lit(1).alias("_new"), "file_idx", F.coalesce("given_attempt", F.lit(0)).alias("_order"),
        F.col("line_no").alias("_line"))
    context = _stored_context(store, new, F)
    rows = new.unionByName(context) if context is not None else new
    groups = _components(spark, rows, F)
    if groups is None:
        rows = rows.withColumn("group", F.col("scope"))
    else:
        rows = rows.join(F.broadcast(groups), "scope", "left").withColumn("group", F.coalesce("group", "scope"))
    # one pass per partition over groups laid out contiguously: no per-group pandas frames
    parts = max(1, int(spark.conf.get("spark.sql.shuffle.partitions")))
    rows = rows.repartition(parts, "group").sortWithinPartitions("group", *_LINK_ORDER)
    return rows.select("group", "_new", "file_idx", "_order", "_line", *linking.LINK_COLUMNS).mapInArrow(
        _link_partition, LINK_OUT)


_LINK_ORDER = ("_new", "file_idx", "ts_us", "_order", "_line", "hop")


def _link_partition(batches):
    """Link the groups of one partition (rows sorted by group, then the load order) one group at a time."""
    names = ("group", "_new", "file_idx", "_order", "_line", *linking.LINK_COLUMNS)
    current: dict[str, list] | None = None
    group = object()
    for batch in batches:
        data = batch.to_pydict()
        groups = data["group"]
        start = 0
        for i in range(len(groups) + 1):
            if i < len(groups) and groups[i] == group:
                continue
            if current is not None and i > start:
                for name in names:
                    current[name].extend(data[name][start:i])
            if i == len(groups):
                break
            if current is not None:
                yield _linked_batch(current)
            current = {name: [] for name in names}
            group, start = groups[i], i
    if current is not None:
        yield _linked_batch(current)


def _linked_batch(cols: dict[str, list]) -> pa.RecordBatch:
    """Link one group's rows (stored context first, then new attempts in load order): file by file, as the
    DuckDB loader does — before each file the linker is seeded from what is stored by then (`Linker.from_stored`),
    then the shared `Linker` runs over the file's attempts."""
    n = len(cols["group"])
    chain_ids: list = [None] * n
    indexes: list = [0] * n
    triggers: list = [None] * n
    modes: list = [None] * n
    # stored rows, in linking.STORED_COLUMNS order
    stored = [(cols["given_chain_id"][i], cols["ts_us"][i], cols["_order"][i], cols["scope"][i],
               cols["prompt_fp"][i], cols["credit_minted_fp"][i], cols["model"][i], cols["outcome"][i],
               cols["accepted"][i], cols["error_class"][i]) for i in range(n) if cols["_new"][i] == 0]
    start = len(stored)
    while start < n:
        end = start
        while end < n and cols["file_idx"][end] == cols["file_idx"][start]:
            end += 1
        linker = linking.Linker.from_stored(stored, min(cols["ts_us"][start:end]))
        rows = zip(*(cols[c][start:end] for c in linking.LINK_COLUMNS), strict=True)
        chain_ids[start:end], indexes[start:end], triggers[start:end], modes[start:end] = linker.link(rows)
        stored.extend((chain_ids[i], cols["ts_us"][i], indexes[i], cols["scope"][i], cols["prompt_fp"][i],
                       cols["credit_minted_fp"][i], cols["model"][i], cols["outcome"][i], cols["accepted"][i],
                       cols["error_class"][i]) for i in range(start, end))
        start = end
    first = n - sum(cols["_new"])
    return pa.RecordBatch.from_pydict(
        {"attempt_id": cols["attempt_id"][first:], "chain_id": chain_ids[first:],
         "attempt_index": pa.array(indexes[first:], pa.int32()), "trigger": triggers[first:],
         "fallback_mode": modes[first:]},
        schema=pa.schema([("attempt_id", pa.string()), ("chain_id", pa.string()), ("attempt_index", pa.int32()),
                          ("trigger", pa.string()), ("fallback_mode", pa.string())]))


def _stored_context(store, new, F):
    """Return stored attempts of the chains new attempts may join, as linker input replayed before them.

    The same chains the DuckDB loader preloads: chains named by a new attempt's chain id, chains whose
    refusal minted a credit a new attempt presents, and chains with the same prompt in the same scope
    that ran in the 10 minutes before the first new attempt. Each is replayed whole under its stored id.
    """
    stored = store.attempts()
    if stored.isEmpty():
        return None
    s = stored.select("*", _scope(F, stored).alias("scope"), F.unix_micros("ts").alias("ts_us"))
    min_ts = new.agg(F.min("ts_us")).first()[0]
    by_given = s.join(new.select(F.col("given_chain_id").alias("chain_id")).where("chain_id IS NOT NULL").distinct(),
                      "chain_id", "left_semi")
    by_credit = s.join(new.select(F.col("credit_presented_fp").alias("credit_minted_fp"))
                       .where("credit_minted_fp IS NOT NULL").distinct(), "credit_minted_fp", "left_semi")
    by_prompt = s.where(F.col("ts_us") >= min_ts - linking.LINK_WINDOW_US).join(
        new.select("scope", "prompt_fp").where("prompt_fp IS NOT NULL").distinct(), ["scope", "prompt_fp"],
        "left_semi")
    wanted = by_given.select("chain_id").union(by_credit.select("chain_id")).union(by_prompt.select("chain_id")) \
        .distinct()
    chains = s.join(wanted, "chain_id", "left_semi")
    return chains.select(
        F.concat(F.lit("ctx:"), "attempt_id").alias("attempt_id"), "ts_us", "scope", "prompt_fp",
        F.col("chain_id").alias("given_chain_id"), "credit_presented_fp", "credit_minted_fp",
        (-F.monotonically_increasing_id() - 1).alias("line_no"), F.lit(0).cast("int").alias("hop"),
        F.lit(None).cast("string").alias("hop_mode"), "outcome", "accepted", "model", "error_class",
        F.lit(None).cast("string").alias("given_trigger"), "intended_model", F.lit(0).alias("_new"),
        F.lit(0).cast("int").alias("file_idx"), F.col("attempt_index").cast("long").alias("_order"),
        F.lit(0).cast("long").alias("_line"))


def _components(spark, rows, F):
    """Return scope → group for scopes joined by an app chain id or a credit token crossing scopes (None
    when no link crosses a scope: each scope is its own group)."""
    chain_edges = (rows.where("given_chain_id IS NOT NULL").groupBy("given_chain_id")
                   .agg(F.collect_set("scope").alias("scopes")).where(F.size("scopes") > 1).select("scopes"))
    minted = rows.where("credit_minted_fp IS NOT NULL").select(F.col("credit_minted_fp").alias("fp"),
                                                               F.col("scope").alias("a"))
    presented = rows.where("credit_presented_fp IS NOT NULL").select(F.col("credit_presented_fp").alias("fp"),
                                                                     F.col("scope").alias("b"))
    credit_edges = minted.join(presented, "fp").where("a <> b").select(F.array("a", "b").alias("scopes"))
    edges = [list(r.scopes) for r in chain_edges.union(credit_edges).distinct().collect()]
    if not edges:
        return None
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for scopes in edges:
        root = find(scopes[0])
        for other in scopes[1:]:
            parent[find(other)] = root
    return spark.createDataFrame([(s, find(s)) for s in parent], "scope STRING, `group` STRING")


def _job_error(exc: BaseException) -> str:
    """Return the last line of a Spark or Python worker error that names its type (never a record)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    named = [line for line in lines if "Error" in line.split(":")[0] or "Exception" in line.split(":")[0]]
    text = (named or lines or [type(exc).__name__])[-1]
    return text.split(":")[0][:120]
