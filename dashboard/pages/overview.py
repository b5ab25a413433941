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
    interval,
    kpi,
    lower_bound_text,
    page_callback,
    page_header,
    panel,
    pct,
    signed,
    slo_line,
    slo_text,
    source,
    status,
    table,
    target_texts,
    usd,
    warnings,
)
from dashboard.frames import (
    RATE_METRICS,
    View,
    daily_rates,
    headline,
    partial_week_flag,
    slo_targets,
    week_over_week,
    weekly,
)
from dashboard.slo_components import burn_panel
from dashboard.slo_frames import burns

dash.register_page(__name__, path="/", name="Overview", title="Overview · fallbackscope", order=0)

TREND = ("refusal rate", "session refusal rate", "fallback rate", "escalation rate")
#: what each headline rate counts, said on its card (the SLO is on the session refusal rate only)
CAPTIONS = {"refusal rate": "chains with a refused attempt · no SLO", "fallback rate": "chains that fell back",
            "escalation rate": "chains that changed model"}
LABELS = {"refusal rate": "Refusal rate (chains)", "session refusal rate": "Session refusal rate · SLO"}


def layout(**_query: str) -> html.Div:
    """Return the page layout (filled by `update`)."""
    return html.Div([
        page_header("Overview", "Headline SLIs for the selected days against their targets, with the daily "
                    "trend and the change between the range's last two ISO weeks.", "overview"),
        html.Div(id="overview-warnings", className="warnings"),
        html.Div(id="overview-kpis", className="kpis"),
        html.Div(className="grid", children=[
            graph("overview-trend", wide=True),
            graph("overview-cost", wide=True),
            panel("overview-slo", "Session refusal rate against each workload's SLO"),
            panel("overview-burn", "SLO burn rate per alert window and error budget left", wide=True),
            panel("overview-wow", "Week over week"),
        ]),
    ])


def _rate_card(metric: str, rate: Rate, change: dict[str, Any] | None, *, lower_bound: bool, partial: bool,
               note: str = "", caption: str = "", state: str = "", kind: str = "") -> html.Div:
    detail = "–" if rate.value is None else (f"95% CI {interval(rate.ci95_low, rate.ci95_high)} · "
                                             f"{count(rate.numerator)} of {count(rate.denominator)}")
    notes = [n for n in (note, _change_note(change, partial)) if n]
    value = pct(rate.value)
    if lower_bound and rate.value is not None and metric in ("refusal rate", "session refusal rate"):
        value = "≥ " + value  # some attempts say nothing of their stop reason (the warning above says so)
    return kpi(LABELS.get(metric, metric.capitalize()), value, detail, " · ".join(notes), state,
               test_id=f"kpi-{metric.replace(' ', '-')}", caption=caption or CAPTIONS.get(metric, ""), kind=kind)


def _change_note(change: dict[str, Any] | None, partial: bool) -> str:
    """Return a card's week-over-week change (`+1.2 pp week over week`), marked when a week is partial."""
    if not change:
        return ""
    return f"{signed(change['change'], change['unit'])} week over week" + (" (partial week)" if partial else "")


def _build(view: View) -> list[Any]:
    """Return the page's outputs for one View (kept by the View, so a repeated request is cheap)."""
    head = headline(view)
    weeks = weekly(view)
    wow_table = week_over_week(weeks)
    partial = partial_week_flag(weeks)
    wow = {r["metric"]: r for r in wow_table.to_dict("records")}
    slo = head["slo"]
    targets = slo_targets(slo)
    met = int(slo["slo_met"].fillna(False).astype(bool).sum()) if len(slo) else 0
    judged = int(slo["slo_met"].notna().sum()) if len(slo) else 0
    slo_note = f"SLO met in {met} of {judged} workloads" if judged else "no sessions"
    credit = head["credits"]
    lower_bound = bool(head["unknown_stop_attempts"])
    flags = {"lower_bound": lower_bound, "partial": bool(partial)}
    cards = [
        _rate_card("refusal rate", head["refusal rate"], wow.get("refusal rate"), **flags),
        _rate_card("session refusal rate", head["session refusal rate"], wow.get("session refusal rate"),
                   note=slo_note, caption=f"SLO {slo_text(targets)}" if targets.targets else "SLO per workload",
                   state="good" if judged and met == judged else ("bad" if judged else ""), kind="slo", **flags),
        _rate_card("fallback rate", head["fallback rate"], wow.get("fallback rate"), **flags),
        _rate_card("escalation rate", head["escalation rate"], wow.get("escalation rate"), **flags),
        kpi("Cost", usd(head["cost_usd"]),
            f"{usd(head['cost_per_request'], 4)} per request · {count(head['chains'])} chains",
            " · ".join(n for n in (_change_note(wow.get("cost"), bool(partial)), head["unpriced_attempts"]
                                   and f"{count(head['unpriced_attempts'])} unpriced attempts") if n)),
        kpi("Credit savings", usd(credit.savings_usd),
            f"redemption rate {pct(credit.redemption_rate.value)} · {count(credit.redeemed)} of "
            f"{count(credit.credits_minted - credit.credits_unredeemable)} credits",
            f"missed {usd(credit.missed_savings_usd)} (rejected and forfeited)"),
    ]
    daily = daily_rates(view)
    trend = figures.rate_lines(daily, "day", [m for m in TREND if m in RATE_METRICS], "Daily rates",
                               target=slo_line(targets))
    cost = figures.bars(daily.assign(day=daily["day"].astype(str)), "day", "cost_usd", "Daily cost",
                        y_title="USD", money=True)
    slo_table = table(slo.assign(
        refused=[f"{pct(r)} ({interval(a, b)})" for r, a, b in zip(slo["session_refusal_rate"], slo["ci95_low"],
                                                                     slo["ci95_high"], strict=True)],
        target=target_texts(slo)), [
        ("workload", "Workload", None), ("sessions", "Sessions", count),
        ("refused", "Refused (95% CI)", None), ("target", "SLO target", None),
        ("slo_met", "Met", lambda v: "–" if v is None else ("yes" if v else "no")),
        ("burn_rate", "Burn", lambda v: "–" if v is None or v != v else f"{v:.2f}×"),
    ], "No sessions in these days")
    notes = [lower_bound_text(head["unknown_stop_attempts"]), _week_flag(partial, weeks),
             *view.base.value.policy_warnings]
    return [status(view), warnings(notes),
            cards, trend, cost, slo_table, burn_panel(burns(source(), view.filters)),
            _wow_view(wow_table, weeks, partial)]


def _week_flag(partial: str | None, weeks: Any) -> str | None:
    if not partial:
        return None
    return f"Week over week ({weeks['week'].iloc[-2]} → {weeks['week'].iloc[-1]}): {partial}."


def _wow_view(wow_table: Any, weeks: Any, partial: str | None) -> Any:
    if not len(wow_table):
        return html.Div("Needs two ISO weeks in the range.", className="empty")
    shown = wow_table.assign(
        previous=[_fmt(v, m) for v, m in zip(wow_table["previous"], wow_table["metric"], strict=True)],
        latest=[_fmt(v, m) for v, m in zip(wow_table["latest"], wow_table["metric"], strict=True)],
        change=[signed(c, u) for c, u in zip(wow_table["change"], wow_table["unit"], strict=True)])
    prev, last = weeks.iloc[-2], weeks.iloc[-1]
    view = table(shown, [
        ("metric", "SLI", None),
        ("previous", f"{prev['week']} ({prev['days_with_data']} of 7 days)", None),
        ("latest", f"{last['week']} ({last['days_with_data']} of 7 days)", None), ("change", "Change", None)])
    return [html.Div(f"⚠ {partial}", className="warning", id="overview-partial-week"), view] if partial else view


def _fmt(value: Any, metric: str) -> str:
    return usd(value) if metric in ("cost", "credit savings") else pct(value)


page_callback(__name__, [
    ("overview-status", "children"),
    ("overview-warnings", "children"),
    ("overview-kpis", "children"),
    ("overview-trend", "figure"),
    ("overview-cost", "figure"),
    ("overview-slo", "children"),
    ("overview-burn", "children"),
    ("overview-wow", "children"),
], _build)
