"""The `fallbackscope` command: a thin layer over the library (docs/metrics.md §7).

Every command parses its arguments, calls one library function and turns FallbackscopeError into
one sentence on stderr and a documented exit code (0 done, 1 failure, 2 usage, 3 SLO not met or an
alert firing, 4 no data).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from fallbackscope import ingest_output as output
from fallbackscope.core.errors import ExitCode, FallbackscopeError, UsageError

app = typer.Typer(
    name="fallbackscope",
    help="See, price and govern LLM model fallbacks: load API logs into DuckDB, compute refusal and "
    "fallback SLIs, browse them, export weekly reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
report_app = typer.Typer(help="Export reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")
export_app = typer.Typer(help="Export the stored attempts for warehouses (Parquet partitioned by UTC day), "
                         "or the refusal SLIs for Prometheus (OpenMetrics).", no_args_is_help=True)
app.add_typer(export_app, name="export")
loads_app = typer.Typer(help="The load ledger: every file each run read, with its counts and status; forget a "
                        "file's loads.", invoke_without_command=True)
app.add_typer(loads_app, name="loads")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default $FALLBACKSCOPE_DB, else ./fallbackscope.duckdb).",
                 show_default=False),
]
PolicyOption = Annotated[
    Path | None, typer.Option("--policy", help="Policy TOML for this run (replaces the stored one).")
]
EngineOption = Annotated[
    str, typer.Option("--engine", help="duckdb, or spark: then --db is the Parquet store's folder or URI "
                      "(default $FALLBACKSCOPE_DB, else ./fallbackscope-store).")
]
SparkMasterOption = Annotated[
    str | None, typer.Option("--spark-master", help="With --engine spark: the master URL (default local[*]; "
                             "under spark-submit, its own).", show_default=False)
]
SparkConfOption = Annotated[
    list[str] | None, typer.Option("--spark-conf", help="With --engine spark: a Spark setting key=value "
                                   "(repeatable).", show_default=False)
]


def _spark(engine: str) -> bool:
    if engine not in ("duckdb", "spark"):
        raise UsageError(f"--engine `{engine}` is not one of duckdb, spark.")
    return engine == "spark"


def _db(db: Path | None) -> Path:
    from fallbackscope.core.config import resolve_db_path

    return resolve_db_path(db)


@app.command()
def ingest(
    paths: Annotated[list[str] | None, typer.Argument(help="Files, directories (recursively, in name order) or "
                                                     "'-'; none to only store --policy or --prices.")] = None,
    db: DbOption = None,
    format: Annotated[str | None, typer.Option("--format", help="exchange, anthropic, sse, batch, bedrock, otel "
                                               "or litellm (default: detected per file).")] = None,
    workload: Annotated[str | None, typer.Option(help="Workload of records that name none.")] = None,
    default_ts: Annotated[str | None, typer.Option("--default-ts", help="RFC 3339 time of records "
                                                   "without one.")] = None,
    batch_id: Annotated[str | None, typer.Option("--batch-id", help="Id of the batch whose results "
                                                 "are loaded.")] = None,
    policy: Annotated[Path | None, typer.Option(help="Policy TOML to store as the default.")] = None,
    prices: Annotated[Path | None, typer.Option(help="Price table TOML to store; reprices every "
                                                "attempt.")] = None,
    reload: Annotated[bool, typer.Option("--reload", help="Load the named files again, whatever the ledger says, "
                                         "with these options (an option not given keeps the file's last load's); "
                                         "their earlier loads' rows go in the same transaction.")] = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
) -> None:
    """Load log files into the database: atomic per file, idempotent, every record accounted for."""
    if not paths and policy is None and prices is None:
        raise UsageError("ingest: name the files, directories or '-' to load (or only --policy / --prices).")
    paths = paths or []
    if reload and not paths:
        raise UsageError("ingest --reload: name the files to load again.")
    if _spark(engine):
        if reload:
            raise UsageError("--reload is not supported with --engine spark yet.")
        from fallbackscope import engines as commands

        failed = False
        for report in commands.ingest(db, paths, master=spark_master, conf=spark_conf, fmt=format,
                                      workload=workload, default_ts=default_ts, batch_id=batch_id,
                                      policy=policy, prices=prices):
            failed |= output.show_file_report(report, out, err)
        if failed:
            raise typer.Exit(int(ExitCode.FAILURE))
        return
    from ingest.loader import IngestFailed, LoadOptions, ingest_paths

    options = LoadOptions(format=format, workload=workload, default_ts=default_ts, batch_id=batch_id,
                          policy_file=policy, prices_file=prices)
    with output.Progress(err) as progress:
        def show(report) -> None:
            progress.finish_file()
            output.show_file_report(report, out, err)

        try:
            ingest_paths(_db(db), paths, options, progress=progress.update, on_file=show, reload=reload)
        except IngestFailed:
            raise typer.Exit(int(ExitCode.FAILURE)) from None  # each unreadable file was named as it failed
    if policy is not None:
        out.print(f"policy stored: {policy} (the default for report, metrics and dashboard)", markup=False)
    if prices is not None:
        out.print(f"price table stored: {prices} (every stored attempt repriced)", markup=False)


@loads_app.callback()
def loads(ctx: typer.Context, db: DbOption = None) -> None:
    """List the load ledger: id, path, format, options, started, records, loaded, duplicates, rejected, status."""
    if ctx.invoked_subcommand is not None:
        return
    from ingest.loader import list_loads

    for line in output.ledger_table(list_loads(_db(db))):
        out.print(line, markup=False)


@loads_app.command()
def forget(
    targets: Annotated[list[str], typer.Argument(help="Load ids or file paths (a path, or any load of a grown "
                                                "file, forgets every load of that file).")],
    db: DbOption = None,
) -> None:
    """Forget loads (by id or path) as if their files had never been loaded; their ledger rows stay, `forgotten`."""
    from ingest.loader import forget_loads

    forgotten = forget_loads(_db(db), targets)
    out.print(f"forgot {len(forgotten)} load{'s' if len(forgotten) != 1 else ''}: "
              f"{', '.join(str(i) for i in forgotten)}", markup=False)


SAMPLE_EXTRAS = ".sample"  # below `sample DIR`: ground_truth.json and the batch results (which need options)


@app.command()
def sample(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write the logs into (ground_truth.json and the batch "
                                            "results, which need options, go to its .sample folder).")] = Path(
        "sample_logs"),
    seed: Annotated[int, typer.Option(help="Random seed: the same seed writes the same files.")] = 7,
    days: Annotated[int, typer.Option(help="Days of traffic.")] = 28,
    chains_per_day: Annotated[int, typer.Option("--chains-per-day", help="Logical requests a day.")] = 60,
    lines: Annotated[int | None, typer.Option(help="Instead: write one exchange file of about this many "
                                              "lines (benchmarks).")] = None,
    gzip: Annotated[bool, typer.Option("--gzip", help="Compress the log files (.jsonl.gz).")] = False,
) -> None:
    """Write synthetic logs (seeded) with a ground-truth file of what they hold."""
    from fallbackscope.core.errors import output_failure
    from fallbackscope.sample import SampleSpec, generate, generate_lines

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_failure(out_dir, exc) from None
    if lines is not None:
        truth = generate_lines(lines, out_dir / "exchange-bench.jsonl", seed=seed)
    else:
        # what a plain `ingest out_dir` must not read goes where ingest passes over it (a hidden folder)
        truth = generate(out_dir, SampleSpec(seed=seed, days=days, chains_per_day=chains_per_day),
                         extras=out_dir / SAMPLE_EXTRAS)
    if gzip:
        import gzip as gz

        for path in sorted([*out_dir.glob("*.jsonl"), *(out_dir / SAMPLE_EXTRAS).glob("*.jsonl")]):
            # mtime 0: the same seed writes byte-identical archives
            path.with_name(path.name + ".gz").write_bytes(gz.compress(path.read_bytes(), mtime=0))
            path.unlink()
    out.print(f"wrote {out_dir}: {truth.get('attempts', '?')} attempts in {truth.get('chains', '?')} chains",
              markup=False)
    if lines is None:
        out.print(f"ground truth and batch results (load them with the ground truth's ingest_options) in "
                  f"{out_dir / SAMPLE_EXTRAS}", markup=False)


@app.command(name="prices")
def prices_command(db: DbOption = None) -> None:
    """Print the price table in force (USD per million tokens)."""
    from rich.measure import Measurement
    from rich.table import Table

    from fallbackscope.core import prices as price_mod
    from fallbackscope.core import store

    path = _db(db)
    if path.exists():
        con = store.connect(path, read_only=True, wait_seconds=10)
        try:
            table = price_mod.table_in_force(con)
            source = con.execute("SELECT source FROM price_table ORDER BY set_at DESC LIMIT 1").fetchone()
        finally:
            con.close()
        origin = source[0] if source else "built-in"
    else:
        table = price_mod.parse_price_toml(price_mod.default_toml())
        origin = "built-in"
    grid = Table(title=f"Prices in force ({origin}), USD per million tokens")
    for name in ("model", "from", "input", "5m write", "1h write", "cache read", "output", "fast in/out", "band"):
        grid.add_column(name, no_wrap=name in ("model", "from"), overflow="fold")  # ids are never cut
    for row in sorted(table.price, key=lambda r: (r.model, r.valid_from)):
        fast = f"{row.fast_input:g} / {row.fast_output:g}" if row.fast_input is not None else ""
        band = (f">{row.band_threshold:,}: {row.band_input:g} / {row.band_cache_write_5m:g} / "
                f"{row.band_cache_write_1h:g} / {row.band_cache_read:g} / {row.band_output:g}"
                if row.band_threshold else "")
        grid.add_row(row.model, str(row.valid_from), f"{row.input:g}", f"{row.cache_write_5m:g}",
                     f"{row.cache_write_1h:g}", f"{row.cache_read:g}", f"{row.output:g}", fast, band)
    # piped or redirected: the whole table at its natural width, not cut to 80 columns
    target = out
    if not out.is_terminal:
        needed = Measurement.get(out, out.options.update(max_width=10_000), grid).maximum
        target = Console(file=out.file, width=max(out.width, needed), highlight=False, soft_wrap=True)
    target.print(grid)
    if table.aliases:
        out.print("aliases: " + ", ".join(f"{k} → {v}" for k, v in sorted(table.aliases.items())), markup=False)
    out.print(f"web search: ${table.web_search_usd:g} per request; batch ×0.5, inference_geo us ×1.1",
              markup=False)


@app.command()
def metrics(
    db: DbOption = None,
    since: Annotated[str | None, typer.Option(help="First day (inclusive): a date, time or ISO week.")] = None,
    until: Annotated[str | None, typer.Option(help="Last bound (exclusive): a date, time or ISO week.")] = None,
    by: Annotated[str, typer.Option(help="day, week, workload, model or category.")] = "week",
    format: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
    policy: PolicyOption = None,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
) -> None:
    """Print every metric of a period, one row per day, week, workload, model or refusal category."""
    from analytics.rollup import compute_metrics
    from fallbackscope.core import store
    from fallbackscope.render.metrics_table import FORMATS, format_metrics

    if format not in FORMATS:
        raise UsageError(f"--format `{format}` is not one of {', '.join(FORMATS)}.")
    if _spark(engine):
        from fallbackscope import engines as commands

        frame = commands.metrics(db, master=spark_master, conf=spark_conf, since=since, until=until, by=by,
                                 policy=str(policy) if policy else None)
    else:
        con = store.connect(_db(db), read_only=True, wait_seconds=60)
        try:
            frame = compute_metrics(con, since=since, until=until, by=by, policy=str(policy) if policy else None)
        finally:
            con.close()
    out.print(format_metrics(frame, format), markup=False, highlight=False)
    _warn(frame.attrs.get("warnings", []))
    if not frame.attrs.get("chains"):
        _no_data("no chain started in the period")


@report_app.command()
def weekly(
    db: DbOption = None,
    week: Annotated[str | None, typer.Option(help="ISO week, e.g. 2026-W47 (default: the last complete "
                                             "week before the latest attempt).")] = None,
    format: Annotated[str, typer.Option("--format", help="html, json, csv or md.")] = "json",
    out: Annotated[Path | None, typer.Option(help="File to write (default: stdout); with --all-weeks, a "
                                             "folder gets one file per week.")] = None,
    policy: PolicyOption = None,
    fail_on_slo: Annotated[bool, typer.Option("--fail-on-slo", help="Exit 3 when a workload misses its "
                                              "refusal SLO.")] = False,
    all_weeks: Annotated[bool, typer.Option("--all-weeks", help="Backfill: a report for every week "
                                            "present.")] = False,
    by_category: Annotated[bool, typer.Option("--by-category", help="csv: the refusals-by-category table "
                                              "instead of the workloads.")] = False,
    engine: EngineOption = "duckdb",
    spark_master: SparkMasterOption = None,
    spark_conf: SparkConfOption = None,
) -> None:
    """Write the weekly refusal-rate report: json (stable keys), csv, md or self-contained html."""
    from functools import partial

    from fallbackscope.render.files import write_weekly

    policy_text = str(policy) if policy else None
    if _spark(engine):
        from fallbackscope import engines as commands

        open_db = partial(commands.database, db, master=spark_master, conf=spark_conf, policy=policy_text)
    else:
        from fallbackscope.api import Database

        open_db = partial(Database, _db(db), policy=policy_text)
    written = write_weekly(open_db, week=week, fmt=format, out=out, all_weeks=all_weeks, by_category=by_category,
                           console=out_console())
    _warn(w for w in written.warnings if not w.startswith("no data"))
    if written.no_data:  # an empty period never passes as "all met" (exit 4 before 3)
        _no_data("no chain started in " + ("any week" if all_weeks else "the week"))
    if fail_on_slo and written.missed:
        err.print("fallbackscope: refusal SLO missed by " + ", ".join(sorted(set(written.missed))) + ".",
                  markup=False)
        sys.exit(int(ExitCode.SLO_NOT_MET))


def _warn(warnings: Iterable[str]) -> None:
    """Print each warning on stderr, once (never into JSON or CSV on stdout)."""
    for warning in dict.fromkeys(warnings):
        err.print(f"fallbackscope: warning: {warning}", markup=False, highlight=False)


def _no_data(why: str) -> None:
    err.print(f"fallbackscope: no data: {why}; check --week / --since / --until and that last night's load ran.",
              markup=False, highlight=False)
    sys.exit(int(ExitCode.NO_DATA))


def out_console() -> Console:
    """Return the stdout console (reports print raw, never as rich markup)."""
    return out


@export_app.command()
def parquet(
    out_dir: Annotated[str, typer.Argument(help="Folder to write DIR/attempts/day=YYYY-MM-DD/*.parquet into, or an "
                                           "object-store URL (s3://bucket/prefix, gs://…, az://…).",
                                           metavar="DIR|URL")],
    db: DbOption = None,
    since: Annotated[str | None, typer.Option(help="First day (inclusive): a date, time or ISO week.")] = None,
    until: Annotated[str | None, typer.Option(help="Last bound (exclusive): a date, time or ISO week.")] = None,
) -> None:
    """Write the attempts table as Parquet, one Hive partition per UTC day; days written are replaced."""
    from fallbackscope.export import export_parquet

    result = export_parquet(_db(db), out_dir, since=since, until=until)
    removed = f"; {len(result.removed)} emptied day folders removed" if result.removed else ""
    out.print(f"wrote {result.rows:,} attempts in {len(result.days)} day partitions to {result.path}{removed}",
              markup=False)


@app.command()
def reconcile(
    db: DbOption = None,
    since: Annotated[str | None, typer.Option(help="First UTC day (inclusive; default: 7 days before "
                                              "--until).")] = None,
    until: Annotated[str | None, typer.Option(help="Last bound, a UTC day (exclusive; default: today).")] = None,
    workspace_id: Annotated[str | None, typer.Option("--workspace-id", help="Only this workspace's usage and "
                                                     "cost.")] = None,
    from_file: Annotated[list[Path] | None, typer.Option("--from-file", help="Read saved report pages (the JSON "
                                                         "the endpoints return; a folder: its *.json) instead "
                                                         "of the API; repeatable.")] = None,
    api_url: Annotated[str | None, typer.Option("--api-url", help="Base URL of the Admin API (default "
                                                "https://api.anthropic.com); https unless loopback.")] = None,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait while another "
                                                "process writes the database.")] = 60.0,
) -> None:
    """Reconcile the computed cost with Anthropic's bill (Admin API usage and cost reports, key in
    $ANTHROPIC_ADMIN_KEY): log coverage and price gaps per day, model and token type."""
    from fallbackscope.billing import reconcile_bill, summary_text

    result = reconcile_bill(_db(db), since=since, until=until, workspace_id=workspace_id,
                            from_files=from_file or (), api_url=api_url, lock_timeout=lock_timeout)
    out.print(summary_text(result), markup=False, highlight=False)
    _warn(result.warnings)


@app.command()
def alert(
    db: DbOption = None,
    at: Annotated[str | None, typer.Option(help="Evaluate the windows ending at this time (default: the latest "
                                           "attempt).")] = None,
    max_staleness: Annotated[str | None, typer.Option("--max-staleness", help="Exit 4 when the latest attempt "
                                                      "is older than this before now (e.g. 26h).")] = None,
    policy: PolicyOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only print the firing alerts: post nothing, write "
                                          "nothing.")] = False,
    format: Annotated[str, typer.Option("--format", help="json (the alert objects) or slack (incoming-webhook "
                                        "text).")] = "json",
    dashboard_url: Annotated[str | None, typer.Option("--dashboard-url", help="Dashboard base URL for links "
                                                      "(default $FALLBACKSCOPE_DASHBOARD_URL).")] = None,
    lock_timeout: Annotated[float, typer.Option("--lock-timeout", min=0, help="Seconds to wait while another "
                                                "process writes the database.")] = 60.0,
) -> None:
    """Watch the refusal SLOs' burn rates (multi-window alerts): print the firing alerts and post new and
    resolved ones to $FALLBACKSCOPE_WEBHOOK_URL (exit 3 while one fires, 4 without data)."""
    from fallbackscope.alerting import run_alert

    run = run_alert(_db(db), at=at, max_staleness=max_staleness, policy=policy, dry_run=dry_run, fmt=format,
                    dashboard_url=dashboard_url, lock_timeout=lock_timeout)
    if run.output:
        out.print(run.output, markup=False, highlight=False, emoji=False)
    _warn(run.warnings)
    for error in run.errors:
        err.print(f"fallbackscope: {error}", markup=False, highlight=False, emoji=False)
    if run.exit_code:
        sys.exit(int(run.exit_code))


@export_app.command()
def openmetrics(
    out_file: Annotated[str, typer.Argument(metavar="[FILE|-]", help="File to write (atomically, for "
                                            "node_exporter's textfile collector), or '-' for stdout.")] = "-",
    db: DbOption = None,
    at: Annotated[str | None, typer.Option(help="Windows ending at this time (default: the latest "
                                           "attempt).")] = None,
) -> None:
    """Write the refusal SLIs, burn rates and error budgets as OpenMetrics gauges (for Prometheus)."""
    from fallbackscope.alerting import export_openmetrics

    result = export_openmetrics(_db(db), out_file, at=at)
    if out_file == "-":
        sys.stdout.write(result.text)
        sys.stdout.flush()
    if result.no_data:
        err.print("fallbackscope: no data: the database holds no attempts.", markup=False)
        sys.exit(int(ExitCode.NO_DATA))


@app.command()
def dashboard(
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback requires "
                                      "$FALLBACKSCOPE_DASHBOARD_PASSWORD (basic auth).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on.", min=1, max=65535)] = 8050,
    policy: PolicyOption = None,
) -> None:
    """Serve the dashboard over the database, read-only (it keeps serving while an ingest writes)."""
    from dashboard.app import serve

    serve(_db(db), host=host, port=port, policy_path=policy)


@app.command()
def demo(
    db: Annotated[Path, typer.Option("--db", help="Database to create (replaced if it exists).")] = Path(
        "fallbackscope-demo.duckdb"),
    logs: Annotated[Path | None, typer.Option(help="Keep the generated sample logs in this folder (default: a "
                                              "temporary folder, removed once loaded).")] = None,
    serve: Annotated[bool, typer.Option(help="Serve the dashboard afterwards.")] = True,
    port: Annotated[int, typer.Option(help="Dashboard port.", min=1, max=65535)] = 8050,
) -> None:
    """Generate sample logs, load them into a fresh database, show the headline numbers and the dashboard."""
    from fallbackscope.demo import run_demo

    run_demo(db, logs, out, serve=serve, port=port)


def main() -> None:
    """Entry point: run the app, turning our errors into one line and an exit code."""
    from typer import _click as click  # typer vendors its own click

    try:
        code = app(standalone_mode=False)  # so a bad option is one sentence too, not click's usage panel
    except click.exceptions.NoArgsIsHelpError as exc:
        exc.show()  # a command group given no command: its help
        sys.exit(int(ExitCode.USAGE))
    except click.exceptions.UsageError as exc:
        err.print(f"fallbackscope: {_usage_message(exc, click)} (see --help)", markup=False)
        sys.exit(int(ExitCode.USAGE))
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C while click had the terminal, or outside a command
        _interrupted()
    except FallbackscopeError as exc:
        err.print(f"fallbackscope: {exc}", markup=False)
        sys.exit(int(exc.exit_code))
    except Exception as exc:
        if _caused_by_interrupt(exc):  # Ctrl-C inside a DuckDB call comes back wrapped
            _interrupted()
        if os.environ.get("FALLBACKSCOPE_DEBUG"):
            raise
        # never print the exception's text: it could quote log content
        err.print(f"fallbackscope: internal error ({type(exc).__name__}); set FALLBACKSCOPE_DEBUG=1 for details.",
                  markup=False)
        sys.exit(int(ExitCode.FAILURE))
    if code == INTERRUPTED:  # typer turns Ctrl-C inside a command into this exit code, silently
        _interrupted()
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc, click) -> str:
    """Return click's usage error in our words; an option given to a command group (`report --db x`) names
    the command it is missing rather than the option."""
    ctx = exc.ctx
    if isinstance(exc, click.exceptions.NoSuchOption) and ctx is not None and getattr(ctx.command, "commands", None):
        names = sorted(ctx.command.commands)
        return (f"`{ctx.command_path}` needs a command before its options: {' or '.join(names)} "
                f"(e.g. `{ctx.command_path} {names[0]} {exc.option_name} …`)")
    return exc.format_message().strip()


def _flags_without_type(self, ctx) -> str | None:
    """typer's help shows `<bool>` after on/off flags, which take no value: show nothing there."""
    return None if getattr(self, "is_flag", False) else _display_type_rich(self, ctx)


_display_type_rich = typer.core.TyperOption.display_type_rich
typer.core.TyperOption.display_type_rich = _flags_without_type


INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)


def _interrupted() -> NoReturn:
    err.print("fallbackscope: interrupted (an ingest keeps the files it had committed and nothing of the one it "
              "was loading; run it again to finish).", markup=False)
    sys.exit(INTERRUPTED)


def _caused_by_interrupt(exc: BaseException | None) -> bool:
    """Return whether an exception stems from Ctrl-C (KeyboardInterrupt somewhere in its chain)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "InterruptException":
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


if __name__ == "__main__":
    main()
