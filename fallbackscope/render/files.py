"""`fallbackscope report weekly`: compute the week(s) with `analytics`, render with `fallbackscope.render.weekly`.

The shell opens the database (DuckDB or the Spark store) and hands `write_weekly` a way to open it: this
layer never reaches up for the shell's `Database`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rich.console import Console

from fallbackscope.core.errors import UsageError, output_failure
from fallbackscope.core.periods import day_sql, day_to_date, week_sql
from fallbackscope.render.report import report_monday
from fallbackscope.render.weekly import FORMATS, render, render_many, report_filename, slo_missed

if TYPE_CHECKING:  # pandas only for the hint
    import pandas as pd


class ReportSource(Protocol):
    """What `write_weekly` reads: `fallbackscope.api.Database` and the Spark engine's store both are one."""

    con: Any

    def sql(self, query: str) -> pd.DataFrame: ...

    def weekly_report(self, week: dt.date) -> dict[str, Any]: ...

    def refusal_rate(self, by: str, since: dt.date, until: dt.date) -> pd.DataFrame: ...


def weeks_present(db: ReportSource) -> list[dt.date]:
    """Return the Monday of every ISO week in which a chain started, in order."""
    frame = db.sql(f"SELECT DISTINCT {week_sql(day_sql('ts'))} AS monday FROM attempts WHERE attempt_index = 1"
                   " ORDER BY monday")
    return [day_to_date(int(day)) for day in frame["monday"]]


@dataclass(frozen=True)
class Written:
    """What `write_weekly` wrote: the workloads that missed their SLO, the reports' warnings, and whether
    the period held no chain at all (exit 4, docs/metrics.md §7)."""

    missed: list[str]
    warnings: list[str]
    no_data: bool


def write_weekly(open_db: Callable[[], AbstractContextManager[ReportSource]], *, week: str | None, fmt: str,
                 out: Path | None, all_weeks: bool, by_category: bool, console: Console) -> Written:
    """Render the weekly report(s) to `out` (or the console); return what was `Written`.

    `open_db` opens the database to read (the shell's `Database(path, policy=…)`, or the Spark store); it is
    called once the options are known to be valid, and the database is closed before anything is written.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format `{fmt}` is not one of {', '.join(FORMATS)}.")
    if all_weeks and week:
        raise UsageError("--week and --all-weeks cannot be used together.")
    with open_db() as db:
        mondays = weeks_present(db) if all_weeks else [report_monday(db.con, week)]
        reports = [db.weekly_report(monday) for monday in mondays]
        daily = None
        if fmt == "html" and mondays:
            daily = db.refusal_rate(by="day", since=min(mondays), until=max(mondays) + dt.timedelta(days=7))
    missed = [name for report in reports for name in slo_missed(report)]
    result = Written(missed, [w for report in reports for w in report.get("warnings") or []],
                     no_data=not any(report["totals"]["chains"] for report in reports))
    if all_weeks and out is not None and (out.is_dir() or not out.suffix):
        try:
            out.mkdir(parents=True, exist_ok=True)
            for report in reports:
                (out / report_filename(report, fmt)).write_text(
                    render(report, fmt, daily=daily, by_category=by_category), encoding="utf-8")
        except OSError as exc:
            raise output_failure(out, exc) from None
        return result
    text = (render_many(reports, fmt, daily=daily, by_category=by_category) if all_weeks
            else render(reports[0], fmt, daily=daily, by_category=by_category))
    if out is None:
        console.file.write(text if text.endswith("\n") else text + "\n")
        console.file.flush()
    else:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise output_failure(out, exc) from None
    return result
