"""Alerts as messages (docs/metrics.md §9): the JSON alert object, and Slack incoming-webhook text a person
reads at a glance — `[PAGE] support-chat: session refusal rate 12.0% — 14.4× budget burn over 1h, 18× over
5m; target 5% (policy); 42% of the 28-day budget left; top: cyber 60% <link|dashboard>`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from analytics.alerts import Alert, Resolved
from analytics.windows import BUDGET

FORMATS = ("json", "slack")


def payload(item: Alert | Resolved, fmt: str) -> dict[str, Any]:
    """Return the JSON body posted for a firing or resolved alert: the alert object, or `{"text": …}` for
    Slack."""
    if fmt == "slack":
        return {"text": slack_text(item)}
    return item.as_dict()


def body(item: Alert | Resolved, fmt: str) -> bytes:
    """Return the request body posted for `item` (UTF-8 JSON)."""
    return json.dumps(payload(item, fmt), ensure_ascii=False).encode("utf-8")


def render_alerts(alerts: Sequence[Alert], fmt: str) -> str:
    """Return what `alert` prints: a JSON array of the firing alert objects, or one Slack line per alert."""
    if fmt == "slack":
        return "\n".join(slack_text(a) for a in alerts)
    return json.dumps([a.as_dict() for a in alerts], indent=2, ensure_ascii=False)


def _escape(text: str) -> str:
    """Slack's three control characters in message text (workload and category names are the data's)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _times(burn: float | None) -> str:
    return "–" if burn is None else f"{burn:.3g}×"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _target(value: float) -> str:
    return f"{value * 100:.4g}%"


def slack_text(item: Alert | Resolved) -> str:
    """Return the one-line Slack text of a firing alert, or `[RESOLVED] …` for one that stopped."""
    if isinstance(item, Resolved):
        return _resolved_text(item)
    check = item.check
    long, short = check.long, check.short
    parts = [
        f"[{check.rule.severity.upper()}] {_escape(check.workload)}: session refusal rate {_percent(long.rate.value)}"
        f" — {_times(long.burn)} budget burn over {long.window}, {_times(short.burn)} over {short.window}",
        f"target {_target(long.target)} ({long.slo_source})",
    ]
    left = item.budget_remaining
    if left is not None:
        days = BUDGET[1].days
        parts.append(f"{left:.0%} of the {days}-day budget left" if left >= 0
                     else f"the {days}-day budget is overspent by {-left:.0%}")
    if item.top_categories:
        parts.append("top: " + ", ".join(f"{_escape(c.category)} {c.share:.0%}" for c in item.top_categories))
    text = "; ".join(parts)
    if item.dashboard_url:
        text += f" <{item.dashboard_url}|dashboard>"
    return text


def _resolved_text(item: Resolved) -> str:
    head = f"[RESOLVED] {_escape(item.workload)}: {item.severity} {item.rule}"
    if item.check is None:
        return head + " — no longer evaluated (rule or target changed)"
    long, short = item.check.long, item.check.short
    return (f"{head} — session refusal rate {_percent(long.rate.value)} over {long.window} "
            f"({_times(long.burn)} burn), {_times(short.burn)} over {short.window}; "
            f"target {_target(long.target)} ({long.slo_source})")
