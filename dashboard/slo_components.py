"""The panels of the alerting and billing reads (`dashboard.slo_frames`): burn rates per window with the error
budget left (overview, refusals), the alert history (reliability), and the bill's gap by model (costs)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from dash import html

from dashboard.components import count, pct, table, usd
from dashboard.slo_frames import NOTHING_WATCHED, Billing, Burns, burn_grid

NO_ALERT = "No alert was ever sent: `fallbackscope alert` posts them and records each one here."
NOT_RECONCILED = "No day of this range was reconciled with the bill: run `fallbackscope reconcile`."


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT


def burn_text(value: Any) -> str:
    """Return a burn rate as `14.4×`, `–` over no session."""
    return "–" if _missing(value) else f"{value:.1f}×"


def when(value: Any) -> str:
    """Return a time as `2026-11-15 10:05 UTC`, `–` when missing."""
    if _missing(value) or pd.isna(value):
        return "–"
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return f"{stamp:%Y-%m-%d %H:%M} UTC"


def burn_panel(b: Burns) -> Any:
    """Return the burn rates per window and the error budget left of each watched workload, with its target
    and where the target came from; one line when the policy watches nothing."""
    if not b.watched:
        return html.Div(NOTHING_WATCHED, className="empty", id="burn-nothing-watched")
    grid = burn_grid(b)
    windows = [(w, w, burn_text) for w in b.windows]
    shown = grid.assign(target=[f"{pct(t)} ({s})" for t, s in zip(grid["target"], grid["slo_source"], strict=True)],
                        sessions=[f"{count(r)} of {count(n)}" for r, n in
                                  zip(grid["refused_sessions"], grid["sessions"], strict=True)])
    view = table(shown, [
        ("workload", "Workload", None), ("target", "Target", None), *windows,
        ("sessions", f"Refused sessions ({b.budget_window})", None),
        ("error_budget_remaining", f"Budget left ({b.budget_window})", pct),
    ], "None of the chosen workloads is watched")
    at = when(b.at) if b.at is not None else "no attempt yet"
    note = (f"Burn = session refusal rate ÷ target over each window ending at the latest attempt ({at}), as "
            "`fallbackscope alert` evaluates them; the whole traffic of each workload, whatever the dates, models "
            "and surfaces chosen.")
    return [view, html.P(note, className="muted")]


def alert_panel(history: pd.DataFrame) -> Any:
    """Return the alert history, latest first: workload, severity, rule, first fired, last notified, resolved
    (`firing` while it fires)."""
    return table(history, [
        ("workload", "Workload", None), ("severity", "Severity", None), ("rule", "Rule", None),
        ("first_fired", "First fired", when), ("last_notified", "Last notified", when),
        ("resolved", "Resolved", lambda v: "firing" if _missing(v) or pd.isna(v) else when(v)),
    ], NO_ALERT)


def _model(value: Any) -> str:
    return "web search" if _missing(value) else str(value)


def billing_panel(bill: Billing) -> Any:
    """Return the gap between the bill and the computed cost per model over the range's reconciled days, with
    the range's coverage (`period_summary`) above it; one line when no day was reconciled."""
    if bill.summary is None:
        return html.Div(NOT_RECONCILED, className="empty", id="billing-not-reconciled")
    s = bill.summary
    head = (f"{s.days} day{'s' if s.days != 1 else ''} reconciled · coverage {pct(s.coverage)} (logged ÷ billed, "
            f"weighted by billed USD) · billed {usd(s.billed_usd)} · computed {usd(s.computed_usd)} · explained "
            f"by coverage {usd(s.explained_usd)} · price gap {usd(s.price_gap_usd, 4)}")
    unpriced = f"Without a price: {', '.join(s.unpriced_models)}." if s.unpriced_models else ""
    view = table(bill.models, [
        ("model", "Model", _model), ("billed_usd", "Billed", usd), ("computed_usd", "Computed", usd),
        ("coverage", "Coverage", pct), ("explained_usd", "Explained by coverage", usd),
        ("price_gap_usd", "Price gap", lambda v: usd(v, 4)), ("gap_token_type", "Carried by", None),
        ("unbilled", "Unbilled tokens", count),
    ], NOT_RECONCILED)
    return [html.P(head, className="muted", id="billing-summary"), view,
            *([html.P(unpriced, className="muted")] if unpriced else [])]
