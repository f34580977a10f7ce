"""The pipeline's two clocks: wall time (a real robot) and frame-stepped simulated time.

Ages are always judged on a clock's ``now()`` against sensor stamps on the same clock.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from auras_ros.core.errors import ConfigError


class Clock(Protocol):
    simulated: bool

    def now(self) -> float:
        """Seconds on this clock."""
        ...

    def wait_until(self, t: float) -> None:
        """Return once ``now() >= t``."""
        ...

    def wall_until(self, t: float) -> float:
        """Wall seconds until ``now()`` reads ``t`` (<= 0: passed), for a caller that waits in slices of its
        own (interruptibly); a clock running faster than the wall's (a scaled replay) says less than
        ``t - now()``, so the caller does not oversleep."""
        ...


class WallClock:
    """Monotonic wall time; waits really sleep."""

    simulated = False

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def wall_until(self, t: float) -> float:
        return t - time.monotonic()


class SimClock:
    """Frame-stepped simulated time: it only moves when the run says so, so compute speed never leaks
    into ages, stamps or the world's state and a seeded run is deterministic."""

    simulated = True

    def __init__(self, start: float = 0.0) -> None:
        if start < 0:
            raise ConfigError("start", start, "a time >= 0")
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def wait_until(self, t: float) -> None:
        with self._lock:
            if t > self._now:
                self._now = float(t)

    def wall_until(self, t: float) -> float:
        return 0.0  # simulated time moves when the run says so: there is nothing to wait for
