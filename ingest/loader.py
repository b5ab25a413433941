"""Load input files into the store: atomic per file, idempotent, every record accounted for.

The flow of one file: the ledger says where to start (`ingest.ledger`) → parse (`ingest.parse`, worker
processes for large files) → Arrow tables in memory → the duplicate rule (`ingest.dedup`) → chain linking
(`ingest.linking`) → one transaction that inserts the priced attempts, the rejects and the file's `loads`
row. This module holds the write windows and that transaction. Nothing of the raw records is ever written
to the database file.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import json
import os
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from fallbackscope.core import prices, store
from fallbackscope.core.config import key_check_value, key_mismatch, writing_key
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.core.outcomes import unknown_stop_sql
from ingest import dedup, history, ledger, linking, relink
from ingest.detect import check_format, detect_format, parse_default_ts
from ingest.formats import otel_nesting
from ingest.ledger import FileReport, Start
from ingest.message import Context
from ingest.parse import Parsed, Parser, ProgressFn, shift_lines
from ingest.settings import store_settings
from ingest.sources import Source, expand, open_stream
from ingest.sources import cpu_workers as _cpu_workers
from ingest.trace import trace

WRITE_WAIT_SECONDS = 300.0  # how long a write window waits for readers to let go of the file
DUCKDB_MEMORY = os.environ.get("FALLBACKSCOPE_DUCKDB_MEMORY", "512MB")

__all__ = ["FileReport", "IngestFailed", "LoadOptions", "Loader", "ProgressFn", "ingest_paths"]


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

    def as_json(self) -> str:
        """Return the options that shape how records are read, as the `options` JSON of a `loads` row."""
        return json.dumps({name: getattr(self, name) for name in RECORD_OPTIONS}, sort_keys=True)


RECORD_OPTIONS = ("format", "workload", "default_ts", "batch_id")  # a load's options, as its ledger row keeps them


class Loader:
    """Loads sources into one database with a pool of parsing processes.

    The database is opened only for short windows — the checks before a file and its write after it
    is parsed — so a dashboard reading the same file can open it between them (DuckDB lets no reader in
    while a writer has the file open).
    """

    def __init__(self, db_path: Path, options: LoadOptions, progress: ProgressFn | None = None) -> None:
        check_format(options.format)
        self.db_path = db_path
        self.options = options
        self.options_json = options.as_json()
        self.con: duckdb.DuckDBPyConnection | None = None
        default_ts = parse_default_ts(options.default_ts)
        self.price_table: prices.PriceTable | None = None
        # the key is checked before the database is opened for writing: a refused key changes no byte
        key = writing_key(db_path, *store.key_check_state(db_path, wait_seconds=WRITE_WAIT_SECONDS))
        with self._connected():
            if not store.store_key_check(self.con, key_check_value(key)):
                raise key_mismatch(db_path)  # another run stored attempts with another key meanwhile
            store_settings(self.con, options.policy_file, options.prices_file)
            self.price_table = prices.install_price_rows(self.con)
            self._columns = store.attempt_columns(self.con)
        table = self.price_table
        self.web_search_usd = table.web_search_usd
        self._key, self._progress = key, progress
        ctx = Context(key, dict(table.aliases), options.workload, default_ts, options.batch_id)
        self.parser = Parser(ctx, options.workers or _cpu_workers(), progress)
        self._parsers: dict[str, Parser] = {self.options_json: self.parser}

    def _parser_for(self, options: LoadOptions) -> Parser:
        """Return a parser reading records with `options` (a reload's, or a load's being read again)."""
        found = self._parsers.get(options.as_json())
        if found is None:
            check_format(options.format)
            ctx = Context(self._key, dict(self.price_table.aliases), options.workload,
                          parse_default_ts(options.default_ts), options.batch_id)
            found = self._parsers[options.as_json()] = Parser(ctx, self.options.workers or _cpu_workers(),
                                                              self._progress)
        return found

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
            trace("closed")

    def close(self) -> None:
        for parser in self._parsers.values():
            parser.close()

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
            ledger.insert_load(con, ledger.failed_row(self._next_load_id(), source, started, message))

    def _next_load_id(self) -> int:
        return self.con.execute("SELECT nextval('load_id_seq')").fetchone()[0]

    def _sha_loaded(self, sha: str) -> bool:
        return bool(ledger.loaded_shas(self.con, sha))

    def _load(self, source: Source, started: dt.datetime) -> FileReport:
        with self._connected():
            previous = ledger.previous_loads(self.con, source.location).get(source.location, [])
        start = ledger.start_of(source, previous)
        if start.unchanged_sha is not None:
            with self._connected():
                if self._sha_loaded(start.unchanged_sha):
                    return self._skipped(source, started, start.unchanged_sha)

        trace("parse start")
        fmt = self.options.format or (detect_format(source.head()) if not source.is_stdin else None)
        parsed = self.parser.parse(source, fmt, start.byte)
        trace("parse done")
        resume = ledger.resume_point(source, parsed.format, parsed.rejects, start, parsed.lines, parsed.end)
        # a copy of a loaded file is skipped by its whole sha256, under another name or grown since its last load
        skip_if_seen = start.unchanged_sha is None
        with self._connected():
            if isinstance(parsed.sha, str) and skip_if_seen and self._sha_loaded(parsed.sha):
                return self._skipped(source, started, parsed.sha)
            return self._commit(source, started, parsed, start, resume, skip_if_seen)

    def _skipped(self, source: Source, started: dt.datetime, sha: str) -> FileReport:
        load_id = self._next_load_id()
        ledger.insert_load(self.con, ledger.skipped_row(load_id, source, sha, started))
        return FileReport(source.display, "skipped", load_id=load_id)

    # -- taking loads back (docs/metrics.md §2) ----------------------------------------------

    def reload(self, source: Source) -> FileReport:
        """Load a file again, whatever the ledger says, with this run's options where given and its last load's
        where not; the earlier loads' rows go in the same transaction (their ledger rows: `replaced`). Raises
        FallbackscopeError, changing nothing, when the file no longer begins with what they read or the new load
        would fail."""
        if source.is_stdin:
            raise UsageError("--reload: standard input cannot be read again; forget its load instead.")
        started = dt.datetime.now(dt.UTC)
        with self._connected() as con:
            earlier = history.file_loads(con, source.location)
            if not earlier:
                return self.load(source)  # never loaded (or not in force): a first load
            if not history.begins_as_loaded(con, source, earlier):
                raise FallbackscopeError(
                    f"{source.display}: the file no longer begins with the bytes its earlier loads read (rotated or "
                    "truncated); nothing was changed — forget it first: "
                    f"`fallbackscope loads forget {source.display}`.")
            last = history.last_options(con, earlier)
        given = {name: getattr(self.options, name) for name in RECORD_OPTIONS}
        options = LoadOptions(**{name: given[name] if given[name] is not None else last.get(name)
                                 for name in RECORD_OPTIONS}, workers=self.options.workers)
        parser = self._parser_for(options)
        fmt = options.format or detect_format(source.head())
        parsed = parser.parse(source, fmt, 0)
        resume = ledger.resume_point(source, parsed.format, parsed.rejects, Start(), parsed.lines, parsed.end)
        with self._connected():
            return self._commit(source, started, parsed, Start(), resume, False, replacing=earlier, options=options)

    def forget(self, targets: list[str]) -> list[int]:
        """Remove every load of the files named (by load id or path) as if they had never been loaded; return
        the loads forgotten. Raises FallbackscopeError, changing nothing, when an attempt they removed is held by
        a remaining load whose file is gone or changed."""
        with self._connected() as con:
            load_ids = history.loads_to_forget(con, targets)
            con.execute("BEGIN TRANSACTION")
            try:
                self._take_back(load_ids, "forgotten", None)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        return load_ids

    def _take_back(self, load_ids: list[int], status: str, keep: pa.ChunkedArray | None) -> None:
        """Inside the open transaction: remove the loads' rows, restore what remaining loads held from their files,
        and link again the chains both touched."""
        con = self.con
        removed = history.remove(con, load_ids, status, None if keep is None else keep.combine_chunks())
        seeds = [removed.seeds]
        for holder_id, ids in sorted(removed.held.items()):
            seeds.append(self._restore(history.holder(con, holder_id), ids))
        changed = relink.relink_stored(con, pa.concat_tables(seeds, promote_options="permissive"))
        relink.write_relinked(con, changed)
        trace(f"took back loads {load_ids}: {removed.attempts} attempts")

    def _restore(self, item: history.Holder, ids: list[str]) -> pa.Table:
        """Read again the attempts `ids` a remaining load held as duplicates, from its file, and store them as its
        own; return them as linking seeds."""
        try:
            sources = [s for s in expand([item.path]) if s.location == item.path] if item.path != "-" else []
        except FallbackscopeError:  # gone
            sources = []
        history.check_unchanged(item, sources[0] if sources else None)
        source = sources[0]
        options = LoadOptions(**{name: item.options.get(name) for name in RECORD_OPTIONS},
                              workers=self.options.workers)
        options.format = options.format or item.format
        parsed = self._parser_for(options).parse(source, item.format, item.start_byte)
        con = self.con
        table = shift_lines(pa.concat_tables(parsed.parts).unify_dictionaries(), item.lines_before)
        table = otel_nesting.merge_nested(table)
        if item.lines_read is not None:  # what the load read, not what was appended since
            table = table.filter(pc.less_equal(table.column("line_no"), item.lines_read))
        counted = ledger.content_ordinals(con, item.path, before=item.load_id) if item.start_byte else None
        own = dedup.own_attempts(table, counted)
        wanted = own.filter(pc.is_in(own.column("attempt_id"), pa.array(ids, pa.string())))
        if wanted.num_rows != len(ids):
            raise FallbackscopeError(f"{item.path}: load {item.load_id} held attempts the file no longer gives; "
                                     "nothing was changed.")
        n = wanted.num_rows
        provisional = {"chain_id": wanted.column("attempt_id"),  # linked for real with the rest, below
                       "attempt_index": pa.array(np.ones(n, np.int32)),
                       "trigger": pa.nulls(n, pa.string()), "fallback_mode": pa.array(["none"] * n, pa.string())}
        for name, values in provisional.items():
            wanted = wanted.append_column(name, values)
        self._insert(wanted, item.load_id)
        _register(con, "restored_ids", pa.table({"attempt_id": pa.array(ids, pa.string())}))
        con.execute("DELETE FROM duplicates WHERE load_id = ? AND attempt_id IN (SELECT attempt_id FROM restored_ids)",
                    [item.load_id])
        con.unregister("restored_ids")
        ts_us = pc.cast(wanted.column("ts"), pa.int64())
        inputs = relink.link_inputs_of(wanted, ts_us, item.load_id)
        return relink.seeds_of(inputs, wanted.column("attempt_id"))

    # -- the write --------------------------------------------------------------------------

    def _commit(self, source: Source, started: dt.datetime, parsed: Parsed, start: Start, resume: tuple[int, int],
                skip_if_seen: bool, replacing: list[int] | None = None,
                options: LoadOptions | None = None) -> FileReport:
        """Write a parsed file in one transaction; `replacing`: the loads of it a reload takes the place of."""
        con = self.con
        con.execute("BEGIN TRANSACTION")
        own = None
        if parsed.parts:
            table = shift_lines(pa.concat_tables(parsed.parts).unify_dictionaries(), start.line)
            table = otel_nesting.merge_nested(table)  # nested spans of one call: one attempt (docs/metrics.md §3.8)
            counted = ledger.content_ordinals(con, source.location) if start.byte else None
            own = dedup.own_attempts(table, counted)
        parsed.parts.clear()
        if replacing:  # the earlier loads go first; what they held for other files comes back from those files
            self._take_back(replacing, "replaced", None if own is None else own.column("attempt_id"))
        # asked once per file: the dedup and the linking context both need it
        has_stored = bool(con.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0])
        fresh = None
        held = None  # ids already stored: the duplicates this load holds
        if own is not None:
            fresh, held = dedup.unstored(con, own) if has_stored else (own, None)
            fresh = linking.in_link_order(fresh)
        trace("staged")
        report = FileReport(source.display, "ok", parsed.format, self._next_load_id(), parsed.records,
                            naive_ts=parsed.naive_ts)
        loaded_records = 0
        if fresh is not None and fresh.num_rows:
            report.attempts_loaded = fresh.num_rows
            loaded_records = dedup.distinct_records(fresh)
            linked, relinked = relink.link_file(con, fresh, has_stored, report.load_id)
            trace(f"linked ({report.attempts_loaded} rows, {0 if relinked is None else relinked.num_rows} relinked)")
            report.no_stop_reason = self._insert(linked, report.load_id)
            relink.write_relinked(con, relinked)
            trace("inserted")
        if held is not None and len(held):
            _register(con, "held_arrow", pa.table({"attempt_id": held}))
            con.execute("INSERT INTO duplicates SELECT ?, attempt_id FROM held_arrow", [report.load_id])
            con.unregister("held_arrow")
        rejects = parsed.rejects
        if rejects:
            reject_table = pa.table({
                "line_no": pa.array([r[0] + start.line for r in rejects], pa.int64()),
                "byte_offset": pa.array([r[1] for r in rejects], pa.int64()),
                "reason": pa.array([r[2] for r in rejects], pa.string()),
            })
            _register(con, "reject_arrow", reject_table)
            con.execute("INSERT INTO rejects SELECT ?, ?, line_no, byte_offset, reason FROM reject_arrow",
                        [report.load_id, source.display])
            con.unregister("reject_arrow")
        sha = parsed.sha
        if not isinstance(sha, str):
            sha = sha.result()
            if skip_if_seen and self._sha_loaded(sha):
                con.execute("ROLLBACK")
                return self._skipped(source, started, sha)
        report.count_rejects([reason for _, _, reason in rejects])
        report.duplicates = dedup.duplicate_records(report.records, report.rejected, loaded_records)
        ledger.judge(report)  # records, none loaded: a failed file, not a quiet success (docs/metrics.md §2)
        if not report.records and parsed.lines and _has_content(source, start.byte):
            # docs/metrics.md §3.8: a non-empty file that yields neither an attempt nor a reject has failed
            report.status = "rejected"
            report.error = f"no model calls found in {source.display} ({parsed.format})"
        if replacing and report.status != "ok":
            con.execute("ROLLBACK")  # a reload that would fail changes nothing (docs/metrics.md §2)
            raise FallbackscopeError(f"{report.error} The earlier load stands; nothing was changed.")
        options_json = (options or self.options).as_json()
        ledger.insert_load(con, ledger.loaded_row(report, source, sha, started, start, resume, options_json))
        _fault_point(source)
        con.execute("COMMIT")
        trace("committed")
        return report

    def _insert(self, linked: pa.Table, load_id: int) -> int:
        """Insert linked attempts, priced, and their link inputs; return how many have no stop reason."""
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
        inputs = ", ".join(f"{int(load_id)}" if name == "load_id" else name for name in relink.LINK_INPUT_TABLE)
        con.execute(f"INSERT INTO link_inputs SELECT {inputs} FROM linked_arrow WHERE {relink.LINK_INPUT_WANTED}")
        unknown = con.execute(f"SELECT count(*) FROM linked_arrow WHERE {unknown_stop_sql()}").fetchall()[0][0]
        con.unregister("linked_arrow")
        return unknown


def _fault_point(source: Source) -> None:
    """Crash-test hook: with FALLBACKSCOPE_HOLD_BEFORE_COMMIT=<marker> set, announce the file in the
    marker and wait before committing it, so a test can SIGKILL the load at its riskiest moment."""
    marker = os.environ.get("FALLBACKSCOPE_HOLD_BEFORE_COMMIT")
    if marker and source.display.endswith(os.environ.get("FALLBACKSCOPE_HOLD_FILE", "")):
        Path(marker).write_text(source.display, encoding="utf-8")
        time.sleep(120)


def _has_content(source: Source, start: int) -> bool:
    """Return whether a file holds anything but white space after byte `start` (asked only of a file that gave
    no record; standard input, read once, is taken as holding something)."""
    if source.is_stdin:
        return True
    with open_stream(source.location, source.compressed) as stream:
        skipped = 0
        while skipped < start:
            chunk = stream.read(min(1 << 20, start - skipped))
            if not chunk:
                return False
            skipped += len(chunk)
        while chunk := stream.read(1 << 20):
            if chunk.strip():
                return True
    return False


def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> None:
    """Register an Arrow table; DuckDB 2.0 wants any open result finished first."""
    con.complete()
    con.register(name, table)


def ingest_paths(db_path: str | Path, paths: list[str], options: LoadOptions | None = None,
                 progress: ProgressFn | None = None,
                 on_file: Callable[[FileReport], None] | None = None, reload: bool = False) -> list[FileReport]:
    """Load every file named (directories recursively, in name order); return one report per file.

    A file that cannot be read gets a report with status `failed` (and a `failed` loads row) and the
    other files still load; then IngestFailed is raised, holding every report. `reload`: load the files again
    whatever the ledger says (`Loader.reload`); a reload that fails changes nothing and leaves no ledger row.
    """
    options = options or LoadOptions()
    sources = expand(paths)
    reports = []
    with Loader(Path(db_path), options, progress) as loader:
        for source in sources:
            try:
                report = loader.reload(source) if reload else loader.load(source)
            except (OSError, EOFError, zlib.error) as exc:  # a reload reading a file it cannot read
                report = FileReport(source.display, "failed", error=f"{source.display}: cannot read the file "
                                    f"({_read_failure(exc)}); nothing was changed.")
            except FallbackscopeError as exc:
                report = FileReport(source.display, "failed", error=str(exc))
            reports.append(report)
            if on_file:
                on_file(report)
    failed = [r for r in reports if r.status in ("failed", "rejected")]
    if failed:
        raise IngestFailed(" ".join(r.error or "" for r in failed), reports)
    return reports


def forget_loads(db_path: str | Path, targets: list[str]) -> list[int]:
    """Forget the loads of the files named (load ids or paths): the database becomes a fresh load of the files
    that remain; return the loads forgotten (their ledger rows stay, status `forgotten`)."""
    with Loader(Path(db_path), LoadOptions()) as loader:
        return loader.forget(targets)


def list_loads(db_path: str | Path) -> list[dict]:
    """Return the load ledger as `fallbackscope loads` shows it (`history.LISTED`), in load order."""
    con = store.connect(Path(db_path), read_only=True, wait_seconds=WRITE_WAIT_SECONDS)
    try:
        return history.ledger_rows(con)
    finally:
        con.close()


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
