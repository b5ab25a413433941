"""Cost and credits: spend per workload and model over time, blended cost per request against the top-tier
counterfactual, escalation overhead, and what became of cache credits."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from dashboard import figures
from dashboard.components import (
    count,
    graph,
    kpi,
    model_colours,
    page_callback,
    page_header,
    panel,
    pct,
    source,
    status,
    table,
    usd,
)
from dashboard.frames import (
    View,
    cost_by,
    cost_table,
    credit_counts,
    credits_by_bucket,
    headline,
    rejection_reasons,
)
from dashboard.slo_components import NOT_RECONCILED, billing_panel
from dashboard.slo_frames import billing

dash.register_page(__name__, path="/costs", name="Cost and credits", title="Cost and credits · fallbackscope",
                   order=3)

CREDIT_ORDER = ("redeemed", "rejected", "unconfirmed", "forfeited", "expired", "unredeemable")


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Cost and credits", "Spend in USD by the chain's first day; blended cost per request against "
                    "resolving every chain on the top tier; what attempts before the resolver cost; cache "
                    "credits minted by refusals and what became of them.", "costs"),
        html.Div(id="costs-kpis", className="kpis"),
        html.Div(className="grid", children=[
            graph("costs-workload"), graph("costs-model"),
            graph("costs-blended"), graph("costs-overhead"),
            graph("costs-credits"), graph("costs-credits-time"),
            panel("costs-table", "Cost per workload", wide=True),
            graph("costs-coverage", wide=True),
            panel("costs-billing", "The bill against the computed cost, per model (Anthropic Admin API)", wide=True),
        ]),
    ])


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    facts = view.facts(None)
    head = headline(view)
    per_workload = cost_table(view)
    credit = head["credits"]
    overhead = per_workload["escalation_overhead_usd"].sum(min_count=1)
    counterfactual = per_workload["top_tier_counterfactual_usd"].sum(min_count=1)
    reasons = rejection_reasons(facts)
    top_reason = f"most rejected: {reasons['reason'].iloc[0]}" if len(reasons) else ""
    cards = [
        kpi("Cost", usd(head["cost_usd"]), f"{count(head['chains'])} chains · {count(head['attempts'])} attempts",
            f"{count(head['unpriced_attempts'])} unpriced attempts" if head["unpriced_attempts"] else ""),
        kpi("Blended cost per request", usd(head["cost_per_request"], 4), "cost / chains"),
        kpi("Top-tier counterfactual", usd(counterfactual), "resolvers' tokens at each workload's top tier"),
        kpi("Escalation overhead", usd(overhead), "attempts before the resolver of escalated chains"),
        kpi("Credit savings", usd(credit.savings_usd), f"{count(credit.redeemed)} credits redeemed · "
            f"redemption rate {pct(credit.redemption_rate.value)}",
            f"missed {usd(credit.missed_savings_usd)} · {count(credit.credited_tokens)} tokens credited"),
        kpi("Credits minted", count(credit.credits_minted),
            f"{count(credit.rejected)} rejected · {count(credit.forfeited)} forfeited · "
            f"{count(credit.expired)} expired", top_reason),
    ]
    credits_time = credits_by_bucket(facts, view.time_key)
    order = [c for c in CREDIT_ORDER if c in set(credits_time["outcome"])]
    bill = billing(source(), view.filters)
    return [
        status(view), cards,
        figures.stacked(cost_by(facts, "workload", view.time_key), "bucket", "workload", "cost_usd",
                        f"Cost per workload, per {view.time_key}", y_title="USD", money=True),
        figures.stacked(cost_by(facts, "model", view.time_key), "bucket", "model", "cost_usd",
                        f"Cost per model, per {view.time_key}", y_title="USD", money=True,
                        colours=model_colours(view)),
        figures.grouped(per_workload, "workload", {"blended cost per request": "blended_cost_per_request",
                                                   "top-tier counterfactual per request":
                                                       "counterfactual_per_request"},
                        "Blended cost per request vs the top tier", y_title="USD per request", money=True),
        figures.bars(per_workload, "workload", "escalation_overhead_usd", "Escalation overhead per workload",
                     y_title="USD", money=True, colour="#e4743c"),
        figures.bars(credit_counts(credit), "outcome", "credits", "Cache credits: minted and their outcome",
                     y_title="credits", colours=figures.COLOURS, message="No cache credits minted in these days"),
        figures.stacked(credits_time, "bucket", "outcome", "credits", f"Credits by outcome, per {view.time_key}",
                        y_title="credits", order=order),
        table(per_workload, [
            ("workload", "Workload", None), ("chains", "Chains", count), ("cost_usd", "Cost", usd),
            ("blended_cost_per_request", "Per request", lambda v: usd(v, 4)),
            ("counterfactual_per_request", "Top tier per request", lambda v: usd(v, 4)),
            ("top_tier", "Top tier", None),
            ("escalation_overhead_usd", "Overhead", usd), ("overhead_share", "Overhead share", pct),
            ("unpriced_attempts", "Unpriced attempts", count),
        ], "No chains in these days"),
        figures.coverage(bill.days.assign(day=[str(d)[:10] for d in bill.days["day"]]), "day",
                         "Billing coverage by day: the share of the billed traffic the logs saw (whole bill)",
                         message=NOT_RECONCILED),
        billing_panel(bill),
    ]


page_callback(__name__, [
    ("costs-status", "children"),
    ("costs-kpis", "children"),
    ("costs-workload", "figure"),
    ("costs-model", "figure"),
    ("costs-blended", "figure"),
    ("costs-overhead", "figure"),
    ("costs-credits", "figure"),
    ("costs-credits-time", "figure"),
    ("costs-table", "children"),
    ("costs-coverage", "figure"),
    ("costs-billing", "children"),
], _build)
