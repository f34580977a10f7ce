"""What every executor shares: the observation intake, decision emission, frame pacing and the run loop."""

from __future__ import annotations

import math
import threading
from collections import Counter
from typing import Callable

from auras_ros.core.clock import Clock
from auras_ros.core.context import StaleContextError
from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.core.inpaint import ExecutingChunks, Inpaint, InpaintConfig
from auras_ros.core.metrics import Decision, MetricsRecorder, RunMetrics
from auras_ros.core.pacing import Pacer
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import Agent, AgentOutput, Observation, generate_request, inpaints

# Where decisions go. A sink that returns False did not let the decision leave (a node being
# deactivated): the runner then does not count it as a decision, and the sink counts why.
DecisionSink = Callable[[Decision], "bool | None"]


def check_frame_period(frame_period: float | None, clock: Clock) -> float | None:
    if frame_period is not None and (not math.isfinite(frame_period) or frame_period <= 0):
        raise ConfigError("frame_period", frame_period, "a finite number of seconds > 0, or None for as fast as possible")
    if clock.simulated and frame_period is None:
        raise ConfigError("frame_period", frame_period, "a fixed period in seconds with a simulated (frame-stepped) clock")
    return frame_period


def fault_reason(error: BaseException) -> str:
    """A bounded name for what went wrong, to count faults by: the key or field, never the message."""
    if isinstance(error, StaleContextError):
        return f"stale_error:{error.key}"
    if isinstance(error, InputError):
        return f"bad_input:{error.what}"
    return f"frame_error:{type(error).__name__}"


class FrameFaults:
    """Exceptions caught at the frame boundary, counted by reason for the run's whole life.

    ``fatal`` turns true once ``fatal_after`` faults came with no decision in between: the runner can
    no longer work, and its owner should say so and exit rather than stay up doing nothing. (Frames
    with nothing to do in between do not reset it: only a decision shows the runner works.)
    """

    def __init__(self, fatal_after: int = 20) -> None:
        positive_int("fatal_after", fatal_after)
        self.fatal_after = fatal_after
        self.counts: Counter[str] = Counter()
        self.last_error: BaseException | None = None
        self.last_reason: str | None = None
        self.consecutive = 0
        self._lock = threading.Lock()

    def record(self, error: BaseException) -> str:
        reason = fault_reason(error)
        with self._lock:
            self.consecutive += 1
            self.counts[reason] += 1
            self.last_error, self.last_reason = error, reason
        return reason

    def succeeded(self) -> None:
        """A decision left: the runner works."""
        with self._lock:
            self.consecutive = 0
            self.last_reason = None

    @property
    def fatal(self) -> bool:
        return self.consecutive >= self.fatal_after

    @property
    def total(self) -> int:
        return sum(self.counts.values())


class Runner:
    """Base of the Auras pipeline and the baselines: one ``step()`` is one frame (or one request)."""

    def __init__(self, agent: Agent, source: ObservationSource, clock: Clock, *,
                 frame_period: float | None = None, recorder: MetricsRecorder | None = None,
                 on_decision: DecisionSink | None = None, inpaint: InpaintConfig | None = None) -> None:
        if inpaint is not None and not inpaints(agent):
            raise ConfigError("overlap", "inpaint", f"an agent that inpaints its chunks, not {type(agent).__name__}")
        self.agent = agent
        # inpaint: each request's chunk is guided toward the newest emitted one (core.inpaint).
        self.executing = None if inpaint is None else ExecutingChunks(inpaint)
        self.source = source
        self.clock = clock
        self.frame_period = check_frame_period(frame_period, clock)
        self.recorder = recorder if recorder is not None else MetricsRecorder()
        self._on_decision = on_decision
        self._last_taken: tuple[int, float] | None = None  # (seq, stamp) of the last observation taken
        self.faults = FrameFaults()
        self._next_request_id = 0
        self.frame = 0
        self._frame_start: float | None = None
        self._stop = threading.Event()  # ends a threaded run() early (node shutdown)
        self._until: Callable[[], bool] | None = None  # the stop of the run_until in progress

    # -- intake ----------------------------------------------------------------------------------
    def take_observation(self, allow_repeat: bool = False) -> Observation | None:
        """The freshest observation if it is new; skipped ones are counted as superseded.

        New means another (seq, stamp) than the last one taken, not a larger seq: a source that
        restarted numbers from 0 again, and its first observation must be taken at once (a
        restart is counted), not after its seq passed the old source's maximum.
        """
        observation = self.source.latest(self.clock.now())
        if observation is None:
            self.recorder.drop("no_observation")
            return None
        return self.accept_observation(observation, allow_repeat)

    def accept_observation(self, observation: Observation, allow_repeat: bool = False) -> Observation | None:
        """``observation`` from the source, taken if it is new (None, counted, if not): the bookkeeping of
        :meth:`take_observation`."""
        last = self._last_taken
        if last == (observation.seq, observation.stamp) and not allow_repeat:
            self.recorder.drop("no_new_observation")
            return None
        if last is not None and observation.seq < last[0]:
            self.recorder.drop("source_restart")
        elif last is not None and observation.seq > last[0] + 1:
            self.recorder.drop("superseded", observation.seq - last[0] - 1)
        self._last_taken = (observation.seq, observation.stamp)
        return observation

    def continue_request_ids(self, previous: "Runner") -> None:
        """Number requests on from ``previous``'s, so that a runner replacing a stopped one (a node's
        reactivation) never repeats a request id its actions already carried."""
        self._next_request_id = max(self._next_request_id, previous._next_request_id)

    def new_request_id(self) -> int:
        request_id = self._next_request_id
        self._next_request_id += 1
        return request_id

    # -- emission --------------------------------------------------------------------------------
    def emit(self, decision: Decision) -> bool:
        """Hand ``decision`` to the sink; whether it left (a sink that returned False kept it)."""
        if self._on_decision is not None and self._on_decision(decision) is False:
            return False
        self.recorder.decision(decision)
        if self.executing is not None and not self.executing.emitted(
                decision.request_id, decision.output.action, decision.observation_stamp, decision.age):
            self.recorder.drop("inpaint_nonfinite_chunk")
        return True

    def inpaint_for(self, stamp: float, finish_in: int = 0) -> Inpaint | None:
        """A request's :class:`Inpaint` (None without ``inpaint`` or before the first decision)."""
        return None if self.executing is None else self.executing.request(stamp, finish_in)

    def generate_whole(self, percept: object, request_id: int, stamp: float) -> AgentOutput:
        """A whole request on a fixed percept of an observation stamped ``stamp`` (the baselines' path)."""
        return generate_request(self.agent, percept, request_id, self.inpaint_for(stamp))

    # -- pacing ----------------------------------------------------------------------------------
    def begin_frame(self) -> float:
        if self._frame_start is None:
            self._frame_start = self.clock.now()
        return self._frame_start

    def end_frame_compute(self) -> float:
        """Time at which this frame's decisions leave: on a simulated clock the frame's end."""
        if self.clock.simulated:
            assert self._frame_start is not None and self.frame_period is not None  # simulated: a fixed period
            self.clock.wait_until(self._frame_start + self.frame_period)
        return self.clock.now()

    def end_frame(self) -> None:
        """Wait for the next frame tick (fixed period) or start it now (as fast as possible)."""
        self.frame += 1
        if self.frame_period is None:
            self._frame_start = None
            return
        start = self._frame_start if self._frame_start is not None else self.clock.now()  # a frame that never began
        next_start = start + self.frame_period
        if self.clock.now() > next_start and not self.clock.simulated:
            self.recorder.drop("frame_overrun")
            next_start = self.clock.now()
        self.clock.wait_until(next_start)
        self._frame_start = next_start

    # -- the loop --------------------------------------------------------------------------------
    def step(self) -> list[Decision]:
        raise NotImplementedError

    @property
    def in_flight(self) -> int:
        """Requests held across frames (the Auras pipeline's); SEQ holds none between its frames, and
        DEC and PAR keep theirs in their own threads."""
        return 0

    def cancel_in_flight(self, reason: str) -> None:
        """Drop the requests held across frames (counted); a runner that holds none has nothing to do."""

    def guarded_step(self) -> list[Decision]:
        """One frame, with any exception caught at the frame boundary: counted by reason in the
        recorder and in ``faults``, the frame's in-flight requests cancelled (their state may be
        half-updated), and the next frame starts afresh. A thread that runs frames calls this, so one
        bad input never ends it; ``faults.fatal`` says when it should give up."""
        try:
            decisions = self.step()
        except Exception as error:  # noqa: BLE001 - the frame boundary: every fault is counted, none ends the clock
            reason = self.faults.record(error)
            self.recorder.drop(reason)
            self.cancel_in_flight(reason)
            self.begin_frame()  # no-op when the frame had begun: the failed frame still takes its tick
            self.end_frame()
            return []
        if decisions:
            self.faults.succeeded()
        return decisions

    def run_until(self, stop: Callable[[], bool], pacer: Pacer | None = None,
                  after_frame: Callable[[], None] | None = None) -> None:
        """Frames until ``stop()``, ``self.stop()`` or ``faults.fatal``: each paced by ``pacer`` (None:
        back to back), run by ``guarded_step`` and followed by ``after_frame()``. What a node's frame
        thread runs; DEC and PAR override it (their workers run in threads of their own)."""
        self._until = stop
        try:
            while not (stop() or self._stop.is_set() or self.faults.fatal):
                if pacer is not None and not pacer.ready(self.frame, self.in_flight):
                    continue
                if stop():
                    return  # stopped while the pacer waited: no frame after that
                self.guarded_step()
                if after_frame is not None:
                    after_frame()
        finally:
            self._until = None

    def stopping(self) -> bool:
        """Whether the run should end: ``stop()`` was called, or the stop of ``run_until`` holds."""
        until = self._until
        return self._stop.is_set() or (until is not None and until())

    def wake(self) -> None:
        """Wake a frame blocked in a wait, to check ``stopping()`` again: its stopper calls this after
        making the stop true. A runner that never blocks mid-frame has nothing to wake."""

    def run_guarded(self, decisions: int | None = None) -> None:
        """``run`` in a thread of its own (DEC and PAR on a wall clock): an exception from a worker
        is counted and the workers start again, until ``decisions`` (None: no limit), ``stopping()`` or
        ``faults.fatal``."""
        while not self.stopping() and not self.faults.fatal:
            if decisions is not None and self.recorder.decisions_recorded >= decisions:
                return
            before = self.recorder.decisions_recorded
            try:
                self.run(decisions=decisions)
            except Exception as error:  # noqa: BLE001 - a dead worker is counted and replaced
                if self.recorder.decisions_recorded > before:
                    self.faults.succeeded()  # it worked for a while: not the same fault on every attempt
                self.recorder.drop(self.faults.record(error))

    def run(self, decisions: int | None = None, frames: int | None = None) -> RunMetrics:
        """Step until ``decisions`` decisions (after the recorder's warm-up), ``frames`` frames or
        ``stop()``; with neither limit it runs until ``stop()`` (an episode that ends the run itself)."""
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
        self.wake()

    def close(self) -> None:
        """Release threads; the runner can't step afterwards."""


class RunnerThread:
    """``runner.run()`` in a thread of its own, beside a world or a camera that runs in another (the
    real-time evaluators): an exception there calls ``on_error`` (so the world stops instead of waiting
    for decisions that never come) and is raised again by :meth:`finish`."""

    def __init__(self, runner: Runner, name: str, on_error: Callable[[], None]) -> None:
        self.runner = runner
        self._on_error = on_error
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._drive, name=name)

    def _drive(self) -> None:
        try:
            # Until finish() stops it. SEQ, ASYNC and Auras step frames here; DEC and PAR run their own
            # threads inside run().
            self.runner.run()
        except BaseException as error:  # noqa: BLE001 - raised again by finish()
            self._errors.append(error)
            self._on_error()

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        """Stop the runner, wait for its thread, close it; raise what the thread raised."""
        self.runner.stop()
        self._thread.join()
        self.runner.close()
        if self._errors:
            raise self._errors[0]
