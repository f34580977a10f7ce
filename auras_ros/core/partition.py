"""The α-skew partition of generation iterations over the pp_generation stages (paper §4.3.2)."""

from __future__ import annotations

import math

from auras_ros.core.errors import ConfigError, positive_int


def skew_partition(iterations: int, stages: int, alpha: float = 0.0) -> list[int]:
    """Iterations given to each generation stage, earliest stage first.

    Stage i (1-based; later stages read fresher context) gets the share e^{iα} / Σ_j e^{jα}. Shares are
    rounded at the cumulative boundaries, so the counts always sum to ``iterations`` and each stage is
    within one iteration of its exact share (α=0.5, 4 stages, 100 steps → the last stage gets 46).
    """
    positive_int("generation_iterations", iterations)
    positive_int("pp_generation", stages)
    if not math.isfinite(alpha):
        raise ConfigError("alpha", alpha, "a finite number")
    # Subtracting the largest exponent keeps e^{iα} finite for large |α|.
    top = max(alpha * i for i in range(1, stages + 1))
    weights = [math.exp(alpha * i - top) for i in range(1, stages + 1)]
    total = sum(weights)
    bounds = [0]
    cumulative = 0.0
    for w in weights[:-1]:
        cumulative += w
        bounds.append(round(iterations * cumulative / total))
    bounds.append(iterations)
    return [bounds[i + 1] - bounds[i] for i in range(stages)]


def stage_ranges(iterations: int, stages: int, alpha: float = 0.0) -> list[tuple[int, int]]:
    """``[begin, end)`` iteration range of each generation stage."""
    ranges = []
    begin = 0
    for count in skew_partition(iterations, stages, alpha):
        ranges.append((begin, begin + count))
        begin += count
    return ranges
