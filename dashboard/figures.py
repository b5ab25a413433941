"""Pure figure functions: a DataFrame in, a plotly Figure out — no database, no Dash, no globals read.

Each function draws what its docstring says and, given an empty frame, a figure saying there is nothing
to show for these filters (so a page never shows a blank box). Rates are fractions and are shown as
percentages; money is USD.
"""

from __future__ import annotations

import html
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import plotly.graph_objects as go

FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
PALETTE = ("#3b6fd4", "#e4743c", "#2f9e77", "#c9417d", "#8a63d2", "#c9a227", "#4aa3c8", "#a8552e", "#5c8a2e",
           "#d46fb0", "#2b4f8c", "#8c6d1f", "#1f8c8c", "#b03a3a", "#6b8e23", "#9467bd")
NO_DATA = "No data for these filters"
#: fixed colours so a category keeps its colour on every page (greys are for "nothing known")
COLOURS: dict[str, str] = {
    "unresolved": "#b8b8b8", "unknown": "#9a9a9a", "unspecified": "#9a9a9a",
    "redeemed": "#2f9e77", "rejected": "#c9417d", "unconfirmed": "#c9a227", "forfeited": "#e4743c",
    "expired": "#7a7a7a", "unredeemable": "#4aa3c8", "minted": "#3b6fd4", "unredeemable (batch)": "#4aa3c8",
    "loaded": "#3b6fd4", "duplicates": "#c9a227", "records rejected": "#c9417d",
}
#: one distinct colour per trigger (docs/metrics.md §5): refusal, quality, pinned and every error class, so an
#: error class has the same colour in the error chart and the fallback chart, and no two share one
TRIGGER_COLOURS: dict[str, str] = {
    "refusal": "#c9417d", "quality": "#2f9e77", "pinned": "#8a63d2", "rate_limit": "#e4743c",
    "overloaded": "#c9a227", "server_error": "#a8552e", "timeout": "#4aa3c8", "connection": "#3b6fd4",
    "invalid_request": "#5c8a2e", "auth": "#2b4f8c", "billing": "#d46fb0", "permission": "#1f8c8c",
    "not_found": "#8c6d1f", "conflict": "#b03a3a",
}
RATE_COLOURS = {"refusal rate": "#c9417d", "session refusal rate": "#8a63d2", "fallback rate": "#e4743c",
                "escalation rate": "#3b6fd4", "unresolved rate": "#7a7a7a"}


def colour_map(names: Sequence[Any], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return a colour per name: `fixed`'s colour, else COLOURS', else the next palette colour not yet
    taken in this map (distinct for up to len(PALETTE) such names)."""
    known = {**COLOURS, **(fixed or {})}
    out: dict[str, str] = {str(n): known[str(n)] for n in names if str(n) in known}
    free = [c for c in PALETTE if c not in set(out.values())] or list(PALETTE)
    i = 0
    for name in names:
        key = str(name)
        if key not in out:
            out[key] = free[i % len(free)]
            i += 1
    return out


#: a small template of our own: plotly's named templates are deep-copied into every figure (slow, large)
TEMPLATE = go.layout.Template(layout={
    "paper_bgcolor": "white", "plot_bgcolor": "white", "colorway": list(PALETTE),
    "xaxis": {"gridcolor": "#eceff3", "zerolinecolor": "#d5d9e0", "automargin": True},
    "yaxis": {"gridcolor": "#eceff3", "zerolinecolor": "#d5d9e0", "automargin": True},
    "hoverlabel": {"font": {"family": FONT}},
})


def _figure(traces: Sequence[Any], title: str, *, y_title: str | None = None, percent: bool = False,
            money: bool = False, height: int = 340, legend: bool = True, subtitle: str | None = None,
            **layout: Any) -> go.Figure:
    """Return a Figure of `traces` with the dashboard's layout (built in one go: updating a figure
    property by property is slow); `subtitle` is a line under the title."""
    yaxis: dict[str, Any] = {}
    if y_title:
        yaxis["title"] = {"text": y_title}
    if percent:
        yaxis.update(tickformat=".0%", rangemode="tozero")
    if money:
        yaxis.update(tickprefix="$", rangemode="tozero")
    base: dict[str, Any] = {
        "template": TEMPLATE,
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 15},
                  **({"subtitle": {"text": subtitle, "font": {"size": 11, "color": "#555"}}} if subtitle else {})},
        "height": height, "font": {"family": FONT, "size": 12},
        "margin": {"l": 60, "r": 20, "t": (80 if legend else 50) + (16 if subtitle else 0), "b": 40},
        "showlegend": legend,
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.01, "xanchor": "left", "x": 0,
                   "font": {"size": 11}},
        "hovermode": "closest", "yaxis": yaxis,
    }
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return go.Figure(data=list(traces), layout=base)


def empty(title: str, message: str = NO_DATA) -> go.Figure:
    """Return a blank figure titled `title` that says `message` (no axes: never bare −1..1 axes), in lines
    short enough for a half-width chart."""
    lines = textwrap.wrap(_label(message), 56, break_long_words=False, break_on_hyphens=False) or [""]
    note = {"text": "<br>".join(lines), "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper", "showarrow": False,
            "font": {"size": 14, "color": "#777"}}
    return _figure([], title, legend=False, annotations=[note], xaxis={"visible": False},
                   yaxis={"visible": False})


def _num(series: pd.Series) -> list[float | None]:
    return [None if v is None or pd.isna(v) else float(v) for v in series]


def _nothing(df: pd.DataFrame, *columns: str) -> bool:
    """True when `df` has no row with a non-zero value in any of `columns`: a count or amount chart of only
    zeros and gaps would draw bare axes (plotly's −1..1), so it says there is nothing instead."""
    if df.empty:
        return True
    return not any(bool(pd.to_numeric(df[c], errors="coerce").fillna(0).ne(0).any()) for c in columns)


def _alpha(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _label(value: Any) -> str:
    """Return a name from the logs (workload, model, category…) as plotly shows it literally: plotly.js reads
    a subset of HTML in names, labels and hover text (`<b>`, `<a href>`…) and shows entities as text, so
    `<`, `>` and `&` are escaped. Hover templates take names through `%{fullData.name}`, never spliced in."""
    return html.escape(str(value), quote=False)


def _x(values: Sequence[Any]) -> list[Any]:
    """Return x values plotly can carry to the browser: dates as ISO text, names escaped (`_label`)."""
    return [v.isoformat() if hasattr(v, "isoformat") else _label(v) if isinstance(v, str) else v for v in values]


@dataclass(frozen=True)
class Target:
    """A target drawn on a rate chart as a dashed line named `name` (e.g. "SLO target 5.0% (default)"), in
    the colour of the `metric` it applies to; with `value` None no single target applies and `name` is
    written on the chart instead (e.g. workloads with different targets)."""

    value: float | None
    name: str
    metric: str | None = None


def _target(target: Target | None, xs: list[Any], colour: str) -> tuple[list[Any], str | None]:
    """Return the traces that draw `target` across `xs`, or the subtitle that says it when it has no value."""
    if target is None:
        return [], None
    if target.value is None:
        return [], _label(target.name)
    ends = [xs[0], xs[-1]] if len(xs) > 1 else xs
    line = go.Scatter(x=ends, y=[target.value] * len(ends), mode="lines" if len(ends) > 1 else "markers",
                      name=_label(target.name), line={"color": colour, "dash": "dash", "width": 1.5},
                      marker={"symbol": "line-ew-open", "size": 24, "color": colour},
                      hovertemplate="%{fullData.name}<extra></extra>")
    return [line], None


def rate_band(df: pd.DataFrame, x: str, title: str, *, value: str = "value", low: str = "ci95_low",
              high: str = "ci95_high", name: str = "rate", colour: str = "#c9417d",
              target: Target | None = None, flags: str | None = None) -> go.Figure:
    """Return a line of `value` over `x` with its 95% interval as a shaded band; an optional dashed
    `target` line (in the line's colour) and markers on the rows where the boolean column `flags` is true
    (e.g. drift)."""
    if df.empty or df[value].notna().sum() == 0:
        return empty(title)
    xs = _x(df[x])
    traces = [
        go.Scatter(x=xs + xs[::-1], y=_num(df[high]) + _num(df[low])[::-1], fill="toself", mode="lines",
                   fillcolor=_alpha(colour, 0.18), line={"width": 0}, hoverinfo="skip", name="95% interval"),
        go.Scatter(x=xs, y=_num(df[value]), mode="lines+markers", name=name, line={"color": colour, "width": 2},
                   marker={"size": 5}, hovertemplate="%{x}<br>%{y:.2%}<extra></extra>"),
    ]
    target_traces, subtitle = _target(target, xs, colour)
    traces += target_traces
    if flags is not None and df[flags].astype(bool).any():
        hit = df[df[flags].astype(bool)]
        traces.append(go.Scatter(x=_x(hit[x]), y=_num(hit[value]), mode="markers", name="significant drift",
                                 marker={"symbol": "diamond-open", "size": 14, "color": "#111",
                                         "line": {"width": 2}}))
    return _figure(traces, title, percent=True, subtitle=subtitle)


def rate_lines(df: pd.DataFrame, x: str, metrics: Sequence[str], title: str,
               colours: Mapping[str, str] = RATE_COLOURS, target: Target | None = None) -> go.Figure:
    """Return one line per rate column of `metrics` over `x` (fractions, shown as percentages), and an
    optional `target` as a dashed line in the colour of the metric it applies to."""
    if df.empty or all(df[m].notna().sum() == 0 for m in metrics):
        return empty(title)
    xs = _x(df[x])
    traces = [go.Scatter(x=xs, y=_num(df[m]), mode="lines+markers", name=m, line={"color": colours.get(m),
                                                                                    "width": 2},
                         marker={"size": 4}, hovertemplate=f"{m}<br>%{{x}}: %{{y:.2%}}<extra></extra>")
              for m in metrics]
    target_traces, subtitle = _target(target, xs, colours.get(target.metric or "", "#333") if target else "#333")
    return _figure(traces + target_traces, title, percent=True, subtitle=subtitle)


def bars(df: pd.DataFrame, x: str, y: str, title: str, *, y_title: str | None = None, money: bool = False,
         percent: bool = False, colour: str = "#3b6fd4", horizontal: bool = False,
         colours: Mapping[str, str] | None = None, message: str = NO_DATA) -> go.Figure:
    """Return a bar per row (`x` category, `y` height); horizontal bars list `x` top to bottom. Only zeros
    and gaps: a figure saying `message`."""
    if _nothing(df, y):
        return empty(title, message)
    names = [str(v) for v in df[x]]
    marker = [(colours or {}).get(c, colour) for c in names]
    cats = [_label(c) for c in names]
    fmt = "$%{V:,.2f}" if money else ("%{V:.2%}" if percent else "%{V:,}")
    if not horizontal:
        trace = go.Bar(x=cats, y=_num(df[y]), marker={"color": marker},
                       hovertemplate="%{x}: " + fmt.replace("V", "y") + "<extra></extra>")
        return _figure([trace], title, y_title=y_title, money=money, percent=percent, legend=False)
    trace = go.Bar(y=cats[::-1], x=_num(df[y])[::-1], orientation="h", marker={"color": marker[::-1]},
                   hovertemplate="%{y}: " + fmt.replace("V", "x") + "<extra></extra>")
    xaxis: dict[str, Any] = {"title": {"text": y_title or ""}}
    if money:
        xaxis["tickprefix"] = "$"
    if percent:
        xaxis["tickformat"] = ".0%"
    return _figure([trace], title, legend=False, height=max(260, 90 + 28 * len(cats)), xaxis=xaxis,
                   margin={"l": 200})


def stacked(df: pd.DataFrame, x: str, colour_by: str, y: str, title: str, *, y_title: str | None = None,
            money: bool = False, order: Sequence[str] | None = None, colours: Mapping[str, str] | None = None,
            message: str = NO_DATA) -> go.Figure:
    """Return bars of `y` over `x`, stacked by `colour_by` (one trace per value, in `order` if given;
    `colours` fixes the colour of names, e.g. the page's model colours). Only zeros and gaps: a figure
    saying `message`."""
    if _nothing(df, y):
        return empty(title, message)
    names = list(order) if order else sorted({str(v) for v in df[colour_by]})
    colours = colour_map(names, colours)
    fmt = "$%{y:,.2f}" if money else "%{y:,}"
    traces = []
    keys = df[colour_by].astype(str)
    for name in names:
        part = df[keys == name]
        if part.empty:
            continue
        traces.append(go.Bar(x=_x(part[x]), y=_num(part[y]), name=_label(name), marker={"color": colours[name]},
                             hovertemplate=f"%{{fullData.name}}<br>%{{x}}: {fmt}<extra></extra>"))
    return _figure(traces, title, y_title=y_title, money=money, barmode="stack", bargap=0.15)


def rate_bars(df: pd.DataFrame, x: str, title: str, *, value: str = "value", low: str = "ci95_low",
              high: str = "ci95_high", target: str | None = None, target_text: str | None = None,
              colour: str = "#c9417d", colours: Mapping[str, str] | None = None) -> go.Figure:
    """Return a bar per row of a rate with its 95% interval as error bars (coloured by `colours`[row's `x`]
    when given), and per-row target markers (e.g. each workload's SLO) from the column `target`, hovered
    with the column `target_text` (e.g. "5.0% (default)")."""
    if df.empty or df[value].notna().sum() == 0:
        return empty(title)
    v, lo, hi = _num(df[value]), _num(df[low]), _num(df[high])
    plus = [None if a is None or b is None else b - a for a, b in zip(v, hi, strict=True)]
    minus = [None if a is None or b is None else a - b for a, b in zip(v, lo, strict=True)]
    cats = [_label(c) for c in df[x]]
    marker = [(colours or {}).get(str(c), colour) for c in df[x]] if colours else colour
    traces: list[Any] = [go.Bar(x=cats, y=v, name="rate", marker={"color": marker},
                                error_y={"type": "data", "symmetric": False, "array": plus, "arrayminus": minus,
                                         "color": "#444", "thickness": 1.2},
                                hovertemplate="%{x}: %{y:.2%}<extra></extra>")]
    with_target = target is not None and bool(df[target].notna().any())
    if with_target:
        hover = [_label(t) for t in df[target_text]] if target_text else None
        traces.append(go.Scatter(x=cats, y=_num(df[target]), mode="markers", name="SLO target",
                                 marker={"symbol": "line-ew", "size": 28, "line": {"width": 3, "color": "#111"}},
                                 customdata=hover, hovertemplate="%{x} SLO target: "
                                 + ("%{customdata}" if hover else "%{y:.1%}") + "<extra></extra>"))
    return _figure(traces, title, percent=True, legend=with_target)


def grouped(df: pd.DataFrame, x: str, series: Mapping[str, str], title: str, *, y_title: str | None = None,
            money: bool = False) -> go.Figure:
    """Return grouped bars over `x`: one bar per entry of `series` (label → column); only zeros and gaps:
    a figure saying so."""
    if _nothing(df, *series.values()):
        return empty(title)
    cats = [_label(c) for c in df[x]]
    colours = colour_map(list(series))
    fmt = "$%{y:,.4f}" if money else "%{y:,}"
    traces = [go.Bar(x=cats, y=_num(df[column]), name=_label(label), marker={"color": colours[label]},
                     hovertemplate=f"%{{fullData.name}}<br>%{{x}}: {fmt}<extra></extra>")
              for label, column in series.items()]
    return _figure(traces, title, y_title=y_title, money=money, barmode="group")


def sankey(flows: pd.DataFrame, title: str, colours: Mapping[str, str] | None = None) -> go.Figure:
    """Return a Sankey from each chain's first model (left) to the model that resolved it, or
    `unresolved` (right); `flows` has first_model, resolver, chains (summed over other columns). `colours`
    fixes the colour of models (the page's model colours)."""
    if _nothing(flows, "chains"):
        return empty(title)
    per = flows.groupby(["first_model", "resolver"])["chains"].sum().reset_index()
    left = sorted({str(m) for m in per["first_model"]})
    right = sorted({str(m) for m in per["resolver"]}, key=lambda m: (m == "unresolved", m))
    labels = ([f"{_label(m)} (first)" for m in left]
              + [f"{_label(m)} (resolved)" if m != "unresolved" else m for m in right])
    colours = colour_map(left + [m for m in right if m not in left], colours)
    node_colours = [colours[m] for m in left] + [colours[m] for m in right]
    source = [left.index(str(m)) for m in per["first_model"]]
    target = [len(left) + right.index(str(m)) for m in per["resolver"]]
    trace = go.Sankey(
        arrangement="snap",
        node={"label": labels, "color": node_colours, "pad": 18, "thickness": 16},
        link={"source": source, "target": target, "value": [int(v) for v in per["chains"]],
              "color": [_alpha(node_colours[t], 0.35) for t in target],
              "hovertemplate": "%{source.label} → %{target.label}: %{value:,} chains<extra></extra>"},
    )
    return _figure([trace], title, height=420, legend=False)


def resolution(df: pd.DataFrame, title: str, colours: Mapping[str, str] | None = None) -> go.Figure:
    """Return, per workload, a horizontal bar of the share of chains resolved at each tier (models in
    tier order, `unresolved` last); `df` is `analytics.tiers.resolution(by_workload=True)`; `colours` fixes
    the colour of models (the page's model colours)."""
    if df.empty:
        return empty(title)
    workloads = sorted({str(w) for w in df["workload"]})
    models: list[str] = []
    for m in df.sort_values(["tier"], na_position="last")["model"]:
        if str(m) not in models and str(m) != "unresolved":
            models.append(str(m))
    if (df["model"] == "unresolved").any():
        models.append("unresolved")
    colours = colour_map(models, colours)
    traces = []
    for model in models:
        part = df[df["model"].astype(str) == model]
        share = dict(zip(part["workload"].astype(str), _num(part["value"]), strict=True))
        traces.append(go.Bar(y=[_label(w) for w in workloads], x=[share.get(w) or 0.0 for w in workloads],
                             name=_label(model), orientation="h", marker={"color": colours[model]},
                             hovertemplate="%{fullData.name}<br>%{y}: %{x:.1%} of chains<extra></extra>"))
    return _figure(traces, title, height=max(260, 110 + 44 * len(workloads)), barmode="stack",
                   xaxis={"tickformat": ".0%", "range": [0, 1]}, margin={"l": 130})


def loads(df: pd.DataFrame, title: str) -> go.Figure:
    """Return records per load day stacked as loaded, duplicates and rejected (`loads_by_day` frame)."""
    if df.empty:
        return empty(title, "Nothing has been loaded yet")
    long = df.melt(id_vars=["day"], value_vars=["loaded", "duplicates", "rejected"], var_name="kind",
                   value_name="records")
    long["kind"] = long["kind"].replace({"rejected": "records rejected"})
    return stacked(long, "day", "kind", "records", title, y_title="records",
                   order=["loaded", "duplicates", "records rejected"])


def coverage(df: pd.DataFrame, x: str, title: str, *, value: str = "coverage", billed: str = "billed_usd",
             message: str = NO_DATA) -> go.Figure:
    """Return the share of the billed traffic the logs saw, a bar per `x` (0–100%, full coverage dashed), the
    billed USD in the hover. No row with a coverage: a figure saying `message` (a coverage of 0 is drawn)."""
    if df.empty or df[value].isna().all():
        return empty(title, message)
    xs = _x(list(df[x]))
    bar = go.Bar(x=xs, y=_num(df[value]), customdata=_num(df[billed]), marker={"color": PALETTE[0]},
                 name="coverage", hovertemplate="%{x}: %{y:.1%} of $%{customdata:,.2f} billed<extra></extra>")
    full = go.Scatter(x=[xs[0], xs[-1]] if len(xs) > 1 else xs, y=[1.0] * min(len(xs), 2), name="full coverage",
                      mode="lines" if len(xs) > 1 else "markers", line={"color": "#777", "dash": "dash", "width": 1},
                      marker={"symbol": "line-ew-open", "size": 24, "color": "#777"}, hoverinfo="skip")
    return _figure([bar, full], title, y_title="logged ÷ billed", percent=True, legend=False)
