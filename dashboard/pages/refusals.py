"""Refusals: chain refusal rate by day and week with intervals, categories, models, workloads, drift."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from analytics import refusals
from dashboard import figures
from dashboard.components import (
    graph,
    lower_bound_text,
    model_colours,
    page_callback,
    page_header,
    panel,
    pct,
    slo_line,
    source,
    status,
    table,
    target_texts,
    warnings,
)
from dashboard.frames import (
    View,
    drift_table,
    refusal_series,
    refusals_by_category,
    slo_targets,
    workload_drift,
    workload_refusals,
)
from dashboard.slo_components import burn_panel
from dashboard.slo_frames import burns

dash.register_page(__name__, path="/refusals", name="Refusals", title="Refusals · fallbackscope", order=1)

CATEGORY_ORDER = ("cyber", "bio", "frontier_llm", "reasoning_extraction", "general_harms", "unspecified")


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Refusals", "Chains with a refused attempt, with 95% Wilson intervals; refused attempts by "
                    "category; per model and workload; week-over-week drift (pooled z test, significant at "
                    "p < 0.01). The SLO applies to the session refusal rate.", "refusals"),
        html.Div(id="refusals-warnings", className="warnings"),
        html.Div(className="grid", children=[
            graph("refusals-daily", wide=True),
            graph("refusals-weekly"),
            graph("refusals-sessions"),
            panel("refusals-burn", "SLO burn rate per alert window and error budget left", wide=True),
            graph("refusals-category"),
            graph("refusals-model"),
            graph("refusals-workload"),
            panel("refusals-drift", "Drift, week over week"),
            panel("refusals-workload-drift", "Drift per workload (the range's last two weeks)"),
        ]),
    ])


def _p(value: Any) -> str:
    return "–" if value is None or value != value else f"{value:.4f}"


def _flag(value: Any) -> str:
    return "▲ significant" if value else ""


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    daily = refusal_series(view, "day")
    weekly = refusal_series(view, "week")
    drift = drift_table(view)
    significant = dict(zip(drift["week"], drift["significant"], strict=True))
    flagged = weekly.assign(significant=[bool(significant.get(w, False)) for w in weekly["bucket"]])
    facts = view.facts(None)
    categories = refusals_by_category(facts, view.time_key)
    order = [c for c in CATEGORY_ORDER if c in set(categories["category"])] + sorted(
        set(categories["category"]) - set(CATEGORY_ORDER))
    by_model = refusals.attempt_refusal_rate(facts)
    by_workload = workload_refusals(view)
    targets = slo_targets(view.slo())
    sessions = view.rate("refused_sessions", "sessions", "week")
    unknown = int(view.chains(None, False)["unknown_stop_attempts"].sum())
    drift_shown = table(drift, [
        ("week", "Week", None), ("refusal_rate", "Refusal rate", pct), ("previous", "Week before", pct),
        ("delta", "Change", lambda v: "–" if v is None or v != v else f"{v * 100:+.1f} pp"),
        ("p_value", "p", _p), ("significant", "", _flag),
    ], "Needs two ISO weeks in the range")
    wl_drift = table(workload_drift(view), [
        ("workload", "Workload", None), ("week", "Week", None), ("refusal_rate", "Refusal rate", pct),
        ("previous", "Week before", pct),
        ("delta", "Change", lambda v: "–" if v is None or v != v else f"{v * 100:+.1f} pp"),
        ("p_value", "p", _p), ("significant", "", _flag),
    ], "Needs two ISO weeks in the range")
    return [
        status(view),
        warnings([lower_bound_text(unknown)]),
        figures.rate_band(daily, "bucket", "Refusal rate by day (chains with a refused attempt; no SLO)",
                          name="refusal rate"),
        figures.rate_band(flagged, "bucket", "Refusal rate by ISO week (chains), drift flagged", name="refusal rate",
                          flags="significant"),
        figures.rate_band(sessions, "week", "Session refusal rate by ISO week, against the SLO",
                          name="session refusal rate", colour=figures.RATE_COLOURS["session refusal rate"],
                          target=slo_line(targets, name_the_rate=False)),
        burn_panel(burns(source(), view.filters)),
        figures.stacked(categories, "bucket", "category", "refused_attempts",
                        f"Refused attempts by category, per {view.time_key}", y_title="refused attempts",
                        order=order),
        figures.rate_bars(by_model, "model", "Attempt refusal rate by model (ok + refusal attempts)",
                          colours=model_colours(view)),
        figures.rate_bars(by_workload.rename(columns={"ci95_low": "s_low", "ci95_high": "s_high"}).assign(
                              target_text=target_texts(by_workload)),
                          "workload", "Session refusal rate by workload, SLO target marked",
                          value="session_refusal_rate", low="s_low", high="s_high", target="slo",
                          target_text="target_text", colour=figures.RATE_COLOURS["session refusal rate"]),
        drift_shown,
        wl_drift,
    ]


page_callback(__name__, [
    ("refusals-status", "children"),
    ("refusals-warnings", "children"),
    ("refusals-daily", "figure"),
    ("refusals-weekly", "figure"),
    ("refusals-sessions", "figure"),
    ("refusals-burn", "children"),
    ("refusals-category", "figure"),
    ("refusals-model", "figure"),
    ("refusals-workload", "figure"),
    ("refusals-drift", "children"),
    ("refusals-workload-drift", "children"),
], _build)
