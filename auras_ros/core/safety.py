"""The safety gate between generation and the robot, ROS-free: it decides which actions reach the
actuators and commands a stop when none fresh arrives.

Failing closed means every doubt ends in a stop:
- an action's age is judged on the gate's own clock from the action's observation stamp
  (``now - observation_stamp``), never from an age field the sender filled in;
- an action older than ``max_observation_age``, stamped further in the future than
  ``future_tolerance`` (a clock that cannot be trusted), with a non-finite element, an element
  outside ``[action_min, action_max]``, or a length the robot's outputs cannot map, is refused and
  counted by reason;
- the watchdog (:meth:`SafetyGate.tick`, called every control period) commands a stop when the
  command in force expires: no action was accepted for ``action_timeout`` (generation is gone), or the
  observation it was decided on grew older than ``max_observation_age`` (perception, the context or
  the camera is gone: generation may go on deciding on the last observation it has, and those actions
  are refused as stale, but the one in force must not outlive the same limit either). The stop comes
  at once, or, with ``deceleration`` > 0, as a ramp that scales the last command down so that its
  largest element falls by at most ``deceleration`` action units per second (the direction is kept);
- while a command is in force, the watchdog repeats it in every control period in which no action
  arrived, so the robot's own command timeout (a base controller's ``cmd_vel_timeout``, see
  :class:`CommandTimeout`) stops the robot when the gate itself dies or freezes;
- a jump of the clock (:meth:`SafetyGate.clock_jumped`: a bag loop, a simulator reset) stops at once:
  every age judged before it is meaningless.

Action chunks: an accepted action is a chunk of rows ``row_width`` wide (0: the whole action is one
row), played by a :class:`auras_ros.core.chunks.ChunkPlayer` one row per ``chunk_period`` under the
``overlap`` policy: with ``chunk_timing`` ``observation`` row k is due ``k`` periods after the
observation stamp (a late chunk skips the rows whose time has passed; one with no row left is refused
as ``late``), with ``arrival`` row 0 is due when the action arrives. The command in force is the row
due now; each tick plays the row due then. A chunk is the policy's plan for its rows' times, so it
plays to its end whatever the timeout; only then, with no newer chunk, the rules above apply to its
last row (held, then stopped or ramped down once it expired).

Times are seconds on one clock (wall or sim time); the gate never reads a clock itself.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from auras_ros.core.chunks import TIMINGS, ChunkPlayer, TimedChunk, check_period, row_index
from auras_ros.core.errors import ConfigError, one_of

# Why an action was refused (the keys of SafetyGate.refused).
STALE = "stale"
FUTURE = "future_stamp"
NON_FINITE = "non_finite"
OUT_OF_RANGE = "out_of_range"
BAD_LENGTH = "bad_length"
LATE = "late"  # chunk_timing observation: every row's time had passed when it arrived

# What a command is.
ACCEPTED = "accepted"  # an accepted action, as it came
RAMP = "ramp"  # a step of the ramp down after a timeout
STOP = "stop"  # all zeros: after a timeout, a ramp, a clock jump, or on deactivation
REPEAT = "repeat"  # the command in force again, for the robot's command timeout (no action this period)
ROW = "row"  # the row of the chunk in force due at this tick (no new action)

# Why the watchdog stopped (SafetyGate.stop_cause).
NO_ACTION = "no_action"  # nothing accepted for action_timeout
OLD_OBSERVATION = "old_observation"  # the command in force was decided on an observation now too old

# The robot's command timeout our launch files set (s): 3 of the gate's control periods (0.05 s), so a
# healthy gate's repeats never trip it and a dead or frozen gate stops the robot within 0.25 s.
BASE_COMMAND_TIMEOUT = 0.15


@dataclass(frozen=True)
class GateConfig:
    # 3 and 4 frames of the usual 0.05 s period: a fault upstream stops the robot within 0.25 s.
    action_timeout: float = 0.15  # s without an accepted action before the watchdog stops the robot
    max_observation_age: float = 0.2  # s; an action whose observation is older is refused, and stopped
    future_tolerance: float = 0.1  # s an observation stamp may lie ahead of the gate's clock
    action_min: float = -1.0  # bounds of every action element
    action_max: float = 1.0
    deceleration: float = 0.0  # action units per second of the ramp down; 0: stop at once
    min_length: int = 1  # the outputs need at least this many elements (of each row: they map the row due now)
    row_width: int = 0  # ... and a whole number of rows of this width (action chunks); 0: one row
    chunk_period: float = 0.05  # s between the rows of a chunk
    overlap: str = "replace"  # what plays when chunks overlap (core.chunks.OVERLAPS)
    chunk_timing: str = "arrival"  # row 0 is due at: "arrival" of the action, or its "observation" stamp

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
        if self.min_length < 1 or self.row_width < 0:
            raise ConfigError("min_length/row_width", (self.min_length, self.row_width),
                              "integers >= 1 and >= 0 (0: the whole action is one row)")
        if self.row_width and self.min_length > self.row_width:
            # The outputs map elements of the row due now (the Twist index.<field> parameters): a row
            # narrower than the highest mapped element could never be sent.
            raise ConfigError("row_width", self.row_width, f"0 (the whole action is one row) or at least "
                              f"min_length = {self.min_length}, the elements the outputs map from each row "
                              "(the Twist index.<field> parameters)")
        check_period(self.chunk_period)
        if self.chunk_timing not in TIMINGS:
            raise ConfigError("chunk_timing", self.chunk_timing, one_of(TIMINGS))


@dataclass(frozen=True)
class Command:
    """What the outputs send: ``action`` (the vector to execute now: a chunk row) and what kind of
    command it is; an ACCEPTED one also carries its whole ``chunk`` with the rows' times as it came, and
    the ``plan``: (row, target time) of each step the gate will play from now on with no newer chunk
    (:meth:`ChunkPlayer.plan`: under ensemble, blend or an aggregate the mixed rows, not the chunk's)."""

    action: np.ndarray
    kind: str
    chunk: TimedChunk | None = None
    plan: tuple[tuple[np.ndarray, float], ...] = ()


class SafetyGate:
    """Judges offered actions and runs the watchdog. Not thread-safe: call from one thread (the node's
    callbacks are mutually exclusive)."""

    def __init__(self, config: GateConfig) -> None:
        self.config = config
        # Checks the period and the overlap policy (ConfigError).
        self.player = ChunkPlayer(config.chunk_period, config.overlap)
        self.refused: Counter[str] = Counter()
        self.accepted = 0
        self.timeouts = 0  # watchdog stops
        self.stop_causes: Counter[str] = Counter()  # watchdog stops by cause (NO_ACTION, OLD_OBSERVATION)
        self.stop_cause = ""  # of the latest watchdog stop
        self.clock_jumps = 0
        self.stops = 0  # stop commands issued (timeouts, clock jumps and deactivations)
        self._last: np.ndarray | None = None  # the command in force (a chunk row), None once stopped
        self._scale = 1.0  # of _last, while ramping down
        self._last_accept: float | None = None
        self._last_observation = 0.0  # observation stamp of the command in force
        self._last_tick: float | None = None
        self._sent = False  # a command went out since the last tick

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
        if values.ndim != 1 or len(values) < c.min_length or (c.row_width and len(values) % c.row_width):
            return BAD_LENGTH
        if not np.all(np.isfinite(values)):
            return NON_FINITE
        if np.any(values < c.action_min) or np.any(values > c.action_max):
            return OUT_OF_RANGE
        rows = len(values) // (c.row_width or len(values))
        if row_index(self._row0_time(observation_stamp, now), c.chunk_period, now) >= rows:
            return LATE
        return None

    def _row0_time(self, observation_stamp: float, now: float) -> float:
        """When row 0 of an action arriving ``now`` is due (``chunk_timing``)."""
        return observation_stamp if self.config.chunk_timing == "observation" else now

    def _timed(self, values: np.ndarray, observation_stamp: float, now: float) -> TimedChunk:
        """The action as a chunk of rows with their times (a judged action: its length fits)."""
        c = self.config
        return TimedChunk(values.reshape(-1, c.row_width or len(values)), self._row0_time(observation_stamp, now),
                          c.chunk_period, now)

    def offer(self, action: Sequence[float], observation_stamp: float, now: float) -> Command | str:
        """The command for an arriving action (the row due now, and the chunk), or the reason it was
        refused (counted)."""
        reason = self.judge(action, observation_stamp, now)
        if reason is not None:
            self.refused[reason] += 1
            return reason
        self.accepted += 1
        chunk = self._timed(np.asarray(action, dtype=np.float64), observation_stamp, now)
        self.player.add(chunk.rows, chunk.stamp, now, chunk.rows.shape[1])
        row = self.player.row(now)
        assert row is not None  # judge refused a chunk with no row due now
        self._last = row.copy()
        self._scale = 1.0
        self._last_accept = now
        self._last_observation = observation_stamp
        self._last_tick = now
        self._sent = True
        return Command(row.copy(), ACCEPTED, chunk, tuple(self.player.plan(now)))

    def expiry(self, now: float) -> str | None:
        """Why the command in force must end now (NO_ACTION, OLD_OBSERVATION), or None."""
        if self._last_accept is None:
            return None
        if now - self._last_accept > self.config.action_timeout:
            return NO_ACTION
        if now - self._last_observation > self.config.max_observation_age:
            return OLD_OBSERVATION
        return None

    def tick(self, now: float) -> Command | None:
        """Once per control period: the row of the chunk in force due now (ROW; None when the action
        that arrived since the last tick sent that very row), and once the chunk has played to its
        end the watchdog: a ramp step or the stop once the command in force expired
        (:meth:`expiry`), else that command again (REPEAT) when no action went out since the last
        tick; None while nothing is owed."""
        if self._last is None or self._last_accept is None:
            return None
        dt = max(now - (self._last_tick if self._last_tick is not None else now), 0.0)
        self._last_tick = now
        row = self.player.row(now)
        if row is not None:
            sent, self._sent = self._sent, False
            if sent and np.array_equal(row, self._last):
                return None
            self._last = row.copy()
            return Command(row.copy(), ROW)
        cause = self.expiry(now)
        if cause is None:
            sent, self._sent = self._sent, False
            return None if sent else Command(self._last * self._scale, REPEAT)
        if self._scale == 1.0:
            self.timeouts += 1
            self.stop_causes[cause] += 1
            self.stop_cause = cause
        peak = float(np.max(np.abs(self._last)))
        if self.config.deceleration > 0 and peak > 0:
            self._scale = max(self._scale - self.config.deceleration * dt / peak, 0.0)
            if self._scale > 0:
                return Command(self._last * self._scale, RAMP)
        return self.stop()

    def clock_jumped(self) -> Command:
        """The clock jumped (back, or far forward): the age of the command in force, and of anything
        judged before, means nothing now. A stop at once; actions arriving afterwards are judged on the
        new clock (those decided before a backward jump carry stamps ahead of it: refused)."""
        self.clock_jumps += 1
        self._last_accept = None
        return self.stop()

    def stop(self) -> Command:
        """A stop command now (deactivation, or the end of a timeout); nothing is owed afterwards."""
        self.stops += 1
        length = len(self._last) if self._last is not None else max(self.config.min_length, self.config.row_width)
        self.player.clear()
        self._last = None
        self._scale = 1.0
        self._sent = True
        return Command(np.zeros(length), STOP)

    def counts(self) -> dict[str, int]:
        """Every counter by name, for stats and diagnostics."""
        return {"accepted": self.accepted, "timeouts": self.timeouts, "stops": self.stops,
                "clock_jumps": self.clock_jumps,
                **{f"timeouts_{cause}": n for cause, n in sorted(self.stop_causes.items())},
                **{f"refused_{reason}": n for reason, n in sorted(self.refused.items())}}


class CommandTimeout:
    """The robot's own line of defence behind the gate: a base controller's command timeout, as
    ros2_controllers' ``diff_drive_controller`` applies ``cmd_vel_timeout`` to stamped commands since
    Jazzy (twist_mux's per-input ``timeout`` works alike on arrival time):

    - on receipt, a command stamped 0 is stamped with the controller's clock; a command already older
      than ``timeout`` by its stamp is ignored (the controller warns and keeps what it had);
    - at each control update, the last command received is executed while its age (the controller's
      clock minus its stamp) is at most ``timeout``; after that the controller brakes to zero, and
      stays braked until a newer command is received.

    So the robot stops ``timeout`` after the last command the gate published, whether the gate died,
    froze or lost its link; the gate repeats the command in force every control period
    (:meth:`SafetyGate.tick`) so that a healthy gate never trips it. ``timeout`` 0: no timeout (a base
    without one; unlike ``diff_drive_controller``, where 0 disables only the check on receipt).
    Times are seconds on the controller's clock; the class never reads a clock itself."""

    def __init__(self, timeout: float) -> None:
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
            raise ConfigError("command_timeout", timeout, "a finite number of seconds >= 0 (0: no timeout)")
        self.timeout = float(timeout)
        self._timeout_ns = _ns(timeout)
        self._stamp: int | None = None  # of the command in force, ns
        self.ignored = 0  # commands already too old on receipt
        self.brakes = 0  # times the command in force timed out

    def receive(self, stamp: float, now: float) -> bool:
        """A command arrives, stamped ``stamp``; False when it is ignored as too old."""
        stamp_ns = _ns(now if stamp == 0 else stamp)
        if self._timeout_ns and _ns(now) - stamp_ns >= self._timeout_ns:
            self.ignored += 1
            return False
        self._stamp = stamp_ns
        return True

    def timed_out(self, now: float) -> bool:
        """At a control update: True once, when the command in force times out (from then on zero is
        executed, until :meth:`receive` takes a newer command)."""
        if not self._timeout_ns or self._stamp is None:
            return False
        if _ns(now) - self._stamp > self._timeout_ns:
            self._stamp = None  # braked until a newer command comes
            self.brakes += 1
            return True
        return False


def _ns(seconds: float) -> int:
    """Whole nanoseconds, as ROS times are: ages compare exactly at a boundary (0.15 s after 10.0 s)."""
    return round(seconds * 1e9)
