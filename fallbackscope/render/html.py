"""The weekly report as one self-contained html page (docs/metrics.md §7): plotly.js inlined, a
Content-Security-Policy that forbids every fetch, so it opens offline and never calls out. Every string
from logs passes through `html.escape`.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from analytics.common import ratio
from analytics.metrics import blended_cost_per_request
from fallbackscope.core.periods import day_to_date
from fallbackscope.render.display import (
    COST_HEADER,
    PER_REQUEST,
    WORKLOAD_HEADER,
    Report,
    as_mapping,
    billing_line,
    cost_rows,
    count_text,
    coverage_text,
    date_text,
    drift_line,
    drift_value,
    entries,
    part,
    pct,
    plain,
    previous_rate,
    rate_line,
    rate_value,
    section_rows,
    slo_line,
    slo_missed,
    totals_line,
    usd,
    warning_lines,
    workload_rows,
)

if TYPE_CHECKING:  # pandas only for the hint: rendering needs no pandas import
    import pandas as pd

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#52606d;margin:0 0 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}
h3{font-size:14px;margin:0 0 4px;font-weight:600}
.kpi,.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px}
.kpi b{display:block;font-size:22px}.kpi span{color:#52606d;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px;margin-top:12px}
.chart{height:340px}.empty{color:#7b8794;padding:24px;text-align:center}
.warning{background:#fff4e5;border-left:4px solid #d97706;padding:8px 12px;margin:8px 0}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600}.good{color:#027a48}.week{border-top:3px solid #cbd2d9;margin-top:32px}
nav a{margin-right:10px}
"""
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
        "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}
_CHART_TITLES = {"daily": "Refusal rate by day (chains)", "category": "Refusals by category",
                 "workload": "Refusal rate by workload, against its SLO"}
_RED, _GREEN, _BLUE, _GREY = "#d64545", "#2f9e6e", "#3b6fd4", "#bcc6d2"


def _h(value: Any) -> str:
    """Return text safe in html content and attribute values."""
    return html.escape(str(value), quote=True)


def _script_json(value: Any) -> str:
    """Return JSON safe inside an inline <script>: no `<`, `>`, `&` or JS line separators left raw."""
    text = json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1,
                classes: Callable[[int, int], str] | None = None) -> str:
    if not rows:
        return '<p class="empty">None this week.</p>'
    head = "".join(f'<th{" class=n" if i >= numeric_from else ""}>{_h(c)}</th>' for i, c in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            cls = " ".join(filter(None, ["n" if i >= numeric_from else "", classes(r, i) if classes else ""]))
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{_h(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _daily_points(daily: pd.DataFrame | None, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the daily series as [{day, chains, refused_chains, refusal_rate}] within the report's week."""
    rows = daily.to_dict("records") if daily is not None else report.get("daily")
    if not isinstance(rows, list):
        return []
    start, end = date_text(report.get("start")), date_text(report.get("end"))
    bounded = all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in (start, end))
    points = []
    for row in rows:
        if not isinstance(row, Mapping) or "day" not in row:
            continue
        day = plain(row.get("day"))
        if isinstance(day, int) and not isinstance(day, bool):  # a day number since 1970-01-01
            day = day_to_date(day).isoformat()
        day = date_text(day)
        if bounded and not start <= day < end:
            continue
        # also takes the frame of `analytics.refusals.refusal_rate(facts, by="day")` (value, numerator, …)
        chains = rate_value(row.get("chains", row.get("denominator")))
        refused = rate_value(row.get("refused_chains", row.get("numerator")))
        rate = rate_value(row.get("refusal_rate", row.get("value", ratio(refused, chains))))
        points.append({"day": day, "chains": chains, "refused_chains": refused, "refusal_rate": rate})
    return sorted(points, key=lambda p: p["day"])


def _layout(**extra: Any) -> dict[str, Any]:
    # the legend sits above the plot: below it, it covered the rotated category labels
    return {"margin": {"l": 56, "r": 56, "t": 40, "b": 48}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "font": {"size": 12}, "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
            "hovermode": "closest", **extra}


_NICE_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5)


def rate_axis(values: Sequence[Any], **extra: Any) -> dict[str, Any]:
    """Return a y axis for rates with round ticks (2%, 5%, 10% … apart, at most six of them; not 2.6%,
    5.3%, 7.9%), formatted with as few decimals as the step needs."""
    top = max([v for v in map(rate_value, values) if v is not None] or [0.0]) or 0.01
    step = next((s for s in _NICE_STEPS if top / s <= 5), 1.0)
    decimals = 1 if step < 0.01 else 0
    return {"tickmode": "linear", "tick0": 0, "dtick": step, "tickformat": f".{decimals}%",
            "range": [0, min(round(step * (math.floor(top / step + 1e-9) + 1), 6), 1.05)], **extra}


def _figures(report: Mapping[str, Any], daily: pd.DataFrame | None) -> dict[str, dict[str, Any] | None]:
    """Return the three charts as plotly figure dicts (None when there is nothing to draw).

    Names are html-escaped: plotly.js shows entities as text and would otherwise read its own HTML subset.
    """
    figures: dict[str, dict[str, Any] | None] = dict.fromkeys(_CHART_TITLES)
    points = _daily_points(daily, report)
    if points:
        days = [p["day"] for p in points]
        figures["daily"] = {"data": [
            {"type": "bar", "name": "chains", "x": days, "y": [p["chains"] for p in points],
             "marker": {"color": _GREY}, "hovertemplate": "%{x}: %{y} chains<extra></extra>"},
            {"type": "scatter", "mode": "lines+markers", "name": "refusal rate", "x": days, "yaxis": "y2",
             "y": [p["refusal_rate"] for p in points], "line": {"color": _RED, "width": 3},
             "customdata": [[p["refused_chains"], p["chains"]] for p in points],
             "hovertemplate": "%{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]} chains)<extra></extra>"}],
            # the rate sits on the overlaying axis so that its line is drawn above the bars
            "layout": _layout(xaxis={"type": "date", "tickformat": "%a %d %b", "dtick": 86400000},
                              yaxis={"side": "right", "showgrid": False, "rangemode": "tozero",
                                     "title": {"text": "chains"}},
                              yaxis2=rate_axis([p["refusal_rate"] for p in points], overlaying="y", side="left",
                                               title={"text": "refusal rate"}))}
    categories = entries(report, "refusals_by_category")
    if categories:
        figures["category"] = {"data": [{
            "type": "bar", "x": [_h(c.get("category") or "unspecified") for c in categories],
            "y": [rate_value(c.get("refused_attempts")) for c in categories], "marker": {"color": _BLUE},
            "customdata": [rate_value(c.get("share")) for c in categories],
            "hovertemplate": "%{x}: %{y} refused attempts (%{customdata:.1%})<extra></extra>"}],
            "layout": _layout(xaxis={"type": "category", "automargin": True, "tickangle": -30},
                              yaxis={"title": {"text": "refused attempts"}, "rangemode": "tozero"})}
    workloads = entries(report, "workloads")
    if workloads:
        names = [_h(w.get("workload")) for w in workloads]
        colours = [{True: _GREEN, False: _RED}.get(w.get("slo_met"), _GREY) for w in workloads]
        figures["workload"] = {"data": [
            {"type": "bar", "name": "session refusal rate", "x": names, "marker": {"color": colours},
             "y": [rate_value(w.get("session_refusal_rate")) for w in workloads],
             "hovertemplate": "%{x}: %{y:.1%} of sessions<extra></extra>"},
            {"type": "bar", "name": "chain refusal rate", "x": names, "marker": {"color": _GREY},
             "y": [rate_value(w.get("refusal_rate")) for w in workloads],
             "hovertemplate": "%{x}: %{y:.1%} of chains<extra></extra>"},
            {"type": "scatter", "mode": "markers", "name": "SLO", "x": names,
             "y": [rate_value(w.get("slo")) for w in workloads],
             "marker": {"symbol": "line-ew-open", "size": 36, "color": "#1f2933", "line": {"width": 3}},
             "hovertemplate": "%{x}: SLO %{y:.1%}<extra></extra>"}],
            "layout": _layout(barmode="group", xaxis={"type": "category", "automargin": True, "tickangle": -30},
                              yaxis=rate_axis([w.get(k) for w in workloads
                                               for k in ("session_refusal_rate", "refusal_rate", "slo")]))}
    return figures


def _kpi(label: str, value: str, note: str = "", bad: bool = False) -> str:
    return (f'<div class="kpi"><span>{_h(label)}</span><b{" class=bad" if bad else ""}>{_h(value)}</b>'
            f"<span>{_h(note)}</span></div>")


def _html_week(report: Mapping[str, Any], daily: pd.DataFrame | None, prefix: str,
               figures_out: dict[str, Any]) -> str:
    """Return one week's html section; its charts are added to `figures_out` under their div ids."""
    rate, session = report.get("refusal_rate"), report.get("session_refusal_rate")
    drift, totals, credit = part(report, "drift"), part(report, "totals"), part(report, "cache_credit")
    missed, cost = slo_missed(report), totals.get("cost_usd")
    kpis = "".join([
        _kpi("refusal rate (chains)", pct(rate), rate_line(rate, "chains").partition(" — ")[2]),
        _kpi("session refusal rate", pct(session), rate_line(session, "sessions").partition(" — ")[2]),
        _kpi("drift vs previous week", drift_value(drift), drift_line(report), bad=bool(drift.get("significant"))),
        _kpi("SLO", "all met" if not missed else f"{len(missed)} missed", slo_line(report), bad=bool(missed)),
        _kpi("cost", usd(cost), f"{count_text(totals.get('unpriced_attempts'))} unpriced attempts; "
             f"per chain {usd(blended_cost_per_request(cost, totals.get('chains')), PER_REQUEST)}"),
        _kpi("cache credits redeemed", f"{count_text(credit.get('redeemed'))} of "
             f"{count_text(credit.get('credits_minted'))}",
             f"redemption rate {pct(credit.get('redemption_rate'))}, savings {usd(credit.get('savings_usd'))}"),
    ])
    charts = []
    for key, fig in _figures(report, daily).items():
        div_id = f"{prefix}-{key}"
        title = f"<h3>{_h(_CHART_TITLES[key])}</h3>"
        if fig is None:
            charts.append(f'<div class="card">{title}<p class="empty">No data this week.</p></div>')
        else:
            figures_out[div_id] = fig
            charts.append(f'<div class="card">{title}<div id="{_h(div_id)}" class="chart"></div></div>')
    slo_rows = workload_rows(report)
    met_col = 1

    def slo_class(row: int, col: int) -> str:
        return {"MISSED": "bad", "met": "good"}.get(slo_rows[row][met_col], "") if col == met_col else ""

    drift_rows = [["this week", rate_line(rate, "chains")],
                  ["previous week", rate_line(previous_rate(report), "chains")], ["drift", drift_line(report)]]
    parts = [
        f'<section class="week" id="{_h(prefix)}"><h1>Weekly refusal report — {_h(report.get("week"))}</h1>',
        f'<p class="sub">{_h(date_text(report.get("start")))} to {_h(date_text(report.get("end")))} '
        f"(UTC, end exclusive) · {_h(totals_line(report))}"
        + (f" · {_h(coverage_text(report))}" if coverage_text(report) else "") + "</p>",
        *[f'<p class="warning">{_h(w)}</p>' for w in warning_lines(report)],
        *([f'<p class="sub">Billing: {_h(billing_line(report))}</p>'] if billing_line(report) else []),
        f'<div class="kpis">{kpis}</div><div class="charts">{"".join(charts)}</div>',
        "<h2>Workloads and SLO</h2>", _html_table(WORKLOAD_HEADER, slo_rows, 2, slo_class),
        "<h2>Drift</h2>", _html_table(["", "refusal rate"], drift_rows, numeric_from=9),
        "<h2>Cost</h2>", _html_table(COST_HEADER, cost_rows(report)),
    ]
    for title, header, rows, numeric_from in section_rows(report):
        parts += [f"<h2>{_h(title)}</h2>", _html_table(header, rows, numeric_from)]
    return "\n".join(parts) + "\n</section>"


def _html_document(title: str, sections: Sequence[str], figures: Mapping[str, Any], nav: str = "") -> str:
    from plotly.offline import get_plotlyjs  # the presentation layer alone needs plotly

    plot = ("(function(){var figs=" + _script_json(figures) + ",config=" + _script_json(_PLOT_CONFIG) + ";"
            "Object.keys(figs).forEach(function(id){Plotly.newPlot(id,figs[id].data,figs[id].layout,config);});})();")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_h(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">', f"<title>{_h(title)}</title>", f"<style>{_CSS}</style>",
        f"<script>{get_plotlyjs()}</script>", "</head><body><main>", nav, *sections,
        '<p class="sub">Generated by fallbackscope. Rates are fractions of chains or sessions with a Wilson 95% '
        "interval; a chain belongs to the day and week of its first attempt.</p>",
        "</main>", f"<script>{plot}</script>", "</body></html>", ""])


def render_html(report: Report, daily: pd.DataFrame | None = None) -> str:
    """Return one self-contained html page for the week: plotly.js inlined, no network needed or allowed.

    `daily` (optional) has columns `day` (date, ISO text or day number), `chains`, `refused_chains`,
    `refusal_rate`; rows outside the report's week are ignored. Charts: refusal rate by day, refusals by
    category, refusal rate by workload against its SLO; tables: SLO, drift, cost, resolution, start-tier
    advice, errors, cache credits, policy violations. Every string is html-escaped.
    """
    report = as_mapping(report)
    figures: dict[str, Any] = {}
    section = _html_week(report, daily, "w0", figures)
    return _html_document(f"fallbackscope weekly report {report.get('week')}", [section], figures)


def render_html_many(reports: Sequence[Report], daily: pd.DataFrame | None = None) -> str:
    """Return several weeks (a backfill, oldest first) as one page: one plotly.js, a section per week and
    links to each; `daily` may span all the weeks."""
    reports = [as_mapping(r) for r in reports]
    figures: dict[str, Any] = {}
    sections = [_html_week(r, daily, f"w{i}", figures) for i, r in enumerate(reports)]
    nav = "<nav>" + "".join(f'<a href="#w{i}">{_h(r.get("week"))}</a>' for i, r in enumerate(reports)) + "</nav>"
    weeks = [str(r.get("week")) for r in reports]
    title = f"fallbackscope weekly reports {weeks[0]} to {weeks[-1]}" if weeks else "fallbackscope weekly reports"
    return _html_document(title, sections, figures, nav)

