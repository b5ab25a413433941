"""Display text of weekly-report values (docs/metrics.md §7.1), shared by the text formats: plain JSON values in
the contract's key order, percentages, dollars, counts, the one-line summaries and the tables that markdown
and html both show. Display arithmetic only (sums of a money column, burn = rate / target by
`analytics.metrics.burn_rate`); every rule it shows is computed elsewhere.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from analytics.common import clean
from analytics.metrics import burn_rate
from fallbackscope.render.model import KEY_ORDER, WeeklyReport

#: What a renderer takes: a WeeklyReport, or a report dict (its `as_dict`, a stored or a hand-made one).
Report = WeeklyReport | Mapping[str, Any]


def as_mapping(report: Report) -> Mapping[str, Any]:
    """Return a report as the dict the renderers read (a WeeklyReport's `as_dict`; a mapping as given)."""
    return report.as_dict() if isinstance(report, WeeklyReport) else report


def plain(value: Any, schema: Any = None) -> Any:
    """Return `value` as plain JSON data: §7.1 keys first in contract order, NaN → None, dates → ISO text."""
    if isinstance(value, Mapping):
        known = schema if isinstance(schema, dict) else {}
        keys = [k for k in known if k in value] + [k for k in value if k not in known]
        return {str(k): plain(value[k], known.get(k)) for k in keys}
    if isinstance(value, (list, tuple)):
        item = schema[0] if isinstance(schema, list) and schema else None
        return [plain(v, item) for v in value]
    value = clean(value)  # NaN, NA, NaT → None; numpy scalars → Python
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


def ordered(report: Report) -> Any:
    """Return a report as plain JSON data with the §7.1 keys in contract order (`KEY_ORDER`), extras after."""
    return plain(as_mapping(report), KEY_ORDER)


def rate_value(rate: Any) -> float | None:
    """Return the number of a rate given as `{value, …}` or as a plain number."""
    if isinstance(rate, Mapping):
        rate = rate.get("value")
    rate = plain(rate)
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def entries(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """Return the objects of list `key` of a report (or of one of its parts); anything else is skipped."""
    return [item for item in (report.get(key) or []) if isinstance(item, Mapping)]


def part(report: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    """Return object `key` of a report (`totals`, `drift`, `cache_credit`, …); {} when null or missing."""
    value = report.get(key)
    return value if isinstance(value, Mapping) else {}


def pct(value: Any) -> str:
    """Return a rate as a percentage with one decimal (a tiny non-zero rate keeps two digits); — if none."""
    value = rate_value(value)
    if value is None:
        return "—"
    shown = f"{value * 100:.1f}"
    if value and float(shown) == 0:  # a small non-zero rate keeps two significant digits
        shown = f"{value * 100:.2g}"
    return shown + "%"


def usd(value: Any, digits: int = 2) -> str:
    """Return dollars with a fixed number of decimals — cents for amounts, `PER_REQUEST` digits for a cost
    per request — so one column never mixes `$0.1072` and `$2.14`; a non-zero amount too small to show is
    `<$0.01`; — if none."""
    value = plain(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    step = 10.0 ** -digits
    if value and abs(value) < step / 2:
        return f"<${step:.{digits}f}" if value > 0 else f"-<${step:.{digits}f}"
    return f"-${-value:,.{digits}f}" if value < 0 else f"${value:,.{digits}f}"


#: decimals of a cost per request (a fraction of a cent is its usual size)
PER_REQUEST = 4


def count_text(value: Any) -> str:
    """Return a count with thousands separators; — if none."""
    value = plain(value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else (
        "—" if value is None else str(value))


def num_text(value: Any, spec: str = ".3g") -> str:
    """Return a number in format `spec`; — if none."""
    value = plain(value)
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def date_text(value: Any) -> str:
    """Return the `YYYY-MM-DD` of an ISO date or time (other text as given)."""
    text = "" if value is None else str(plain(value))
    return text[:10] if re.match(r"\d{4}-\d{2}-\d{2}", text) else text


def previous_rate(report: Mapping[str, Any]) -> Any:
    """Return the previous week's chain refusal rate of a report; None without a previous week."""
    return part(report, "previous_week").get("refusal_rate")


def rate_line(rate: Any, unit: str) -> str:
    """Return `12.3% — 16 of 130 chains, 95% CI …–…`, or `— (no chains)`."""
    if not isinstance(rate, Mapping) or rate_value(rate) is None:
        return f"— (no {unit})"
    return (f"{pct(rate)} — {count_text(rate.get('numerator'))} of {count_text(rate.get('denominator'))} {unit}, "
            f"95% CI {pct(rate.get('ci95_low'))}–{pct(rate.get('ci95_high'))}")


def drift_value(drift: Any) -> str:
    """Return the drift's change in percentage points, e.g. `+1.2 pp`; — if none."""
    delta = rate_value(drift.get("delta")) if isinstance(drift, Mapping) else None
    return "—" if delta is None else f"{delta * 100:+.1f} pp"


def drift_line(report: Mapping[str, Any]) -> str:
    """Return the drift with its z, p and verdict, or why there is none."""
    drift = report.get("drift")
    if not isinstance(drift, Mapping):
        return "— (no chains in the previous week)"
    shown = drift_value(drift)
    verdict = "significant (p < 0.01)" if drift.get("significant") else "not significant"
    z, p = num_text(drift.get("z"), ".2f"), num_text(drift.get("p_value"))
    return f"{shown} vs previous week, z = {z}, p = {p} — {verdict}"


def burn_text(workload: Mapping[str, Any]) -> str:
    """Return a workload's SLO burn rate (`analytics.metrics.burn_rate`), e.g. `0.40×`; — if none."""
    rate, slo = rate_value(workload.get("session_refusal_rate")), rate_value(workload.get("slo"))
    burn = burn_rate(rate, slo) if slo is not None else None
    return "—" if burn is None else f"{burn:.2f}×"


def resolution_text(workload: Mapping[str, Any]) -> str:
    """Return which models resolved a workload's chains, e.g. `claude-haiku-4-5 95.0%, unresolved 5.0%`."""
    parts = [f"{item.get('model') or 'unresolved'} {pct(item.get('share'))}"
             for item in entries(workload, "resolution")]
    return ", ".join(parts) or "—"


def total_of(values: Sequence[Any]) -> float | None:
    """Return the sum of the known numbers; None when none is known."""
    numbers = [v for v in map(rate_value, values) if v is not None]
    return sum(numbers) if numbers else None


def slo_missed(report: Report) -> list[str]:
    """Return the workloads whose refusal SLO was missed (`slo_met` is false), in report order.

    A workload whose `slo_met` is null (no sessions) has not missed it. For `--fail-on-slo` (exit 3).
    """
    return [str(w.get("workload")) for w in entries(as_mapping(report), "workloads") if w.get("slo_met") is False]


def workload_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """Return the rows of the workloads-and-SLO table (columns `WORKLOAD_HEADER`)."""
    return [[str(w.get("workload")), {True: "met", False: "MISSED"}.get(w.get("slo_met"), "—"),
             pct(w.get("session_refusal_rate")), target_text(w), burn_text(w), count_text(w.get("sessions")),
             count_text(w.get("chains")), pct(w.get("refusal_rate")), pct(w.get("fallback_rate")),
             pct(w.get("escalation_rate")), pct(w.get("unresolved_rate"))]
            for w in entries(report, "workloads")]


def target_text(workload: Mapping[str, Any]) -> str:
    """Return a workload's SLO target and where it came from: `5.0% (policy)` or `5.0% (default)`."""
    source = workload.get("slo_source")
    return pct(workload.get("slo")) + (f" ({source})" if source else "")


def coverage_text(report: Mapping[str, Any]) -> str:
    """Return the week's coverage, `data on 7 of 7 days`; empty for a report without one."""
    coverage = part(report, "coverage")
    if not coverage:
        return ""
    return f"data on {count_text(coverage.get('days_with_data'))} of {count_text(coverage.get('days'))} days"


def warning_lines(report: Mapping[str, Any]) -> list[str]:
    """Return the report's warnings (no data, a partial week, lower bounds, policy names) as text."""
    return [str(w) for w in report.get("warnings") or []]


WORKLOAD_HEADER = ["workload", "SLO", "session refusal rate", "target", "burn", "sessions", "chains",
                   "chain refusal rate", "fallback", "escalation", "unresolved"]


def cost_rows(report: Mapping[str, Any]) -> list[list[str]]:
    """Return the rows of the cost table (columns `COST_HEADER`)."""
    return [[str(w.get("workload")), usd(w.get("cost_usd")), usd(w.get("blended_cost_per_request"), PER_REQUEST),
             usd(w.get("escalation_overhead_usd")), usd(w.get("top_tier_counterfactual_usd"))]
            for w in entries(report, "workloads")]


COST_HEADER = ["workload", "cost", "per request", "escalation overhead", "top-tier counterfactual"]


def _advice_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [[str(w.get("workload")), str(a.get("from_model")), str(a.get("to_model")),
             str(a.get("advice") or "—"), pct(a.get("escalation_rate")), pct(a.get("break_even"))]
            for w in entries(report, "workloads") for a in entries(w, "start_tier_advice")]


_ADVICE_HEADER = ["workload", "from", "to", "advice", "escalation rate", "break-even"]


def section_rows(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]], int]]:
    """Return the plain tables every text format shows: (title, header, rows, first numeric column)."""
    credit = part(report, "cache_credit")
    credit_rows = [[label, fmt(credit.get(key))] for label, key, fmt in (
        ("credits minted", "credits_minted", count_text),
        ("unredeemable (batch)", "credits_unredeemable", count_text), ("redeemed", "redeemed", count_text),
        ("rejected", "rejected", count_text), ("unconfirmed", "unconfirmed", count_text),
        ("expired", "expired", count_text), ("forfeited", "forfeited", count_text),
        ("redemption rate", "redemption_rate", pct), ("credited tokens", "credited_tokens", count_text),
        ("savings", "savings_usd", usd), ("missed savings", "missed_savings_usd", usd))] if credit else []
    return [
        ("Refusals by category", ["category", "refused attempts", "share"],
         [[str(c.get("category") or "unspecified"), count_text(c.get("refused_attempts")), pct(c.get("share"))]
          for c in entries(report, "refusals_by_category")], 1),
        ("Refusals by model", ["model", "attempts (ok + refusal)", "refused", "attempt refusal rate"],
         [[str(m.get("model")), count_text(m.get("attempts")), count_text(m.get("refused_attempts")),
           pct(m.get("attempt_refusal_rate"))] for m in entries(report, "refusals_by_model")], 1),
        ("Resolution", ["workload", "resolved by (share of chains)"],
         [[str(w.get("workload")), resolution_text(w)] for w in entries(report, "workloads")], 2),
        ("Start-tier advice", _ADVICE_HEADER, _advice_rows(report), 4),
        ("Errors", ["error class", "attempts"],
         [[str(e.get("error_class")), count_text(e.get("attempts"))] for e in entries(report, "errors")], 1),
        ("Cache credits", ["", "value"], credit_rows, 1),
        ("Policy violations", ["kind", "workload", "count"],
         [[str(v.get("kind")), str(v.get("workload")), count_text(v.get("count"))]
          for v in entries(report, "policy_violations")], 2),
    ]


def totals_line(report: Mapping[str, Any]) -> str:
    """Return the week's attempts, chains, sessions and cost in one line."""
    totals = part(report, "totals")
    unpriced = totals.get("unpriced_attempts")
    return (f"{count_text(totals.get('attempts'))} attempts · {count_text(totals.get('chains'))} chains · "
            f"{count_text(totals.get('sessions'))} sessions · cost {usd(totals.get('cost_usd'))}"
            + (f" ({count_text(unpriced)} unpriced attempts not included)" if rate_value(unpriced) else ""))


def slo_line(report: Mapping[str, Any]) -> str:
    """Return how many workloads met or missed their refusal SLO, naming the missed ones."""
    workloads, missed = entries(report, "workloads"), slo_missed(report)
    judged = [w for w in workloads if isinstance(w.get("slo_met"), bool)]
    if not judged:
        return "no workload had sessions: no SLO judged"
    if not missed:
        return f"all {len(judged)} workloads with sessions met their refusal SLO (on the session refusal rate)"
    return (f"{len(missed)} of {len(judged)} workloads MISSED their refusal SLO (on the session refusal rate): "
            + ", ".join(missed))


def billing_line(report: Mapping[str, Any]) -> str:
    """Return the week's billing reconciliation in one line (coverage, billed against computed, price gap);
    empty when the week has no reconciled day (docs/metrics.md §10)."""
    rec = part(report, "reconciliation")
    if not rec:
        return ""
    return (f"logs saw {pct(rec.get('coverage'))} of the billed usage on {count_text(rec.get('days'))} reconciled "
            f"days; billed {usd(rec.get('billed_usd'))}, computed {usd(rec.get('computed_usd'))}, price gap "
            f"{usd(rec.get('price_gap_usd'))}")
