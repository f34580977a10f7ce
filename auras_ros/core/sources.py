"""Where observations come from: the pipeline asks for the latest one at each frame start."""

from __future__ import annotations

import math
import secrets
import threading
from typing import Any, Callable, Protocol

from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.core.stages import Observation


class ObservationSource(Protocol):
    def latest(self, now: float) -> Observation | None:
        """The freshest observation sensed at or before ``now``, or None if there is none yet."""
        ...


class LatestObservation:
    """A push source (e.g. fed by a subscription): keeps only the newest observation, as a KEEP_LAST 1
    subscription does. The pusher decides what is newer (see ``context.SourceOrder``): sequence numbers
    restart with their source, so they cannot order observations here. Thread-safe."""

    def __init__(self) -> None:
        self._latest: Observation | None = None
        self._version = 0  # observations pushed so far: what ``wait_newer`` waits on, never a seq
        self._arrived = threading.Condition()

    def push(self, observation: Observation) -> None:
        with self._arrived:
            self._latest = observation
            self._version += 1
            self._arrived.notify_all()

    def latest(self, now: float) -> Observation | None:
        return self._latest

    @property
    def version(self) -> int:
        return self._version

    def wait_newer(self, version: int, timeout: float) -> bool:
        """Block until an observation was pushed after ``version``, or ``timeout`` seconds pass."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._version > version, timeout)


class PeriodicCamera:
    """A camera that senses at a fixed rate on the pipeline's clock: frame ``seq`` is stamped
    ``start + seq / rate_hz`` and its data is ``render(seq, stamp)`` (computed once per seq)."""

    def __init__(self, rate_hz: float, render: Callable[[int, float], Any], start: float = 0.0) -> None:
        if not math.isfinite(rate_hz) or rate_hz <= 0:
            raise ConfigError("rate_hz", rate_hz, "a finite rate > 0")
        self._rate = rate_hz
        self._render = render
        self._start = start
        self._cached: Observation | None = None

    def latest(self, now: float) -> Observation | None:
        # A tiny epsilon keeps seq exact when `now` lands on a tick up to float rounding.
        seq = math.floor((now - self._start) * self._rate + 1e-9)
        if seq < 0:
            return None
        cached = self._cached
        if cached is None or cached.seq != seq:
            stamp = self._start + seq / self._rate
            cached = Observation(seq, stamp, self._render(seq, stamp))
            self._cached = cached
        return cached


class StampedHistory:
    """The newest few values of a second sensor (e.g. joint positions), to pair with an observation by
    sensor stamp. Thread-safe."""

    def __init__(self, size: int = 16) -> None:
        positive_int("size", size)
        self._size = size
        self._values: dict[float, Any] = {}
        self._lock = threading.Lock()

    def add(self, stamp: float, value: Any) -> None:
        with self._lock:
            self._values[stamp] = value
            for old in sorted(self._values)[:-self._size]:
                del self._values[old]

    def at(self, stamp: float) -> tuple[Any, bool] | None:
        """The value sensed at ``stamp`` (exact: True), else the newest one (exact: False), or None."""
        with self._lock:
            if stamp in self._values:
                return self._values[stamp], True
            if not self._values:
                return None
            return self._values[max(self._values)], False


def new_source_id() -> int:
    """An id a publishing node draws at each start, so its readers know its sequence numbers and
    stamps began again (see ``context.SourceOrder``); never 0, which messages leave for 'unset'."""
    return secrets.randbits(63) | 1
