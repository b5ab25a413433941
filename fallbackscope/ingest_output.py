"""What `ingest` and `loads` print (docs/metrics.md §7): a file's summary line with its warnings, its logfmt line for
schedulers, the progress bar on a terminal, and the load ledger as a table."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console


def show_file_report(report: Any, out: Console, err: Console) -> bool:
    """Print a file's summary line (or, for a failed file, its one sentence on stderr; the other files go on
    loading) and, when stderr is no terminal, its logfmt line; return whether the file failed."""
    failed = report.status in ("failed", "rejected")
    if failed:
        err.print(f"fallbackscope: {report.error}", markup=False)
    else:
        print_file_report(report, out)
    if not err.is_terminal:
        log_file_report(report)
    return failed


def print_file_report(report: Any, out: Console) -> None:
    """Print the summary line of a file read: counts, format, warnings; then its commonest reject reasons."""
    if report.status == "skipped":
        out.print(f"{report.path}: skipped (already loaded)", markup=False)
        return
    line = (f"{report.path}: {report.loaded} loaded ({report.attempts_loaded} attempts), "
            f"{report.duplicates} duplicate, {report.rejected} rejected [{report.format}]")
    out.print("; ".join([line, *report.warnings()]), markup=False)
    for reason, count in sorted(report.reasons.items(), key=lambda item: -item[1])[:5]:
        out.print(f"  rejected {count}: {reason}", markup=False)


def log_file_report(report: Any) -> None:
    """One logfmt line per file on stderr (when it is not a terminal), for schedulers and log shippers."""
    fields = {
        "ts": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "level": "info", "event": "file", "path": report.path, "status": report.status,
        "format": report.format or "", "records": report.records, "loaded": report.loaded,
        "attempts": report.attempts_loaded, "duplicates": report.duplicates, "rejected": report.rejected,
        "naive_timestamps": report.naive_ts, "no_stop_reason": report.no_stop_reason,
    }
    parts = []
    for key, value in fields.items():
        text = str(value)
        if not text or any(c in text for c in ' "=\\'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    print(" ".join(parts), file=sys.stderr, flush=True)


LEDGER_HEADER = ("id", "path", "format", "options", "started", "records", "loaded", "duplicates", "rejected",
                 "status")


def ledger_table(rows: list[dict[str, Any]]) -> list[str]:
    """Return the load ledger (`ingest.history.LISTED` rows) as aligned lines under LEDGER_HEADER; options show
    those set, as key=value."""
    cells = [list(LEDGER_HEADER)]
    for row in rows:
        given = {k: v for k, v in json.loads(row["options"] or "{}").items() if v is not None}
        cells.append([str(row["load_id"]), row["path"], row["format"] or "-",
                      ",".join(f"{k}={v}" for k, v in sorted(given.items())) or "-",
                      row["started_at"].astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      *(str(row[k]) for k in ("records", "loaded", "duplicates", "rejected")), row["status"]])
    widths = [max(len(line[i]) for line in cells) for i in range(len(LEDGER_HEADER))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in cells]


class Progress:
    """A rich progress bar on a terminal; nothing otherwise."""

    def __init__(self, err: Console) -> None:
        self._err = err

    def __enter__(self) -> Progress:
        self._bar = None
        self._task = None
        self._file = None
        if self._err.is_terminal:
            from rich.progress import BarColumn, DownloadColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TimeRemainingColumn(), console=self._err, transient=True)
            self._bar.start()
        return self

    def update(self, path: str, done: int, total: int | None) -> None:
        if self._bar is None:
            return
        if self._file != path:
            self.finish_file()
            self._task = self._bar.add_task(Path(path).name, total=total)
            self._file = path
        self._bar.update(self._task, completed=done, total=total)

    def finish_file(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.remove_task(self._task)
        self._task = None
        self._file = None

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
