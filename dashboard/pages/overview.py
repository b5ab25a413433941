"""Overview: the headline SLIs of the range against their targets, daily trends, week over week."""

from __future__ import annotations

from typing import Any

import dash
from dash import html

from analytics.common import Rate
from dashboard import figures
from dashboard.components import (
    count,
    graph,
    kpi,
    page_callback,
    page_header,
    panel,
    pct,
    signed,
    status,
    table,
    usd,
)
from dashboard.frames import RATE_METRICS, View, daily_rates, headline, week_over_week, weekly

dash.register_page(__name__, path="/", name="Overview", title="Overview · fallbackscope", order=0)

TREND = ("refusal rate", "session refusal rate", "fallback rate", "escalation rate")


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Overview", "Headline SLIs for the selected days against their targets, with the daily "
                    "trend and the change between the range's last two ISO weeks.", "overview"),
        html.Div(id="overview-kpis", className="kpis"),
        html.Div(className="grid", children=[
            graph("overview-trend", wide=True),
            graph("overview-cost", wide=True),
            panel("overview-slo", "Session refusal rate against each workload's SLO"),
            panel("overview-wow", "Week over week"),
        ]),
    ])


def _rate_card(label: str, rate: Rate, wow: dict[str, Any], note: str = "", state: str = "") -> html.Div:
    detail = "–" if rate.value is None else (f"95% CI {pct(rate.ci95_low)}–{pct(rate.ci95_high)} · "
                                             f"{count(rate.numerator)} of {count(rate.denominator)}")
    change = wow.get(label)
    note = note or (f"{signed(change['change'], 'pp')} week over week" if change else "")
    return kpi(label.capitalize(), pct(rate.value), detail, note, state)


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    head = headline(view)
    weeks = weekly(view)
    wow_table = week_over_week(weeks)
    wow = {r["metric"]: r for r in wow_table.to_dict("records")}
    slo = head["slo"]
    met = int(slo["slo_met"].fillna(False).astype(bool).sum()) if len(slo) else 0
    judged = int(slo["slo_met"].notna().sum()) if len(slo) else 0
    slo_note = f"SLO met in {met} of {judged} workloads" if judged else "no sessions"
    credit = head["credits"]
    cost_change = wow.get("cost")
    cards = [
        _rate_card("refusal rate", head["refusal rate"], wow),
        _rate_card("session refusal rate", head["session refusal rate"], wow,
                   slo_note + (f" · {signed(wow['session refusal rate']['change'], 'pp')} week over week"
                               if "session refusal rate" in wow else ""),
                   "good" if judged and met == judged else ("bad" if judged else "")),
        _rate_card("fallback rate", head["fallback rate"], wow),
        _rate_card("escalation rate", head["escalation rate"], wow),
        kpi("Cost", usd(head["cost_usd"]),
            f"{usd(head['cost_per_request'], 4)} per request · {count(head['chains'])} chains",
            (f"{signed(cost_change['change'], '%')} week over week" if cost_change else "")
            + (f" · {count(head['unpriced_attempts'])} unpriced attempts" if head["unpriced_attempts"] else "")),
        kpi("Credit savings", usd(credit.savings_usd),
            f"redemption rate {pct(credit.redemption_rate.value)} · {count(credit.redeemed)} of "
            f"{count(credit.credits_minted - credit.credits_unredeemable)} credits",
            f"missed {usd(credit.missed_savings_usd)} (rejected and forfeited)"),
    ]
    daily = daily_rates(view)
    trend = figures.rate_lines(daily, "day", [m for m in TREND if m in RATE_METRICS], "Daily rates")
    cost = figures.bars(daily.assign(day=daily["day"].astype(str)), "day", "cost_usd", "Daily cost",
                        y_title="USD", money=True)
    slo_table = table(slo.assign(ci=[f"{pct(a)}–{pct(b)}" for a, b in zip(slo["ci95_low"], slo["ci95_high"],
                                                                          strict=True)]), [
        ("workload", "Workload", None), ("sessions", "Sessions", count),
        ("session_refusal_rate", "Refused", pct), ("ci", "95% CI", None), ("slo", "SLO", pct),
        ("slo_met", "Met", lambda v: "–" if v is None else ("yes" if v else "no")),
        ("burn_rate", "Burn", lambda v: "–" if v is None or v != v else f"{v:.2f}×"),
    ], "No sessions in these days")
    if len(wow_table):
        shown = wow_table.assign(
            previous=[_fmt(v, m) for v, m in zip(wow_table["previous"], wow_table["metric"], strict=True)],
            latest=[_fmt(v, m) for v, m in zip(wow_table["latest"], wow_table["metric"], strict=True)],
            change=[signed(c, u) for c, u in zip(wow_table["change"], wow_table["unit"], strict=True)])
        wow_view = table(shown, [("metric", "SLI", None), ("previous", str(shown["previous_week"].iloc[0]), None),
                                 ("latest", str(shown["latest_week"].iloc[0]), None), ("change", "Change", None)])
    else:
        wow_view = html.Div("Needs two ISO weeks in the range.", className="empty")
    return [status(view), cards, trend, cost, slo_table, wow_view]


def _fmt(value: Any, metric: str) -> str:
    return usd(value) if metric in ("cost", "credit savings") else pct(value)


page_callback(__name__, [
    ("overview-status", "children"),
    ("overview-kpis", "children"),
    ("overview-trend", "figure"),
    ("overview-cost", "figure"),
    ("overview-slo", "children"),
    ("overview-wow", "children"),
], _build)
