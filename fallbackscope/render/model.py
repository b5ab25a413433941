"""The weekly report's shape (docs/metrics.md §7.1), defined once: frozen dataclasses whose field order IS the
JSON key order.

`fallbackscope.render.report.build_report` fills a `WeeklyReport`; `WeeklyReport.as_dict` gives the JSON-ready
dict; `KEY_ORDER` (derived from these classes, never written out again) tells the renderers in which order
to lay out the keys of any report dict, a hand-made or an older one included. A new key is a new field here;
keys that are not (yet) fields travel in `WeeklyReport.extra` and come after the contract's keys.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from analytics.common import Rate
from analytics.coverage import Coverage
from analytics.credits import CreditSummary
from analytics.reconcile import ReconciliationSummary
from analytics.refusals import Drift


class _Record:
    """A part of the report: `as_dict` returns its fields in order, nested parts as dicts, sequences as lists."""

    def as_dict(self) -> dict[str, Any]:
        """Return this part as plain JSON-ready data, keys in field order (then `extra`, if any)."""
        out: dict[str, Any] = {}
        extra: Mapping[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if f.metadata.get("extra"):
                extra = value
            elif value is None and f.metadata.get("omit_none"):
                continue  # an optional part the period does not have is no key at all
            else:
                out[f.name] = _plain(value)
        return out | {k: v for k, v in extra.items() if k not in out}


def _plain(value: Any) -> Any:
    if hasattr(value, "as_dict"):  # our parts, and the analytics' Rate and Drift (their own `as_dict`)
        return value.as_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Totals(_Record):
    attempts: int
    chains: int
    sessions: int
    cost_usd: float | None
    unpriced_attempts: int
    unknown_stop_attempts: int
    cost_incomplete_attempts: int


@dataclass(frozen=True)
class PreviousWeek(_Record):
    refusal_rate: Rate
    coverage: Coverage


@dataclass(frozen=True)
class CategoryRefusals(_Record):
    category: str | None
    refused_attempts: int
    share: float | None


@dataclass(frozen=True)
class ModelRefusals(_Record):
    model: str
    attempts: int
    refused_attempts: int
    attempt_refusal_rate: float | None


@dataclass(frozen=True)
class Resolution(_Record):
    model: str | None  # None: unresolved
    share: float | None


@dataclass(frozen=True)
class StartTierAdvice(_Record):
    from_model: str
    to_model: str
    escalation_rate: float | None
    break_even: float | None
    advice: str | None


@dataclass(frozen=True)
class WorkloadRow(_Record):
    workload: str
    chains: int
    attempts: int
    sessions: int
    refusal_rate: float | None
    session_refusal_rate: float | None
    slo: float
    slo_source: str  # policy | default
    slo_met: bool | None
    fallback_rate: float | None
    escalation_rate: float | None
    unresolved_rate: float | None
    unknown_stop_attempts: int
    resolution: tuple[Resolution, ...]
    cost_usd: float | None
    unpriced_attempts: int
    cost_incomplete_attempts: int
    blended_cost_per_request: float | None
    escalation_overhead_usd: float | None
    top_tier_counterfactual_usd: float | None
    start_tier_advice: tuple[StartTierAdvice, ...]


@dataclass(frozen=True)
class ErrorCount(_Record):
    error_class: str
    attempts: int


@dataclass(frozen=True)
class PolicyViolation(_Record):
    kind: str
    workload: str
    count: int


@dataclass(frozen=True)
class WeeklyReport(_Record):
    """One ISO week's report (docs/metrics.md §7.1); `start` and `end` are UTC instants, end exclusive."""

    week: str
    start: str
    end: str
    totals: Totals
    coverage: Coverage
    refusal_rate: Rate
    session_refusal_rate: Rate
    previous_week: PreviousWeek | None  # None: no chains the week before
    drift: Drift | None
    refusals_by_category: tuple[CategoryRefusals, ...]
    refusals_by_model: tuple[ModelRefusals, ...]
    workloads: tuple[WorkloadRow, ...]
    errors: tuple[ErrorCount, ...]
    cache_credit: CreditSummary  # its `as_dict` is the report's `cache_credit`
    policy_violations: tuple[PolicyViolation, ...]
    warnings: tuple[str, ...] = ()  # each also printed on stderr (docs/metrics.md §7)
    # docs/metrics.md §10: only when the week has reconciled days
    reconciliation: ReconciliationSummary | None = field(default=None, metadata={"omit_none": True})
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False, metadata={"extra": True})


def key_order(cls: Any) -> Any:
    """Return the key-order schema of a type: a dataclass → {field: schema of its type} in field order; a
    tuple or list of X → [schema of X]; `X | None` → schema of X; anything else → None (a leaf)."""
    origin, args = typing.get_origin(cls), typing.get_args(cls)
    if origin in (typing.Union, types.UnionType):
        kinds = [a for a in args if a is not type(None)]
        return key_order(kinds[0]) if len(kinds) == 1 else None
    if origin in (tuple, list):
        return [key_order(args[0])] if args else None
    if dataclasses.is_dataclass(cls):
        hints = typing.get_type_hints(cls)
        return {f.name: key_order(hints[f.name]) for f in dataclasses.fields(cls) if not f.metadata.get("extra")}
    return None


#: dict → its keys in this order (then any extra keys as given); [schema] → each item; None → a leaf.
KEY_ORDER: dict[str, Any] = key_order(WeeklyReport)
