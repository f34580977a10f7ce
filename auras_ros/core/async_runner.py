"""ASYNC: the peers' executor, LeRobot's asynchronous inference, as a baseline beside SEQ, DEC, PAR and Auras.

LeRobot (``async_inference/robot_client.py``) keeps one request in flight: the robot plays its action
queue and sends a new observation once ``queue size / chunk size <= chunk_size_threshold`` (default
0.5); the server infers one chunk at a time, and the client merges the overlap of the new chunk with
what is still queued by an aggregate function (here the ChunkPlayer's overlap policies of the same
names, :mod:`auras_ros.core.chunks`).

:class:`AsyncRunner` keeps that rule on this package's runners. It cannot see the queue of whoever
plays the chunks (the evaluators' ChunkExecutor, the action node's player: the generation node runs in
another process), so it estimates it from the chunk it last emitted: with that chunk's observation
stamp s, its ``chunk_rows`` H and the chunk row period p, the rows left at ``now`` are the rows whose
control step has not begun, ``H - max(0, floor((now - s) / p))`` (clamped to [0, H]: the time-aligned
rule of ``core.chunks``, under which row k is due from s + k·p). A request (perceive the newest
observation, then the whole generation, as SEQ's) starts when ``rows left / H <= threshold``, LeRobot's
comparison; before any chunk left, at once. LeRobot's client captures the observation it sends when the
queue runs low, so a request reads the observation sensed at its threshold time: run unpaced on a wall
clock, where the request wakes on the very tick a camera frame is sensed (stamps and threshold on one row
grid) and the newest observation there is still the previous frame's, an observation sensed more than
half a row before the threshold is set aside (counted as superseded) for the next the source hands (the
real-time world's source waits for it). Paced frames (a node's, begun by a new percept) read the frame
their pacer admitted. The threshold is kept as one time,
:meth:`AsyncRunner.request_time` (when the first row with few enough left after it begins,
``core.chunks.row_start``): the frame's check (:meth:`AsyncRunner.due`) and the wall-clock wait both
compare the clock with it, so they never disagree by a rounding error (which cost an idle frame on
wall-clock stamps). So it runs unchanged in the core's evaluators and in the generation node. A
request that yields no decision (no observation, bad input, a sink that refused it) leaves the
estimate as it was, so the next frame tries again.

On a simulated (frame-stepped) clock a request takes one frame, as SEQ's does, and a frame with
nothing to request passes. Run unpaced on a wall clock (``run()``, ``run_until`` without a pacer, no
fixed frame period) a step waits, interruptibly, until the threshold is crossed rather than spin; paced
frames (a node's pacer, whose lockstep world only moves after the next tick, or its frame timer) pass
without waiting.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from auras_ros.core.baselines import SequentialRunner
from auras_ros.core.chunks import check_period, row_index, row_start
from auras_ros.core.clock import Clock
from auras_ros.core.errors import ConfigError, positive_int
from auras_ros.core.metrics import Decision, RunMetrics
from auras_ros.core.pacing import Pacer
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import Agent, Observation

DEFAULT_THRESHOLD = 0.5  # LeRobot's chunk_size_threshold default
WAIT_SLICE_S = 0.05  # a wall-clock wait for the threshold re-reads the clock (and the stop) this often


def check_threshold(threshold: Any) -> float:
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ConfigError("async threshold", threshold, "a number in [0, 1]: the fraction of a chunk's rows left "
                          "when the next request starts (LeRobot's chunk_size_threshold)")
    return float(threshold)


class AsyncRunner(SequentialRunner):
    """ASYNC(threshold): SEQ's request (one at a time, the newest observation, the whole generation),
    started only when the chunk it last emitted runs low."""

    def __init__(self, agent: Agent, source: ObservationSource, clock: Clock, *, chunk_rows: int,
                 chunk_period: float, threshold: float = DEFAULT_THRESHOLD, **kwargs: Any) -> None:
        super().__init__(agent, source, clock, **kwargs)
        self.chunk_rows = positive_int("chunk_rows", chunk_rows)
        self.chunk_period = check_period(chunk_period)
        self.threshold = check_threshold(threshold)
        # The first row index at which rows left / H <= threshold (H: left at worst, 0 <= threshold).
        self.start_row = next(k for k in range(self.chunk_rows + 1)
                              if (self.chunk_rows - k) / self.chunk_rows <= self.threshold)
        self._playing: float | None = None  # observation stamp of the chunk it last emitted
        self._woken = threading.Event()
        self._unpaced = False  # inside run() or an unpaced run_until: nothing else waits between steps

    def rows_left(self, now: float) -> int:
        """Rows of the chunk it last emitted whose control step has not begun at ``now`` (0: none emitted)."""
        if self._playing is None:
            return 0
        begun = max(row_index(self._playing, self.chunk_period, now), 0)
        return max(self.chunk_rows - begun, 0)

    def request_time(self) -> float | None:
        """When the next request is due (None: now, no chunk has left yet): when row ``start_row`` of the
        chunk it last emitted begins, the first at which ``rows left / H <= threshold``."""
        if self._playing is None:
            return None
        return row_start(self._playing, self.chunk_period, self.start_row)

    def due(self, now: float) -> bool:
        """Whether a request starts at ``now``: LeRobot's ``queue / chunk size <= threshold``, read as
        ``now >= request_time()`` (the one comparison the wall-clock wait makes too)."""
        t = self.request_time()
        return t is None or now >= t

    def emit(self, decision: Decision) -> bool:
        left = super().emit(decision)
        if left:
            self._playing = decision.observation_stamp
        return left

    def run(self, decisions: int | None = None, frames: int | None = None) -> RunMetrics:
        self._unpaced = True
        try:
            return super().run(decisions, frames)
        finally:
            self._unpaced = False

    def run_until(self, stop: Callable[[], bool], pacer: Pacer | None = None,
                  after_frame: Callable[[], None] | None = None) -> None:
        self._unpaced = pacer is None
        try:
            super().run_until(stop, pacer, after_frame)
        finally:
            self._unpaced = False

    def take_observation(self, allow_repeat: bool = False) -> Observation | None:
        """The newest observation; unpaced on a wall clock, the one sensed at the threshold (module
        docstring): one sensed earlier is replaced by the next the source hands, if it hands a newer one."""
        observation = super().take_observation(allow_repeat)
        due = self.request_time()
        if observation is None or due is None or not self._waits_on_wall_clock() \
                or observation.stamp >= due - self.chunk_period / 2:
            return observation
        newer = self.source.latest(self.clock.now())
        if newer is None or (newer.seq, newer.stamp) == (observation.seq, observation.stamp):
            return observation  # a source that hands what it has: nothing sensed since
        self.recorder.drop("superseded")  # sensed while the rows were still queued
        return self.accept_observation(newer, allow_repeat)

    def _waits_on_wall_clock(self) -> bool:
        """Whether steps run back to back on a wall clock, waiting for the threshold themselves."""
        return self._unpaced and not self.clock.simulated and self.frame_period is None

    def step(self) -> list[Decision]:
        start = self.begin_frame()
        if self._waits_on_wall_clock() and not self.due(start):
            self._wait_until_due()
        if self.due(self.clock.now()):
            return super().step()  # its begin_frame keeps this frame's start
        self.end_frame()
        return []

    def _wait_until_due(self) -> None:
        """Sleep until the threshold is crossed, in slices (the clock may be a ROS clock on sim time),
        ending early on a stop or ``wake()``."""
        self._woken.clear()
        while not self.stopping():
            t = self.request_time()
            now = self.clock.now()
            if t is None or now >= t:
                return
            # In wall seconds: a replay's clock may run faster than the wall (bag_timed's ScaledClock).
            if self._woken.wait(min(max(self.clock.wall_until(t), 0.0), WAIT_SLICE_S)):
                return

    def wake(self) -> None:
        self._woken.set()
