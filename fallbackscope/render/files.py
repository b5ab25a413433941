"""`fallbackscope report weekly`: compute the week(s) with `analytics`, render with `fallbackscope.render.weekly`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from rich.console import Console

from fallbackscope.core.errors import UsageError, output_failure
from fallbackscope.core.periods import day_sql, day_to_date, week_sql


def weeks_present(db) -> list[dt.date]:
    """Return the Monday of every ISO week in which a chain started, in order."""
    frame = db.sql(f"SELECT DISTINCT {week_sql(day_sql('ts'))} AS monday FROM attempts WHERE attempt_index = 1"
                   " ORDER BY monday")
    return [day_to_date(int(day)) for day in frame["monday"]]


def write_weekly(path: Path, *, week: str | None, fmt: str, out: Path | None, policy: Path | None,
                 all_weeks: bool, by_category: bool, console: Console, database=None) -> list[str]:
    """Render the weekly report(s) to `out` (or the console); return the workloads that missed their SLO.

    `database` replaces the DuckDB file at `path` (the Spark engine passes its store here)."""
    from fallbackscope.api import Database
    from fallbackscope.render.weekly import FORMATS, render, render_many, report_filename, slo_missed

    if fmt not in FORMATS:
        raise UsageError(f"--format `{fmt}` is not one of {', '.join(FORMATS)}.")
    if all_weeks and week:
        raise UsageError("--week and --all-weeks cannot be used together.")
    with database if database is not None else Database(path, policy=str(policy) if policy else None) as db:
        mondays = weeks_present(db) if all_weeks else [db._monday(week)]
        reports = [db.weekly_report(monday) for monday in mondays]
        daily = None
        if fmt == "html" and mondays:
            daily = db.refusal_rate(by="day", since=min(mondays), until=max(mondays) + dt.timedelta(days=7))
    missed = [name for report in reports for name in slo_missed(report)]
    if all_weeks and out is not None and (out.is_dir() or not out.suffix):
        try:
            out.mkdir(parents=True, exist_ok=True)
            for report in reports:
                (out / report_filename(report, fmt)).write_text(
                    render(report, fmt, daily=daily, by_category=by_category), encoding="utf-8")
        except OSError as exc:
            raise output_failure(out, exc) from None
        return missed
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
    return missed
