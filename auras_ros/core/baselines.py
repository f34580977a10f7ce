"""The baselines every comparison runs side by side with Auras, over the same Agent interface (paper §6.1):

- SEQ: strict sequence, one request at a time: perceive, then the whole generation.
- DEC: perception and generation in two threads; generation takes the latest percept, once (no new
  percept, no new decision). No control.
- PAR(k): k workers, each running whole requests on its own observation (private context).

On a simulated (frame-stepped) clock each baseline keeps its meaning in frames: SEQ makes one decision
per frame from that frame's observation; PAR(k) releases a request k frames after it started, from its
own observation, k in flight; DEC perceives every frame and its generation spans ``generation_frames``
frames, starting from the previous frame's percept.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Callable

from auras_ros.core.clock import Clock
from auras_ros.core.context import KeySpec, PublicContext
from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.core.metrics import Decision, RunMetrics
from auras_ros.core.pacing import Pacer
from auras_ros.core.runner import Runner
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import PERCEPT_KEY, Agent, AgentOutput, Observation, perceive_all


DEC_PERCEPT_WAIT_S = 0.1  # DEC's generation thread checks for a stop this often while no new percept comes


def _decision(request_id: int, output: AgentOutput, observation: Observation, t: float, frame: int,
              slot: int = 0) -> Decision:
    return Decision(request_id, output, observation.seq, observation.stamp, (observation.stamp,), t, frame, slot)


class SequentialRunner(Runner):
    """SEQ: one request per step, the agent's fastest sequential path (AR: prefill + KV cache)."""

    def step(self) -> list[Decision]:
        self.begin_frame()
        decisions = []
        observation = self.take_observation()
        if observation is not None:
            output = _whole_request(self, observation, self.new_request_id())
            if output is not None:
                decisions.append(_decision(output[0], output[1], observation, self.end_frame_compute(), self.frame))
        for decision in decisions:
            self.emit(decision)
        self.end_frame()
        return decisions


def _release(runner: Runner, decisions: list[Decision], t: float) -> list[Decision]:
    """Emit decisions computed in earlier frames as leaving now, at the end of this frame."""
    released = [replace(d, decision_time=t, frame=runner.frame) for d in decisions]
    for decision in released:
        runner.emit(decision)
    runner.end_frame()
    return released


class _ThreadedRunner(Runner):
    """DEC and PAR on a wall clock: their workers are threads of their own, so ``run_until`` runs them
    (restarted when one fails) until ``stop()`` or the ``stop`` callable holds (a node's health exit
    reaches them, not only its deactivation); the pacer does not apply, as they have no frames to pace."""

    def run_until(self, stop: Callable[[], bool], pacer: Pacer | None = None,
                  after_frame: Callable[[], None] | None = None) -> None:
        self._until = stop  # the workers poll stopping(), which reads it
        try:
            self.run_guarded()
        finally:
            self._until = None


def _reached(runner: Runner, decisions: int | None) -> bool:
    return decisions is not None and runner.recorder.decisions_recorded >= decisions


def _perceive(runner: Runner, observation: Observation) -> Any:
    """Every perception slice of one observation, timed; None (counted) for bad input."""
    started = time.perf_counter()
    try:
        percept = perceive_all(runner.agent, observation)
    except InputError:
        runner.recorder.drop("bad_input")
        return None
    runner.recorder.stage("perception", time.perf_counter() - started)
    return percept


def _whole_request(runner: Runner, observation: Observation, request_id: int) -> tuple[int, AgentOutput] | None:
    percept = _perceive(runner, observation)
    if percept is None:
        return None
    started = time.perf_counter()
    output = runner.generate_whole(percept, request_id, observation.stamp)
    runner.recorder.stage("generation", time.perf_counter() - started)
    return request_id, output


class ParallelRunner(_ThreadedRunner):
    """PAR(k): k workers each running whole requests with a private context.

    On a wall clock, ``frame_period`` (if set) is the admission interval, as in the paper, where the
    request interval matches Auras's frame interval; without it workers start requests as soon as
    they are idle. On a simulated clock a request takes ``workers`` frames.
    """

    def __init__(self, agent: Agent, source: ObservationSource, clock: Clock, workers: int, **kwargs: Any) -> None:
        positive_int("workers", workers)
        super().__init__(agent, source, clock, **kwargs)
        self.workers = workers
        self._pending: deque[tuple[int, Decision]] = deque()  # simulated clock: (release frame, decision)
        self._lock = threading.Lock()
        self._next_admit: float | None = None

    def step(self) -> list[Decision]:
        """Simulated clock only: one frame."""
        if not self.clock.simulated:
            raise ConfigError("clock", "wall", "run() for PAR on a wall clock (its workers are threads)")
        self.begin_frame()
        observation = self.take_observation()
        if observation is not None:
            output = _whole_request(self, observation, self.new_request_id())
            if output is not None:
                self._pending.append((self.frame + self.workers - 1, _decision(
                    output[0], output[1], observation, 0.0, 0, output[0] % self.workers)))
        self.recorder.in_flight(len(self._pending))
        t = self.end_frame_compute()
        released = []
        while self._pending and self._pending[0][0] <= self.frame:
            released.append(self._pending.popleft()[1])
        return _release(self, released, t)

    def run(self, decisions: int | None = None, frames: int | None = None) -> RunMetrics:
        if self.clock.simulated:
            return super().run(decisions, frames)
        stop = threading.Event()  # this run's own end; stopping() ends it from outside
        in_flight = [0]
        errors: list[BaseException] = []

        def worker(slot: int) -> None:
            try:
                while not (stop.is_set() or self.stopping()):
                    with self._lock:
                        if self.frame_period is not None:
                            now = self.clock.now()
                            self._next_admit = now if self._next_admit is None else max(self._next_admit, now)
                            admit_at = self._next_admit
                            self._next_admit += self.frame_period
                        else:
                            admit_at = None
                    if admit_at is not None:
                        self.clock.wait_until(admit_at)
                    with self._lock:
                        observation = self.take_observation(allow_repeat=True)
                        request_id = self.new_request_id()
                        in_flight[0] += 1
                        self.recorder.in_flight(in_flight[0])
                    if observation is None:
                        time.sleep(0.001)
                        with self._lock:
                            in_flight[0] -= 1
                        continue
                    output = _whole_request(self, observation, request_id)
                    with self._lock:
                        in_flight[0] -= 1
                        if output is not None and not stop.is_set():
                            self.emit(_decision(request_id, output[1], observation, self.clock.now(), 0, slot))
                            if _reached(self, decisions):
                                stop.set()
            except BaseException as error:  # noqa: BLE001 - surfaced in run(), never swallowed
                errors.append(error)
                stop.set()

        threads = [threading.Thread(target=worker, args=(k,), name=f"par-{k}") for k in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return self.recorder.summary()


class DecoupledRunner(_ThreadedRunner):
    """DEC: a perception thread keeps the latest percept; generation takes it, uncontrolled.

    On a simulated clock perception runs every frame and one generation spans ``generation_frames``.
    """

    def __init__(self, agent: Agent, source: ObservationSource, clock: Clock, generation_frames: int = 1,
                 **kwargs: Any) -> None:
        positive_int("generation_frames", generation_frames)
        super().__init__(agent, source, clock, **kwargs)
        self.generation_frames = generation_frames
        self.context = PublicContext([KeySpec(PERCEPT_KEY)], clock)
        self._pending: tuple[Decision, Any] | None = None

    def _perceive_latest(self) -> bool:
        observation = self.take_observation()
        percept = None if observation is None else _perceive(self, observation)
        if observation is None or percept is None:
            return False
        self.context.write(PERCEPT_KEY, percept, stamp=observation.stamp, seq=observation.seq, frame=self.frame)
        return True

    def _generate_latest(self, frame: int | None) -> Decision | None:
        read = self.context.read(PERCEPT_KEY, frame=frame, fetch_offset=-1 if frame is not None else 0)
        if read.entry is None:
            return None
        request_id = self.new_request_id()
        started = time.perf_counter()
        output = self.generate_whole(read.entry.value, request_id, read.entry.stamp)
        self.recorder.stage("generation", time.perf_counter() - started)
        entry = read.entry
        return Decision(request_id, output, entry.seq, entry.stamp, (entry.stamp,), 0.0, 0, 0)

    def step(self) -> list[Decision]:
        """Simulated clock only: one frame."""
        if not self.clock.simulated:
            raise ConfigError("clock", "wall", "run() for DEC on a wall clock (its stages are threads)")
        self.begin_frame()
        self.context.begin_frame(self.frame)
        self._perceive_latest()
        if self._pending is None:
            started = self._generate_latest(self.frame)
            if started is not None:
                self._pending = (started, self.frame + self.generation_frames - 1)
        self.recorder.in_flight(0 if self._pending is None else 1)
        t = self.end_frame_compute()
        released = []
        if self._pending is not None and self._pending[1] <= self.frame:
            released.append(self._pending[0])
            self._pending = None
        return _release(self, released, t)

    def run(self, decisions: int | None = None, frames: int | None = None) -> RunMetrics:
        if self.clock.simulated:
            return super().run(decisions, frames)
        stop = threading.Event()  # this run's own end; stopping() ends it from outside
        errors: list[BaseException] = []
        # Percepts written so far: generation starts only on one it has not generated from, so a
        # camera slower than generation gives one decision per observation, never the same one again.
        perceived = threading.Condition()
        written = [0]

        def perception_loop() -> None:
            try:
                while not (stop.is_set() or self.stopping()):
                    if not self._perceive_latest():
                        time.sleep(0.0005)  # no new camera frame yet: poll again shortly
                        continue
                    with perceived:
                        written[0] += 1
                        perceived.notify_all()
            except BaseException as error:  # noqa: BLE001 - surfaced in run(), never swallowed
                errors.append(error)
                stop.set()

        thread = threading.Thread(target=perception_loop, name="dec-perception")
        thread.start()
        used = 0
        try:
            while not (stop.is_set() or self.stopping() or _reached(self, decisions)):
                with perceived:
                    # Bounded, so that a stop from outside (which does not notify) is seen soon.
                    if written[0] == used:
                        perceived.wait(DEC_PERCEPT_WAIT_S)
                    if written[0] == used:
                        continue  # none yet: look at the stop, then wait again
                    used = written[0]
                decision = self._generate_latest(None)
                if decision is None:
                    continue
                self.recorder.in_flight(1)
                self.emit(replace(decision, decision_time=self.clock.now()))
        finally:
            stop.set()
            thread.join()
        if errors:
            raise errors[0]
        return self.recorder.summary()
