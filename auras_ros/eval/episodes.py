"""Running episodes: every executor (an :class:`ExecutorSpec`, built by ``core.spec.make_runner``)
against the catch task, frame-stepped or in wall time, and its wall-clock throughput.

**Frame-stepped** (the paper's protocol): the task is the pipeline's ObservationSource (``latest(now)``
is the current render stamped with the sim time), the executor runs on a :class:`SimClock`, and each
frame goes: ``runner.step()`` (it observes the world as it is now and returns the decisions that left
in this frame) → the :class:`ChunkExecutor` picks this frame's command → the world steps once. So every
executor gets one world step per frame, and only what it acts on (how stale) differs.

**Real time**: the world is a :class:`RealTimeWorld` (a thread steps it every ``frame_period / speed``
wall seconds). The executor runs on a :class:`WallClock` as fast as it can, taking the newest camera
frame (``core.pacing.FreshObservations``); each decision applies the moment it leaves (:class:`RealTimeActuator`,
the same receding-horizon rule). So the age of what the agent acts on is wall time, and costs frames.

**Throughput**: decisions per wall second come from a short wall-clock run of the same agent and
executor (frames as fast as possible, a camera that always has a new image), measured per executor
on this machine, in interleaved repeats.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict
from typing import Any, Callable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.inpaint import InpaintConfig
from auras_ros.core.metrics import Decision, MetricsRecorder, RunMetrics
from auras_ros.core.pacing import FreshObservations
from auras_ros.core.runner import RunnerThread
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import Agent, Observation, reset_episode, set_noise_scale
from auras_ros.core.stats import Spread, mean
from auras_ros.eval.actuation import ChunkExecutor, ClockedChunks
from auras_ros.eval.realtime_world import RealTimeWorld
from auras_ros.eval.seams import ChunkMetrics
from auras_ros.eval.results import (EpisodeResult, Evaluation, RealTimeEpisode, RealTimeEvaluation, summarize,
                                    summarize_realtime)
from auras_ros.eval.task import CatchTask, TaskConfig, TaskSource

SEQ = ExecutorSpec("seq")
WARMUP_SEED = 10 ** 6  # a warm-up episode's seed: none that is measured


def with_seq_first(specs: Sequence[ExecutorSpec]) -> list[ExecutorSpec]:
    """SEQ is every comparison's reference: always run, always first."""
    return [SEQ] + [s for s in specs if s.kind != "seq"]


# ---- frame-stepped ---------------------------------------------------------------------------------

def run_episode(agent: Agent, spec: ExecutorSpec, task: CatchTask, seed: int, chunk_rows: int,
                keep_actions: bool = False, timing: str = "arrival") -> EpisodeResult:
    task.reset(seed)
    reset_episode(agent)
    period = task.config.frame_period
    runner = make_runner(spec, agent, TaskSource(task), SimClock(), frame_period=period, chunk_rows=chunk_rows)
    executor = ChunkExecutor(chunk_rows, period, spec.chunk_overlap("replace"), timing=timing)
    ages: list[float] = []
    frames_of_decisions: list[int] = []
    actions: list[list[float]] = []
    try:
        while not task.done:
            decisions = runner.step()
            for d in decisions:
                ages.append(d.age / period)
                frames_of_decisions.append(task.frame)
            action = executor.next(decisions, task.time)
            if keep_actions:
                actions.append([float(v) for v in action])
            task.step(action)
    finally:
        runner.close()
    score = task.score
    return EpisodeResult(seed, score.success, score.frames, score.success_frame, score.tracking_error,
                         len(ages), ages, [float(v) for v in np.diff(frames_of_decisions)], actions)


class FreshCamera:
    """A camera faster than the agent: every ask gets a new frame (replayed renders, stamped now)."""

    def __init__(self, frames: list[Any], clock: WallClock) -> None:
        self._frames = frames
        self._clock = clock
        self._seq = -1

    def latest(self, now: float) -> Observation:
        self._seq += 1
        return Observation(self._seq, self._clock.now(), self._frames[self._seq % len(self._frames)])


def measure_wall(agent: Agent, spec: ExecutorSpec, frames: list[Any], decisions: int = 40,
                 chunk_period: float | None = None) -> RunMetrics:
    """A wall-clock run of ``spec`` on this machine (fill-up decisions not counted); ``chunk_period``:
    the seconds between chunk rows that ASYNC paces its requests by."""
    clock = WallClock()
    recorder = MetricsRecorder(warmup_decisions=spec.in_flight)
    runner = make_runner(spec, agent, FreshCamera(frames, clock), clock, recorder=recorder, chunk_period=chunk_period)
    try:
        # On a wall clock PAR and DEC run their own threads inside run(); SEQ and Auras step frames.
        runner.run(decisions=decisions)
    finally:
        runner.close()
    return recorder.summary()


def evaluate(agent: Agent, policy: str, specs: Sequence[ExecutorSpec], episodes: int, chunk_rows: int,
             task_config: TaskConfig = TaskConfig(), seed0: int = 0, wall_decisions: int = 40,
             wall_repeats: int = 3, progress: bool = True, task: CatchTask | None = None,
             timing: str = "arrival") -> Evaluation:
    """Every spec on the same seeds, SEQ first. ``task``: the world to run in (an agent with privileged
    state must read this one); by default a new one."""
    specs = with_seq_first(specs)
    own = task is None
    task = CatchTask(task_config) if task is None else task
    seeds = list(range(seed0, seed0 + episodes))
    per_spec: dict[ExecutorSpec, list[EpisodeResult]] = {}
    bar = tqdm(total=len(specs) * episodes, desc=f"closed loop ({policy})", disable=not progress)
    for spec in specs:
        runs = []
        for seed in seeds:
            runs.append(run_episode(agent, spec, task, seed, chunk_rows, timing=timing))
            bar.update(1)
            bar.set_postfix(config=spec.name, success=f"{mean([r.success for r in runs]):.2f}")
        per_spec[spec] = runs
    bar.close()
    frames = [task.reset(s).data for s in seeds[:8]]  # renders of the episodes feed the wall-clock camera
    if own:
        task.close()
    period = task.config.frame_period
    results = [summarize(spec, per_spec[spec], per_spec[SEQ], period) for spec in specs]
    if wall_decisions > 0:
        rates: dict[ExecutorSpec, list[float]] = {spec: [] for spec in specs}
        bar = tqdm(total=len(specs) * wall_repeats, desc="wall-clock throughput", disable=not progress)
        for _ in range(wall_repeats):  # interleaved repeats: machine load drifts, so SEQ is re-measured too
            for spec in specs:
                rates[spec].append(measure_wall(agent, spec, frames, wall_decisions, period).decisions_per_s)
                bar.update(1)
        bar.close()
        seq_rate = Spread.of(rates[SEQ]).median
        for spec, result in zip(specs, results, strict=False):
            result.decisions_per_s = Spread.of(rates[spec]).median
            result.throughput_vs_seq = result.decisions_per_s / seq_rate
    return Evaluation(policy, asdict(task.config), seeds, chunk_rows, torch.get_num_threads(), results,
                      chunk_timing=timing)


# ---- real time ---------------------------------------------------------------------------------------

class RealTimeActuator:
    """Decisions into the real-time world, rows aligned to wall time (:class:`ClockedChunks`): a new
    chunk's row due now is applied when the decision leaves, and before each world step the row due
    then; when its rows are played the last holds. ``now``: the world's clock. ``sources``: per world
    step, the request id of the chunk its command came from (:attr:`ChunkExecutor.source`)."""

    def __init__(self, world: RealTimeWorld, chunk_rows: int, now: Callable[[], float], timing: str = "arrival",
                 overlap: str = "replace") -> None:
        self.world = world
        # No lock of its own: the world calls on_tick under its lock and runs act() under it, and a
        # decision's command must reach the task under that same lock, between two steps.
        self._chunks = ClockedChunks(ChunkExecutor(chunk_rows, world.period, overlap, timing), now,
                                     lock=nullcontext())
        self.decisions: list[Decision] = []
        self.arrival_frames: list[int] = []  # world frame (steps done) when each decision was applied

    @property
    def sources(self) -> list[int | None]:
        return self._chunks.sources

    def on_decision(self, decision: Decision) -> None:
        def apply(task: CatchTask) -> None:  # under the world's lock: no step runs meanwhile
            task.apply(self._chunks.on_decision(decision))
            self.decisions.append(decision)
            self.arrival_frames.append(task.frame)

        if not self.world.done:
            self.world.act(apply)

    def on_tick(self) -> np.ndarray | None:
        """Called by the world under its lock before each step: the row due now (None before any
        decision: the agent stands still)."""
        command = self._chunks.on_tick()
        return command if self.decisions else None


def run_realtime_episode(agent: Agent, spec: ExecutorSpec, task: CatchTask, seed: int, chunk_rows: int,
                         speed: float, max_wall_s: float | None = None, timing: str = "arrival",
                         overlap: str = "replace", noise_scale: float | None = None) -> RealTimeEpisode:
    """One episode of ``spec`` against the world running in wall time; returns when the world ends
    (success or ``max_frames``) and the executor has stopped, with the played commands measured
    (:mod:`auras_ros.eval.seams`). ``noise_scale``: set on the agent for this episode and those after
    (:func:`~auras_ros.core.stages.set_noise_scale`); None leaves the agent's as it is."""
    clock = WallClock()
    actuator: RealTimeActuator | None = None
    world = RealTimeWorld(task, clock_now=clock.now, speed=speed, on_tick=lambda: actuator.on_tick())
    played = spec.chunk_overlap(overlap)
    actuator = RealTimeActuator(world, chunk_rows, clock.now, timing, played)
    source = FreshObservations(world, timeout=2 * world.period)
    reset_episode(agent)
    if noise_scale is not None:
        set_noise_scale(agent, noise_scale)
    # inpaint: every request is guided toward the newest emitted chunk, its rows a world period apart.
    inpaint = InpaintConfig(world.period) if played == "inpaint" else None
    runner = make_runner(spec, agent, source, clock, recorder=MetricsRecorder(), on_decision=actuator.on_decision,
                         chunk_rows=chunk_rows, chunk_period=world.period, inpaint=inpaint)
    limit = max_wall_s if max_wall_s is not None else 20 * task.config.max_frames * world.period + 10
    driver = RunnerThread(runner, f"realtime-{spec.name}", on_error=world.stop)
    started = clock.now()
    world.start(seed)
    driver.start()
    world.join(timeout=limit)
    score = world.stop()
    wall = clock.now() - started
    driver.finish()
    period = world.period
    ages = [d.age / period for d in actuator.decisions]
    times = [d.decision_time for d in actuator.decisions]
    episode = EpisodeResult(seed, score.success, score.frames, score.success_frame, score.tracking_error,
                            len(ages), ages, [float(v) / period for v in np.diff(times)])
    chunks = ChunkMetrics.of(score.commands, actuator.sources, task.config.frame_period, score.reversal_frame,
                             score.reversal_velocity)
    return RealTimeEpisode(episode, wall, world.overruns, chunks)


def measure_seq_latency(agent: Agent, frames: list[Any], requests: int = 30) -> dict:
    """SEQ's decision latency (perception + whole generation), ms, on this machine now."""
    measure_wall(agent, SEQ, frames, 3)  # unmeasured: first calls (a traced denoiser traces its batch shape)
    stages = measure_wall(agent, SEQ, frames, requests).stage_latency
    p50 = sum(stages[s].p50 for s in ("perception", "generation"))
    p99 = sum(stages[s].p99 for s in ("perception", "generation"))
    return {"p50": 1000 * p50, "p99": 1000 * p99,
            "perception_p50": 1000 * stages["perception"].p50, "generation_p50": 1000 * stages["generation"].p50}


PlayedRow = tuple[ExecutorSpec, str, float | None]
"""A row of the paired runs: (executor, overlap, the agent's noise scale: None leaves it as it is)."""


def warm_up(agent: Agent, rows: Sequence[PlayedRow], task: CatchTask, chunk_rows: int, speed: float,
            timing: str) -> None:
    """One unmeasured episode of each (executor, overlap, noise scale) row: first calls of each executor
    (thread pools, merged batch shapes) are not measured."""
    for spec, overlap, noise_scale in rows:
        run_realtime_episode(agent, spec, task, WARMUP_SEED, chunk_rows, speed, timing=timing, overlap=overlap,
                             noise_scale=noise_scale)


def play_paired(agent: Agent, rows: Sequence[PlayedRow], task: CatchTask, seeds: Sequence[int],
                chunk_rows: int, speed: float, timing: str, order_seed: int,
                on_episode: Callable[[int, int, RealTimeEpisode], None]) -> None:
    """Every (executor, overlap, noise scale) row on every seed, the rows of a seed back to back in an
    order shuffled by ``order_seed`` (so the rows share the machine's conditions);
    ``on_episode(row index, seed, run)`` after each episode."""
    order = np.random.default_rng(order_seed)
    for seed in seeds:
        for i in order.permutation(len(rows)):
            spec, overlap, noise_scale = rows[i]
            on_episode(int(i), seed, run_realtime_episode(agent, spec, task, seed, chunk_rows, speed, timing=timing,
                                                          overlap=overlap, noise_scale=noise_scale))


def evaluate_realtime(agent: Agent, policy: str, specs: Sequence[ExecutorSpec], episodes: int, chunk_rows: int,
                      speed: float, task_config: TaskConfig = TaskConfig(), seed0: int = 0,
                      warmup: bool = True, progress: bool = True, task: CatchTask | None = None,
                      latency: dict | None = None, timing: str = "arrival",
                      overlap: str = "replace") -> RealTimeEvaluation:
    """Every spec on the same seeds, interleaved per seed in a seeded shuffled order (so SEQ and each
    executor share the machine's conditions); SEQ is always run."""
    specs = with_seq_first(specs)
    task = CatchTask(task_config) if task is None else task
    seeds = list(range(seed0, seed0 + episodes))
    if latency is None:
        latency = measure_seq_latency(agent, [task.reset(s).data for s in seeds[:4]])
    rows = [(spec, overlap, None) for spec in specs]  # the agent's noise scale as the caller set it
    if warmup:
        warm_up(agent, rows, task, chunk_rows, speed, timing)
    runs: dict[ExecutorSpec, list[RealTimeEpisode]] = {s: [] for s in specs}
    bar = tqdm(total=len(specs) * episodes, desc=f"real-time closed loop ({policy}, speed {speed:g})",
               disable=not progress)

    def record(i: int, seed: int, run: RealTimeEpisode) -> None:
        runs[specs[i]].append(run)
        bar.update(1)

    play_paired(agent, rows, task, seeds, chunk_rows, speed, timing, seed0, record)
    bar.close()
    period = task.config.frame_period / speed
    results = [summarize_realtime(spec, runs[spec], runs[SEQ], period) for spec in specs]
    return RealTimeEvaluation(policy, asdict(task.config), speed, period, latency, seeds, chunk_rows,
                              torch.get_num_threads(), results, chunk_timing=timing, overlap=overlap)
