"""Where observations come from: the pipeline asks for the latest one at each frame start."""

from __future__ import annotations

import math
import secrets
import threading
from collections import Counter
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


# What SourceFence.admit says of a message.
ADMITTED = "admitted"
SECOND_SOURCE = "second_source"  # another producer than the one this role takes
FLOOD = "flood"  # the producer sends faster than max_rate_hz


class SourceFence:
    """One producer per role: the safety gate takes actions from one generation run, the context node a
    key's percepts from one perception run. Each message names its producer (a ``source_id`` drawn at each
    start: :func:`new_source_id`).

    The role takes the source fixed by configuration (``expected`` != 0: fenced), or else the first one it
    hears; another source is refused (counted, remembered as an intruder) while the one taken is alive.
    Unless fenced, a source silent for ``takeover_s`` is taken as gone (a restarted node draws a new id)
    and the next one heard is taken instead. Messages of the source taken beyond ``max_rate_hz`` (a token
    bucket holding one second's worth) are refused as a flood, so a runaway producer cannot drown the
    consumer (0: no limit). Times are seconds of a monotonic wall clock, from the caller. Not thread-safe.
    """

    def __init__(self, role: str, takeover_s: float, max_rate_hz: float, expected: int = 0) -> None:
        if not (math.isfinite(takeover_s) and takeover_s > 0):
            raise ConfigError(f"{role} takeover_s", takeover_s, "a finite number of seconds > 0")
        if not (math.isfinite(max_rate_hz) and max_rate_hz >= 0):
            raise ConfigError(f"{role} max_rate_hz", max_rate_hz, "a finite rate >= 0 (0: no limit)")
        if isinstance(expected, bool) or not isinstance(expected, int) or not 0 <= expected < 2**64:
            raise ConfigError(f"{role} expected source", expected, "an unsigned 64-bit source id (0: the first heard)")
        self.role = role
        self.takeover_s = float(takeover_s)
        self.max_rate_hz = float(max_rate_hz)
        self.expected = expected
        self.current: int | None = expected or None
        self.takeovers = 0  # sources taken after the first (restarts)
        self.refused: Counter[str] = Counter()
        self.intruder: int | None = None  # the latest source refused as a second one
        self._intruder_heard = -math.inf
        self._heard = -math.inf  # the source taken, last heard
        self._tokens = self.max_rate_hz
        self._refilled = -math.inf

    def admit(self, source: int, now: float) -> str:
        """ADMITTED, SECOND_SOURCE or FLOOD for a message of ``source`` arriving at ``now``."""
        if self.current is None or (not self.expected and source != self.current
                                    and now - self._heard > self.takeover_s):
            self.takeovers += self.current is not None
            self.current = source
            self._tokens, self._refilled = self.max_rate_hz, now
        if source != self.current:
            self.refused[SECOND_SOURCE] += 1
            self.intruder, self._intruder_heard = source, now
            return SECOND_SOURCE
        self._heard = now
        if self.max_rate_hz:
            self._tokens = min(self.max_rate_hz, self._tokens + max(now - self._refilled, 0.0) * self.max_rate_hz)
            self._refilled = now
            if self._tokens < 1.0:
                self.refused[FLOOD] += 1
                return FLOOD
            self._tokens -= 1.0
        return ADMITTED

    def conflict(self, now: float, within_s: float) -> str | None:
        """A line naming both sources when a second one was refused within the last ``within_s``."""
        if self.intruder is None or now - self._intruder_heard > within_s:
            return None
        return (f"{self.role}: two producers: source {self.current:#x} is taken, source {self.intruder:#x} "
                f"refused ({self.refused[SECOND_SOURCE]} messages so far)")

    def refusal(self, reason: str, now: float, unit: str) -> str:
        """Why a message was refused (``reason``: what :meth:`admit` said), for a log line: the conflict
        naming both producers, or the flood's rate limit in ``unit`` per second; with the counts so far."""
        why = self.conflict(now, 0.0) if reason == SECOND_SOURCE else None
        return f"{why or f'more than {self.max_rate_hz:g} {unit}/s'}; refused so far: {dict(self.refused)}"

    def counts(self) -> dict[str, int]:
        return {"takeovers": self.takeovers, **{f"refused_{k}": n for k, n in sorted(self.refused.items())}}


class Coalescer:
    """Changes faster than the pipeline can serve them, coalesced: at most one item passes per
    ``interval_s``; one arriving sooner is held, a newer one replaces it (counted in ``coalesced``), and
    the held one passes once the interval has run (:meth:`due`), so the newest always lands. For a value
    whose change cancels the requests in flight (an instruction): changes at 20 Hz would cancel every
    request; coalesced, requests started on one value can finish. Times are seconds of a monotonic clock
    from the caller. Not thread-safe."""

    def __init__(self, interval_s: float) -> None:
        if not (math.isfinite(interval_s) and interval_s >= 0):
            raise ConfigError("coalesce interval_s", interval_s, "a finite number of seconds >= 0 (0: none)")
        self.interval_s = float(interval_s)
        self.coalesced = 0
        self._held: Any = None
        self._holding = False
        self._passed = -math.inf  # when the last item passed

    def offer(self, item: Any, now: float) -> tuple[Any, ...]:
        """The items to apply now: ``(item,)`` or ``()`` when it is held."""
        if now - self._passed >= self.interval_s and not self._holding:
            self._passed = now
            return (item,)
        self.coalesced += self._holding
        self._held, self._holding = item, True
        return ()

    @property
    def holding(self) -> bool:
        """An item waits for its interval."""
        return self._holding

    def due(self, now: float) -> tuple[Any, ...]:
        """The held item once its interval has run, else ``()``."""
        if not self._holding or now - self._passed < self.interval_s:
            return ()
        item, self._held, self._holding = self._held, None, False
        self._passed = now
        return (item,)
