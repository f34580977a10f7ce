"""The safety gate between generation and the robot, ROS-free: it decides which actions reach the
actuators and commands a stop when none fresh arrives.

Failing closed means every doubt ends in a stop:
- an action's age is judged on the gate's own clock from the action's observation stamp
  (``now - observation_stamp``), never from an age field the sender filled in;
- an action older than ``max_observation_age``, stamped further in the future than
  ``future_tolerance`` (a clock that cannot be trusted), with a non-finite element, an element
  outside ``[action_min, action_max]``, or a length the robot's outputs cannot map, is refused and
  counted by reason;
- the watchdog (:meth:`SafetyGate.tick`, called every control period) commands a stop when no
  action was accepted for ``action_timeout``: at once, or, with ``deceleration`` > 0, as a ramp
  that scales the last command down so that its largest element falls by at most ``deceleration``
  action units per second (the direction is kept), then the stop.

Times are seconds on one clock (wall or sim time); the gate never reads a clock itself.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from auras_ros.core.errors import ConfigError

# Why an action was refused (the keys of SafetyGate.refused).
STALE = "stale"
FUTURE = "future_stamp"
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
BAD_LENGTH = "bad_length"

# What a command is.
ACCEPTED = "accepted"  # an accepted action, as it came
RAMP = "ramp"  # a step of the ramp down after a timeout
STOP = "stop"  # all zeros: after a timeout, a ramp, or on deactivation


@dataclass(frozen=True)
class GateConfig:
    action_timeout: float = 0.5  # s without an accepted action before the watchdog stops the robot
    max_observation_age: float = 0.5  # s; an action whose observation is older is refused
    future_tolerance: float = 0.1  # s an observation stamp may lie ahead of the gate's clock
    action_min: float = -1.0  # bounds of every action element
    action_max: float = 1.0
    deceleration: float = 0.0  # action units per second of the ramp down; 0: stop at once
    min_length: int = 1  # the outputs need at least this many elements
    row_width: int = 1  # ... and a whole number of rows of this width (action chunks)

    def __post_init__(self) -> None:
        positive = {"action_timeout": self.action_timeout, "max_observation_age": self.max_observation_age}
        for name, value in positive.items():
            if not (math.isfinite(value) and value > 0):
                # A gate without a limit would not fail closed.
                raise ConfigError(name, value, "a finite number of seconds > 0")
        for name, value in {"future_tolerance": self.future_tolerance, "deceleration": self.deceleration}.items():
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(name, value, "a finite number >= 0")
        if not (math.isfinite(self.action_min) and math.isfinite(self.action_max)
                and self.action_min <= 0.0 <= self.action_max):
            # Zero is the stop command: it must lie in the accepted range.
            raise ConfigError("action_min..action_max", (self.action_min, self.action_max),
                              "finite bounds with action_min <= 0 <= action_max")
        if self.min_length < 1 or self.row_width < 1:
            raise ConfigError("min_length/row_width", (self.min_length, self.row_width), "integers >= 1")


@dataclass(frozen=True)
class Command:
    """What the outputs send: ``action`` (the vector to execute) and what kind of command it is."""

    action: np.ndarray
    kind: str


class SafetyGate:
    """Judges offered actions and runs the watchdog. Not thread-safe: call from one thread (the node's
    callbacks are mutually exclusive)."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.timeouts = 0  # watchdog stops
        self.stops = 0  # stop commands issued (timeouts and deactivations)
        self._last: np.ndarray | None = None  # the last accepted action, None once stopped
        self._scale = 1.0  # of _last, while ramping down
        self._last_accept: float | None = None
        self._last_tick: float | None = None

    @property
    def moving(self) -> bool:
        """An accepted action (or a ramp) is being executed: a stop is still owed when it ends."""
        return self._last is not None

    def judge(self, action: Sequence[float], observation_stamp: float, now: float) -> str | None:
        """Why ``action`` must not be executed (one of the refusal reasons), or None."""
        c = self.config
        age = now - observation_stamp
        if not math.isfinite(age) or age > c.max_observation_age:
            return STALE
        if age < -c.future_tolerance:
            return FUTURE
        values = np.asarray(action, dtype=np.float64)
        if values.ndim != 1 or len(values) < c.min_length or len(values) % c.row_width:
            return BAD_LENGTH
        if not np.all(np.isfinite(values)):
            return NON_FINITE
        if np.any(values < c.action_min) or np.any(values > c.action_max):
            return OUT_OF_RANGE
        return None

    def offer(self, action: Sequence[float], observation_stamp: float, now: float) -> Command | str:
        """The command for an arriving action, or the reason it was refused (counted)."""
        reason = self.judge(action, observation_stamp, now)
        if reason is not None:
            self.refused[reason] += 1
            return reason
        self.accepted += 1
        self._last = np.asarray(action, dtype=np.float64).copy()
        self._scale = 1.0
        self._last_accept = now
        self._last_tick = now
        return Command(self._last.copy(), ACCEPTED)

    def tick(self, now: float) -> Command | None:
        """The watchdog, once per control period: a ramp step or the stop when the last accepted
        action is older than ``action_timeout`` on arrival time; None while nothing is owed."""
        if self._last is None or self._last_accept is None:
            return None
        dt = max(now - (self._last_tick if self._last_tick is not None else now), 0.0)
        self._last_tick = now
        if now - self._last_accept <= self.config.action_timeout:
            return None
        if self._scale == 1.0:
            self.timeouts += 1
        peak = float(np.max(np.abs(self._last)))
        if self.config.deceleration > 0 and peak > 0:
            self._scale = max(self._scale - self.config.deceleration * dt / peak, 0.0)
            if self._scale > 0:
                return Command(self._last * self._scale, RAMP)
        return self.stop()

    def stop(self) -> Command:
        """A stop command now (deactivation, or the end of a timeout); nothing is owed afterwards."""
        self.stops += 1
        length = len(self._last) if self._last is not None else self.config.min_length
        self._last = None
        self._scale = 1.0
        return Command(np.zeros(length), STOP)

    def counts(self) -> dict[str, int]:
        """Every counter by name, for stats and diagnostics."""
        return {"accepted": self.accepted, "timeouts": self.timeouts, "stops": self.stops,
                **{f"refused_{reason}": n for reason, n in sorted(self.refused.items())}}
