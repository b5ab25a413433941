"""Data: what the loads did — the latest run's files, records and rejects, and the ledger over time."""

from __future__ import annotations

from typing import Any

import dash
import pandas as pd
from dash import Input, Output, callback, html

from dashboard import figures
from dashboard.components import count, graph, guarded, kpi, page_header, panel, plain, source, table
from dashboard.data import Dimensions, Ledger, Result
from dashboard.frames import latest_run, loads_by_day, rejects_by_reason

dash.register_page(__name__, path="/data", name="Data", title="Data · fallbackscope", order=5)

OUTPUTS = ("status", "children", "children", "figure", "figure", "children")


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Data", "What `fallbackscope ingest` loaded: the latest run file by file, and every run's "
                    "records and rejects (the filters above do not apply to the load ledger).", "data"),
        html.Div(id="data-kpis", className="kpis"),
        html.Div(className="grid", children=[
            panel("data-files", "Files of the latest run", wide=True),
            graph("data-loads"), graph("data-rejects"),
            panel("data-latest-rejects", "Rejects of the latest run, by reason"),
        ]),
    ])


def _when(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S UTC")


@callback(
    Output("data-status", "children"), Output("data-kpis", "children"), Output("data-files", "children"),
    Output("data-loads", "figure"), Output("data-rejects", "figure"), Output("data-latest-rejects", "children"),
    Input("filters", "data"),
)
@guarded(OUTPUTS)
def update(data: dict[str, Any]) -> list[Any]:
    """Fill the page (the load ledger, whatever the filters)."""
    ledger_result = source().ledger()
    dims = source().dimensions().value
    key = ("page", __name__, ledger_result.version, ledger_result.computed_at, ledger_result.stale, dims)
    return source().memo(key, lambda: _build(ledger_result, dims))


def _build(ledger_result: Result[Ledger], dims: Dimensions) -> list[Any]:
    """Return the page's outputs for one read of the ledger."""
    ledger = ledger_result.value
    run, run_rejects = latest_run(ledger)
    loads = ledger.loads
    if run.empty:
        cards: list[Any] = [kpi("Latest run", "none", "nothing has been loaded yet")]
    else:
        statuses = run["status"].value_counts()
        cards = [
            kpi("Latest run", f"{len(run)} files", f"started {_when(run['started_at'].min())} · finished "
                f"{_when(run['finished_at'].max())}", ", ".join(f"{n} {s}" for s, n in statuses.items()),
                "bad" if statuses.get("failed", 0) else "good", test_id="kpi-latest-run"),
            kpi("Records", count(run["records"].sum()), f"{count(run['attempts_loaded'].sum())} attempts loaded",
                test_id="kpi-records"),
            kpi("Duplicates", count(run["duplicates"].sum()), "records already stored", test_id="kpi-duplicates"),
            kpi("Rejected", count(run["rejected"].sum()), "records that could not be used",
                state="bad" if run["rejected"].sum() else "", test_id="kpi-rejected"),
            kpi("Loads", count(len(loads)), f"{count(loads['attempts_loaded'].sum())} attempts loaded in all · "
                f"{count(dims.attempts)} stored", test_id="kpi-loads"),
        ]
    stale = " · the database is being updated; this is the ledger from before" if ledger_result.stale else ""
    status_line = [html.Span(f"{len(loads):,} loads recorded"),
                   html.Span(f" · read {ledger_result.computed_at:%Y-%m-%d %H:%M:%S} UTC", className="muted"),
                   html.Span(stale, className="stale")]
    files = table(run, [
        ("path", "File", None), ("format", "Format", None), ("status", "Status", None),
        ("records", "Records", count), ("attempts_loaded", "Attempts", count), ("duplicates", "Duplicates", count),
        ("rejected", "Rejected", count), ("started_at", "Started", plain), ("error", "Error", None),
    ], "Nothing has been loaded yet")
    return [
        status_line, cards, files,
        figures.loads(loads_by_day(ledger), "Records per load day"),
        figures.bars(rejects_by_reason(ledger), "reason", "rejects", "Rejects by reason (all loads)",
                     y_title="records", horizontal=True, colour="#c9417d",
                     message="No record has been rejected in any load"),
        table(run_rejects, [("reason", "Reason", None), ("rejects", "Records", count)],
              "No rejects in the latest run"),
    ]
