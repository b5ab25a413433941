"""Reliability and policy: attempts by error class over time, outcomes, fallbacks by trigger, and policy
violations (docs/metrics.md §5)."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from analytics import reliability, tiers
from dashboard import figures
from dashboard.components import count, graph, page_callback, page_header, panel, pct, source, status, table
from dashboard.frames import View, errors_by_class, violations, violations_by_bucket
from dashboard.slo_components import alert_panel
from dashboard.slo_frames import alerts

dash.register_page(__name__, path="/reliability", name="Reliability and policy",
                   title="Reliability and policy · fallbackscope", order=4)


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Reliability and policy", "Failed attempts by error class, every attempt's outcome, why "
                    "chains moved to another model, and what broke the fallback policy.", "reliability"),
        html.Div(className="grid", children=[
            graph("reliability-errors", wide=True),
            graph("reliability-outcomes"),
            graph("reliability-fallbacks"),
            graph("reliability-violations"),
            graph("reliability-violations-time"),
            panel("reliability-error-table", "Attempts per error class"),
            panel("reliability-violation-table", "Policy violations"),
            panel("reliability-alerts", "Alert history (SLO burn-rate alerts sent, latest first)", wide=True),
        ]),
    ])


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    facts = view.facts(None)
    errors = reliability.errors(facts)
    kinds = violations(facts)
    return [
        status(view),
        figures.stacked(errors_by_class(facts, view.time_key), "bucket", "error_class", "attempts",
                        f"Failed attempts by error class, per {view.time_key}", y_title="attempts",
                        colours=figures.TRIGGER_COLOURS),
        figures.bars(reliability.outcomes(facts), "outcome", "attempts", "Attempts by outcome", y_title="attempts",
                     horizontal=True),
        figures.stacked(tiers.fallbacks_by_trigger(facts, by_workload=True), "workload", "trigger", "fallbacks",
                        "Fallbacks (moves to another model) by trigger", y_title="attempts",
                        colours=figures.TRIGGER_COLOURS),
        figures.stacked(kinds, "workload", "kind", "count", "Policy violations by kind", y_title="violations"),
        figures.stacked(violations_by_bucket(facts, view.time_key), "bucket", "kind", "count",
                        f"Policy violations per {view.time_key}", y_title="violations"),
        table(errors, [("error_class", "Error class", None), ("attempts", "Attempts", count),
                       ("value", "Share of attempts", pct)], "No failed attempts in these days"),
        table(kinds, [("kind", "Kind", None), ("workload", "Workload", None), ("count", "Count", count)],
              "No policy violations in these days"),
        alert_panel(alerts(source(), view.filters)),
    ]


page_callback(__name__, [
    ("reliability-status", "children"),
    ("reliability-errors", "figure"),
    ("reliability-outcomes", "figure"),
    ("reliability-fallbacks", "figure"),
    ("reliability-violations", "figure"),
    ("reliability-violations-time", "figure"),
    ("reliability-error-table", "children"),
    ("reliability-violation-table", "children"),
    ("reliability-alerts", "children"),
], _build)
