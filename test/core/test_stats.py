"""The one statistics module, on numbers small enough to check by hand."""

from __future__ import annotations

import argparse
import math

import pytest

from auras_ros.core.stats import Spread, cv, interval_cv, mean, paired_ratio_ci, percentile, rate, wilson
from auras_ros.eval.cli import executor_argument


def test_rate_and_interval_cv_of_hand_made_times():
    times = [0.0, 1.0, 1.5, 2.0, 3.0]  # intervals 1, 0.5, 0.5, 1: mean 0.75, population std 0.25
    assert rate(times) == 4 / 3.0
    assert interval_cv(times) == pytest.approx(1 / 3)
    assert cv([2.0, 2.0]) == 0.0 and math.isnan(cv([])) and math.isnan(rate([1.0]))


def test_percentile_mean_and_spread():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and math.isnan(percentile([], 50))
    assert mean([1, 2, 6]) == 3.0 and math.isnan(mean([]))
    spread = Spread.of([3.0, float("nan"), 1.0, 2.0])  # a failed repeat (NaN) is not a measurement
    assert (spread.median, spread.low, spread.high, spread.repeats) == (2.0, 1.0, 3.0, 3)
    assert str(spread) == "2 [1–3]"


def test_wilson_and_paired_ratio_intervals():
    low, high = wilson(8, 10)
    assert 0.4 < low < 0.8 < high < 1.0 and wilson(0, 5)[0] == 0.0
    for n in (1, 7, 30, 90):  # a rate of 0% or 100% lies inside its own interval (was an ulp outside)
        assert wilson(n, n)[1] == 1.0 and wilson(0, n)[0] == 0.0
    assert paired_ratio_ci([True] * 10, [True] * 10) == (1.0, 1.0)
    assert all(math.isnan(v) for v in paired_ratio_ci([True] * 3, [False] * 3))  # SEQ never succeeded


def test_executor_option_reports_the_expected_forms():
    assert str(executor_argument("auras:1+5")) == "auras:1+5:f0:a0"
    with pytest.raises(argparse.ArgumentTypeError, match="auras:P\\+G"):
        executor_argument("auras:5")
