"""The `fallbackscope metrics` frame as a table, JSON or CSV (docs/metrics.md §7).

Rates are stored flat as `<rate>`, `<rate>_numerator`, `<rate>_denominator`, `<rate>_ci95_low`,
`<rate>_ci95_high`; the JSON rendering nests each as `{value, numerator, denominator, ci95_low, ci95_high}`.
"""

from __future__ import annotations

import io
import json
from typing import Any, Literal

import pandas as pd

from analytics.common import RATE_SUFFIXES, rate_names
from fallbackscope.core.errors import UsageError
from fallbackscope.render.display import plain

Format = Literal["table", "json", "csv"]
FORMATS: tuple[str, ...] = ("table", "json", "csv")


def metrics_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the rows of a metrics frame as JSON-ready dicts, each rate nested as
    `{value, numerator, denominator, ci95_low, ci95_high}`."""
    rates = rate_names(list(df.columns))
    nested = {f"{r}{s}" for r in rates for s in RATE_SUFFIXES}
    records = []
    for row in df.to_dict("records"):
        rec: dict[str, Any] = {}
        for col, value in row.items():
            if col in nested:
                continue
            if col in rates:
                rec[col] = {"value": plain(value), **{s[1:]: plain(row[f"{col}{s}"]) for s in RATE_SUFFIXES}}
            else:
                rec[col] = plain(value)
        records.append(rec)
    return records


_TABLE_COLUMNS = ("day", "week", "workload", "model", "category", "chains", "sessions", "attempts",
                  "refused_attempts", "refusal_rate", "session_refusal_rate", "attempt_refusal_rate", "share",
                  "fallback_rate", "escalation_rate", "unresolved_rate", "error_rate", "cost_usd",
                  "unpriced_attempts", "redemption_rate", "policy_violations", "slo", "slo_met")
_WITH_CI = {"refusal_rate", "session_refusal_rate", "attempt_refusal_rate", "share"}


def _cell(col: str, value: Any, row: dict[str, Any]) -> str:
    value = plain(value)
    if value is None:
        return "—"
    if col in rate_names(list(row)):
        text = f"{value:.1%}"
        if col in _WITH_CI and row.get(f"{col}_ci95_low") is not None:
            low, high = plain(row[f"{col}_ci95_low"]), plain(row[f"{col}_ci95_high"])
            if low is not None and high is not None:
                text += f" ({low:.1%}–{high:.1%})"
        return text
    if col == "cost_usd":
        return f"${value:,.2f}"
    if col == "slo":
        return f"{value:.1%}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def format_table(df: pd.DataFrame) -> str:
    """Return a plain-text table of the main columns of a metrics frame."""
    cols = [c for c in _TABLE_COLUMNS if c in df.columns]
    rows = [{c: _cell(c, r[c], r) for c in cols} for r in df.to_dict("records")]
    if not rows:
        return "no chains in the period\n"
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    numeric = {c for c in cols if c not in ("day", "week", "workload", "model", "category")}
    def line(values: dict[str, str]) -> str:
        return "  ".join(values[c].rjust(widths[c]) if c in numeric else values[c].ljust(widths[c])
                         for c in cols).rstrip()
    head = line({c: c for c in cols})
    return "\n".join([head, "  ".join("-" * widths[c] for c in cols), *(line(r) for r in rows)]) + "\n"


def format_metrics(df: pd.DataFrame, fmt: Format = "table") -> str:
    """Return a metrics frame rendered as `table` (aligned text), `json` (a list of objects, rates
    nested) or `csv` (every column, flat); raises UsageError for another format."""
    if fmt == "json":
        return json.dumps(metrics_records(df), indent=2, ensure_ascii=False) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        flat = df.copy()
        for col in flat.columns:
            if flat[col].dtype == object:
                flat[col] = [plain(v) for v in flat[col]]
        flat.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue()
    if fmt == "table":
        return format_table(df)
    raise UsageError(f"--format `{fmt}` is not one of {', '.join(FORMATS)}.")
