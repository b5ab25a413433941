"""Renderers of the weekly report (docs/metrics.md §7, §7.1): the report dict → json, csv, md or one html file.

Compute first, render second: `fallbackscope.render.report.weekly_report` computes the dict; these functions only lay it
out. Their arithmetic is display arithmetic (sums of a money column, a cost per chain, burn = rate / target).

Every name that comes from logs (workload, model, category, error class, session, …) is untrusted text:
html output passes every string through `html.escape`, markdown output backslash-escapes the markdown and
HTML metacharacters, csv output defuses spreadsheet formulas. The html file is self-contained: plotly.js is
inlined and a Content-Security-Policy forbids every fetch, so it opens offline and never calls out.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from analytics.metrics import blended_cost_per_request, burn_rate

if TYPE_CHECKING:  # pandas only for the hint: rendering needs no pandas import
    import pandas as pd

Format = Literal["json", "csv", "md", "html"]
FORMATS: tuple[str, ...] = ("json", "csv", "md", "html")

# ---------------------------------------------------------------- key order of the §7.1 contract

_RATE = {"value": None, "numerator": None, "denominator": None, "ci95_low": None, "ci95_high": None}
#: dict → keys in this order (then any extra keys as given); [schema] → each item; None → a leaf.
_SCHEMA: dict[str, Any] = {
    "week": None, "start": None, "end": None,
    "totals": {"attempts": None, "chains": None, "sessions": None, "cost_usd": None, "unpriced_attempts": None},
    "refusal_rate": _RATE, "session_refusal_rate": _RATE,
    "previous_week": {"refusal_rate": _RATE},
    "drift": {"delta": None, "z": None, "p_value": None, "significant": None},
    "refusals_by_category": [{"category": None, "refused_attempts": None, "share": None}],
    "refusals_by_model": [{"model": None, "attempts": None, "refused_attempts": None,
                           "attempt_refusal_rate": None}],
    "workloads": [{
        "workload": None, "chains": None, "sessions": None, "refusal_rate": None, "session_refusal_rate": None,
        "slo": None, "slo_met": None, "fallback_rate": None, "escalation_rate": None, "unresolved_rate": None,
        "resolution": [{"model": None, "share": None}], "cost_usd": None, "blended_cost_per_request": None,
        "escalation_overhead_usd": None, "top_tier_counterfactual_usd": None,
        "start_tier_advice": [{"from_model": None, "to_model": None, "escalation_rate": None,
                               "break_even": None, "advice": None}]}],
    "errors": [{"error_class": None, "attempts": None}],
    "cache_credit": {"credits_minted": None, "credits_unredeemable": None, "redeemed": None, "rejected": None,
                     "unconfirmed": None, "expired": None, "forfeited": None, "redemption_rate": None,
                     "credited_tokens": None, "savings_usd": None, "missed_savings_usd": None},
    "policy_violations": [{"kind": None, "workload": None, "count": None}],
}


def _plain(value: Any, schema: Any = None) -> Any:
    """Return `value` as plain JSON data: §7.1 keys first in contract order, NaN → None, dates → ISO text."""
    if isinstance(value, Mapping):
        known = schema if isinstance(schema, dict) else {}
        keys = [k for k in known if k in value] + [k for k in value if k not in known]
        return {str(k): _plain(value[k], known.get(k)) for k in keys}
    if isinstance(value, (list, tuple)):
        item = schema[0] if isinstance(schema, list) and schema else None
        return [_plain(v, item) for v in value]
    if value is None or type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    return value


# ---------------------------------------------------------------- small accessors and formats


def _rate_value(rate: Any) -> float | None:
    """Return the number of a rate given as `{value, …}` or as a plain number."""
    if isinstance(rate, Mapping):
        rate = rate.get("value")
    rate = _plain(rate)
    return float(rate) if isinstance(rate, (int, float)) and not isinstance(rate, bool) else None


def _items(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    return [item for item in (report.get(key) or []) if isinstance(item, Mapping)]


def _pct(value: Any) -> str:
    value = _rate_value(value)
    if value is None:
        return "—"
    shown = f"{value * 100:.1f}"
    if value and float(shown) == 0:  # a small non-zero rate keeps two significant digits
        shown = f"{value * 100:.2g}"
    return shown + "%"


def _usd(value: Any) -> str:
    value = _plain(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "—"
    if abs(value) >= 1 or value == 0:
        return f"${value:,.2f}"
    text = f"{value:.4f}" if abs(value) >= 0.0001 else f"{value:.6f}"
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.rstrip('0').ljust(2, '0')}"


def _count(value: Any) -> str:
    value = _plain(value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else (
        "—" if value is None else str(value))


def _num(value: Any, spec: str = ".3g") -> str:
    value = _plain(value)
    return format(value, spec) if isinstance(value, (int, float)) and not isinstance(value, bool) else "—"


def _date(value: Any) -> str:
    text = "" if value is None else str(_plain(value))
    return text[:10] if re.match(r"\d{4}-\d{2}-\d{2}", text) else text


def _rate_line(rate: Any, unit: str) -> str:
    if not isinstance(rate, Mapping) or _rate_value(rate) is None:
        return f"— (no {unit})"
    return (f"{_pct(rate)} — {_count(rate.get('numerator'))} of {_count(rate.get('denominator'))} {unit}, "
            f"95% CI {_pct(rate.get('ci95_low'))}–{_pct(rate.get('ci95_high'))}")


def _drift_value(drift: Any) -> str:
    delta = _rate_value(drift.get("delta")) if isinstance(drift, Mapping) else None
    return "—" if delta is None else f"{delta * 100:+.1f} pp"


def _ratio(numerator: Any, denominator: Any) -> float | None:
    num, den = _rate_value(numerator), _rate_value(denominator)
    return num / den if num is not None and den else None


def _drift_line(report: Mapping[str, Any]) -> str:
    drift = report.get("drift")
    if not isinstance(drift, Mapping):
        return "— (no chains in the previous week)"
    shown = _drift_value(drift)
    verdict = "significant (p < 0.01)" if drift.get("significant") else "not significant"
    return f"{shown} vs previous week, z = {_num(drift.get('z'), '.2f')}, p = {_num(drift.get('p_value'))} — {verdict}"


def _burn(workload: Mapping[str, Any]) -> str:
    rate, slo = _rate_value(workload.get("session_refusal_rate")), _rate_value(workload.get("slo"))
    burn = burn_rate(rate, slo) if slo else None
    return "—" if burn is None else f"{burn:.2f}×"


def _resolution_text(workload: Mapping[str, Any]) -> str:
    parts = [f"{item.get('model') or 'unresolved'} {_pct(item.get('share'))}"
             for item in _items(workload, "resolution")]
    return ", ".join(parts) or "—"


def _micro(usd: float | None) -> float | None:
    """Round derived money to the micro-dollar, as the analytics rounds its own (no float noise in totals)."""
    return None if usd is None else round(usd, 6)


def _sum(values: Sequence[Any]) -> float | None:
    numbers = [v for v in map(_rate_value, values) if v is not None]
    return sum(numbers) if numbers else None


def slo_missed(report: Mapping[str, Any]) -> list[str]:
    """Return the workloads whose refusal SLO was missed (`slo_met` is false), in report order.

    A workload whose `slo_met` is null (no sessions) has not missed it. For `--fail-on-slo` (exit 3).
    """
    return [str(w.get("workload")) for w in _items(report, "workloads") if w.get("slo_met") is False]


# ---------------------------------------------------------------- json


def render_json(report: Mapping[str, Any]) -> str:
    """Return the report as JSON text: §7.1 keys in contract order (extras after), 2-space indent, floats
    as computed (NaN → null), UTF-8 text unescaped, one trailing newline."""
    return json.dumps(_plain(report, _SCHEMA), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


# ---------------------------------------------------------------- csv

CSV_COLUMNS: tuple[str, ...] = (
    "week", "level", "workload", "attempts", "chains", "sessions", "refusal_rate", "session_refusal_rate",
    "slo", "slo_met", "fallback_rate", "escalation_rate", "unresolved_rate", "cost_usd",
    "blended_cost_per_request", "escalation_overhead_usd", "top_tier_counterfactual_usd", "unpriced_attempts")
CSV_CATEGORY_COLUMNS: tuple[str, ...] = ("week", "category", "refused_attempts", "share")


def _csv_cell(value: Any) -> str:
    value = _plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _csv_name(value: Any) -> str:
    """Return a name from logs that a spreadsheet shows as text, never runs as a formula."""
    text = _csv_cell(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(report: Mapping[str, Any], by_category: bool) -> list[list[str]]:
    week = _csv_cell(report.get("week"))
    if by_category:
        return [[week, _csv_name(c.get("category") or "unspecified"), _csv_cell(c.get("refused_attempts")),
                 _csv_cell(c.get("share"))] for c in _items(report, "refusals_by_category")]
    workloads = _items(report, "workloads")
    rows = [[week, "workload", _csv_name(w.get("workload")),
             *(_csv_cell(w.get(k)) for k in CSV_COLUMNS[3:])] for w in workloads]
    totals = report.get("totals") if isinstance(report.get("totals"), Mapping) else {}
    met = [w.get("slo_met") for w in workloads if isinstance(w.get("slo_met"), bool)]
    total = {
        "attempts": totals.get("attempts"), "chains": totals.get("chains"), "sessions": totals.get("sessions"),
        "refusal_rate": _rate_value(report.get("refusal_rate")),
        "session_refusal_rate": _rate_value(report.get("session_refusal_rate")),
        "slo_met": (all(met) if met else None),
        # whole-week rates are shown only when the analytics computed them (never re-derived here)
        **{k: _rate_value(report.get(k)) for k in ("fallback_rate", "escalation_rate", "unresolved_rate")},
        "cost_usd": totals.get("cost_usd"),
        "blended_cost_per_request": _micro(blended_cost_per_request(totals.get("cost_usd"), totals.get("chains"))),
        "escalation_overhead_usd": _micro(_sum([w.get("escalation_overhead_usd") for w in workloads])),
        "top_tier_counterfactual_usd": _micro(_sum([w.get("top_tier_counterfactual_usd") for w in workloads])),
        "unpriced_attempts": totals.get("unpriced_attempts"),
    }
    rows.append([week, "total", "", *(_csv_cell(total.get(k)) for k in CSV_COLUMNS[3:])])
    return rows


def _write_csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def render_csv(report: Mapping[str, Any], *, by_category: bool = False) -> str:
    """Return the report as CSV text with a header row.

    Default: one row per workload (`level` = `workload`) plus one `total` row for the whole week (columns
    `CSV_COLUMNS`). With `by_category`: the refusals-by-category table (`CSV_CATEGORY_COLUMNS`). Empty
    cells are nulls; booleans are `true`/`false`; floats as computed.
    """
    header = CSV_CATEGORY_COLUMNS if by_category else CSV_COLUMNS
    return _write_csv(header, _csv_rows(report, by_category))


# ---------------------------------------------------------------- markdown

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


def md_escape(value: Any) -> str:
    """Return text that markdown shows literally: metacharacters backslash-escaped, line breaks as spaces."""
    return _MD_SPECIAL.sub(r"\\\1", _CONTROL.sub(" ", str(value)))


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric_from: int = 1) -> list[str]:
    if not rows:
        return ["None this week.", ""]
    align = ["---" if i < numeric_from else "--:" for i in range(len(header))]
    lines = ["| " + " | ".join(map(md_escape, header)) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _workload_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [[str(w.get("workload")), {True: "met", False: "MISSED"}.get(w.get("slo_met"), "—"),
             _pct(w.get("session_refusal_rate")), _pct(w.get("slo")), _burn(w), _count(w.get("sessions")),
             _count(w.get("chains")), _pct(w.get("refusal_rate")), _pct(w.get("fallback_rate")),
             _pct(w.get("escalation_rate")), _pct(w.get("unresolved_rate"))]
            for w in _items(report, "workloads")]


_WORKLOAD_HEADER = ["workload", "SLO", "session refusal rate", "target", "burn", "sessions", "chains",
                    "chain refusal rate", "fallback", "escalation", "unresolved"]


def _cost_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [[str(w.get("workload")), _usd(w.get("cost_usd")), _usd(w.get("blended_cost_per_request")),
             _usd(w.get("escalation_overhead_usd")), _usd(w.get("top_tier_counterfactual_usd"))]
            for w in _items(report, "workloads")]


_COST_HEADER = ["workload", "cost", "per request", "escalation overhead", "top-tier counterfactual"]


def _advice_rows(report: Mapping[str, Any]) -> list[list[str]]:
    return [[str(w.get("workload")), str(a.get("from_model")), str(a.get("to_model")),
             str(a.get("advice") or "—"), _pct(a.get("escalation_rate")), _pct(a.get("break_even"))]
            for w in _items(report, "workloads") for a in _items(w, "start_tier_advice")]


_ADVICE_HEADER = ["workload", "from", "to", "advice", "escalation rate", "break-even"]


def _section_rows(report: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]], int]]:
    """Return the plain tables every text format shows: (title, header, rows, first numeric column)."""
    credit = report.get("cache_credit") if isinstance(report.get("cache_credit"), Mapping) else {}
    credit_rows = [[label, fmt(credit.get(key))] for label, key, fmt in (
        ("credits minted", "credits_minted", _count), ("unredeemable (batch)", "credits_unredeemable", _count),
        ("redeemed", "redeemed", _count), ("rejected", "rejected", _count), ("unconfirmed", "unconfirmed", _count),
        ("expired", "expired", _count), ("forfeited", "forfeited", _count),
        ("redemption rate", "redemption_rate", _pct), ("credited tokens", "credited_tokens", _count),
        ("savings", "savings_usd", _usd), ("missed savings", "missed_savings_usd", _usd))] if credit else []
    return [
        ("Refusals by category", ["category", "refused attempts", "share"],
         [[str(c.get("category") or "unspecified"), _count(c.get("refused_attempts")), _pct(c.get("share"))]
          for c in _items(report, "refusals_by_category")], 1),
        ("Refusals by model", ["model", "attempts (ok + refusal)", "refused", "attempt refusal rate"],
         [[str(m.get("model")), _count(m.get("attempts")), _count(m.get("refused_attempts")),
           _pct(m.get("attempt_refusal_rate"))] for m in _items(report, "refusals_by_model")], 1),
        ("Resolution", ["workload", "resolved by (share of chains)"],
         [[str(w.get("workload")), _resolution_text(w)] for w in _items(report, "workloads")], 2),
        ("Start-tier advice", _ADVICE_HEADER, _advice_rows(report), 4),
        ("Errors", ["error class", "attempts"],
         [[str(e.get("error_class")), _count(e.get("attempts"))] for e in _items(report, "errors")], 1),
        ("Cache credits", ["", "value"], credit_rows, 1),
        ("Policy violations", ["kind", "workload", "count"],
         [[str(v.get("kind")), str(v.get("workload")), _count(v.get("count"))]
          for v in _items(report, "policy_violations")], 2),
    ]


def _totals_line(report: Mapping[str, Any]) -> str:
    totals = report.get("totals") if isinstance(report.get("totals"), Mapping) else {}
    unpriced = _rate_value(totals.get("unpriced_attempts"))
    return (f"{_count(totals.get('attempts'))} attempts · {_count(totals.get('chains'))} chains · "
            f"{_count(totals.get('sessions'))} sessions · cost {_usd(totals.get('cost_usd'))}"
            + (f" ({_count(totals.get('unpriced_attempts'))} unpriced attempts not included)" if unpriced else ""))


def _slo_line(report: Mapping[str, Any]) -> str:
    workloads, missed = _items(report, "workloads"), slo_missed(report)
    judged = [w for w in workloads if isinstance(w.get("slo_met"), bool)]
    if not missed:
        return f"all {len(judged)} workloads with sessions met their refusal SLO"
    return f"{len(missed)} of {len(judged)} workloads MISSED their refusal SLO: " + ", ".join(missed)


def render_md(report: Mapping[str, Any]) -> str:
    """Return the report as Markdown (GitHub flavour) readable pasted into a chat or an email.

    Names from logs are escaped with `md_escape`, so markup in a workload name shows as text.
    """
    previous = report.get("previous_week")
    prev_rate = previous.get("refusal_rate") if isinstance(previous, Mapping) else None
    lines = [
        f"# Weekly refusal report — {md_escape(report.get('week'))}", "",
        f"{md_escape(_date(report.get('start')))} to {md_escape(_date(report.get('end')))} (UTC, end exclusive) · "
        f"{md_escape(_totals_line(report))}", "",
        f"- **Refusal rate (chains):** {md_escape(_rate_line(report.get('refusal_rate'), 'chains'))}",
        f"- **Session refusal rate:** {md_escape(_rate_line(report.get('session_refusal_rate'), 'sessions'))}",
        f"- **Previous week:** {md_escape(_rate_line(prev_rate, 'chains'))}",
        f"- **Drift:** {md_escape(_drift_line(report))}",
        f"- **SLO:** {md_escape(_slo_line(report))}", "",
        "## Workloads and SLO", "", *_md_table(_WORKLOAD_HEADER, _workload_rows(report), 2),
        "## Cost", "", *_md_table(_COST_HEADER, _cost_rows(report)),
    ]
    for title, header, rows, numeric_from in _section_rows(report):
        lines += [f"## {title}", "", *_md_table(header, rows, numeric_from)]
    return "\n".join(lines).rstrip("\n") + "\n"


# ---------------------------------------------------------------- html

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}.sub{color:#52606d;margin:0 0 16px}
.kpis{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px}
h3{font-size:14px;margin:0 0 4px;font-weight:600}
.kpi,.card{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px}
.kpi b{display:block;font-size:22px}.kpi span{color:#52606d;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(360px,1fr));gap:12px;margin-top:12px}
.chart{height:340px}.empty{color:#7b8794;padding:24px;text-align:center}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e4e7eb;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f0f4f8}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#b42318;font-weight:600}.good{color:#027a48}.week{border-top:3px solid #cbd2d9;margin-top:32px}
nav a{margin-right:10px}
"""
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; "
        "font-src data:; connect-src 'none'; base-uri 'none'; form-action 'none'")
_PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["sendDataToCloud"]}
_CHART_TITLES = {"daily": "Refusal rate by day (chains)", "category": "Refusals by category",
                 "workload": "Refusal rate by workload, against its SLO"}
_RED, _GREEN, _BLUE, _GREY = "#d64545", "#2f9e6e", "#3b6fd4", "#bcc6d2"


def _h(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _script_json(value: Any) -> str:
    """Return JSON safe inside an inline <script>: no `<`, `>`, `&` or JS line separators left raw."""
    text = json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], numeric_from: int = 1,
                classes: Callable[[int, int], str] | None = None) -> str:
    if not rows:
        return '<p class="empty">None this week.</p>'
    head = "".join(f'<th{" class=n" if i >= numeric_from else ""}>{_h(c)}</th>' for i, c in enumerate(header))
    body = []
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            cls = " ".join(filter(None, ["n" if i >= numeric_from else "", classes(r, i) if classes else ""]))
            attr = f' class="{cls}"' if cls else ""
            cells.append(f"<td{attr}>{_h(cell)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _daily_points(daily: pd.DataFrame | None, report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the daily series as [{day, chains, refused_chains, refusal_rate}] within the report's week."""
    rows = daily.to_dict("records") if daily is not None else report.get("daily")
    if not isinstance(rows, list):
        return []
    start, end = _date(report.get("start")), _date(report.get("end"))
    bounded = all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in (start, end))
    points = []
    for row in rows:
        if not isinstance(row, Mapping) or "day" not in row:
            continue
        day = _plain(row.get("day"))
        if isinstance(day, int) and not isinstance(day, bool):  # a day number since 1970-01-01
            day = (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()
        day = _date(day)
        if bounded and not start <= day < end:
            continue
        # also takes the frame of `analytics.refusals.refusal_rate(facts, by="day")` (value, numerator, …)
        chains = _rate_value(row.get("chains", row.get("denominator")))
        refused = _rate_value(row.get("refused_chains", row.get("numerator")))
        rate = _rate_value(row.get("refusal_rate", row.get("value", _ratio(refused, chains))))
        points.append({"day": day, "chains": chains, "refused_chains": refused, "refusal_rate": rate})
    return sorted(points, key=lambda p: p["day"])


def _layout(**extra: Any) -> dict[str, Any]:
    return {"margin": {"l": 56, "r": 56, "t": 24, "b": 48}, "paper_bgcolor": "#fff", "plot_bgcolor": "#fff",
            "font": {"size": 12}, "legend": {"orientation": "h", "y": -0.2}, "hovermode": "closest", **extra}


def _figures(report: Mapping[str, Any], daily: pd.DataFrame | None) -> dict[str, dict[str, Any] | None]:
    """Return the three charts as plotly figure dicts (None when there is nothing to draw).

    Names are html-escaped: plotly.js shows entities as text and would otherwise read its own HTML subset.
    """
    figures: dict[str, dict[str, Any] | None] = dict.fromkeys(_CHART_TITLES)
    points = _daily_points(daily, report)
    if points:
        days = [p["day"] for p in points]
        figures["daily"] = {"data": [
            {"type": "bar", "name": "chains", "x": days, "y": [p["chains"] for p in points],
             "marker": {"color": _GREY}, "hovertemplate": "%{x}: %{y} chains<extra></extra>"},
            {"type": "scatter", "mode": "lines+markers", "name": "refusal rate", "x": days, "yaxis": "y2",
             "y": [p["refusal_rate"] for p in points], "line": {"color": _RED, "width": 3},
             "customdata": [[p["refused_chains"], p["chains"]] for p in points],
             "hovertemplate": "%{x}: %{y:.1%} (%{customdata[0]} of %{customdata[1]} chains)<extra></extra>"}],
            # the rate sits on the overlaying axis so that its line is drawn above the bars
            "layout": _layout(xaxis={"type": "date", "tickformat": "%a %d %b", "dtick": 86400000},
                              yaxis={"side": "right", "showgrid": False, "rangemode": "tozero",
                                     "title": {"text": "chains"}},
                              yaxis2={"overlaying": "y", "side": "left", "tickformat": ".1%", "rangemode": "tozero",
                                      "title": {"text": "refusal rate"}})}
    categories = _items(report, "refusals_by_category")
    if categories:
        figures["category"] = {"data": [{
            "type": "bar", "x": [_h(c.get("category") or "unspecified") for c in categories],
            "y": [_rate_value(c.get("refused_attempts")) for c in categories], "marker": {"color": _BLUE},
            "customdata": [_rate_value(c.get("share")) for c in categories],
            "hovertemplate": "%{x}: %{y} refused attempts (%{customdata:.1%})<extra></extra>"}],
            "layout": _layout(xaxis={"type": "category", "automargin": True, "tickangle": -30},
                              yaxis={"title": {"text": "refused attempts"}, "rangemode": "tozero"})}
    workloads = _items(report, "workloads")
    if workloads:
        names = [_h(w.get("workload")) for w in workloads]
        colours = [{True: _GREEN, False: _RED}.get(w.get("slo_met"), _GREY) for w in workloads]
        figures["workload"] = {"data": [
            {"type": "bar", "name": "session refusal rate", "x": names, "marker": {"color": colours},
             "y": [_rate_value(w.get("session_refusal_rate")) for w in workloads],
             "hovertemplate": "%{x}: %{y:.1%} of sessions<extra></extra>"},
            {"type": "bar", "name": "chain refusal rate", "x": names, "marker": {"color": _GREY},
             "y": [_rate_value(w.get("refusal_rate")) for w in workloads],
             "hovertemplate": "%{x}: %{y:.1%} of chains<extra></extra>"},
            {"type": "scatter", "mode": "markers", "name": "SLO", "x": names,
             "y": [_rate_value(w.get("slo")) for w in workloads],
             "marker": {"symbol": "line-ew-open", "size": 36, "color": "#1f2933", "line": {"width": 3}},
             "hovertemplate": "%{x}: SLO %{y:.1%}<extra></extra>"}],
            "layout": _layout(barmode="group", xaxis={"type": "category", "automargin": True, "tickangle": -30},
                              yaxis={"tickformat": ".1%", "rangemode": "tozero"})}
    return figures


def _kpi(label: str, value: str, note: str = "", bad: bool = False) -> str:
    return (f'<div class="kpi"><span>{_h(label)}</span><b{" class=bad" if bad else ""}>{_h(value)}</b>'
            f"<span>{_h(note)}</span></div>")


def _html_week(report: Mapping[str, Any], daily: pd.DataFrame | None, prefix: str,
               figures_out: dict[str, Any]) -> str:
    """Return one week's html section; its charts are added to `figures_out` under their div ids."""
    rate, session = report.get("refusal_rate"), report.get("session_refusal_rate")
    drift = report.get("drift") if isinstance(report.get("drift"), Mapping) else {}
    totals = report.get("totals") if isinstance(report.get("totals"), Mapping) else {}
    credit = report.get("cache_credit") if isinstance(report.get("cache_credit"), Mapping) else {}
    missed = slo_missed(report)
    kpis = "".join([
        _kpi("refusal rate (chains)", _pct(rate), _rate_line(rate, "chains").partition(" — ")[2]),
        _kpi("session refusal rate", _pct(session), _rate_line(session, "sessions").partition(" — ")[2]),
        _kpi("drift vs previous week", _drift_value(drift), _drift_line(report), bad=bool(drift.get("significant"))),
        _kpi("SLO", "all met" if not missed else f"{len(missed)} missed", _slo_line(report), bad=bool(missed)),
        _kpi("cost", _usd(totals.get("cost_usd")), f"{_count(totals.get('unpriced_attempts'))} unpriced attempts; "
             f"per chain {_usd(blended_cost_per_request(totals.get('cost_usd'), totals.get('chains')))}"),
        _kpi("cache credits redeemed", f"{_count(credit.get('redeemed'))} of {_count(credit.get('credits_minted'))}",
             f"redemption rate {_pct(credit.get('redemption_rate'))}, savings {_usd(credit.get('savings_usd'))}"),
    ])
    charts = []
    for key, fig in _figures(report, daily).items():
        div_id = f"{prefix}-{key}"
        title = f"<h3>{_h(_CHART_TITLES[key])}</h3>"
        if fig is None:
            charts.append(f'<div class="card">{title}<p class="empty">No data this week.</p></div>')
        else:
            figures_out[div_id] = fig
            charts.append(f'<div class="card">{title}<div id="{_h(div_id)}" class="chart"></div></div>')
    slo_rows = _workload_rows(report)
    met_col = 1

    def slo_class(row: int, col: int) -> str:
        return {"MISSED": "bad", "met": "good"}.get(slo_rows[row][met_col], "") if col == met_col else ""

    previous = report.get("previous_week")
    prev_rate = previous.get("refusal_rate") if isinstance(previous, Mapping) else None
    drift_rows = [["this week", _rate_line(rate, "chains")], ["previous week", _rate_line(prev_rate, "chains")],
                  ["drift", _drift_line(report)]]
    parts = [
        f'<section class="week" id="{_h(prefix)}"><h1>Weekly refusal report — {_h(report.get("week"))}</h1>',
        f'<p class="sub">{_h(_date(report.get("start")))} to {_h(_date(report.get("end")))} (UTC, end exclusive) · '
        f"{_h(_totals_line(report))}</p>",
        f'<div class="kpis">{kpis}</div><div class="charts">{"".join(charts)}</div>',
        "<h2>Workloads and SLO</h2>", _html_table(_WORKLOAD_HEADER, slo_rows, 2, slo_class),
        "<h2>Drift</h2>", _html_table(["", "refusal rate"], drift_rows, numeric_from=9),
        "<h2>Cost</h2>", _html_table(_COST_HEADER, _cost_rows(report)),
    ]
    for title, header, rows, numeric_from in _section_rows(report):
        parts += [f"<h2>{_h(title)}</h2>", _html_table(header, rows, numeric_from)]
    return "\n".join(parts) + "\n</section>"


def _html_document(title: str, sections: Sequence[str], figures: Mapping[str, Any], nav: str = "") -> str:
    from plotly.offline import get_plotlyjs  # the presentation layer alone needs plotly

    plot = ("(function(){var figs=" + _script_json(figures) + ",config=" + _script_json(_PLOT_CONFIG) + ";"
            "Object.keys(figs).forEach(function(id){Plotly.newPlot(id,figs[id].data,figs[id].layout,config);});})();")
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_h(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">', f"<title>{_h(title)}</title>", f"<style>{_CSS}</style>",
        f"<script>{get_plotlyjs()}</script>", "</head><body><main>", nav, *sections,
        '<p class="sub">Generated by fallbackscope. Rates are fractions of chains or sessions with a Wilson 95% '
        "interval; a chain belongs to the day and week of its first attempt.</p>",
        "</main>", f"<script>{plot}</script>", "</body></html>", ""])


def render_html(report: Mapping[str, Any], daily: pd.DataFrame | None = None) -> str:
    """Return one self-contained html page for the week: plotly.js inlined, no network needed or allowed.

    `daily` (optional) has columns `day` (date, ISO text or day number), `chains`, `refused_chains`,
    `refusal_rate`; rows outside the report's week are ignored. Charts: refusal rate by day, refusals by
    category, refusal rate by workload against its SLO; tables: SLO, drift, cost, resolution, start-tier
    advice, errors, cache credits, policy violations. Every string is html-escaped.
    """
    figures: dict[str, Any] = {}
    section = _html_week(report, daily, "w0", figures)
    return _html_document(f"fallbackscope weekly report {report.get('week')}", [section], figures)


# ---------------------------------------------------------------- several weeks (backfill)


def render(report: Mapping[str, Any], fmt: str, *, daily: pd.DataFrame | None = None,
           by_category: bool = False) -> str:
    """Return `report` rendered in format `fmt` (one of FORMATS); raises ValueError for another format."""
    if fmt == "json":
        return render_json(report)
    if fmt == "csv":
        return render_csv(report, by_category=by_category)
    if fmt == "md":
        return render_md(report)
    if fmt == "html":
        return render_html(report, daily)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def render_many(reports: Sequence[Mapping[str, Any]], fmt: str, *, daily: pd.DataFrame | None = None,
                by_category: bool = False) -> str:
    """Return several weekly reports (a backfill, oldest first) as one document in format `fmt`.

    json: an array of reports; csv: one header, the rows of every week (its `week` column tells them apart);
    md: the weeks one after another, separated by rules; html: one page with one plotly.js, a section per
    week and links to each. `daily` may span all the weeks.
    """
    if fmt == "json":
        return json.dumps([_plain(r, _SCHEMA) for r in reports], indent=2, ensure_ascii=False,
                          allow_nan=False) + "\n"
    if fmt == "csv":
        return _write_csv(CSV_CATEGORY_COLUMNS if by_category else CSV_COLUMNS,
                          [row for r in reports for row in _csv_rows(r, by_category)])
    if fmt == "md":
        return "\n---\n\n".join(render_md(r) for r in reports)
    if fmt == "html":
        figures: dict[str, Any] = {}
        sections = [_html_week(r, daily, f"w{i}", figures) for i, r in enumerate(reports)]
        nav = "<nav>" + "".join(f'<a href="#w{i}">{_h(r.get("week"))}</a>' for i, r in enumerate(reports)) + "</nav>"
        weeks = [str(r.get("week")) for r in reports]
        title = f"fallbackscope weekly reports {weeks[0]} to {weeks[-1]}" if weeks else "fallbackscope weekly reports"
        return _html_document(title, sections, figures, nav)
    raise ValueError(f"unknown report format {fmt!r}; choose one of {', '.join(FORMATS)}")


def report_filename(report: Mapping[str, Any], fmt: str, stem: str = "weekly") -> str:
    """Return a file name for one week's report, e.g. `weekly-2026-W44.html` (for one file per week)."""
    week = re.sub(r"[^0-9A-Za-z-]", "_", str(report.get("week")))
    return f"{stem}-{week}.{fmt}"
