"""The load ledger (docs/metrics.md §2): one `loads` row per input file per run, and what earlier rows say
about the next load of a file — skip it, read it whole, or read only what was appended since.

Both engines write the same row (`LoadRow`, the columns of the `loads` table) and read the ledger with the
same SQL (`previous_loads`, `loaded_shas`: a DuckDB connection or the Spark store's SQL connection).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ingest.dedup import CONTENT_HASH_SQL, CONTENT_ORDINAL_SQL
from ingest.formats import sse
from ingest.sources import Source, ends_inside_a_line, file_sha256

# the reasons `extract` gives a line that may be the start of a record still being written
UNFINISHED_REASONS = frozenset({"invalid JSON", "not UTF-8"})
_OK = "status = 'ok' AND sha256 IS NOT NULL"  # the loads later runs build on


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
    naive_ts: int = 0  # timestamps without an offset, read as UTC
    no_stop_reason: int = 0  # attempts loaded with outcome ok and no stop reason (`outcomes.unknown_stop_sql`)

    @property
    def loaded(self) -> int:
        return self.records - self.duplicates - self.rejected

    def warnings(self) -> list[str]:
        """Return what the file's numbers should be read with, one clause each (docs/metrics.md §3, §6.1)."""
        out = []
        if self.naive_ts:
            out.append(f"{self.naive_ts} timestamps without an offset, read as UTC")
        if self.no_stop_reason:
            out.append(f"{self.no_stop_reason} attempts without a stop reason: refusals cannot be seen in them")
        return out

    def count_rejects(self, reasons: list[str]) -> None:
        """Add rejected records, by reason."""
        self.rejected += len(reasons)
        for reason in reasons:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1


@dataclass(frozen=True)
class LoadRow:
    """One row of `loads`, its columns in table order (a test holds them to the migrations')."""

    load_id: int
    path: str
    sha256: str | None
    format: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    records: int
    attempts_loaded: int
    duplicates: int
    rejected: int
    status: str
    # how far the file was read, so a grown file loads only its new records
    file_size: int | None = None
    mtime_ns: int | None = None
    start_byte: int | None = None
    bytes_read: int | None = None
    lines_read: int | None = None
    error: str | None = None
    options: str | None = None  # the load's options as JSON (`ingest --reload` keeps those not given)
    object_version: str | None = None  # an object's ETag or generation: unchanged, it is skipped unread

    def values(self) -> tuple:
        """Return the row's values in column order."""
        return dataclasses.astuple(self)


LOAD_COLUMNS = tuple(f.name for f in dataclasses.fields(LoadRow))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def loaded_row(report: FileReport, source: Source, sha: str, started: dt.datetime, start: Start,
               resume: tuple[int, int], options: str | None = None) -> LoadRow:
    """Return the row of a file read (status `ok`, or `rejected` as `judge` found): its counts, and where its
    next load, once grown, starts."""
    assert report.load_id is not None
    return LoadRow(report.load_id, source.location, sha, report.format, started, _now(), report.records,
                   report.attempts_loaded, report.duplicates, report.rejected, report.status, source.size,
                   source.mtime_ns, start.byte, *resume, error=report.error, options=options,
                   object_version=source.version)


# the reasons of a record that did not parse as a JSON object: a file of nothing else is not JSON Lines
NOT_PARSED = frozenset({"invalid JSON", "not UTF-8", "not a JSON object"})
UNFINISHED = " (unterminated last line)"


def judge(report: FileReport) -> None:
    """Mark a file that held records of which none loaded — every record rejected, none a duplicate — as
    `rejected`, with one sentence naming the commonest reason and the option that would fix it (docs/metrics.md
    §2). A last line still being written (unterminated, not yet JSON) is no verdict on the file."""
    if not report.records or report.attempts_loaded or report.duplicates or report.status != "ok":
        return
    reasons = {reason: n for reason, n in report.reasons.items() if not reason.endswith(UNFINISHED)}
    if not reasons:
        return
    report.status = "rejected"
    reason, count = max(reasons.items(), key=lambda item: (item[1], item[0]))
    head = f"{report.path}: none of its {report.records} records loaded"
    if all(r in NOT_PARSED for r in reasons):
        report.error = f"{head}: it is not JSON Lines (one JSON object per line), so nothing in it could be read."
        return
    # a record of another format's shape says so in its reason, with the --format that reads it
    hint = "; give their time with --default-ts" if reason == "no timestamp" else ""
    counted = f"{count} rejected" if count == report.rejected else \
        f"{report.rejected} rejected; the commonest reason, {count} of them"
    report.error = f"{head} ({counted}: {reason}){hint}."


def skipped_row(load_id: int, source: Source, sha: str, started: dt.datetime) -> LoadRow:
    """Return the row of a file skipped because its whole content was loaded already."""
    return LoadRow(load_id, source.location, sha, None, started, _now(), 0, 0, 0, 0, "skipped", source.size,
                   source.mtime_ns, object_version=source.version)


def failed_row(load_id: int, source: Source, started: dt.datetime, message: str) -> LoadRow:
    """Return the row of a file that could not be read."""
    return LoadRow(load_id, source.display, None, None, started, _now(), 0, 0, 0, 0, "failed", error=message)


def insert_load(con: Any, row: LoadRow) -> None:
    """Insert a row into a DuckDB `loads` table."""
    con.execute(f"INSERT INTO loads ({', '.join(LOAD_COLUMNS)}) VALUES ({', '.join('?' * len(LOAD_COLUMNS))})",
                list(row.values()))


# -- what earlier loads say ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Previous:
    """What an earlier `ok` load of the same path read."""

    sha256: str
    file_size: int | None
    mtime_ns: int | None
    bytes_read: int | None
    lines_read: int | None
    object_version: str | None = None
    # (size, version, sha256) an object had when later runs skipped it as loaded content (on the newest load only)
    skipped: tuple[tuple[int | None, str, str], ...] = ()


_SKIPPED_OBJECT = "status = 'skipped' AND sha256 IS NOT NULL AND object_version IS NOT NULL"


def previous_loads(con: Any, location: str | None = None) -> dict[str, list[Previous]]:
    """Return the `ok` loads of each path (of `location` only, when given), newest first; the newest also holds
    the versions an object had when later runs skipped it (an object whose content was loaded under another
    version — before the ledger kept versions, or re-uploaded alike — is then read once, not every run)."""
    where, params = (f"{_OK} AND path = ?", [location]) if location is not None else (_OK, [])
    rows = con.execute("SELECT path, sha256, file_size, mtime_ns, bytes_read, lines_read, object_version FROM loads"
                       f" WHERE {where} ORDER BY load_id DESC", params).fetchall()
    out: dict[str, list[Previous]] = {}
    for path, *values in rows:
        out.setdefault(path, []).append(Previous(*values))
    where = f"{_SKIPPED_OBJECT} AND path = ?" if location is not None else _SKIPPED_OBJECT
    seen: dict[str, list[tuple[int | None, str, str]]] = {}
    for path, size, version, sha in con.execute("SELECT path, file_size, object_version, sha256 FROM loads"
                                                f" WHERE {where} ORDER BY load_id DESC", params).fetchall():
        seen.setdefault(path, []).append((size, version, sha))
    for path, versions in seen.items():
        if path in out:
            out[path][0] = dataclasses.replace(out[path][0], skipped=tuple(versions))
    return out


def loaded_shas(con: Any, sha: str | None = None) -> set[str]:
    """Return the sha256 of every file loaded whole (`ok`), or `{sha}` when given and loaded: a file with one
    of these hashes, under any name, is skipped."""
    where, params = (f"{_OK} AND sha256 = ?", [sha]) if sha is not None else (_OK, [])
    return {row[0] for row in con.execute(f"SELECT DISTINCT sha256 FROM loads WHERE {where}", params).fetchall()}


def content_ordinals(con: Any, location: str, before: int | None = None) -> dict[str, int]:
    """Return, per content hash, how many id-less records the loads of a grown file read before (the highest
    ordinal of its content ids among the attempts those loads stored or held as duplicates), so the ordinals
    of its new records count on (docs/metrics.md §2). The loads: the file's `ok` loads since one read it from
    its start (those before load `before`, when given)."""
    bound = f" AND load_id < {int(before)}" if before is not None else ""
    rows = con.execute(f"""
WITH mine AS (SELECT load_id, start_byte FROM loads WHERE {_OK} AND path = ?{bound}),
lineage AS (SELECT load_id FROM mine
            WHERE load_id >= (SELECT max(load_id) FROM mine WHERE coalesce(start_byte, 0) = 0)),
held AS (SELECT attempt_id FROM attempts WHERE load_id IN (SELECT load_id FROM lineage)
         UNION ALL SELECT attempt_id FROM duplicates WHERE load_id IN (SELECT load_id FROM lineage))
SELECT {CONTENT_HASH_SQL}, max({CONTENT_ORDINAL_SQL}) FROM held WHERE attempt_id LIKE 'h:%' GROUP BY 1
""", [location]).fetchall()
    return {fp: int(n) for fp, n in rows}


@dataclass(frozen=True)
class Start:
    """Where a load of a file starts, from the ledger's earlier loads of its path."""

    byte: int = 0
    line: int = 0  # lines before `byte`
    unchanged_sha: str | None = None  # the file's sha256, when its size and mtime (version) match its last load's


def start_of(source: Source, previous: list[Previous]) -> Start:
    """Return where to read `source` from: its start; or, for a file that grew since its last load (same
    first bytes, more of them), where that load stopped. A file whose size and mtime match its last load is
    hashed here (`unchanged_sha`), so the caller can skip it when that hash is loaded; an object whose size and
    version (ETag, generation) match its last load's — or a later run's that skipped it — is not read at all: its
    hash is that row's (docs/metrics.md §11)."""
    if not previous or source.is_stdin:
        return Start()
    last = previous[0]
    if source.version is not None:
        for size, version, sha in ((last.file_size, last.object_version, last.sha256), *last.skipped):
            if size == source.size and version == source.version:
                return Start(unchanged_sha=sha)  # the caller skips it when that content is loaded
    elif last.file_size == source.size and last.mtime_ns == source.mtime_ns:
        return Start(unchanged_sha=file_sha256(source.location))
    if (not source.compressed and last.file_size is not None and source.size is not None
            and source.size > last.file_size and file_sha256(source.location, last.file_size) == last.sha256):
        return Start(last.bytes_read or 0, last.lines_read or 0)  # a grown log: only its new lines
    return Start()


def resume_point(source: Source, fmt: str, rejects: list[tuple[int, int, str]], start: Start, lines: int,
                 end: int) -> tuple[int, int]:
    """Return where the next load of this file, once grown, starts: (byte offset, lines before it).
    Updates `rejects` (line numbers relative to `start`) in place: the reason of an unfinished last line
    says so.

    That is the end of the bytes read, unless they end in an unterminated line rejected as invalid
    JSON or not UTF-8 — a record its writer may still be writing: then the start of that line, so the
    completed record is read again. A complete unterminated line
    (loaded, a duplicate, or rejected for what it holds) is not read again. Lines are counted whole,
    so the rest of a line appended later keeps that line's number.
    """
    # only an uncompressed file is read as grown
    if not source.splittable or fmt == sse.NAME or not ends_inside_a_line(source.location, start.byte, end):
        return end, start.line + lines
    for i in range(len(rejects) - 1, -1, -1):  # the last line's reject, if any, is near the end
        line, offset, reason = rejects[i]
        if line == lines and reason in UNFINISHED_REASONS:
            rejects[i] = (line, offset, f"{reason} (unterminated last line)")
            return offset, start.line + lines - 1
    return end, start.line + lines - 1
