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
    """A world that renders observations with growing ``seq`` (the real-time evaluation's world);
    ``wait_newer`` returns at once when the world has ended."""

    def latest(self, now: float) -> Observation | None: ...

    def wait_newer(self, seq: int, timeout: float) -> bool: ...


class _HandedOnce:
    """The rule :class:`FreshObservations` and :class:`FreshArrivals` share: each observation is handed
    once, to one caller at a time; a caller that already had the newest waits (at most ``timeout``) for
    the next one. What differs is explicit: ``count(observation)``, the number that orders observations
    and that ``source.wait_newer`` waits past; ``handed``, the count of what was handed already; and
    ``hand_again``, what a caller gets when none came in time: the newest again (True) or None."""

    def __init__(self, source: NewerObservations, timeout: float, *, count: Callable[[Observation | None], int],
                 handed: int, hand_again: bool) -> None:
        if not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ConfigError("timeout", timeout, "a finite number of seconds > 0")
        self.timeout = timeout
        self._source = source
        self._count = count
        self._handed = handed
        self._hand_again = hand_again
        self._lock = threading.Lock()  # one caller at a time: two callers never get the same observation

    def latest(self, now: float) -> Observation | None:
        with self._lock:
            if self._count(self._source.latest(now)) <= self._handed \
                    and not self._source.wait_newer(self._handed, self.timeout) and not self._hand_again:
                return None
            observation = self._source.latest(now)
            self._handed = max(self._handed, self._count(observation))
            return observation


class FreshObservations(_HandedOnce):
    """An :class:`~auras_ros.core.sources.ObservationSource` over ``world`` that hands each observation
    once: if the caller already had the newest, it waits (at most ``timeout``) for the next one.

    Counted by the world's own ``seq``, from the newest there is at first. When none came in time (or
    the world ended) it hands the newest again: a runner counts it as no new observation, and PAR, which
    takes repeats, decides on it again."""

    def __init__(self, world: NewerObservations, timeout: float) -> None:
        super().__init__(world, timeout, count=lambda observation: -1 if observation is None else observation.seq,
                         handed=-1, hand_again=True)
        self.world = world


class FreshArrivals(_HandedOnce):
    """An :class:`~auras_ros.core.sources.ObservationSource` over ``arrivals`` that hands each arrival
    once, to one caller: a caller finding nothing new waits (at most ``timeout``) for the next arrival
    and gets None if none comes, never the observation it or another worker already had.

    Counted by the arrivals' ``version``, not the observation's seq (that restarts with its source), from
    what arrives after this was made."""

    def __init__(self, arrivals: PushedObservations, timeout: float) -> None:
        # The version is read after the observation it is counted for: an arrival between the two is
        # skipped (marked handed) rather than handed twice.
        super().__init__(arrivals, timeout, count=lambda observation: arrivals.version, handed=arrivals.version,
                         hand_again=False)
        self.arrivals = arrivals
