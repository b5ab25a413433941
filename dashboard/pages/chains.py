"""Chains and tiers: where chains start and end (Sankey), resolution share per tier, escalation by
trigger, per-workload chain rates and start-tier advice."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from analytics import costs, tiers
from dashboard import figures
from dashboard.components import (
    count,
    graph,
    interval,
    model_colours,
    page_callback,
    page_header,
    panel,
    pct,
    status,
    table,
)
from dashboard.frames import View, chain_rates, sankey_flows

dash.register_page(__name__, path="/chains", name="Chains and tiers", title="Chains and tiers · fallbackscope",
                   order=2)

ADVICE = {"start_higher": "start higher", "keep": "keep", "insufficient_data": "insufficient data"}


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Chains and tiers", "Which model a chain started on and which one resolved it; the share "
                    "of chains each tier resolves; why chains escalated; whether to start on a higher tier.",
                    "chains"),
        html.Div(className="grid", children=[
            graph("chains-sankey", wide=True),
            graph("chains-resolution"),
            graph("chains-escalation"),
            panel("chains-rates", "Chain rates per workload", wide=True),
            panel("chains-advice", "Start-tier advice (declared chains)", wide=True),
        ]),
    ])


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    facts = view.facts(None)
    escalation = tiers.escalation_by_trigger(facts, by_workload=True)
    advice = costs.start_tier_advice(facts)
    advice = advice.assign(ci=[interval(a, b) for a, b in zip(advice["ci95_low"], advice["ci95_high"], strict=True)])
    colours = model_colours(view)
    rates = table(chain_rates(view), [
        ("workload", "Workload", None), ("chains", "Chains", count), ("fallback_rate", "Fallback", pct),
        ("escalation_rate", "Escalation", pct), ("retry_rate", "Same-model retry", pct),
        ("unresolved_rate", "Unresolved", pct),
    ], "No chains in these days")
    if advice.empty:
        advice_view: Any = html.Div("No workload in view declares a tier chain; add `chain = [...]` to its "
                                    "section of the policy file to get start-tier advice.", className="empty")
    else:
        advice_view = table(advice, [
            ("workload", "Workload", None), ("from_model", "From", None), ("to_model", "To", None),
            ("chains_starting", "Chains starting", count), ("climb_rate", "Climbed a tier", pct),
            ("ci", "95% CI", None), ("break_even", "Break-even", pct),
            ("advice", "Advice", lambda v: ADVICE.get(str(v), str(v))),
        ])
    return [
        status(view),
        figures.sankey(sankey_flows(facts), "First model → resolving model (chains)", colours),
        figures.resolution(tiers.resolution(facts, by_workload=True), "Resolution share per tier, per workload",
                           colours),
        figures.stacked(escalation, "workload", "trigger", "chains",
                        "Escalated chains by the trigger of the first model change", y_title="chains",
                        colours=figures.TRIGGER_COLOURS),
        rates,
        advice_view,
    ]


page_callback(__name__, [
    ("chains-status", "children"),
    ("chains-sankey", "figure"),
    ("chains-resolution", "figure"),
    ("chains-escalation", "figure"),
    ("chains-rates", "children"),
    ("chains-advice", "children"),
], _build)
