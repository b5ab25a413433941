"""Rates with their Wilson 95% interval (docs/metrics.md §6), in plain Python: no pandas, so that a quick
command (`alert`) need not load it. `analytics.common` re-exports them for everything else."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

Z95 = 1.959964


@dataclass(frozen=True)
class Rate:
    """A fraction with its counts and Wilson 95% interval; `value` is None over nothing."""

    value: float | None
    numerator: int
    denominator: int
    ci95_low: float | None
    ci95_high: float | None

    @classmethod
    def of(cls, numerator: int | float, denominator: int | float) -> Rate:
        """Return the rate numerator / denominator with its Wilson 95% interval (None when denominator is 0)."""
        num, den = int(numerator or 0), int(denominator or 0)
        if den <= 0:
            return cls(None, num, den, None, None)
        low, high = wilson(num, den)
        return cls(num / den, num, den, low, high)

    def as_dict(self) -> dict[str, Any]:
        """Return the rate as the report's `{value, numerator, denominator, ci95_low, ci95_high}`."""
        return asdict(self)


def wilson(numerator: int, denominator: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval (low, high) of numerator / denominator; denominator must be > 0."""
    n = float(denominator)
    p = numerator / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if numerator <= 0 else max(0.0, centre - half)
    high = 1.0 if numerator >= denominator else min(1.0, centre + half)
    return low, high


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """Return numerator / denominator, None when either is missing or the denominator is 0."""
    if numerator is None or denominator is None or _isnan(numerator) or _isnan(denominator):
        return None
    if denominator == 0:
        return None
    return float(numerator) / float(denominator)


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
