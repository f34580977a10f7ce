"""The hierarchical tuner (paper §4.3.2): grid search over the pipeline degrees (and α for diffusion).

1. Throughput first, because it is cheap: every (pp_perception, pp_generation, fetch_offset, α) of the
   grid with L ≤ ``max_in_flight`` gets its decisions per second (measured on this machine by a short
   wall-clock run, or from a stage-cost model), and only those meeting the target go on.
2. Accuracy in the simulator: the survivors run the same seeded closed-loop episodes as SEQ.
3. The answer: the survivors with the best success rate (ties: more throughput first).

    python -m auras_ros.eval.tuner --policy diffusion --target 2.5 [--episodes N]
"""

from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm import tqdm

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import Agent, chunk_rows
from auras_ros.core.stats import mean
from auras_ros.eval.episodes import SEQ, measure_wall, run_episode
from auras_ros.eval.policies import add_policy_arguments, load_policy
from auras_ros.eval.task import CatchTask

ThroughputFn = Callable[[ExecutorSpec], float]


@dataclass(frozen=True)
class TunerConfig:
    target: float  # required throughput, as a multiple of SEQ's decisions/s
    pp_perception: tuple[int, ...] = (1, 2)
    pp_generation: tuple[int, ...] = (1, 2, 3, 5)
    fetch_offsets: tuple[int, ...] = (0, -1)
    alphas: tuple[float, ...] = (0.0,)
    max_in_flight: int = 8
    episodes: int = 20
    seed0: int = 0


@dataclass
class Candidate:
    spec: ExecutorSpec
    throughput_vs_seq: float
    success_rate: float = math.nan  # NaN: not checked (missed the throughput target)

    @property
    def meets_target(self) -> bool:
        return not math.isnan(self.success_rate)


@dataclass
class TuneResult:
    seq_success: float
    best: list[Candidate]
    candidates: list[Candidate] = field(default_factory=list)


def cost_model(perception_s: float, iteration_s: float, iterations: int) -> ThroughputFn:
    """Decisions/s from stage costs (a merged/batched iteration costs as much as one; no contention):
    SEQ = 1 / (P + n·s); Auras frame = P/pp_p + (n/pp_g)·s at fetch 0, max of the two at fetch −1."""

    def throughput(spec: ExecutorSpec) -> float:
        if spec.kind == "seq":
            return 1.0 / (perception_s + iterations * iteration_s)
        per_stage = math.ceil(iterations / spec.pp_generation) * iteration_s
        perception = perception_s / spec.pp_perception
        frame = perception + per_stage if spec.fetch_offset == 0 else max(perception, per_stage)
        return 1.0 / frame

    return throughput


def candidates(agent: Agent, config: TunerConfig) -> list[ExecutorSpec]:
    specs = []
    for p, g, f, a in itertools.product(config.pp_perception, config.pp_generation, config.fetch_offsets, config.alphas):
        if p + g <= config.max_in_flight and p <= agent.max_perception_stages and g <= agent.generation_iterations:
            if a != 0.0 and g == 1:
                continue  # α only moves iterations between generation stages
            specs.append(ExecutorSpec("auras", p, g, f, float(a)))
    return specs


def success_rate(agent: Agent, spec: ExecutorSpec, task: CatchTask, seeds: list[int], chunk_rows: int) -> float:
    return mean([run_episode(agent, spec, task, seed, chunk_rows).success for seed in seeds])


def tune(agent: Agent, config: TunerConfig, chunk_rows: int, throughput: ThroughputFn,
         task: CatchTask | None = None, progress: bool = True) -> TuneResult:
    """``task``: the world to check accuracy in (an agent with privileged state must read this one)."""
    own = task is None
    task = CatchTask() if task is None else task
    seeds = list(range(config.seed0, config.seed0 + config.episodes))
    seq_rate = throughput(SEQ)
    found = [Candidate(spec, throughput(spec) / seq_rate) for spec in candidates(agent, config)]
    passing = [c for c in found if c.throughput_vs_seq >= config.target]
    bar = tqdm(total=len(passing) + 1, desc="tuner: accuracy in the simulator", disable=not progress)
    seq_success = success_rate(agent, SEQ, task, seeds, chunk_rows)
    bar.update(1)
    for c in passing:
        c.success_rate = success_rate(agent, c.spec, task, seeds, chunk_rows)
        bar.update(1)
    bar.close()
    if own:
        task.close()
    top = max((c.success_rate for c in passing), default=math.nan)
    best = sorted((c for c in passing if c.success_rate == top), key=lambda c: -c.throughput_vs_seq)
    return TuneResult(seq_success, best, found)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Grid-search the Auras degrees for a throughput target.")
    add_policy_arguments(parser)
    parser.add_argument("--target", type=float, default=2.5, help="decisions/s as a multiple of SEQ's")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--max-in-flight", type=int, default=8)
    parser.add_argument("--wall-decisions", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent = load_policy(args.policy, args.checkpoint)
    alphas = (0.0, 1.0, 2.0) if args.policy == "diffusion" else (0.0,)
    config = TunerConfig(args.target, alphas=alphas, max_in_flight=args.max_in_flight, episodes=args.episodes)
    task = CatchTask()
    frames = [task.reset(s).data for s in range(4)]
    task.close()
    result = tune(agent, config, chunk_rows(agent),
                  lambda spec: measure_wall(agent, spec, frames, args.wall_decisions).decisions_per_s)
    print(f"SEQ success {result.seq_success:.2f}")
    for c in sorted(result.candidates, key=lambda c: -c.throughput_vs_seq):
        checked = f"success {c.success_rate:.2f}" if c.meets_target else "below target"
        print(f"  {c.spec.name:28s} {c.throughput_vs_seq:5.2f}x SEQ  {checked}")
    best = [f"{c.spec.name} ({c.throughput_vs_seq:.2f}x, success {c.success_rate:.2f})" for c in result.best]
    print("best:", ", ".join(best) or "none meets the target")


if __name__ == "__main__":
    main()
