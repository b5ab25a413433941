"""The filters every page shares — date range, workload, model, surface — and their form in the URL.

A view is shared by its address: `/refusals?from=2026-10-19&to=2026-11-15&workload=support-chat`.
Dates are UTC days, both ends included (a chain belongs to the day of its first attempt). Empty lists
mean "all". Without dates the view shows the last `DEFAULT_DAYS` days that hold data.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlencode

from fallbackscope.core.periods import UTC, Period

DEFAULT_DAYS = 28
#: URL parameter names, in the order they are written.
PARAMS = ("from", "to", "workload", "model", "surface")


def _day(value: Any) -> dt.date | None:
    """Return a date from an ISO date (or datetime) string, None for anything unreadable."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        return None


def _names(values: Iterable[Any] | str | None) -> tuple[str, ...]:
    """Return the distinct non-empty names of a list (or one name), sorted so equal filters compare equal."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    return tuple(sorted({str(v).strip() for v in values if v is not None and str(v).strip()}))


@dataclass(frozen=True)
class Filters:
    """What a page shows: chains whose first attempt is on a day in [since, until] (UTC, both included),
    of the given workloads, touching the given models and surfaces (empty = all)."""

    since: dt.date | None = None
    until: dt.date | None = None
    workloads: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    surfaces: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # equal filters compare (and cache) equal: names sorted and distinct
        for name in ("workloads", "models", "surfaces"):
            object.__setattr__(self, name, _names(getattr(self, name)))
        if self.since is not None and self.until is not None and self.since > self.until:
            # a range picked backwards is read the right way round
            since, until = self.until, self.since
            object.__setattr__(self, "since", since)
            object.__setattr__(self, "until", until)

    # ------------------------------------------------------------------ URL and store forms

    @classmethod
    def from_query(cls, search: str | None) -> Filters:
        """Return the filters of a URL query string (`?from=…&workload=a&workload=b`); unknown or
        unreadable parameters are ignored."""
        query = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
        return cls(
            since=_day((query.get("from") or [None])[0]),
            until=_day((query.get("to") or [None])[0]),
            workloads=_names(query.get("workload")),
            models=_names(query.get("model")),
            surfaces=_names(query.get("surface")),
        )

    def to_query(self) -> str:
        """Return the URL query string of the filters (`?…`, or "" when nothing is set)."""
        pairs: list[tuple[str, str]] = []
        if self.since is not None:
            pairs.append(("from", self.since.isoformat()))
        if self.until is not None:
            pairs.append(("to", self.until.isoformat()))
        pairs += [("workload", w) for w in self.workloads]
        pairs += [("model", m) for m in self.models]
        pairs += [("surface", s) for s in self.surfaces]
        return "?" + urlencode(pairs) if pairs else ""

    @classmethod
    def from_store(cls, data: Mapping[str, Any] | None) -> Filters:
        """Return the filters kept in the browser's `dcc.Store` (see `to_store`)."""
        data = data or {}
        return cls(
            since=_day(data.get("since")),
            until=_day(data.get("until")),
            workloads=_names(data.get("workloads")),
            models=_names(data.get("models")),
            surfaces=_names(data.get("surfaces")),
        )

    def to_store(self) -> dict[str, Any]:
        """Return the filters as JSON for a `dcc.Store`."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "workloads": list(self.workloads),
            "models": list(self.models),
            "surfaces": list(self.surfaces),
        }

    # ------------------------------------------------------------------ meaning

    def with_default_range(self, first_day: dt.date | None, last_day: dt.date | None,
                           days: int = DEFAULT_DAYS) -> Filters:
        """Return the filters with a missing end set to the last day with data and a missing start to
        `days` − 1 days before the end (not before the first day with data)."""
        until = self.until or last_day
        since = self.since
        if since is None and until is not None:
            since = until - dt.timedelta(days=days - 1)
            if first_day is not None and since < first_day <= until:
                since = first_day
        return replace(self, since=since, until=until)

    def period(self) -> Period:
        """Return the analysed period: [since 00:00 UTC, the day after until 00:00 UTC)."""
        start = dt.datetime.combine(self.since, dt.time(), UTC) if self.since else None
        end = dt.datetime.combine(self.until + dt.timedelta(days=1), dt.time(), UTC) if self.until else None
        return Period(start, end)

    @property
    def scope(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The filters that need their own pass over the database: (models, surfaces)."""
        return self.models, self.surfaces

    def describe(self) -> str:
        """Return the filters in words, for page headings and figure captions."""
        parts = []
        if self.since and self.until:
            parts.append(f"{self.since:%Y-%m-%d} – {self.until:%Y-%m-%d} (UTC)")
        for label, values in (("workload", self.workloads), ("model", self.models), ("surface", self.surfaces)):
            if values:
                parts.append(f"{label}: {', '.join(values)}")
        return " · ".join(parts) or "all data"
