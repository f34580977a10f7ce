"""A run's summary in bounded memory: totals over the whole run, distributions over the newest decisions.

A node that runs for days must not keep every decision; a final report (``auras_composed --duration``)
still wants the run's rate and its observation-age and interval percentiles. Counts, first and last
decision times and the most requests in flight cover the whole run; percentiles and the interval CV
cover the newest ``window`` decisions.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass

from auras_ros.core.errors import ConfigError
from auras_ros.core.metrics import Decision
from auras_ros.core.stats import interval_cv, percentile


@dataclass(frozen=True)
class RunSummary:
    decisions: int  # after the warm-up, whole run
    decisions_per_s: float  # whole run
    interval_cv: float  # newest window
    interval_p99_s: float
    age_p50_s: float
    age_p99_s: float
    in_flight_max: int  # whole run


class RecentDecisions:
    """Thread-safe; memory is O(window) however long the run."""

    def __init__(self, window: int = 1000, warmup: int = 5) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 2:
            raise ConfigError("window", window, "an integer >= 2")
        self._warmup = warmup
        self._seen = 0
        self._first: float | None = None
        self._times: deque[float] = deque(maxlen=window)
        self._ages: deque[float] = deque(maxlen=window)
        self._in_flight_max = 0
        self._lock = threading.Lock()

    def decision(self, decision: Decision) -> None:
        with self._lock:
            self._seen += 1
            if self._seen <= self._warmup:
                return
            if self._first is None:
                self._first = decision.decision_time
            self._times.append(decision.decision_time)
            self._ages.append(decision.age)

    def in_flight(self, count: int) -> None:
        with self._lock:
            self._in_flight_max = max(self._in_flight_max, count)

    def summary(self) -> RunSummary:
        with self._lock:
            times, ages = sorted(self._times), list(self._ages)
            decisions = max(self._seen - self._warmup, 0)
            span = times[-1] - self._first if times and self._first is not None else 0.0
            return RunSummary(
                decisions=decisions,
                decisions_per_s=(decisions - 1) / span if span > 0 else math.nan,
                interval_cv=interval_cv(times),
                interval_p99_s=percentile(list(_intervals(times)), 99),
                age_p50_s=percentile(ages, 50),
                age_p99_s=percentile(ages, 99),
                in_flight_max=self._in_flight_max)


def _intervals(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]
