"""The statistics every table reports, in one place: percentiles, rates and interval CV, Wilson and
bootstrap intervals, and the median-with-spread of repeated benchmark runs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation); NaN for no values."""
    return float(np.percentile(values, q)) if len(values) else math.nan


def rate(times: Sequence[float]) -> float:
    """Events per second over the span of their times: (n - 1) / (last - first); NaN below two."""
    if len(times) < 2 or times[-1] <= times[0]:
        return math.nan
    return (len(times) - 1) / (times[-1] - times[0])


def rate_text(value: float, events: int, digits: int = 1, noun: str = "decision") -> str:
    """A rate for a table or a line: the number, or "n/a (1 decision)" when fewer than two events span
    no time (a rate needs an interval), never "nan"."""
    if events < 2 or not math.isfinite(value):
        return f"n/a ({events} {noun}{'' if events == 1 else 's'})"
    return f"{value:.{digits}f}"


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation: population std / mean; NaN for no values or a mean <= 0."""
    v = np.asarray(values, float)
    if len(v) == 0 or v.mean() <= 0:
        return math.nan
    return float(v.std() / v.mean())


def interval_cv(times: Sequence[float]) -> float:
    """Coefficient of variation of the intervals between consecutive times (NaN below two times)."""
    return cv(np.diff(np.asarray(times, float)).tolist())


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; NaN for no values."""
    return float(np.mean(values)) if len(values) else math.nan


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a success rate."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # At p = 0 or 1 the bound is 0 or 1 exactly; in floating point centre ± half misses it by an ulp, and
    # a rate of 100% would then fall outside its own interval.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return (low, high)


def paired_ratio_ci(ours: Sequence[bool], seq: Sequence[bool], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of success(ours) / success(SEQ), resampling episodes (same
    seeds on both sides, so they resample together)."""
    a, b = np.asarray(ours, float), np.asarray(seq, float)
    if len(a) == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), (resamples, len(a)))
    num, den = a[idx].mean(axis=1), b[idx].mean(axis=1)
    ratios = num[den > 0] / den[den > 0]
    if len(ratios) == 0:
        return (math.nan, math.nan)
    return (float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5)))


def bootstrap_mean_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile-bootstrap interval of the mean."""
    v = np.asarray(values, float)
    if len(v) == 0:
        return (math.nan, math.nan)
    idx = np.random.default_rng(seed).integers(0, len(v), (resamples, len(v)))
    means = v[idx].mean(axis=1)
    return (float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


@dataclass(frozen=True)
class Spread:
    """Repeated measurements of one quantity: the median and the range, so noise stays visible."""

    median: float
    low: float
    high: float
    repeats: int

    @classmethod
    def of(cls, values: Sequence[float]) -> "Spread":
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return cls(math.nan, math.nan, math.nan, 0)
        return cls(float(np.median(finite)), min(finite), max(finite), len(finite))

    def __str__(self) -> str:
        return f"{self.median:.3g} [{self.low:.3g}–{self.high:.3g}]"
