"""Real-time closed-loop evaluation: the world runs in wall time and a slow agent pays.

    python -m auras_ros.eval.realtime --policy diffusion --speed 3 --episodes 30 [--json F]

The world is a :class:`RealTimeWorld`: a thread steps the MuJoCo task every ``frame_period / speed``
wall seconds (one world frame, ``substeps`` physics steps) and renders the camera at that rate. The
executor under test (SEQ, DEC, PAR(k) or an Auras pipeline, the core executors of
:mod:`auras_ros.core`) runs on a :class:`WallClock` as fast as it can, taking the newest camera frame
(:class:`CameraFeed`: when it has already seen the newest, it waits for the next one, as a camera
subscription would). Each decision is applied to the world the moment it leaves (under the world's
lock); the world plays it from its next step on, and plays the chunk's next rows on the following
steps until a newer decision replaces it (:class:`RealTimeActuator`, the same receding-horizon rule
as frame-stepped). So the age of what the agent acts on is wall time, and costs world frames.

**World speed**: ``speed`` scales world time against wall time without changing the per-frame
dynamics (the policies were trained frame-stepped at ``frame_period``). It is chosen from SEQ's
measured decision latency on this machine so that SEQ's latency spans several world frames, where
staleness costs success (see the report for the measured latency and the choice).

**Pairing**: every seed runs every configuration back to back, in a seeded shuffled order, so SEQ and
each configuration share the machine's conditions (other jobs on this 2-core machine come and go).
Success's ratio to SEQ has a paired bootstrap interval, decisions/s a per-episode bootstrap interval.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from auras_ros.core.clock import WallClock
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.pipeline import PipelineConfig
from auras_ros.core.stages import Agent, Observation
from auras_ros.core.stats import bootstrap_mean_ci
from auras_ros.eval.closed_loop import (POLICIES, ChunkExecutor, ConfigResult, EpisodeResult, FreshCamera, RunSpec,
                                        baseline_specs, load_policy, make_runner, success_cells, summarize,
                                        write_json)
from auras_ros.eval.task import CatchTask, RealTimeWorld, TaskConfig


class CameraFeed:
    """The real-time world as the executor's ObservationSource: the newest render; if the caller has
    already had it, wait (at most ``timeout``) for the next one instead of spinning."""

    def __init__(self, world: RealTimeWorld, timeout: float) -> None:
        self.world = world
        self.timeout = timeout
        self._handed = -1
        self._lock = threading.Lock()

    def latest(self, now: float) -> Observation | None:
        observation = self.world.latest(now)
        if observation is not None and observation.seq <= self._handed and not self.world.done:
            self.world.wait_newer(self._handed, self.timeout)
            observation = self.world.latest(now)
        if observation is not None:
            with self._lock:
                self._handed = max(self._handed, observation.seq)
        return observation


class RealTimeActuator:
    """Decisions into the real-time world: row 0 of a new chunk is applied when the decision leaves
    (it plays from the world's next step); each later step without a newer decision plays the next
    row (up to ``execute_rows``), then the last played row holds."""

    def __init__(self, world: RealTimeWorld, execute_rows: int) -> None:
        self.world = world
        self._executor = ChunkExecutor(execute_rows)
        self._fresh = False  # a new chunk's row 0 is set and has not played a step yet
        self.decisions: list[Decision] = []
        self.arrival_frames: list[int] = []  # world frame (steps done) when each decision was applied

    def on_decision(self, decision: Decision) -> None:
        def apply(task: CatchTask) -> None:  # under the world's lock: no step runs meanwhile
            task.apply(self._executor.next([decision]))
            self._fresh = True
            self.decisions.append(decision)
            self.arrival_frames.append(task.frame)

        if not self.world.done:
            self.world.act(apply)

    def on_tick(self) -> np.ndarray | None:
        """Called by the world under its lock before each step."""
        if self.decisions and not self._fresh:
            return self._executor.next([])
        self._fresh = False
        return None  # row 0 of the newest chunk (already applied), or standing still before any decision


@dataclass
class RealTimeEpisode:
    episode: EpisodeResult  # ages_frames: ages in world frames; intervals_frames: decision intervals in s
    wall_s: float
    overruns: int
    ages_s: list[float] = field(default_factory=list)


def run_realtime_episode(agent: Agent, spec: RunSpec, task: CatchTask, seed: int, execute_rows: int,
                         speed: float, max_wall_s: float | None = None) -> RealTimeEpisode:
    """One episode of ``spec`` against the world running in wall time; returns when the world ends
    (success or ``max_frames``) and the executor has stopped."""
    clock = WallClock()
    actuator: RealTimeActuator | None = None
    world = RealTimeWorld(task, clock_now=clock.now, speed=speed, on_tick=lambda: actuator.on_tick())
    actuator = RealTimeActuator(world, execute_rows)
    source = CameraFeed(world, timeout=2 * world.period)
    runner = make_runner(spec, agent, source, clock, None, MetricsRecorder(), on_decision=actuator.on_decision)
    limit = max_wall_s if max_wall_s is not None else 20 * task.config.max_frames * world.period + 10
    errors: list[BaseException] = []

    def drive() -> None:
        try:
            # SEQ and Auras step frames here; DEC and PAR run their own threads inside run().
            runner.run(decisions=10 ** 9)
        except BaseException as error:  # surfaced below
            errors.append(error)
            world.stop()

    started = clock.now()
    world.start(seed)
    driver = threading.Thread(target=drive, name=f"realtime-{spec.name}")
    driver.start()
    world.join(timeout=limit)
    score = world.stop()
    wall = clock.now() - started
    runner.stop()
    driver.join()
    runner.close()
    if errors:
        raise errors[0]
    period = world.period
    ages_s = [d.age for d in actuator.decisions]
    times = [d.decision_time for d in actuator.decisions]
    episode = EpisodeResult(seed, score.success, score.frames, score.success_frame, score.tracking_error,
                            len(ages_s), [a / period for a in ages_s], [float(v) for v in np.diff(times)])
    return RealTimeEpisode(episode, wall, world.overruns, ages_s)


# ---- the evaluation ------------------------------------------------------------------------------

@dataclass
class RealTimeResult:
    config: ConfigResult  # success, % of SEQ, ages (world frames and wall s), interval CV
    decisions_per_s: float
    decisions_per_s_ci: tuple[float, float]
    decisions_vs_seq: float  # paired: mean over seeds of (ours / SEQ) decisions/s
    overruns_per_episode: float
    wall_s: float
    per_episode_decisions_per_s: list[float] = field(default_factory=list)


@dataclass
class RealTimeEvaluation:
    policy: str
    task: dict
    speed: float
    world_period_s: float
    seq_latency_ms: dict
    seeds: list[int]
    execute_rows: int
    threads: int
    results: list[RealTimeResult]


def measure_seq_latency(agent: Agent, frames: list[Any], requests: int = 30) -> dict:
    """SEQ's decision latency (perception + whole generation), ms, on this machine now."""
    clock = WallClock()
    recorder = MetricsRecorder(warmup_decisions=3)
    runner = make_runner(RunSpec("seq"), agent, FreshCamera(frames, clock), clock, None, recorder)
    runner.run(decisions=requests)
    runner.close()
    stages = recorder.summary().stage_latency
    p50 = sum(stages[s].p50 for s in ("perception", "generation"))
    p99 = sum(stages[s].p99 for s in ("perception", "generation"))
    return {"p50": 1000 * p50, "p99": 1000 * p99,
            "perception_p50": 1000 * stages["perception"].p50, "generation_p50": 1000 * stages["generation"].p50}


def evaluate_realtime(agent: Agent, policy: str, specs: list[RunSpec], episodes: int, execute_rows: int,
                      speed: float, task_config: TaskConfig = TaskConfig(), seed0: int = 0,
                      warmup: bool = True, progress: bool = True, task: CatchTask | None = None,
                      latency: dict | None = None) -> RealTimeEvaluation:
    """Every spec on the same seeds, interleaved per seed in a seeded shuffled order; SEQ is always run."""
    if not any(s.kind == "seq" for s in specs):
        specs = [RunSpec("seq")] + list(specs)
    task = CatchTask(task_config) if task is None else task
    seeds = list(range(seed0, seed0 + episodes))
    if latency is None:
        frames = [task.reset(s).data for s in seeds[:4]]
        latency = measure_seq_latency(agent, frames)
    if warmup:  # first calls of each executor (thread pools, merged batch shapes) are not measured
        for spec in specs:
            run_realtime_episode(agent, spec, task, 10 ** 6, execute_rows, speed)
    runs: dict[str, list[RealTimeEpisode]] = {s.name: [] for s in specs}
    order_rng = np.random.default_rng(seed0)
    bar = tqdm(total=len(specs) * episodes, desc=f"real-time closed loop ({policy}, speed {speed:g})",
               disable=not progress)
    for seed in seeds:
        for i in order_rng.permutation(len(specs)):
            spec = specs[i]
            runs[spec.name].append(run_realtime_episode(agent, spec, task, seed, execute_rows, speed))
            bar.update(1)
        bar.set_postfix({s.name[:12]: f"{np.mean([r.episode.success for r in runs[s.name]]):.2f}" for s in specs[:4]})
    bar.close()
    period = task.config.frame_period / speed
    seq = runs["SEQ"]
    seq_rates = [r.episode.decisions / r.wall_s for r in seq]
    results = []
    for spec in specs:
        mine = runs[spec.name]
        config = summarize(spec, [r.episode for r in mine], [r.episode for r in seq], period)
        rates = [r.episode.decisions / r.wall_s for r in mine]
        paired = [a / b for a, b in zip(rates, seq_rates) if b > 0]
        config.decisions_per_s = float(np.mean(rates))
        config.throughput_vs_seq = float(np.mean(paired)) if paired else math.nan
        results.append(RealTimeResult(config, config.decisions_per_s, bootstrap_mean_ci(rates),
                                      config.throughput_vs_seq, float(np.mean([r.overruns for r in mine])),
                                      float(np.mean([r.wall_s for r in mine])), rates))
    return RealTimeEvaluation(policy, asdict(task.config), speed, period, latency, seeds, execute_rows,
                              torch.get_num_threads(), results)


def load_realtime(path: Path) -> RealTimeEvaluation:
    """A :class:`RealTimeEvaluation` back from the JSON that ``--json`` wrote."""
    data = json.loads(Path(path).read_text())
    results = []
    for r in data.pop("results"):
        c = r.pop("config")
        config = ConfigResult(**{**c, "success_ci": tuple(c["success_ci"]), "ratio_ci": tuple(c["ratio_ci"])})
        results.append(RealTimeResult(config, **{**r, "decisions_per_s_ci": tuple(r["decisions_per_s_ci"])}))
    return RealTimeEvaluation(**data, results=results)


def realtime_table(evaluation: RealTimeEvaluation) -> str:
    period_ms = 1000 * evaluation.world_period_s
    lines = [
        "| method | L | success | 95% CI | % of SEQ [95% CI] | decisions/s [95% CI] | x SEQ | "
        f"age p50/p99 (ms) | age p50/p99 (world frames of {period_ms:.1f} ms) | interval CV | "
        "time to success (frames) | world overruns/episode |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rt in evaluation.results:
        r = rt.config
        lines.append(
            success_cells(r) + f"| {rt.decisions_per_s:.1f} [{rt.decisions_per_s_ci[0]:.1f}–{rt.decisions_per_s_ci[1]:.1f}] "
            f"| {rt.decisions_vs_seq:.2f} | {1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f} "
            f"| {r.age_p50_frames:.1f}/{r.age_p99_frames:.1f} | {r.interval_cv:.2f} "
            f"| {r.mean_time_to_success:.1f} | {rt.overruns_per_episode:.1f} |")
    return "\n".join(lines)


def default_specs(policy: str, agent: Agent, args: argparse.Namespace) -> list[RunSpec]:
    specs = baseline_specs(args.dec, args.par)
    for text in args.auras:
        p, g, f, a = text.split(",")
        if int(p) <= agent.max_perception_stages and int(g) <= agent.generation_iterations:
            specs.append(RunSpec("auras", pipeline=PipelineConfig(int(p), int(g), int(f), float(a))))
    return specs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Real-time closed-loop SEQ/DEC/PAR/Auras evaluation.")
    parser.add_argument("--policy", choices=POLICIES, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--speed", type=float, default=3.0, help="world seconds per wall second")
    parser.add_argument("--par", type=int, nargs="*", default=[2, 3])
    parser.add_argument("--dec", type=int, nargs="*", default=[1])
    parser.add_argument("--auras", nargs="*", default=["1,5,0,0", "1,5,0,1", "1,2,0,0"],
                        help="pipeline configs as pp_perception,pp_generation,fetch_offset,alpha")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent, rows = load_policy(args.policy, args.checkpoint)
    specs = default_specs(args.policy, agent, args)
    evaluation = evaluate_realtime(agent, args.policy, specs, args.episodes, rows, args.speed, seed0=args.seed)
    lat = evaluation.seq_latency_ms
    print(f"SEQ decision latency on this machine: p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms; "
          f"world frame {1000 * evaluation.world_period_s:.1f} ms wall (speed {args.speed:g})")
    print(realtime_table(evaluation))
    if args.json:
        write_json(args.json, evaluation)
        print(f"wrote {args.json}; the report (python -m auras_ros.eval.report) renders it")


if __name__ == "__main__":
    main()
