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
import pyarrow as pa

from fallbackscope.core import prices, store
from fallbackscope.core.config import key_check_value, key_mismatch, writing_key
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.core.outcomes import unknown_stop_sql
from ingest import dedup, ledger, linking, relink
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
        ctx = Context(key, dict(table.aliases), options.workload, default_ts, options.batch_id)
        self.parser = Parser(ctx, options.workers or _cpu_workers(), progress)

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
        self.parser.close()

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

    # -- the write --------------------------------------------------------------------------

    def _commit(self, source: Source, started: dt.datetime, parsed: Parsed, start: Start, resume: tuple[int, int],
                skip_if_seen: bool) -> FileReport:
        con = self.con
        # asked once per file: the dedup and the linking context both need it
        has_stored = bool(con.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0])
        fresh = None
        held = None  # ids already stored: the duplicates this load holds
        if parsed.parts:
            table = shift_lines(pa.concat_tables(parsed.parts).unify_dictionaries(), start.line)
            table = otel_nesting.merge_nested(table)  # nested spans of one call: one attempt (docs/metrics.md §3.8)
            counted = ledger.content_ordinals(con, source.location) if start.byte and has_stored else None
            fresh, held = dedup.new_attempts(con, table, has_stored, counted)
            fresh = linking.in_link_order(fresh)
        parsed.parts.clear()
        trace("staged")
        con.execute("BEGIN TRANSACTION")
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
        ledger.insert_load(con, ledger.loaded_row(report, source, sha, started, start, resume, self.options_json))
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
    failed = [r for r in reports if r.status in ("failed", "rejected")]
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
