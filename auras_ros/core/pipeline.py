"""The Auras pipeline executor: controlled pipeline parallelism on a frame clock (paper §4.3).

Each frame runs ``pp_perception`` perception slices and ``pp_generation`` generation stages, each of a
different request, so at most ``L = pp_perception + pp_generation`` requests are in flight and, once
the pipeline is full, one decision leaves per frame. Perception writes its percept into the public
context slot of the current frame; generation reads slot ``frame + fetch_offset`` (0: perception
then generation in sequence; -1: both at once). All in-flight generation stages of a frame run as one
merged call of the agent, every one reading the same, freshest context.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from auras_ros.core.clock import Clock
from auras_ros.core.context import FETCH_OFFSETS, ContextEntry, ContextSnapshot, KeySpec, PublicContext, Verdict
from auras_ros.core.errors import ConfigError, InputError, one_of, positive_int
from auras_ros.core.inpaint import InpaintConfig
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.partition import stage_ranges
from auras_ros.core.runner import DecisionSink, Runner
from auras_ros.core.sources import ObservationSource
from auras_ros.core.stages import PERCEPT_KEY, Agent, GenerationStep, Observation

PUBLIC = "public"
CONTEXT_MODES = (PUBLIC, "private")
UNIFORM = 0.0  # alpha: every generation stage runs the same number of iterations


@dataclass(frozen=True)
class PipelineConfig:
    """The pipeline degrees and staleness knobs. ``context_mode='private'`` is naive pipelining: each
    request's generation only ever reads its own observation's percept (what Auras fixes)."""

    pp_perception: int
    pp_generation: int
    fetch_offset: int
    alpha: float = UNIFORM
    frame_period: float | None = None
    context_mode: str = PUBLIC

    def __post_init__(self) -> None:
        positive_int("pp_perception", self.pp_perception)
        positive_int("pp_generation", self.pp_generation)
        if self.fetch_offset not in FETCH_OFFSETS or isinstance(self.fetch_offset, bool):
            raise ConfigError("fetch_offset", self.fetch_offset, one_of(FETCH_OFFSETS))
        if not isinstance(self.alpha, (int, float)) or self.alpha != self.alpha or abs(self.alpha) == float("inf"):
            raise ConfigError("alpha", self.alpha, "a finite number (0 = uniform partition)")
        if self.context_mode not in CONTEXT_MODES:
            raise ConfigError("context_mode", self.context_mode, one_of(CONTEXT_MODES))

    @property
    def in_flight_limit(self) -> int:
        """L: the most requests ever in flight."""
        return self.pp_perception + self.pp_generation


@dataclass
class _Request:
    request_id: int
    observation: Observation
    carry: Any = None
    percept: ContextEntry | None = None  # its own percept (used in private mode)
    state: Any = None
    private_context: dict[str, Any] = field(default_factory=dict)
    reads: list[ContextEntry] = field(default_factory=list)  # percepts its generation steps read


class AurasPipeline(Runner):
    def __init__(self, agent: Agent, config: PipelineConfig, source: ObservationSource, clock: Clock, *,
                 context: PublicContext | None = None, recorder: MetricsRecorder | None = None,
                 on_decision: DecisionSink | None = None,
                 on_frame_end: Callable[[int, list[Decision]], None] | None = None,
                 inpaint: InpaintConfig | None = None) -> None:
        super().__init__(agent, source, clock, frame_period=config.frame_period, recorder=recorder,
                         on_decision=on_decision, inpaint=inpaint)
        if config.pp_perception > agent.max_perception_stages:
            raise ConfigError("pp_perception", config.pp_perception,
                              f"at most {agent.max_perception_stages} (this agent's perception slices)")
        self.config = config
        self.ranges = stage_ranges(agent.generation_iterations, config.pp_generation, config.alpha)
        self.context = context if context is not None else PublicContext([], clock)
        if PERCEPT_KEY not in self.context.keys:
            self.context.declare(KeySpec(PERCEPT_KEY))
        self.context.on_invalidate(lambda key: self.cancel_in_flight(f"context_changed:{key}"))
        self._on_frame_end = on_frame_end
        self._perception: list[_Request | None] = [None] * config.pp_perception
        self._generation: list[_Request | None] = [None] * config.pp_generation
        self._generation_keys: set[str] = set()
        self._cancel_reasons: list[str] = []
        self._cancel_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=config.pp_perception, thread_name_prefix="perception")
        self.last_error: Exception | None = None

    # -- public controls ---------------------------------------------------------------------------
    @property
    def in_flight(self) -> int:
        return sum(r is not None for r in self._perception + self._generation)

    def cancel_in_flight(self, reason: str) -> None:
        """Cancel every in-flight request at the next frame start (thread-safe); they are counted."""
        with self._cancel_lock:
            self._cancel_reasons.append(reason)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- one frame ---------------------------------------------------------------------------------
    def step(self) -> list[Decision]:
        self.begin_frame()
        frame = self.frame
        self.context.begin_frame(frame)
        self._apply_cancels()
        observation = self.take_observation()
        if observation is not None:
            self._perception[0] = _Request(self.new_request_id(), observation)
        self.recorder.in_flight(self.in_flight)

        frame_started = time.perf_counter()
        tasks = [(stage, request) for stage, request in enumerate(self._perception) if request is not None]
        if self.config.fetch_offset == 0 and len(tasks) == 1:
            self._perceive(*tasks[0], frame)  # nothing to overlap with: skip the thread hand-off
            tasks = []
        perception = [self._pool.submit(self._perceive, stage, request, frame) for stage, request in tasks]
        if self.config.fetch_offset == 0:
            self._wait(perception)
        started = time.perf_counter()
        finished, generated = self._generate(frame)
        self.recorder.stage("generation", time.perf_counter() - started)
        self._wait(perception)
        self.recorder.stage("frame", time.perf_counter() - frame_started)

        decision_time = self.end_frame_compute()
        decisions = [self._decide(request, decision_time, frame) for request in finished]
        for decision in decisions:
            self.emit(decision)
        self._advance(generated)
        if self._on_frame_end is not None:
            self._on_frame_end(frame, decisions)
        self.end_frame()
        return decisions

    def _wait(self, futures: list[Future]) -> None:
        for future in futures:
            future.result()
        futures.clear()

    def _perceive(self, stage: int, request: _Request, frame: int) -> None:
        started = time.perf_counter()
        try:
            carry = self.agent.perceive(request.observation if stage == 0 else request.carry, stage,
                                        self.config.pp_perception)
        except InputError as error:
            # One bad observation must not stop the pipeline: drop it, keep the others.
            self.last_error = error
            self.recorder.drop("bad_input")
            self._perception[stage] = None
            return
        finally:
            self.recorder.stage(f"perception[{stage}]", time.perf_counter() - started)
        request.carry = carry
        if stage == self.config.pp_perception - 1:
            request.percept = self.context.write(PERCEPT_KEY, carry, stamp=request.observation.stamp,
                                                 seq=request.observation.seq, frame=frame)

    def _generate(self, frame: int) -> tuple[list[_Request], bool]:
        """Run this frame's generation stages; returns the requests that finished and whether it ran."""
        active = [(stage, r) for stage, r in enumerate(self._generation) if r is not None]
        if not active:
            return [], True
        for _, request in active:
            if request.state is None:
                request.state = self.agent.init_request(request.request_id)
        if self.config.context_mode == "public":
            ran = self._generate_public(frame, active)
        else:
            for stage, request in active:
                self._generate_private(stage, request)
            ran = True
        last = self._generation[-1]
        return ([last] if ran and last is not None else []), ran

    def _generate_public(self, frame: int, active: list[tuple[int, _Request]]) -> bool:
        snapshot = self._read_context(frame)
        for key, read in snapshot.items():
            if read.verdict is Verdict.STALE_HELD:
                self.recorder.drop(f"stale_held:{key}")
            elif read.verdict in (Verdict.DROPPED, Verdict.WAIT_TIMEOUT) or (
                    key == PERCEPT_KEY and read.verdict is Verdict.MISSING):
                # The policy forbids using what is there: skip this frame's generation, count it.
                self.recorder.drop(f"{read.verdict.value}:{key}")
                return False
        percept = snapshot[PERCEPT_KEY].entry
        assert percept is not None  # a missing percept returned above
        # inpaint: a request finishing in later frames reads newer percepts then, so its chunk's
        # stamp is predicted as many decision spacings on.
        final = self.config.pp_generation - 1
        steps = [GenerationStep(r.request_id, r.state, *self.ranges[stage], self.inpaint_for(percept.stamp, final - stage))
                 for stage, r in active if self.ranges[stage][0] < self.ranges[stage][1]]
        if steps:
            result = self.agent.generate(snapshot.values_by_key(), steps)
            by_id = {step.request_id: state for step, state in zip(steps, result.states, strict=False)}
            for key, value in result.context_writes.items():
                if key not in self.context.keys:
                    self.context.declare(KeySpec(key))
                self._generation_keys.add(key)
                self.context.write(key, value, stamp=percept.stamp, seq=percept.seq, frame=frame)
            for _, request in active:
                if request.request_id in by_id:
                    request.state = by_id[request.request_id]
                    request.reads.append(percept)
        return True

    def _read_context(self, frame: int) -> ContextSnapshot:
        """Every key as this frame's generation sees it. A ``wait`` on a key this pipeline writes itself
        (the percept, generation's own writes) never blocks: only its own frames write them, so the wait
        would hold the one thread that can end it; the frame is skipped (counted) and the next frame's
        percept ends the wait. A wait on a key others write ends early when the run stops."""
        own = {PERCEPT_KEY, *self._generation_keys}
        return ContextSnapshot({key: self.context.read(key, frame=frame, fetch_offset=self.config.fetch_offset,
                                                       block=key not in own, give_up=self.stopping)
                                for key in self.context.keys}, frame)

    def wake(self) -> None:
        self.context.wake_waiters()

    def _generate_private(self, stage: int, request: _Request) -> None:
        begin, end = self.ranges[stage]
        if begin == end:
            return
        assert request.percept is not None  # a request enters generation only with its percept
        values = {**request.private_context, PERCEPT_KEY: request.percept.value}
        inpaint = self.inpaint_for(request.percept.stamp)  # private: its own observation's stamp is its chunk's
        result = self.agent.generate(values, [GenerationStep(request.request_id, request.state, begin, end, inpaint)])
        request.state = result.states[0]
        request.private_context.update(result.context_writes)
        request.reads.append(request.percept)

    def _decide(self, request: _Request, decision_time: float, frame: int) -> Decision:
        freshest = max(request.reads, key=lambda e: e.stamp) if request.reads else request.percept
        assert freshest is not None  # a request that generated read a percept
        return Decision(
            request_id=request.request_id,
            output=self.agent.finish(request.state),
            observation_seq=freshest.seq,
            observation_stamp=freshest.stamp,
            context_stamps=tuple(e.stamp for e in request.reads),
            decision_time=decision_time,
            frame=frame,
            slot=request.request_id % self.config.in_flight_limit,
        )

    def _advance(self, generated: bool) -> None:
        """Every request moves one stage on; a stalled generation keeps its requests in place."""
        perceived = self._perception[-1]
        if perceived is not None and perceived.percept is None:
            perceived = None  # dropped for bad input in its last slice
        self._perception = [None, *self._perception[:-1]]
        if generated:
            self._generation = [perceived, *self._generation[:-1]]
        elif self._generation[0] is None:
            self._generation[0] = perceived
        elif perceived is not None:
            # Its percept already sits in the public context, where the stalled requests will read it.
            self.recorder.drop("generation_stalled")

    def _apply_cancels(self) -> None:
        with self._cancel_lock:
            reasons, self._cancel_reasons = self._cancel_reasons, []
        if not reasons:
            return
        cancelled = self.in_flight
        self._perception = [None] * len(self._perception)
        self._generation = [None] * len(self._generation)
        for key in self._generation_keys:
            self.context.clear(key)
        # Several reasons in one frame cancel the same requests once; the first reason is credited.
        self.recorder.cancel(reasons[0], cancelled)
