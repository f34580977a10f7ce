"""Closed-loop evaluation: SEQ, DEC, PAR(k) and Auras on the same seeded episodes of the task.

    python -m auras_ros.eval.closed_loop --policy diffusion|ar --episodes N [grid options] [--report DIR]

**Frame-stepped** (the paper's protocol): the task is the pipeline's ObservationSource (``latest(now)``
is the current render stamped with the sim time), the core executors run on a :class:`SimClock`, and
each frame goes: ``runner.step()`` (it observes the world as it is now and returns the decisions that
left in this frame) → the action executor picks this frame's command → the world steps once. So every
method gets one world step per frame, and only what it acts on (how stale) differs.

**Action execution (receding horizon over chunks)**: both policies emit an action chunk (diffusion:
8 rows, AR: 4 rows, of (vx, vy)). A decision that leaves in a frame replaces the chunk and its row 0
is applied; in frames without a new decision the next rows play (up to ``execute_rows``), then the
last played row holds. Before the first decision the agent stands still.

**Throughput**: decisions per frame come from the frame-stepped run. Decisions per wall second come
from a short wall-clock run of the same agent and executor (``WallClock``, frames as fast as possible,
a camera that always has a new image), measured per configuration on this machine: that is what the
``x SEQ`` throughput column compares. Both numbers are reported, never mixed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.runner import Runner
from auras_ros.core.stages import Agent, Observation
from auras_ros.core.stats import paired_ratio_ci, wilson
from auras_ros.eval.task import CatchTask, EpisodeScore, TaskConfig, TaskSource

CHECKPOINTS = Path(__file__).parent / "checkpoints"
POLICIES = ("diffusion", "ar")


# ---- policies ---------------------------------------------------------------------------------

def load_policy(policy: str, directory: Path | None = None) -> tuple[Agent, int]:
    """The shipped (or given) checkpoint through its adapter's local loader, and the chunk rows to execute."""
    directory = Path(directory) if directory is not None else CHECKPOINTS / policy
    if policy == "diffusion":
        from auras_ros.models.diffusion import DiffusionPolicyAgent

        agent = DiffusionPolicyAgent.load(directory)
        return agent, agent.config.n_action_steps
    if policy == "ar":
        from auras_ros.models.ar_checkpoint import load_checkpoint

        agent = load_checkpoint(directory)
        return agent, agent.config.action_dims // 2
    raise ValueError(f"unknown policy {policy!r}: expected one of {POLICIES}")


# ---- what runs ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    """One method under test: a baseline or an Auras pipeline configuration."""

    kind: str  # "seq" | "dec" | "par" | "auras"
    workers: int = 1  # PAR(k)
    generation_frames: int = 1  # DEC
    pipeline: PipelineConfig | None = None

    @property
    def name(self) -> str:
        if self.kind == "seq":
            return "SEQ"
        if self.kind == "dec":
            return f"DEC({self.generation_frames})"
        if self.kind == "par":
            return f"PAR({self.workers})"
        p = self.pipeline
        mode = "" if p.context_mode == "public" else " private"
        return f"Auras({p.pp_perception}+{p.pp_generation}, f{p.fetch_offset}, a{p.alpha:g}){mode}"

    @property
    def in_flight(self) -> int:
        """L: requests in flight."""
        if self.kind == "par":
            return self.workers
        if self.kind == "dec":
            return 1 + self.generation_frames
        if self.kind == "auras":
            return self.pipeline.in_flight_limit
        return 1


def make_runner(spec: RunSpec, agent: Agent, source: Any, clock: Any, frame_period: float | None,
                recorder: MetricsRecorder | None = None, on_decision: Any = None) -> Runner:
    kwargs = dict(frame_period=frame_period, recorder=recorder, on_decision=on_decision)
    if spec.kind == "seq":
        return SequentialRunner(agent, source, clock, **kwargs)
    if spec.kind == "dec":
        return DecoupledRunner(agent, source, clock, generation_frames=spec.generation_frames, **kwargs)
    if spec.kind == "par":
        return ParallelRunner(agent, source, clock, workers=spec.workers, **kwargs)
    config = PipelineConfig(**{**asdict(spec.pipeline), "frame_period": frame_period})
    return AurasPipeline(agent, config, source, clock, recorder=recorder, on_decision=on_decision)


def grid(pp_perception: Iterable[int], pp_generation: Iterable[int], fetch_offsets: Iterable[int],
         alphas: Iterable[float], max_perception: int, iterations: int) -> list[RunSpec]:
    """Every Auras configuration of the grid this agent can run (pp_generation ≤ its iterations)."""
    specs = []
    for p, g, f, a in itertools.product(pp_perception, pp_generation, fetch_offsets, alphas):
        if p <= max_perception and g <= iterations:
            specs.append(RunSpec("auras", pipeline=PipelineConfig(p, g, f, float(a))))
    return specs


# ---- the world's side: executing decisions ------------------------------------------------------

class ChunkExecutor:
    """Receding-horizon execution of action chunks (see the module docstring)."""

    def __init__(self, execute_rows: int) -> None:
        self.execute_rows = execute_rows
        self._chunk: np.ndarray | None = None
        self._played = 0

    def next(self, decisions: Sequence[Decision]) -> np.ndarray:
        if decisions:
            # Several may leave in one frame (never in these executors, but be exact): newest wins.
            newest = max(decisions, key=lambda d: d.request_id)
            self._chunk = np.asarray(newest.output.action, dtype=np.float64).reshape(-1, 2)
            self._played = 0
        if self._chunk is None:
            return np.zeros(2)
        row = min(self._played, self.execute_rows - 1, len(self._chunk) - 1)
        self._played += 1
        return self._chunk[row]


# ---- frame-stepped episodes ---------------------------------------------------------------------

@dataclass
class EpisodeResult:
    seed: int
    success: bool
    frames: int
    success_frame: int | None
    tracking_error: float
    decisions: int
    ages_frames: list[float]  # observation age at actuation, in frames, per decision
    intervals_frames: list[int]  # frames between consecutive decisions
    actions: list[list[float]] = field(default_factory=list)


def run_episode(agent: Agent, spec: RunSpec, task: CatchTask, seed: int, execute_rows: int,
                keep_actions: bool = False) -> EpisodeResult:
    task.reset(seed)
    period = task.config.frame_period
    runner = make_runner(spec, agent, TaskSource(task), SimClock(), period)
    executor = ChunkExecutor(execute_rows)
    ages: list[float] = []
    frames_of_decisions: list[int] = []
    actions: list[list[float]] = []
    try:
        while not task.done:
            decisions = runner.step()
            for d in decisions:
                ages.append(d.age / period)
                frames_of_decisions.append(task.frame)
            action = executor.next(decisions)
            if keep_actions:
                actions.append([float(v) for v in action])
            task.step(action)
    finally:
        runner.close()
    score: EpisodeScore = task.score
    return EpisodeResult(seed, score.success, score.frames, score.success_frame, score.tracking_error,
                         len(ages), ages, [int(v) for v in np.diff(frames_of_decisions)], actions)


@dataclass
class ConfigResult:
    name: str
    kind: str
    in_flight: int
    pipeline: dict | None
    episodes: int
    success_rate: float
    success_ci: tuple[float, float]
    ratio_to_seq: float
    ratio_ci: tuple[float, float]
    decisions_per_frame: float
    age_p50_frames: float
    age_p99_frames: float
    age_p50_s: float
    age_p99_s: float
    interval_cv: float
    mean_time_to_success: float  # frames, over successful episodes
    tracking_error: float
    decisions_per_s: float = math.nan  # wall clock, measured
    throughput_vs_seq: float = math.nan
    successes: list[bool] = field(default_factory=list)
    ages_frames: list[float] = field(default_factory=list)


def summarize(spec: RunSpec, results: list[EpisodeResult], seq: list[EpisodeResult] | None, period: float) -> ConfigResult:
    successes = [r.success for r in results]
    n, k = len(results), sum(successes)
    ages = [a for r in results for a in r.ages_frames]
    intervals = [i for r in results for i in r.intervals_frames]
    seq_rate = None if seq is None else float(np.mean([r.success for r in seq]))
    rate = k / n if n else math.nan
    ratio = rate / seq_rate if seq_rate else math.nan
    ratio_ci = paired_ratio_ci(successes, [r.success for r in seq]) if seq else (math.nan, math.nan)
    mean_interval = float(np.mean(intervals)) if intervals else math.nan
    times = [r.success_frame for r in results if r.success_frame is not None]
    return ConfigResult(
        name=spec.name, kind=spec.kind, in_flight=spec.in_flight,
        pipeline=asdict(spec.pipeline) if spec.pipeline else None, episodes=n,
        success_rate=rate, success_ci=wilson(k, n), ratio_to_seq=ratio, ratio_ci=ratio_ci,
        decisions_per_frame=sum(r.decisions for r in results) / max(1, sum(r.frames for r in results)),
        age_p50_frames=float(np.percentile(ages, 50)) if ages else math.nan,
        age_p99_frames=float(np.percentile(ages, 99)) if ages else math.nan,
        age_p50_s=float(np.percentile(ages, 50)) * period if ages else math.nan,
        age_p99_s=float(np.percentile(ages, 99)) * period if ages else math.nan,
        interval_cv=float(np.std(intervals)) / mean_interval if intervals and mean_interval > 0 else math.nan,
        mean_time_to_success=float(np.mean(times)) if times else math.nan,
        tracking_error=float(np.mean([r.tracking_error for r in results])),
        successes=successes, ages_frames=ages,
    )


# ---- wall-clock throughput -----------------------------------------------------------------------

class FreshCamera:
    """A camera faster than the agent: every ask gets a new frame (replayed renders, stamped now)."""

    def __init__(self, frames: list[Any], clock: WallClock) -> None:
        self._frames = frames
        self._clock = clock
        self._seq = -1

    def latest(self, now: float) -> Observation:
        self._seq += 1
        return Observation(self._seq, self._clock.now(), self._frames[self._seq % len(self._frames)])


def measure_wall(agent: Agent, spec: RunSpec, frames: list[Any], decisions: int = 40) -> float:
    """Decisions per wall second of ``spec`` on this machine (fill-up decisions not counted)."""
    clock = WallClock()
    recorder = MetricsRecorder(warmup_decisions=spec.in_flight)
    runner = make_runner(spec, agent, FreshCamera(frames, clock), clock, None, recorder)
    try:
        # On a wall clock PAR and DEC run their own threads inside run(); SEQ and Auras step frames.
        metrics = runner.run(decisions=decisions)
    finally:
        runner.close()
    return metrics.decisions_per_s


# ---- the whole evaluation ------------------------------------------------------------------------

@dataclass
class Evaluation:
    policy: str
    task: dict
    seeds: list[int]
    execute_rows: int
    threads: int
    results: list[ConfigResult]


def evaluate(agent: Agent, policy: str, specs: list[RunSpec], episodes: int, execute_rows: int,
             task_config: TaskConfig = TaskConfig(), seed0: int = 0, wall_decisions: int = 40,
             wall_repeats: int = 3, progress: bool = True, task: CatchTask | None = None) -> Evaluation:
    """Every spec on the same seeds; SEQ is always run (first) as the reference. ``task``: the world
    to run in (an agent with privileged state must read this one); by default a new one."""
    if not specs or specs[0].kind != "seq":
        specs = [RunSpec("seq")] + [s for s in specs if s.kind != "seq"]
    own = task is None
    task = CatchTask(task_config) if task is None else task
    task_config = task.config
    seeds = list(range(seed0, seed0 + episodes))
    per_spec: dict[str, list[EpisodeResult]] = {}
    bar = tqdm(total=len(specs) * episodes, desc=f"closed loop ({policy})", disable=not progress)
    for spec in specs:
        runs = []
        for seed in seeds:
            runs.append(run_episode(agent, spec, task, seed, execute_rows))
            bar.update(1)
            bar.set_postfix(config=spec.name, success=f"{np.mean([r.success for r in runs]):.2f}")
        per_spec[spec.name] = runs
    bar.close()
    # Renders of the evaluation episodes feed the wall-clock camera.
    frames = [task.reset(s).data for s in seeds[:8]]
    if own:
        task.close()
    period = task_config.frame_period
    seq_runs = per_spec["SEQ"]
    results = [summarize(spec, per_spec[spec.name], seq_runs, period) for spec in specs]
    if wall_decisions > 0:
        bar = tqdm(total=len(specs) * wall_repeats, desc="wall-clock throughput", disable=not progress)
        rates: dict[str, list[float]] = {spec.name: [] for spec in specs}
        for _ in range(wall_repeats):  # interleaved repeats: machine load drifts, so SEQ is re-measured too
            for spec in specs:
                rates[spec.name].append(measure_wall(agent, spec, frames, wall_decisions))
                bar.update(1)
        bar.close()
        seq_rate = statistics.median(rates["SEQ"])
        for result in results:
            result.decisions_per_s = statistics.median(rates[result.name])
            result.throughput_vs_seq = result.decisions_per_s / seq_rate
    return Evaluation(policy, asdict(task_config), seeds, execute_rows, torch.get_num_threads(), results)


def headline(evaluation: Evaluation, min_ratio: float = 1.0) -> ConfigResult | None:
    """The Auras configuration with the most wall throughput among those keeping ≥ min_ratio of SEQ."""
    ok = [r for r in evaluation.results if r.kind == "auras" and r.ratio_to_seq >= min_ratio]
    return max(ok, key=lambda r: r.decisions_per_s if not math.isnan(r.decisions_per_s) else r.decisions_per_frame,
               default=None)


def table(evaluation: Evaluation) -> str:
    """The paper's '% of original accuracy at N x throughput' table, as Markdown."""
    lines = [
        "| method | L | success | 95% CI | % of SEQ [95% CI] | decisions/frame | decisions/s (wall) | x SEQ | age p50/p99 (frames) | age p50/p99 (ms) | interval CV | time to success (frames) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in evaluation.results:
        lines.append(
            success_cells(r) + f"| {r.decisions_per_frame:.2f} | {r.decisions_per_s:.1f} | {r.throughput_vs_seq:.2f} "
            f"| {r.age_p50_frames:.0f}/{r.age_p99_frames:.0f} | {1000 * r.age_p50_s:.0f}/{1000 * r.age_p99_s:.0f} "
            f"| {r.interval_cv:.2f} | {r.mean_time_to_success:.1f} |")
    return "\n".join(lines)


def baseline_specs(dec: Iterable[int], par: Iterable[int]) -> list[RunSpec]:
    """SEQ, then DEC(g) for each g, then PAR(k) for each k."""
    return ([RunSpec("seq")] + [RunSpec("dec", generation_frames=g) for g in dec]
            + [RunSpec("par", workers=k) for k in par])


def success_cells(r: ConfigResult) -> str:
    """The table cells every report shares: method, L, success with its CI, % of SEQ with its CI."""
    return (f"| {r.name} | {r.in_flight} | {r.success_rate:.2f} | {r.success_ci[0]:.2f}–{r.success_ci[1]:.2f} "
            f"| {100 * r.ratio_to_seq:.0f}% [{100 * r.ratio_ci[0]:.0f}–{100 * r.ratio_ci[1]:.0f}] ")


def default_specs(policy: str, agent: Agent, args: argparse.Namespace) -> list[RunSpec]:
    specs = baseline_specs(args.dec, args.par)
    specs += grid(args.pp_perception, args.pp_generation, args.fetch_offset, args.alpha,
                  agent.max_perception_stages, agent.generation_iterations)
    if args.naive:
        # Naive pipelining (private context) at the same degrees: what the public context fixes.
        specs += [RunSpec("auras", pipeline=PipelineConfig(p, g, f, 0.0, context_mode="private"))
                  for p, g, f in itertools.product(args.pp_perception, args.pp_generation, args.fetch_offset)
                  if p <= agent.max_perception_stages and g <= agent.generation_iterations]
    return specs


def to_json(evaluation: Evaluation) -> dict:
    return asdict(evaluation)


def write_json(path: Path, evaluation: Any) -> None:
    """An evaluation (any dataclass) as indented JSON, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(evaluation), indent=1))


def load_evaluation(path: Path) -> Evaluation:
    """An :class:`Evaluation` back from the JSON that ``--json`` wrote (to re-render a report)."""
    data = json.loads(Path(path).read_text())
    results = [ConfigResult(**{**r, "success_ci": tuple(r["success_ci"]), "ratio_ci": tuple(r["ratio_ci"])})
               for r in data.pop("results")]
    return Evaluation(**data, results=results)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Closed-loop SEQ/DEC/PAR/Auras evaluation in the MuJoCo task.")
    parser.add_argument("--policy", choices=POLICIES, required=True)
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0, help="first episode seed")
    parser.add_argument("--pp-perception", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pp-generation", type=int, nargs="+", default=None)
    parser.add_argument("--fetch-offset", type=int, nargs="+", default=[0, -1])
    parser.add_argument("--alpha", type=float, nargs="+", default=None)
    parser.add_argument("--par", type=int, nargs="*", default=[2, 3, 4])
    parser.add_argument("--dec", type=int, nargs="*", default=[2])
    parser.add_argument("--naive", action="store_true", help="also run naive pipelining (private context)")
    parser.add_argument("--wall-decisions", type=int, default=40, help="0 skips the wall-clock throughput runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="write the Markdown report with plots here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent, rows = load_policy(args.policy, args.checkpoint)
    if args.pp_generation is None:
        args.pp_generation = [2, 5] if args.policy == "diffusion" else [2, 4, 8]
    if args.alpha is None:
        # α skews the iterations over stages; merged AR generation ignores it (paper §6.4).
        args.alpha = [0.0, 1.0] if args.policy == "diffusion" else [0.0]
    specs = default_specs(args.policy, agent, args)
    evaluation = evaluate(agent, args.policy, specs, args.episodes, rows, seed0=args.seed,
                          wall_decisions=args.wall_decisions)
    print(table(evaluation))
    best = headline(evaluation)
    if best is not None:
        print(f"\nheadline: {best.name}: {100 * best.ratio_to_seq:.0f}% of SEQ success at "
              f"{best.throughput_vs_seq:.2f}x SEQ decisions/s (wall, this machine)")
    if args.json:
        write_json(args.json, evaluation)
    if args.report:
        from auras_ros.eval.report import write_report

        print(f"report: {write_report(evaluation, args.report)}")


if __name__ == "__main__":
    main()
