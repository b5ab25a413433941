"""Wilson intervals, periods, ISO weeks and the drift test, on hand-computed numbers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analytics.common import Rate, add_rate, wilson
from analytics.refusals import drift

Z = 1.959964


def test_wilson_interval_of_half_matches_the_formula():
    # p = 5/10, z² = 3.841459; centre = (0.5 + 3.841459/20) / (1 + 3.841459/10) = 0.5
    # half = z * sqrt(0.5*0.5/10 + 3.841459/400) / 1.3841459 = 1.959964 * sqrt(0.025 + 0.0096036) / 1.3841459
    half = Z * math.sqrt(0.025 + 3.841459 / 400) / 1.3841459
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.5 - half, abs=1e-6)
    assert high == pytest.approx(0.5 + half, abs=1e-6)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)


def test_wilson_interval_of_zero_successes_starts_at_zero():
    # 0/10: upper bound = z² / (n + z²) = 3.841459 / 13.841459 = 0.27753
    low, high = wilson(0, 10)
    assert low == 0.0
    assert high == pytest.approx(3.841459 / 13.841459, abs=1e-6)


def test_wilson_interval_of_one_out_of_one():
    # 1/1: lower bound = 1 / (1 + z²) = 1 / 4.841459 = 0.20655
    low, high = wilson(1, 1)
    assert low == pytest.approx(1 / 4.841459, abs=1e-6)
    assert high == 1.0


def test_rate_over_nothing_is_null():
    rate = Rate.of(0, 0)
    assert rate.value is None and rate.ci95_low is None and rate.ci95_high is None
    assert rate.as_dict() == {"value": None, "numerator": 0, "denominator": 0, "ci95_low": None, "ci95_high": None}


def test_vectorised_rates_match_the_scalar_ones():
    df = add_rate(pd.DataFrame({"n": [5, 0, 1, 0], "d": [10, 10, 1, 0]}), "r", "n", "d")
    for row in df.to_dict("records"):
        rate = Rate.of(row["n"], row["d"])
        if rate.value is None:
            assert math.isnan(row["r"]) and math.isnan(row["r_ci95_low"])
        else:
            assert row["r"] == pytest.approx(rate.value)
            assert row["r_ci95_low"] == pytest.approx(rate.ci95_low)
            assert row["r_ci95_high"] == pytest.approx(rate.ci95_high)


@given(st.integers(min_value=1, max_value=10_000), st.data())
def test_wilson_interval_holds_the_rate_inside_zero_one(n, data):
    k = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_drift_uses_the_pooled_two_proportion_z_test():
    # this week 30/100, last week 10/100: delta 0.2; pooled p = 40/200 = 0.2
    # se = sqrt(0.2 * 0.8 * (1/100 + 1/100)) = sqrt(0.0032) = 0.0565685; z = 0.2 / 0.0565685 = 3.5355
    # two-sided p = erfc(3.5355 / sqrt 2) = 0.000407
    d = drift(Rate.of(30, 100), Rate.of(10, 100))
    assert d.delta == pytest.approx(0.2)
    assert d.z == pytest.approx(0.2 / math.sqrt(0.0032))
    assert d.p_value == pytest.approx(math.erfc(3.5355339 / math.sqrt(2)), rel=1e-5)
    assert d.significant is True


def test_drift_below_one_percent_significance_is_not_significant():
    # 12/100 vs 10/100: pooled 0.11, se = sqrt(0.11*0.89*0.02) = 0.04425, z = 0.452 → p = 0.65
    d = drift(Rate.of(12, 100), Rate.of(10, 100))
    assert d.z == pytest.approx(0.02 / math.sqrt(0.11 * 0.89 * 0.02))
    assert d.significant is False


def test_drift_with_zero_pooled_error_has_null_z_and_p():
    d = drift(Rate.of(0, 50), Rate.of(0, 40))
    assert (d.delta, d.z, d.p_value, d.significant) == (0.0, None, None, False)


def test_drift_is_null_without_chains_in_either_week():
    assert drift(Rate.of(3, 10), Rate.of(0, 0)) is None
    assert drift(Rate.of(0, 0), Rate.of(3, 10)) is None
