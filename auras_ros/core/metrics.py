"""What every run reports: decisions/s, decision-interval statistics, observation age at actuation,
per-stage latency, requests in flight, and drops and cancels by reason."""

from __future__ import annotations

import math
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np

from auras_ros.core.stages import AgentOutput
from auras_ros.core.stats import cv, mean, percentile, rate


@dataclass(frozen=True)
class Decision:
    """One action leaving the pipeline, with where it came from.

    ``observation_stamp`` is the sensor stamp of the freshest observation the request's generation
    read; ``context_stamps`` lists the percept stamp each of its generation steps read, in order.
    """

    request_id: int
    output: AgentOutput
    observation_seq: int
    observation_stamp: float
    context_stamps: tuple[float, ...]
    decision_time: float
    frame: int
    slot: int

    @property
    def age(self) -> float:
        """Observation age at actuation."""
        return self.decision_time - self.observation_stamp


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float


@dataclass(frozen=True)
class RunMetrics:
    decisions: int
    duration: float
    decisions_per_s: float
    interval_mean: float
    interval_cv: float
    interval_p99: float
    interval_spread: float  # (max - min) / mean of the decision intervals
    age_p50: float
    age_p99: float
    stage_latency: dict[str, Percentiles] = field(default_factory=dict)
    in_flight_max: int = 0
    in_flight_mean: float = 0.0
    drops: dict[str, int] = field(default_factory=dict)
    cancels: dict[str, int] = field(default_factory=dict)


class MetricsRecorder:
    """Thread-safe: perception, generation and worker threads all record into one recorder."""

    def __init__(self, warmup_decisions: int = 0) -> None:
        self._warmup = warmup_decisions
        self._lock = threading.Lock()
        self._decision_times: list[float] = []
        self._ages: list[float] = []
        self._stages: dict[str, list[float]] = defaultdict(list)
        self._in_flight: list[int] = []
        self._drops: Counter[str] = Counter()
        self._cancels: Counter[str] = Counter()
        self._seen = 0
        self._recorded = 0  # across windows

    def decision(self, decision: Decision) -> None:
        with self._lock:
            self._seen += 1
            if self._seen > self._warmup:
                self._recorded += 1
                self._decision_times.append(decision.decision_time)
                self._ages.append(decision.age)

    @property
    def decisions_recorded(self) -> int:
        """Decisions recorded after the warm-up, over every window."""
        return self._recorded

    def stage(self, name: str, seconds: float) -> None:
        with self._lock:
            self._stages[name].append(seconds)

    def in_flight(self, count: int) -> None:
        with self._lock:
            self._in_flight.append(count)

    def drop(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._drops[reason] += count

    def cancel(self, reason: str, count: int = 1) -> None:
        with self._lock:
            self._cancels[reason] += count

    def take_window(self) -> RunMetrics:
        """The summary since the last window, then start a new one (periodic reports)."""
        with self._lock:
            metrics = self._summarize()
            self._decision_times, self._ages = [], []
            self._stages.clear()
            self._in_flight.clear()
            self._drops.clear()
            self._cancels.clear()
            return metrics

    def summary(self) -> RunMetrics:
        with self._lock:
            return self._summarize()

    def _summarize(self) -> RunMetrics:
        times = sorted(self._decision_times)
        intervals = list(np.diff(times)) if len(times) > 1 else []
        interval_mean = mean(intervals)
        return RunMetrics(
            decisions=len(times),
            duration=times[-1] - times[0] if len(times) > 1 else 0.0,
            decisions_per_s=rate(times),
            interval_mean=interval_mean,
            interval_cv=cv(intervals),
            interval_p99=percentile(intervals, 99),
            interval_spread=(max(intervals) - min(intervals)) / interval_mean if intervals and interval_mean > 0 else math.nan,
            age_p50=percentile(self._ages, 50),
            age_p99=percentile(self._ages, 99),
            stage_latency={k: Percentiles(percentile(v, 50), percentile(v, 99)) for k, v in self._stages.items()},
            in_flight_max=max(self._in_flight, default=0),
            in_flight_mean=mean(self._in_flight) if self._in_flight else 0.0,
            drops=dict(self._drops),
            cancels=dict(self._cancels),
        )
