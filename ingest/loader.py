"""Load input files into the store: atomic per file, idempotent, every record accounted for.

The flow of one file: parse (worker processes for large files) → Arrow batches in memory →
a TEMP staging table → dedup against stored attempts → chain linking → one transaction that
inserts the priced attempts, the rejects and the file's `loads` row. Nothing of the raw records
is ever written to the database file.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import gzip
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from fallbackscope.core import prices, store
from fallbackscope.core.config import load_key
from fallbackscope.core.errors import FallbackscopeError, UsageError
from ingest import linking
from ingest.extract import (
    Extracted,
    extract_bytes,
    extract_lines,
    extract_range,
    extract_sse,
    from_ipc,
    gc_paused,
    init_worker,
    release_memory,
)
from ingest.formats import ALL_FORMATS, LINE_FORMATS, sse
from ingest.message import Context
from ingest.sources import HashingReader, Source, ends_inside_a_line, expand, file_sha256, line_ranges
from ingest.sources import cpu_workers as _cpu_workers
from ingest.tables import any_true, distinct_records, fill_content_ids, first_of_each_id, repeated

POOL_THRESHOLD = 24 * 1024 * 1024  # smaller files parse in this process: no pool start-up cost
LINK_SLICE = 100_000
WRITE_WAIT_SECONDS = 300.0  # how long a write window waits for readers to let go of the file
DUCKDB_MEMORY = os.environ.get("FALLBACKSCOPE_DUCKDB_MEMORY", "512MB")
# the reasons `extract` gives a line that may be the start of a record still being written
UNFINISHED_REASONS = frozenset({"invalid JSON", "not UTF-8"})
ProgressFn = Callable[[str, int, int | None], None]


@dataclass
class LoadOptions:
    """Command-line options of `ingest` that shape how records are read."""

    format: str | None = None
    workload: str | None = None
    default_ts: str | None = None
    batch_id: str | None = None
    policy_file: Path | None = None
    prices_file: Path | None = None
    workers: int | None = None


@dataclass
class FileReport:
    """The outcome of one input file: the counts of its `loads` row."""

    path: str
    status: str
    format: str | None = None
    load_id: int | None = None
    records: int = 0
    attempts_loaded: int = 0
    duplicates: int = 0
    rejected: int = 0
    error: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def loaded(self) -> int:
        return self.records - self.duplicates - self.rejected


def parse_default_ts(text: str | None) -> int | None:
    """Return `--default-ts` as UTC microseconds, or raise UsageError."""
    if text is None:
        return None
    from ingest.fields import Reject, parse_ts

    try:
        return parse_ts(text, "--default-ts")
    except Reject:
        raise UsageError(f"--default-ts: not an RFC 3339 time: {text!r}.") from None


def detect_format(head: bytes) -> str:
    """Return the format of a file from its first bytes (SSE text, else the first JSON object)."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    if sse.looks_like_text(head):
        return sse.NAME
    for raw in head.split(b"\n")[:50]:
        raw = raw.strip()
        if not raw:
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        for module in LINE_FORMATS.values():
            if module.looks_like(obj):
                return module.NAME
    for module in LINE_FORMATS.values():  # a first line longer than the head: its opening keys
        sniff = getattr(module, "looks_like_start", None)
        if sniff is not None and sniff(head.lstrip()[:4096]):
            return module.NAME
    return "exchange"


class Loader:
    """Loads sources into one database with a pool of parsing processes.

    The database is opened only for short windows — the checks before a file and its write after it
    is parsed — so a dashboard reading the same file can open it between them (DuckDB lets no reader in
    while a writer has the file open).
    """

    def __init__(self, db_path: Path, options: LoadOptions, progress: ProgressFn | None = None) -> None:
        if options.format is not None and options.format not in ALL_FORMATS:
            raise UsageError(f"--format: unknown format {options.format!r} (one of {', '.join(ALL_FORMATS)}).")
        self.db_path = db_path
        self.options = options
        self.progress = progress
        self.con: duckdb.DuckDBPyConnection | None = None
        default_ts = parse_default_ts(options.default_ts)
        self.price_table: prices.PriceTable | None = None
        with self._connected():
            self._apply_settings()
            self.price_table = prices.install_price_rows(self.con)
            self._columns = store.attempt_columns(self.con)
        table = self.price_table
        self.web_search_usd = table.web_search_usd
        self.ctx = Context(load_key(db_path), dict(table.aliases), options.workload, default_ts, options.batch_id)
        self._pool: cf.ProcessPoolExecutor | None = None
        self.workers = options.workers or _cpu_workers()

    @contextlib.contextmanager
    def _connected(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the database for one write window (waiting while readers hold it), then close it."""
        con = store.connect(self.db_path, wait_seconds=WRITE_WAIT_SECONDS)
        try:
            # a bounded buffer pool: large loads spill to DuckDB's temp files instead of growing RSS
            try:
                con.execute("SET memory_limit = ?", [DUCKDB_MEMORY])
            except duckdb.Error:
                raise UsageError("$FALLBACKSCOPE_DUCKDB_MEMORY is not a memory size such as 512MB.") from None
            con.execute("SET preserve_insertion_order = false")
            if self.price_table is not None:
                prices.install_price_rows(con, self.price_table)
            self.con = con
            yield con
        finally:
            self.con = None
            con.close()
            _trace("closed")

    def _apply_settings(self) -> None:
        opts = self.options
        if opts.policy_file is not None:
            from fallbackscope.core.policy import read_policy_file

            text = read_policy_file(opts.policy_file)
            self.con.execute("INSERT INTO policy VALUES (now(), ?, ?)", [str(opts.policy_file), text])
        if opts.prices_file is not None:
            text = prices.read_price_file(opts.prices_file)
            self.con.execute("BEGIN TRANSACTION")
            self.con.execute("INSERT INTO price_table VALUES (now(), ?, ?)", [str(opts.prices_file), text])
            prices.reprice(self.con)
            self.con.execute("COMMIT")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
            _trace("workers stopped")

    def __enter__(self) -> Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per file ---------------------------------------------------------------------------

    def load(self, source: Source) -> FileReport:
        """Load one source; returns its report. Raises FallbackscopeError when it cannot be read."""
        started = dt.datetime.now(dt.UTC)
        try:
            return self._load(source, started)
        except FallbackscopeError as exc:
            self._record_failure(source, started, str(exc))
            raise
        except (OSError, EOFError, zlib.error) as exc:
            message = f"{source.display}: cannot read the file ({_read_failure(exc)}); nothing of it was loaded."
            self._record_failure(source, started, message)
            raise FallbackscopeError(message) from None

    def _record_failure(self, source: Source, started: dt.datetime, message: str) -> None:
        with self._connected() as con:
            con.execute(
                "INSERT INTO loads (load_id, path, started_at, finished_at, records, attempts_loaded, duplicates,"
                " rejected, status, error) VALUES (nextval('load_id_seq'), ?, ?, now(), 0, 0, 0, 0, 'failed', ?)",
                [source.display, started, message],
            )

    def _previous_loads(self, source: Source) -> list[tuple]:
        if source.path is None:
            return []
        return self.con.execute(
            "SELECT sha256, file_size, mtime_ns, bytes_read, lines_read FROM loads"
            " WHERE path = ? AND status = 'ok' AND sha256 IS NOT NULL ORDER BY load_id DESC",
            [str(source.path)],
        ).fetchall()

    def _sha_loaded(self, sha: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM loads WHERE sha256 = ? AND status = 'ok'", [sha]).fetchone()[0])

    def _load(self, source: Source, started: dt.datetime) -> FileReport:
        start_byte, start_line = 0, 0
        with self._connected():
            previous = self._previous_loads(source)
        known_sha: str | None = None
        if previous and source.path is not None:
            sha, size, mtime, bytes_read, lines_read = previous[0]
            if size == source.size and mtime == source.mtime_ns:
                known_sha = file_sha256(source.path)
                with self._connected():
                    if self._sha_loaded(known_sha):
                        return self._skipped(source, started, known_sha)
            elif (not source.compressed and size is not None and source.size is not None
                  and source.size > size and file_sha256(source.path, size) == sha):
                start_byte, start_line = bytes_read, lines_read  # a grown log: only its new lines

        _trace("parse start")
        fmt = self.options.format or (detect_format(source.head()) if not source.is_stdin else None)
        if source.splittable and source.size is not None and source.size - start_byte > POOL_THRESHOLD:
            result = self._parse_ranges(source, fmt, start_byte)  # the workers read it; hashed after parsing
        else:
            result = self._parse_stream(source, HashingReader(source, start=start_byte), fmt, start_byte)
        fmt, parts, rejects, records, lines, end, sha = result
        _trace("parse done")
        resume = self._resume_point(source, fmt, rejects, start_byte, start_line, lines, end)
        # a copy of a loaded file is skipped by its whole sha256, under another name or grown since its last load
        skip_if_seen = known_sha is None
        with self._connected():
            if isinstance(sha, str) and skip_if_seen and self._sha_loaded(sha):
                return self._skipped(source, started, sha)
            return self._commit(source, started, fmt, parts, rejects, records, start_line, start_byte, resume,
                                sha, skip_if_seen)

    @staticmethod
    def _resume_point(source: Source, fmt: str, rejects: list[tuple[int, int, str]], start_byte: int,
                      start_line: int, lines: int, end: int) -> tuple[int, int]:
        """Return where the next load of this file, once grown, starts: (byte offset, lines before it).
        Updates `rejects` in place: the reason of an unfinished last line says so.

        That is the end of the bytes read, unless they end in an unterminated line rejected as invalid
        JSON or not UTF-8 — a record its writer may still be writing: then the start of that line, so the
        completed record is read again. A complete unterminated line
        (loaded, a duplicate, or rejected for what it holds) is not read again. Lines are counted whole,
        so the rest of a line appended later keeps that line's number.
        """
        path = source.path if source.splittable else None  # only an uncompressed file is read as grown
        if path is None or fmt == sse.NAME or not ends_inside_a_line(path, start_byte, end):
            return end, start_line + lines
        for i in range(len(rejects) - 1, -1, -1):  # the last line's reject, if any, is near the end
            line, offset, reason = rejects[i]
            if line == lines and reason in UNFINISHED_REASONS:
                rejects[i] = (line, offset, f"{reason} (unterminated last line)")
                return offset, start_line + lines - 1
        return end, start_line + lines - 1

    def _skipped(self, source: Source, started: dt.datetime, sha: str) -> FileReport:
        load_id = self.con.execute("SELECT nextval('load_id_seq')").fetchone()[0]
        self.con.execute(
            "INSERT INTO loads (load_id, path, sha256, started_at, finished_at, records, attempts_loaded,"
            " duplicates, rejected, status, file_size, mtime_ns) VALUES (?, ?, ?, ?, now(), 0, 0, 0, 0,"
            " 'skipped', ?, ?)",
            [load_id, _stored_path(source), sha, started, source.size, source.mtime_ns],
        )
        return FileReport(source.display, "skipped", load_id=load_id)

    # -- parsing ----------------------------------------------------------------------------

    def _pool_for(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=context, initializer=init_worker,
                                                initargs=(self.ctx, os.getpid()))
        return self._pool

    def _parse_ranges(self, source: Source, fmt: str, start_byte: int):
        assert source.path is not None and source.size is not None
        pool = self._pool_for()
        ranges = line_ranges(source.path, start_byte, source.size)
        # the last range each worker takes (in practice the last `workers` ranges) ends its part of the file
        futures = [pool.submit(extract_range, fmt, str(source.path), a, b, last=i >= len(ranges) - self.workers)
                   for i, (a, b) in enumerate(ranges)]
        done_bytes = 0
        outputs = []
        for (a, b), future in zip(ranges, futures, strict=True):
            outputs.append(future.result())
            done_bytes += b - a
            if self.progress:
                self.progress(source.display, done_bytes, source.size - start_byte)
        # hashed while the main process links and inserts, not while the workers need both cores
        hasher = cf.ThreadPoolExecutor(1)
        sha = hasher.submit(file_sha256, source.path)
        hasher.shutdown(wait=False)
        parts, rejects, records, lines = _gather(outputs)
        return fmt, parts, rejects, records, lines, source.size, sha

    def _parse_stream(self, source: Source, reader: HashingReader, fmt: str | None, start_byte: int):
        outputs: list[Extracted] = []
        blocks = reader.blocks()
        if fmt is None:  # stdin: detect from its first block
            first = next(blocks, None)
            fmt = self.options.format or detect_format(first[1][:65536] if first else b"")
            pending = [first] if first else []
        else:
            pending = []
        if fmt == sse.NAME:
            data = b"".join(block for _, block in pending) + b"".join(block for _, block in blocks)
            parts, rejects, records, lines = _gather([extract_sse(data, start_byte, self.ctx)])
            return fmt, parts, rejects, records, lines, reader.position, reader.finish()
        use_pool = source.size is None or source.size > POOL_THRESHOLD
        futures = []
        for offset, data in _chain(pending, blocks):
            if use_pool:
                futures.append(self._pool_for().submit(extract_bytes, fmt, data, offset))
            else:
                outputs.append(extract_lines(fmt, data, offset, self.ctx))
            if self.progress:
                self.progress(source.display, reader.position - start_byte, (source.size or 0) - start_byte
                              if not source.compressed and source.size else None)
        outputs.extend(f.result() for f in futures)
        sha = reader.finish()
        parts, rejects, records, lines = _gather(outputs)
        return fmt, parts, rejects, records, lines, reader.position, sha

    # -- the write --------------------------------------------------------------------------

    def _commit(self, source: Source, started: dt.datetime, fmt: str, parts: list[pa.Table],
                rejects: list[tuple[int, int, str]], records: int, start_line: int, start_byte: int,
                resume: tuple[int, int], sha: str | cf.Future[str], skip_if_seen: bool) -> FileReport:
        con = self.con
        # asked once per file: the dedup and the linking context both need it
        has_stored = bool(con.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0])
        fresh = (self._fresh(pa.concat_tables(parts).unify_dictionaries(), start_line, has_stored)
                 if parts else None)
        parts.clear()
        _trace("staged")
        con.execute("BEGIN TRANSACTION")
        load_id = con.execute("SELECT nextval('load_id_seq')").fetchone()[0]
        attempts_loaded = loaded_records = 0
        if fresh is not None and fresh.num_rows:
            attempts_loaded = fresh.num_rows
            loaded_records = distinct_records(fresh)
            self._insert(self._linked(fresh, has_stored), load_id)
            _trace("inserted")
        if rejects:
            reject_table = pa.table({
                "line_no": pa.array([r[0] + start_line for r in rejects], pa.int64()),
                "byte_offset": pa.array([r[1] for r in rejects], pa.int64()),
                "reason": pa.array([r[2] for r in rejects], pa.string()),
            })
            _register(con, "reject_arrow", reject_table)
            con.execute("INSERT INTO rejects SELECT ?, ?, line_no, byte_offset, reason FROM reject_arrow",
                        [load_id, source.display])
            con.unregister("reject_arrow")
        if not isinstance(sha, str):
            sha = sha.result()
            if skip_if_seen and self._sha_loaded(sha):
                con.execute("ROLLBACK")
                return self._skipped(source, started, sha)
        duplicates = records - len(rejects) - loaded_records
        con.execute(
            "INSERT INTO loads (load_id, path, sha256, format, started_at, finished_at, records, attempts_loaded,"
            " duplicates, rejected, status, file_size, mtime_ns, start_byte, bytes_read, lines_read)"
            " VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?)",
            [load_id, _stored_path(source), sha, fmt, started, records, attempts_loaded, duplicates,
             len(rejects), source.size, source.mtime_ns, start_byte, *resume],
        )
        _fault_point(source)
        con.execute("COMMIT")
        _trace("committed")
        reasons: dict[str, int] = {}
        for _, _, reason in rejects:
            reasons[reason] = reasons.get(reason, 0) + 1
        return FileReport(source.display, "ok", fmt, load_id, records, attempts_loaded, duplicates,
                          len(rejects), reasons=reasons)

    def _fresh(self, table: pa.Table, start_line: int, has_stored: bool) -> pa.Table:
        """Return the file's attempts not stored yet, with their final ids, sorted in time order."""
        if start_line:
            for name in ("line_no",):
                i = table.schema.get_field_index(name)
                table = table.set_column(i, name, pc.add(table.column(name), start_line))
        if table.column("attempt_id").null_count:
            table = fill_content_ids(table)
        ids = table.column("attempt_id")
        if pc.count_distinct(ids).as_py() != table.num_rows:
            table = first_of_each_id(table)
        if has_stored:
            _register(self.con, "new_ids", table.select(["attempt_id"]))
            self.con.complete()
            stored = self.con.sql("SELECT attempt_id FROM attempts"
                                  " WHERE attempt_id IN (SELECT attempt_id FROM new_ids)").to_arrow_table()
            self.con.unregister("new_ids")
            if stored.num_rows:
                table = table.filter(pc.invert(pc.is_in(table.column("attempt_id"), stored.column(0))))
        keys = pa.table({"ts": table.column("ts"), "order": pc.fill_null(table.column("given_attempt"), 0),
                         "line_no": table.column("line_no"), "hop": table.column("hop")})
        order = pc.sort_indices(keys, [("ts", "ascending"), ("order", "ascending"), ("line_no", "ascending"),
                                       ("hop", "ascending")])
        if not pc.all(pc.equal(order, pa.array(range(len(order)), order.type))).as_py():
            table = table.take(order)  # logs are usually in time order already: then no copy
        return table

    def _linked(self, fresh: pa.Table, has_stored: bool) -> pa.Table:
        """Return `fresh` with chain_id, attempt_index, trigger and fallback_mode appended.

        Attempts that no rule can tie to another — their chain id, prompt and credit occur nowhere
        else, stored or new, and they are no server-side hop — are chains of one and are linked with
        column operations. The rest go through the sequential linker, in time order.
        """
        linker = self._preload_context(fresh) if has_stored else linking.Linker()
        repeated_chains = repeated(fresh.column("given_chain_id")) | set(linker.chains)
        repeated_prompts = repeated(fresh.column("prompt_fp")) | {fp for _, fp in linker.by_prompt}
        presented = set(pc.unique(fresh.column("credit_presented_fp")).drop_null().to_pylist())
        linker.rejoinable = (repeated_chains, repeated_prompts, presented)
        linked_mask = any_true(
            pc.is_in(fresh.column("given_chain_id"), pa.array(list(repeated_chains), pa.string())),
            pc.is_in(fresh.column("prompt_fp"), pa.array(list(repeated_prompts), pa.string())),
            pc.is_valid(fresh.column("credit_presented_fp")),
            pc.is_in(fresh.column("credit_minted_fp"), pa.array(list(presented), pa.string())),
            pc.not_equal(fresh.column("hop"), 0),
        )
        intended = pc.cast(fresh.column("intended_model"), pa.string())
        model = pc.cast(fresh.column("model"), pa.string())
        pinned = pc.and_kleene(pc.is_valid(intended), pc.fill_null(pc.not_equal(intended, model), True))
        columns = {
            "chain_id": pc.coalesce(fresh.column("given_chain_id"), fresh.column("attempt_id")),
            "attempt_index": pa.chunked_array([pa.array(np.ones(fresh.num_rows, np.int32))]),
            "trigger": pc.if_else(pinned, "pinned", pa.scalar(None, pa.string())),
            "fallback_mode": pa.chunked_array([pa.array(np.full(fresh.num_rows, "none", object), pa.string())]),
        }
        linked_rows = fresh.filter(linked_mask)
        if linked_rows.num_rows:
            results = self._link_sequentially(linker, linked_rows)
            for name, values in zip(columns, results, strict=True):
                columns[name] = pc.replace_with_mask(columns[name].combine_chunks(), linked_mask.combine_chunks(),
                                                     values)
        _trace(f"linked ({linked_rows.num_rows} rows sequentially)")
        release_memory()  # what sorting and linking freed, before the insert (the load's peak)
        for name, values in columns.items():
            fresh = fresh.append_column(name, values)
        return fresh

    def _link_sequentially(self, linker: linking.Linker, rows: pa.Table) -> list[pa.Array]:
        """Return chain_id, attempt_index, trigger and fallback_mode of rows (in time order) from the linker."""
        sessions = rows.column("session_id")
        workloads = pc.cast(rows.column("workload"), pa.string())
        scope = pc.if_else(pc.is_null(sessions), pc.binary_join_element_wise("w:", workloads, ""),
                           pc.binary_join_element_wise("s:", sessions, ""))
        inputs = rows.select([c for c in linking.LINK_COLUMNS if c not in ("ts_us", "scope")])
        inputs = inputs.append_column("ts_us", pc.cast(rows.column("ts"), pa.int64())).append_column("scope", scope)
        inputs = inputs.select(list(linking.LINK_COLUMNS))
        outputs: list[list[pa.Array]] = [[], [], [], []]
        types = (pa.string(), pa.int32(), pa.string(), pa.string())
        with gc_paused():
            self._link_slices(linker, inputs, outputs, types)
        return [pa.concat_arrays(arrays) for arrays in outputs]

    @staticmethod
    def _link_slices(linker: linking.Linker, inputs: pa.Table, outputs: list[list[pa.Array]], types: tuple) -> None:
        hops = inputs.column("hop")
        offset = 0
        while offset < inputs.num_rows:
            # in slices, so the Python objects of a large file never all exist at once; a slice never ends
            # inside the hops of one response, which the linker reads as one run
            end = min(offset + LINK_SLICE, inputs.num_rows)
            while end < inputs.num_rows and hops[end].as_py() > 1:
                end += 1
            part = inputs.slice(offset, end - offset)
            offset = end
            values = [column.to_pylist() for column in part.columns]
            for out, result, kind in zip(outputs, linker.link(zip(*values, strict=True)), types, strict=True):
                out.append(pa.array(result, kind))
            del values

    def _insert(self, linked: pa.Table, load_id: int) -> None:
        con = self.con
        _register(con, "linked_arrow", linked)
        picked = []
        for name in self._columns:
            if name == "load_id":
                picked.append(f"{int(load_id)} AS load_id")
            elif name == "cost_usd":
                picked.append(prices.attempt_cost_sql("f", "p", web_search_usd=self.web_search_usd) + " AS cost_usd")
            else:
                picked.append(f'f."{name}"')
        con.execute(
            f"INSERT INTO attempts SELECT {', '.join(picked)} FROM linked_arrow f {prices.PRICE_JOIN.format(a='f')}"
        )
        con.unregister("linked_arrow")

    def _preload_context(self, fresh: pa.Table) -> linking.Linker:
        """Return a linker seeded with the stored chains that new attempts could join: chains named by a
        new attempt's chain id, chains whose refusal minted a credit a new attempt presents, and chains
        with a new attempt's prompt that ran in the linking window before the file's first attempt."""
        con = self.con
        _register(con, "fresh", fresh.select(["ts", "prompt_fp", "given_chain_id", "credit_presented_fp"]))
        first_ts = con.execute("SELECT epoch_us(min(ts)) FROM fresh").fetchone()[0]
        stored = con.execute(
            "WITH wanted AS ("
            "  SELECT chain_id FROM attempts"
            "    WHERE prompt_fp IN (SELECT prompt_fp FROM fresh WHERE prompt_fp IS NOT NULL) AND epoch_us(ts) >= ?"
            "  UNION SELECT chain_id FROM attempts"
            "    WHERE credit_minted_fp IN"
            "      (SELECT credit_presented_fp FROM fresh WHERE credit_presented_fp IS NOT NULL)"
            "  UNION SELECT given_chain_id FROM fresh WHERE given_chain_id IS NOT NULL)"
            " SELECT a.chain_id, epoch_us(a.ts), a.attempt_index,"
            "  CASE WHEN a.session_id IS NOT NULL THEN 's:' || a.session_id ELSE 'w:' || a.workload END,"
            "  a.prompt_fp, a.credit_minted_fp, a.model, a.outcome, a.accepted, a.error_class"
            " FROM attempts a WHERE a.chain_id IN (SELECT chain_id FROM wanted)",
            [first_ts - linking.LINK_WINDOW_US],
        ).fetchall()
        con.unregister("fresh")
        return linking.Linker.from_stored(stored, first_ts)


_TRACE = bool(os.environ.get("FALLBACKSCOPE_TRACE"))
_T0 = time.perf_counter()


def _trace(what: str) -> None:
    """With FALLBACKSCOPE_TRACE set, print phase timings to stderr (for profiling loads)."""
    if _TRACE:
        import sys

        rss = next((line.split()[1] for line in open("/proc/self/status") if line.startswith("VmRSS")), "?")
        print(f"trace {time.perf_counter() - _T0:8.3f}s rss {int(rss) // 1024} MiB {what}", file=sys.stderr,
              flush=True)


def _fault_point(source: Source) -> None:
    """Crash-test hook: with FALLBACKSCOPE_HOLD_BEFORE_COMMIT=<marker> set, announce the file in the
    marker and wait before committing it, so a test can SIGKILL the load at its riskiest moment."""
    marker = os.environ.get("FALLBACKSCOPE_HOLD_BEFORE_COMMIT")
    if marker and source.display.endswith(os.environ.get("FALLBACKSCOPE_HOLD_FILE", "")):
        Path(marker).write_text(source.display, encoding="utf-8")
        time.sleep(120)


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register an Arrow table; DuckDB 2.0 wants any open result finished first."""
    con.complete()
    con.register(name, table)


def _stored_path(source: Source) -> str:
    return str(source.path) if source.path is not None else "-"


def _chain(first: list, rest):
    yield from first
    yield from rest


def _gather(outputs: list[Extracted]) -> tuple[list[pa.Table], list[tuple[int, int, str]], int, int]:
    """Combine chunk outputs: shift chunk-relative line numbers to file line numbers."""
    parts: list[pa.Table] = []
    rejects: list[tuple[int, int, str]] = []
    records = lines = 0
    for out in outputs:
        if out.rows:
            table = from_ipc(out.ipc)
            if lines:
                for name in ("line_no",):
                    i = table.schema.get_field_index(name)
                    table = table.set_column(i, name, pc.add(table.column(name), lines))
            parts.append(table)
        rejects.extend((line + lines, offset, reason) for line, offset, reason in out.rejects)
        records += out.records
        lines += out.lines
    return parts, rejects, records, lines


def ingest_paths(db_path: str | Path, paths: list[str], options: LoadOptions | None = None,
                 progress: ProgressFn | None = None,
                 on_file: Callable[[FileReport], None] | None = None) -> list[FileReport]:
    """Load every file named (directories recursively, in name order); return one report per file.

    A file that cannot be read gets a report with status `failed` (and a `failed` loads row) and the
    other files still load; then IngestFailed is raised, holding every report.
    """
    options = options or LoadOptions()
    sources = expand(paths)
    reports = []
    with Loader(Path(db_path), options, progress) as loader:
        for source in sources:
            try:
                report = loader.load(source)
            except FallbackscopeError as exc:
                report = FileReport(source.display, "failed", error=str(exc))
            reports.append(report)
            if on_file:
                on_file(report)
    failed = [r for r in reports if r.status == "failed"]
    if failed:
        raise IngestFailed(" ".join(r.error or "" for r in failed), reports)
    return reports


class IngestFailed(FallbackscopeError):
    """Some files could not be read; the others were loaded. `reports` has one report per file."""

    def __init__(self, message: str, reports: list[FileReport]) -> None:
        super().__init__(message)
        self.reports = reports


def _read_failure(exc: BaseException) -> str:
    """Return why a file could not be read, in words (never the exception's text: it could quote content)."""
    if isinstance(exc, EOFError):
        return "its compressed data ends early: the file is truncated"
    if isinstance(exc, gzip.BadGzipFile):
        return "its gzip data is invalid or corrupt"
    if isinstance(exc, zlib.error):
        return "its compressed data is corrupt"
    return getattr(exc, "strerror", None) or type(exc).__name__
