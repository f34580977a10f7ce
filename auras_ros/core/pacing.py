"""When a frame-clocked executor (SEQ, Auras) runs its next frame, and how a source hands out fresh
observations: the pacing rules, in one place, for the generation node and the evaluations alike.

:class:`Pacer` decides before each frame, from a source of arrivals (what was perceived, counted by a
version that only grows):

- ``lockstep`` (frame-stepped worlds): the frame's tick asks the world for that frame's observation,
  and the frame runs once it arrived, so generation in frame t reads O_t; a tick or an observation
  lost on the way is asked again after ``tick_wait_s``.
- otherwise (real time) a frame with nothing in flight waits for a new arrival (at most
  ``percept_wait_s``) and is skipped without one; with ``per_percept`` every frame waits so (one frame
  per camera frame, each admitting a fresh observation), and runs anyway once requests are in flight.

:class:`FreshObservations` is the same rule on the pulling side: it hands each observation once and
waits (at most ``timeout``) for a newer one rather than handing the same again. :class:`FreshArrivals`
is that rule over pushed arrivals (the generation node's percepts), for DEC and PAR, whose own threads
take observations unpaced: each arrival is handed once, so they decide at most once per observation.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Protocol

from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import Observation


class Arrivals(Protocol):
    """Something that counts what arrived (``LatestObservation``, the generation node's percepts)."""

    @property
    def version(self) -> int: ...

    def wait_newer(self, version: int, timeout: float) -> bool: ...


class PushedObservations(Arrivals, Protocol):
    """Arrivals that also hold the newest observation (``LatestObservation``)."""

    def latest(self, now: float) -> Observation | None: ...


@dataclass(frozen=True)
class Pacing:
    lockstep: bool = False
    per_percept: bool = True
    percept_wait_s: float = 0.1  # a real-time frame waits this long for a new percept
    tick_wait_s: float = 0.5  # lockstep: a tick or observation not answered by then is asked again

    def __post_init__(self) -> None:
        for name in ("percept_wait_s", "tick_wait_s"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(name, value, "a finite number of seconds > 0")


class Pacer:
    """Applies :class:`Pacing` before each frame; ``tick(frame)`` tells the world a frame begins."""

    def __init__(self, pacing: Pacing, arrivals: Arrivals, tick: Callable[[int], None] | None = None) -> None:
        self.pacing = pacing
        self.arrivals = arrivals
        self.tick = tick or (lambda frame: None)
        self.admitted = arrivals.version

    def ready(self, frame: int, in_flight: int) -> bool:
        """Waits as the rules say; True when ``frame`` should run now, False to ask again."""
        pacing = self.pacing
        if pacing.lockstep:
            self.tick(frame)
            if not self.arrivals.wait_newer(self.admitted, pacing.tick_wait_s):
                return False  # the tick or the image was lost: ask again
        else:
            idle = in_flight == 0
            if (idle or pacing.per_percept) and not self.arrivals.wait_newer(self.admitted, pacing.percept_wait_s) \
                    and idle:
                return False  # nothing to admit and nothing in flight
            self.tick(frame)
        self.admitted = self.arrivals.version
        return True


class NewerObservations(Protocol):
    """A world that renders observations with growing ``seq`` (the real-time evaluation's world)."""

    def latest(self, now: float) -> Observation | None: ...

    def wait_newer(self, seq: int, timeout: float) -> bool: ...

    @property
    def done(self) -> bool: ...


class FreshObservations:
    """An :class:`~auras_ros.core.sources.ObservationSource` over ``world`` that hands each observation
    once: if the caller already had the newest, it waits (at most ``timeout``) for the next one."""

    def __init__(self, world: NewerObservations, timeout: float) -> None:
        self.world = world
        self.timeout = timeout
        self._handed = -1
        self._lock = threading.Lock()

    def latest(self, now: float) -> Observation | None:
        observation = self.world.latest(now)
        if observation is not None and observation.seq <= self._handed and not self.world.done:
            self.world.wait_newer(self._handed, self.timeout)
            observation = self.world.latest(now)
        if observation is not None:
            with self._lock:
                self._handed = max(self._handed, observation.seq)
        return observation


class FreshArrivals:
    """An :class:`~auras_ros.core.sources.ObservationSource` over ``arrivals`` that hands each arrival
    once, to one caller: a caller finding nothing new waits (at most ``timeout``) for the next arrival
    and gets None if none comes, never the observation it or another worker already had."""

    def __init__(self, arrivals: PushedObservations, timeout: float) -> None:
        if not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigError("timeout", timeout, "a finite number of seconds > 0")
        self.arrivals = arrivals
        self.timeout = timeout
        self._handed = arrivals.version  # hands what arrives from now on only
        self._lock = threading.Lock()  # one caller at a time: two workers never get the same arrival

    def latest(self, now: float) -> Observation | None:
        with self._lock:
            if self.arrivals.version <= self._handed and not self.arrivals.wait_newer(self._handed, self.timeout):
                return None
            # The observation first, then the version: an arrival between the two is skipped (marked
            # handed) rather than handed twice.
            observation = self.arrivals.latest(now)
            self._handed = self.arrivals.version
            return observation
