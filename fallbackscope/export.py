"""Export the `attempts` table for warehouses: Parquet files partitioned by UTC day, Hive layout.

    DIR/attempts/day=2026-11-02/attempts_0.parquet

Each file holds every column of `attempts` in table order (`ts` a UTC timestamp); the day is only in
the folder name, as Hive, Spark, Trino, BigQuery and DuckDB (`hive_partitioning=true`) expect. DuckDB
writes the files (`COPY … PARTITION_BY (day)`) into a hidden staging folder beside `attempts/`; each
day written then replaces that day's folder whole, so exporting again never duplicates rows. The
database is opened read-only: a running dashboard or a waiting ingest is not disturbed.

DIR may be an object-store URL (`s3://bucket/prefix`, `gs://…`, `az://…`, docs/metrics.md §11): DuckDB writes
the files into a local temporary folder, then each day's files are uploaded through fsspec over that day's
old ones and what is left of the old day is removed — a reader sees each file old or new, never a day
missing. Credentials are the store's usual ones (environment, profile), never in the URL.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from fallbackscope.core import objectstore, store
from fallbackscope.core.errors import FallbackscopeError, UsageError
from fallbackscope.core.periods import UTC, to_utc

TABLE = "attempts"
PARTITION = "day"
FILE_PATTERN = "attempts_{i}"  # DuckDB numbers the files of one partition attempts_0, attempts_1, …
_DAY_DIR = re.compile(r"^day=(\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the table folder, the rows and the days (partitions) written, and the days
    whose stale folders were removed because the range holds no attempts on them any more."""

    path: Path | str  # a folder, or the URL of the export's `attempts` prefix
    rows: int
    days: tuple[dt.date, ...]
    removed: tuple[dt.date, ...] = ()


def day_bounds(since: str | dt.date | dt.datetime | None,
               until: str | dt.date | dt.datetime | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Return the export's bounds widened to whole UTC days: since down to its midnight, until (exclusive)
    up to the next midnight, since a partition is a whole day. Raises UsageError for unreadable bounds or
    an empty range."""
    start, end = to_utc(since, "since"), to_utc(until, "until")
    if start is not None:
        start = dt.datetime.combine(start.date(), dt.time(), UTC)
    if end is not None and end.time() != dt.time():
        end = dt.datetime.combine(end.date() + dt.timedelta(days=1), dt.time(), UTC)
    if start is not None and end is not None and start >= end:
        raise UsageError("--since must be before --until (--until is exclusive).")
    return start, end


def export_parquet(db_path: str | Path, out_dir: str | Path, *, since: str | dt.date | dt.datetime | None = None,
                   until: str | dt.date | dt.datetime | None = None,
                   wait_seconds: float = 60.0) -> ExportResult:
    """Write the attempts whose `ts` is in [since, until) (whole UTC days; None leaves a side open) to
    `out_dir/attempts/day=YYYY-MM-DD/*.parquet`; return what was written.

    Every day folder of the range is replaced: days written get exactly the stored rows, days of the
    range without attempts lose a stale folder; folders outside the range are left alone. Raises
    UsageError for bad bounds, FallbackscopeError when the database or the folder cannot be used.
    """
    start, end = day_bounds(since, until)
    name = str(out_dir)
    if objectstore.is_url(name) and objectstore.scheme_of(name) == "file":
        name = unquote(urlsplit(objectstore.checked_url(name)).path)
    elif objectstore.is_url(name):
        return _export_to_url(Path(db_path), name, start, end, wait_seconds)
    out = Path(name)
    target = out / TABLE
    staging = out / f".{TABLE}-export-{uuid.uuid4().hex}"
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FallbackscopeError(f"{out}: cannot create the export folder ({exc.strerror or type(exc).__name__}).") \
            from None
    try:
        rows = _copy(Path(db_path), staging, start, end, wait_seconds)
        written = _day_folders(staging)
        removed = _replace_days(target, staging, written, start, end)
    except OSError as exc:
        raise FallbackscopeError(f"{out}: cannot write the export ({exc.strerror or type(exc).__name__}).") \
            from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ExportResult(target, rows, tuple(sorted(written)), tuple(sorted(removed)))


def _copy(db_path: Path, staging: Path, start: dt.datetime | None, end: dt.datetime | None,
          wait_seconds: float) -> int:
    """Let DuckDB write the partitioned files into `staging`; return the number of rows written."""
    con = store.connect(db_path, read_only=True, wait_seconds=wait_seconds)
    try:
        # column names come from the table itself, never from input; bounds and path are bound parameters
        columns = ", ".join('"' + name.replace('"', '""') + '"' for name in store.attempt_columns(con))
        where, params = [], []
        if start is not None:
            where.append("ts >= ?")
            params.append(start)
        if end is not None:
            where.append("ts < ?")
            params.append(end)
        query = (f"SELECT {columns}, strftime(timezone('UTC', ts), '%Y-%m-%d') AS {PARTITION} FROM {TABLE}"
                 f" WHERE {' AND '.join(where) or 'TRUE'} ORDER BY ts, attempt_id")
        rows = con.execute(
            f"COPY ({query}) TO ? (FORMAT parquet, PARTITION_BY ({PARTITION}), FILENAME_PATTERN '{FILE_PATTERN}')",
            [*params, str(staging)],
        ).fetchone()[0]
    finally:
        con.close()
    return int(rows)


def _export_to_url(db_path: Path, url: str, start: dt.datetime | None, end: dt.datetime | None,
                   wait_seconds: float) -> ExportResult:
    """Export to an object-store URL: stage the day folders locally, upload each day's files over its old ones,
    then remove the old day's other files, and the days of the range that got no rows."""
    fs, inner = objectstore.filesystem(url)
    target = f"{inner.rstrip('/')}/{TABLE}"
    with tempfile.TemporaryDirectory(prefix="fallbackscope-export-") as tmp:
        staging = Path(tmp) / TABLE
        rows = _copy(db_path, staging, start, end, wait_seconds)
        written = _day_folders(staging)
        removed = []
        with objectstore.object_errors(url, "write the export"):
            existing = _remote_days(fs, target)
            for day, folder in sorted(written.items()):
                files = sorted(folder.iterdir())
                for file in files:
                    fs.put_file(str(file), f"{target}/{folder.name}/{file.name}")
                names = {f"{target}/{folder.name}/{file.name}" for file in files}
                left = [key for key in existing.get(day, []) if key not in names]
                if left:
                    fs.rm(left)
            for day, keys in sorted(existing.items()):
                if day not in written and _in_range(day, start, end):
                    fs.rm(keys)
                    removed.append(day)
    return ExportResult(f"{url.rstrip('/')}/{TABLE}", rows, tuple(sorted(written)), tuple(removed))


def _remote_days(fs: Any, target: str) -> dict[dt.date, list[str]]:
    """Return the objects under `target/day=YYYY-MM-DD/`, by day."""
    fs.invalidate_cache(target)  # listed afresh: another export may have written since
    found: dict[dt.date, list[str]] = {}
    for key in fs.find(target):
        match = _DAY_DIR.match(key.removeprefix(f"{target}/").split("/", 1)[0])
        if match:
            try:
                found.setdefault(dt.date.fromisoformat(match.group(1)), []).append(key)
            except ValueError:
                continue
    return found


def _day_folders(folder: Path) -> dict[dt.date, Path]:
    """Return the `day=YYYY-MM-DD` folders directly in `folder`, by day."""
    found: dict[dt.date, Path] = {}
    if not folder.is_dir():
        return found
    for entry in folder.iterdir():
        match = _DAY_DIR.match(entry.name)
        if match and entry.is_dir():
            try:
                found[dt.date.fromisoformat(match.group(1))] = entry
            except ValueError:
                continue
    return found


def _in_range(day: dt.date, start: dt.datetime | None, end: dt.datetime | None) -> bool:
    return (start is None or day >= start.date()) and (end is None or day < end.date())


def _replace_days(target: Path, staging: Path, written: dict[dt.date, Path], start: dt.datetime | None,
                  end: dt.datetime | None) -> list[dt.date]:
    """Move each staged day folder into `target` in place of the old one; remove the old folders of days
    in the range that got no rows. Returns the days removed."""
    existing = _day_folders(target)
    trash = staging / ".replaced"
    trash.mkdir(parents=True, exist_ok=True)
    removed = []
    for day, old in sorted(existing.items()):
        if day not in written and _in_range(day, start, end):
            os.replace(old, trash / old.name)
            removed.append(day)
    for _day, new in sorted(written.items()):
        final = target / new.name
        if final.exists():
            os.replace(final, trash / new.name)  # a rename, so readers see the old day or the new one
        os.replace(new, final)
    return removed
