"""What every executor shares: the observation intake, decision emission, frame pacing and the run loop."""

from __future__ import annotations

import math
import threading
from typing import Callable

from auras_ros.core.clock import Clock
from auras_ros.core.errors import ConfigError
from auras_ros.core.metrics import Decision, MetricsRecorder, RunMetrics
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import Agent, Observation

DecisionSink = Callable[[Decision], None]


def check_frame_period(frame_period: float | None, clock: Clock) -> float | None:
    if frame_period is not None and (not math.isfinite(frame_period) or frame_period <= 0):
        raise ConfigError("frame_period", frame_period, "a finite number of seconds > 0, or None for as fast as possible")
    if clock.simulated and frame_period is None:
        raise ConfigError("frame_period", frame_period, "a fixed period in seconds with a simulated (frame-stepped) clock")
    return frame_period


class Runner:
    """Base of the Auras pipeline and the baselines: one ``step()`` is one frame (or one request)."""

    def __init__(self, agent: Agent, source: ObservationSource, clock: Clock, *,
                 frame_period: float | None = None, recorder: MetricsRecorder | None = None,
                 on_decision: DecisionSink | None = None) -> None:
        self.agent = agent
        self.source = source
        self.clock = clock
        self.frame_period = check_frame_period(frame_period, clock)
        self.recorder = recorder if recorder is not None else MetricsRecorder()
        self._on_decision = on_decision
        self._last_seq = -1
        self._next_request_id = 0
        self.frame = 0
        self._frame_start: float | None = None
        self._stop = threading.Event()  # ends a threaded run() early (node shutdown)

    # -- intake ----------------------------------------------------------------------------------
    def take_observation(self, allow_repeat: bool = False) -> Observation | None:
        """The freshest observation if it is new; skipped ones are counted as superseded."""
        observation = self.source.latest(self.clock.now())
        if observation is None:
            self.recorder.drop("no_observation")
            return None
        if observation.seq <= self._last_seq and not allow_repeat:
            self.recorder.drop("no_new_observation")
            return None
        if observation.seq > self._last_seq + 1 and self._last_seq >= 0:
            self.recorder.drop("superseded", observation.seq - self._last_seq - 1)
        self._last_seq = max(self._last_seq, observation.seq)
        return observation

    def new_request_id(self) -> int:
        request_id = self._next_request_id
        self._next_request_id += 1
        return request_id

    # -- emission --------------------------------------------------------------------------------
    def emit(self, decision: Decision) -> None:
        self.recorder.decision(decision)
        if self._on_decision is not None:
            self._on_decision(decision)

    # -- pacing ----------------------------------------------------------------------------------
    def begin_frame(self) -> float:
        if self._frame_start is None:
            self._frame_start = self.clock.now()
        return self._frame_start

    def end_frame_compute(self) -> float:
        """Time at which this frame's decisions leave: on a simulated clock the frame's end."""
        if self.clock.simulated:
            self.clock.wait_until(self._frame_start + self.frame_period)
        return self.clock.now()

    def end_frame(self) -> None:
        """Wait for the next frame tick (fixed period) or start it now (as fast as possible)."""
        self.frame += 1
        if self.frame_period is None:
            self._frame_start = None
            return
        next_start = self._frame_start + self.frame_period
        if self.clock.now() > next_start and not self.clock.simulated:
            self.recorder.drop("frame_overrun")
            next_start = self.clock.now()
        self.clock.wait_until(next_start)
        self._frame_start = next_start

    # -- the loop --------------------------------------------------------------------------------
    def step(self) -> list[Decision]:
        raise NotImplementedError

    def run(self, decisions: int | None = None, frames: int | None = None) -> RunMetrics:
        """Step until ``decisions`` decisions (after the recorder's warm-up) or ``frames`` frames."""
        if decisions is None and frames is None:
            raise ConfigError("decisions/frames", None, "at least one stop condition")
        start_frame = self.frame
        while not self._stop.is_set():
            if decisions is not None and self.recorder.decisions_recorded >= decisions:
                break
            if frames is not None and self.frame - start_frame >= frames:
                break
            self.step()
        return self.recorder.summary()

    def stop(self) -> None:
        """Make run() return, now or as soon as it starts (thread-safe; for good)."""
        self._stop.set()

    def close(self) -> None:
        """Release threads; the runner can't step afterwards."""
