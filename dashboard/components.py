"""Layout pieces shared by the pages: the shell (navigation, filter bar), cards, tables, number formats.

Nothing here reads the database; `source()` returns the app's DataSource inside a request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import flask
import pandas as pd
import plotly.graph_objects as go
from dash import dcc, html
from dash.exceptions import PreventUpdate

from analytics.metrics import refusal_lower_bound_warning
from dashboard import figures
from dashboard.data import DataSource, DataUnavailable
from dashboard.frames import SloTargets, View

LOG = logging.getLogger("fallbackscope.dashboard")
EXTENSION = "fallbackscope.dashboard"
GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]}

#: (path, label) of every page, in navigation order
PAGES: tuple[tuple[str, str], ...] = (
    ("/", "Overview"), ("/refusals", "Refusals"), ("/chains", "Chains and tiers"),
    ("/costs", "Cost and credits"), ("/reliability", "Reliability and policy"), ("/data", "Data"),
)


def source() -> DataSource:
    """Return the DataSource of the app serving the current request."""
    return flask.current_app.extensions[EXTENSION]


# ---------------------------------------------------------------------------- formats


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def pct(value: Any, digits: int = 1) -> str:
    """Return a fraction as a percentage (`12.3%`), `–` when unknown."""
    return "–" if _missing(value) else f"{float(value) * 100:.{digits}f}%"


def usd(value: Any, digits: int = 2) -> str:
    """Return a USD amount (`$1,234.57`), `–` when unknown (e.g. every part unpriced)."""
    return "–" if _missing(value) else f"${float(value):,.{digits}f}"


def count(value: Any) -> str:
    """Return an integer with thousands separators, `–` when unknown."""
    return "–" if _missing(value) else f"{int(value):,}"


def interval(low: Any, high: Any) -> str:
    """Return a 95% interval as `12.3%–15.0%`, `–` when unknown (a rate over nothing)."""
    return "–" if _missing(low) or _missing(high) else f"{pct(low)}–{pct(high)}"


def signed(value: Any, unit: str) -> str:
    """Return a change with its sign and unit (`+1.2 pp`, `−3%`), `–` when unknown."""
    if _missing(value):
        return "–"
    v = float(value)
    sign = "+" if v > 0 else ("−" if v < 0 else "±")
    return f"{sign}{abs(v):.1f}{' pp' if unit == 'pp' else '%'}"


def plain(value: Any) -> str:
    """Return a cell value as text (dates ISO, floats to 4 places, missing as `–`)."""
    if _missing(value):
        return "–"
    if isinstance(value, dt.datetime | pd.Timestamp):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, float):
        return f"{value:,.4f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ---------------------------------------------------------------------------- the shell


def nav() -> html.Nav:
    """Return the navigation bar; each link's query string (the filters) is kept up to date by a callback."""
    links = [dcc.Link(label, href=path, id={"type": "nav", "page": path}, className="nav-link")
             for path, label in PAGES]
    return html.Nav([html.Span("fallbackscope", className="brand"), *links], className="nav")


def filter_bar() -> html.Div:
    """Return the filter bar: date range (with quick ranges), workload, model and surface."""
    return html.Div(className="filters", children=[
        html.Div(className="filter", children=[
            html.Label("Days (UTC)", htmlFor="f-range"),
            dcc.DatePickerRange(id="f-range", display_format="YYYY-MM-DD", first_day_of_week=1,
                                minimum_nights=0, updatemode="bothdates", clearable=False),
            html.Div(className="quick", children=[
                html.Button("7 days", id="f-last7", n_clicks=0, className="quick-button"),
                html.Button("28 days", id="f-last28", n_clicks=0, className="quick-button"),
                html.Button("All", id="f-all", n_clicks=0, className="quick-button"),
            ]),
        ]),
        _dropdown("f-workload", "Workload"),
        _dropdown("f-model", "Model"),
        _dropdown("f-surface", "Surface"),
    ])


def _dropdown(component_id: str, label: str) -> html.Div:
    return html.Div(className="filter", children=[
        html.Label(label, htmlFor=component_id),
        dcc.Dropdown(id=component_id, options=[], value=[], multi=True, placeholder=f"All {label.lower()}s",
                     clearable=True, searchable=True),
    ])


def shell(page_container: Any) -> html.Div:
    """Return the app layout: URL, filter store, navigation, filter bar and the page container."""
    return html.Div(className="app", children=[
        dcc.Location(id="url", refresh="callback-nav"),
        dcc.Store(id="filters", data=None),
        nav(),
        filter_bar(),
        html.Main(page_container, className="page"),
        html.Footer(id="footer", className="footer"),
    ])


# ---------------------------------------------------------------------------- page pieces


def page_header(title: str, lead: str, prefix: str) -> html.Div:
    """Return a page's heading, a one-line description and its status line (id `<prefix>-status`)."""
    return html.Div(className="page-header", children=[
        html.H1(title), html.P(lead, className="lead"), html.Div(id=f"{prefix}-status", className="status"),
    ])


def graph(component_id: str, wide: bool = False) -> html.Div:
    """Return a card holding an empty dcc.Graph that a page callback fills."""
    return html.Div(className="card wide" if wide else "card", children=[
        dcc.Loading(dcc.Graph(id=component_id, figure=figures.empty(" ", "Loading…"), config=GRAPH_CONFIG),
                    type="dot", delay_show=400),
    ])


def panel(component_id: str, title: str, wide: bool = False) -> html.Div:
    """Return a titled card whose content (a table, cards) a page callback fills."""
    return html.Div(className="card wide" if wide else "card", children=[
        html.H2(title), html.Div(id=component_id, className="panel-body"),
    ])


def kpi(label: str, value: str, detail: str = "", note: str = "", state: str = "",
        test_id: str | None = None, caption: str = "", kind: str = "") -> html.Div:
    """Return a headline number card; `caption` says what the number is (under its label), `state`
    (`good`, `bad` or "") colours its note, `kind` is an extra class (`slo`: the number an SLO applies to)."""
    return html.Div(className=f"kpi {kind}".strip(), id=test_id or f"kpi-{label.lower().replace(' ', '-')}", children=[
        html.Div(label, className="kpi-label"),
        *([html.Div(caption, className="kpi-caption")] if caption else []),
        html.Div(value, className="kpi-value"),
        html.Div(detail, className="kpi-detail"),
        html.Div(note, className=f"kpi-note {state}".strip()),
    ])


def table(df: pd.DataFrame, columns: Sequence[tuple[str, str, Any]], empty_text: str = "Nothing to show",
          max_rows: int = 200) -> html.Div | html.Table:
    """Return an html table of `df`: `columns` is (column, header, formatter) with formatter a function
    of the cell value (default `plain`)."""
    if df is None or df.empty:
        return html.Div(empty_text, className="empty")
    head = html.Thead(html.Tr([html.Th(h) for _, h, _ in columns]))
    rows = []
    for rec in df.head(max_rows).to_dict("records"):
        rows.append(html.Tr([html.Td((fmt or plain)(rec.get(col))) for col, _, fmt in columns]))
    return html.Table([head, html.Tbody(rows)], className="table")


def model_colours(view: View) -> dict[str, str]:
    """Return a colour per model stored in the database (sorted names take the palette in turn; `unknown`
    grey): every figure of every page colours a model alike, whatever the filters."""
    return figures.colour_map([*view.dims.models, "unknown"])


def target_texts(slo: pd.DataFrame) -> list[str]:
    """Return each row's SLO target and where it came from, `5.0% (default)`, of a `View.slo`-like frame."""
    return [f"{pct(t)} ({s})" for t, s in zip(slo["slo"], slo["slo_source"], strict=True)]


def slo_text(targets: SloTargets) -> str:
    """Return the SLO targets of the workloads in view and where they came from: `target 5.0% (default)`,
    `targets 2.0%–5.0% (policy, default)`; "" without workloads."""
    if not targets.targets:
        return ""
    values = pct(targets.targets[0]) if targets.single is not None else \
        f"{pct(targets.targets[0])}–{pct(targets.targets[-1])}"
    return f"target{'' if targets.single is not None else 's'} {values} ({', '.join(targets.sources)})"


def slo_line(targets: SloTargets, *, name_the_rate: bool = True) -> figures.Target | None:
    """Return the SLO target to draw on a chart of the session refusal rate: a line when one target applies to
    every workload in view; when they differ, no line but a subtitle saying so (a line per workload would
    compare each target with the rate of all of them together). Its legend names the rate it applies to
    unless `name_the_rate` is false (a chart of that rate alone)."""
    if not targets.targets:
        return None
    if targets.single is not None:
        rate = "session refusal rate " if name_the_rate else ""
        return figures.Target(targets.single, f"{rate}SLO: {slo_text(targets)}", "session refusal rate")
    return figures.Target(None, f"Session refusal rate SLO: {slo_text(targets)}, one per workload — choose a "
                          "workload to see its target line", "session refusal rate")


def lower_bound_text(unknown_stop_attempts: int) -> str | None:
    """Return the warning that the refusal rates are lower bounds (`analytics.metrics`), None without one."""
    return refusal_lower_bound_warning(unknown_stop_attempts)


def warnings(lines: Sequence[str | None]) -> list[Any]:
    """Return a warning box per non-empty line (an empty list when there is none)."""
    return [html.Div(["⚠ ", line], className="warning") for line in lines if line]


def status(view: View) -> list[Any]:
    """Return the status line of a page: what is shown, and whether a load is changing the database."""
    base = view.base
    parts: list[Any] = [html.Span(view.filters.describe()),
                        html.Span(f" · read {base.computed_at:%Y-%m-%d %H:%M:%S} UTC", className="muted")]
    if base.stale:
        parts.append(html.Span(" · the database is being updated; these numbers are from before the load",
                               className="stale"))
    return parts


def unavailable(message: str, outputs: Sequence[str]) -> list[Any]:
    """Return placeholder values for a page's outputs when the database cannot be read: a message figure
    for each `figure` output, the message for each `children` output (the first gets the status)."""
    out: list[Any] = []
    for kind in outputs:
        if kind == "figure":
            out.append(figures.empty(" ", message))
        elif kind == "status":
            out.append(html.Span(message, className="stale"))
        else:
            out.append(html.Div(message, className="empty"))
    return out


def no_figure() -> go.Figure:
    """Return an empty placeholder figure."""
    return figures.empty(" ")


def guarded(outputs: Sequence[str]) -> Callable[[Callable[..., list[Any]]], Callable[..., list[Any]]]:
    """Wrap a page callback: no update before the filters exist; a database that cannot be read, or any
    failure while computing, becomes a message in the page (`outputs` as for `unavailable`) instead of a
    server error, the failure's traceback going to the server log."""
    def wrap(update: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        @functools.wraps(update)
        def run(data: Any) -> list[Any]:
            if data is None:
                raise PreventUpdate
            try:
                return update(data)
            except DataUnavailable as exc:
                return unavailable(str(exc), outputs)
            except PreventUpdate:
                raise
            except Exception:
                LOG.exception("computing %s failed", update.__module__)
                return unavailable("This page could not be computed for these filters; the server log says why.",
                                   outputs)
        return run
    return wrap


def page_callback(module: str, outputs: Sequence[tuple[str, str]], build: Callable[[View], list[Any]]) -> None:
    """Register a page's one callback: fill `outputs` ((component id, property) pairs) from the shared
    filters with `build(view)`, guarded (a failure shows on the page) and kept by the View, so a repeated
    request for the same filters is cheap."""
    from dash import Input, Output, callback

    from dashboard.filters import Filters
    from dashboard.frames import view_for

    @callback(*[Output(cid, prop) for cid, prop in outputs], Input("filters", "data"))
    @guarded(tuple(prop for _, prop in outputs))
    def update(data: dict[str, Any]) -> list[Any]:
        view = view_for(source(), Filters.from_store(data))
        return view.memo(("page", module), lambda: build(view))
