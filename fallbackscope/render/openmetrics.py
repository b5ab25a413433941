"""The SLIs as OpenMetrics text (docs/metrics.md §9), for node_exporter's textfile collector or any scraper.

Gauges only, each family with HELP and TYPE lines, no sample timestamps, no UNIT lines, ending with `# EOF`.
Label values are escaped (backslash, double quote, line feed). A ratio over zero sessions (or chains) is left
out rather than written as NaN; counts over nothing are 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from analytics.alerts import SloSnapshot
from analytics.rates import ratio
from analytics.windows import BUDGET

PREFIX = "fallbackscope_"

FAMILIES = {
    "session_refusal_ratio": "Sessions with a refused chain / sessions with a chain starting in the window "
                             "(ending at the latest attempt).",
    "sessions": "Sessions with a chain starting in the window.",
    "refused_sessions": "Sessions with a refused chain starting in the window.",
    "refusal_slo_target": "The workload's target for the session refusal rate (source: policy or default).",
    "refusal_burn_rate": "Session refusal rate over the window / the workload's target.",
    "error_budget_remaining": "Share of the refusal error budget left over the window: 1 - refused sessions / "
                              "(target * sessions); negative once overspent.",
    "chain_refusal_ratio": "Chains with a refused attempt / chains, over the last 24 hours.",
    "fallback_ratio": "Chains counted as a fallback / chains, over the last 24 hours.",
    "cost_usd": "Cost in USD of the chains that started in the last 24 hours (priced attempts).",
    "last_attempt_timestamp_seconds": "Time of the latest stored attempt, in seconds since the epoch.",
}


def escape_label(value: str) -> str:
    """Return a label value escaped for the exposition text."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float | int) -> str:
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return str(value)
    return repr(float(value))


def _sample(name: str, labels: dict[str, str], value: float | int | None) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    inner = ",".join(f'{key}="{escape_label(str(val))}"' for key, val in labels.items())
    return f"{PREFIX}{name}{{{inner}}} {_number(value)}" if inner else f"{PREFIX}{name} {_number(value)}"


def _samples(snapshot: SloSnapshot, family: str) -> Iterator[str | None]:
    budget = BUDGET[0]
    if family == "refusal_slo_target":
        seen: dict[str, tuple[float, str]] = {}
        for b in snapshot.burns:
            seen.setdefault(b.workload, (b.target, b.slo_source))
        for workload, (target, source) in sorted(seen.items()):
            yield _sample(family, {"workload": workload, "source": source}, target)
        return
    if family == "error_budget_remaining":
        for b in snapshot.burns:
            if b.window == budget:
                yield _sample(family, {"workload": b.workload, "window": b.window, "source": b.slo_source},
                              b.budget_remaining)
        return
    if family in ("chain_refusal_ratio", "fallback_ratio", "cost_usd"):
        for day in sorted(snapshot.last_day, key=lambda d: d.workload):
            value = {"chain_refusal_ratio": ratio(day.refused_chains, day.chains),
                     "fallback_ratio": ratio(day.fallback_chains, day.chains), "cost_usd": day.cost_usd}[family]
            yield _sample(family, {"workload": day.workload, "window": "24h"}, value)
        return
    if family == "last_attempt_timestamp_seconds":
        if snapshot.latest is not None:
            yield _sample(family, {}, snapshot.latest.timestamp())
        return
    for b in snapshot.burns:  # per workload and window: the rules' windows and 24h (28d is the budget's)
        if b.window not in snapshot.rate_windows:
            continue
        labels = {"workload": b.workload, "window": b.window}
        if family == "session_refusal_ratio":
            yield _sample(family, labels, b.rate.value)
        elif family == "sessions":
            yield _sample(family, labels, b.sessions)
        elif family == "refused_sessions":
            yield _sample(family, labels, b.refused_sessions)
        elif family == "refusal_burn_rate":
            yield _sample(family, labels | {"source": b.slo_source}, b.burn)


def render_openmetrics(snapshot: SloSnapshot) -> str:
    """Return the OpenMetrics exposition of a snapshot (`analytics.alerts.burn_table(..., last_day=True)`)."""
    lines = []
    for family, help_text in FAMILIES.items():
        samples = [s for s in _samples(snapshot, family) if s is not None]
        if not samples:
            continue
        lines += [f"# HELP {PREFIX}{family} {help_text}", f"# TYPE {PREFIX}{family} gauge", *samples]
    lines.append("# EOF")
    return "\n".join(lines) + "\n"
