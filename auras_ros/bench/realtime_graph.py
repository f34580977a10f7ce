"""Real time through the ROS nodes against the core, side by side in one run: the same shipped policy,
world, speed, seeds and executors, through ``eval.realtime`` (the core: one process, no ROS) and through
``demo --world realtime`` (the composed graph with the simulator node), in interleaved repeats.

    python -m auras_ros.bench.realtime_graph --episodes 8 --seed 50000 --speed 3 --repeats 3

Per executor it prints decisions/s of each path (median [min–max] over repeats), the ratio nodes / core
(median of the per-repeat ratios, both paths measured within the same repeat), and success pooled over
the repeats with its Wilson interval, saying whether the nodes' success lies inside the core's interval.
Both paths are the code users run (``episodes.evaluate_realtime`` and ``demo.evaluate``), not copies.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field

import torch

from auras_ros import demo
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import chunk_rows
from auras_ros.core.stats import Spread, wilson
from auras_ros.eval.episodes import evaluate_realtime
from auras_ros.eval.policies import load_policy
from auras_ros.eval.cli import executor_argument

PATHS = ("core", "nodes")


@dataclass
class PathRuns:
    """One executor on one path over the repeats."""

    rates: list[float] = field(default_factory=list)  # decisions/s, one per repeat
    successes: list[bool] = field(default_factory=list)  # every episode of every repeat


def run_core(agent: object, specs: list[ExecutorSpec], args: argparse.Namespace, warmup: bool) -> dict[str, tuple]:
    ev = evaluate_realtime(agent, "diffusion", specs, args.episodes, chunk_rows(agent), args.speed, seed0=args.seed,
                           warmup=warmup, progress=False)
    return {r.config.spec: (r.decisions_per_s, r.config.successes) for r in ev.results}


def run_nodes(demo_args: argparse.Namespace) -> dict[str, tuple]:
    results = demo.evaluate(demo_args.rows, demo_args)
    return {str(r.spec): (r.decisions_per_s, [r.success[s] for s in sorted(r.success)]) for r in results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executors", type=executor_argument, nargs="+",
                        default=[ExecutorSpec("seq"), ExecutorSpec.parse("auras:1+4:f0:a0")])
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--seed", type=int, default=50000)
    parser.add_argument("--speed", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--trigger", choices=("image", "frame"), default="image", help="the nodes' perception trigger")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    agent = load_policy("diffusion")
    demo_parser = demo.build_parser()
    demo_args = demo.checked(demo_parser, demo_parser.parse_args([
        "--world", "realtime", "--speed", str(args.speed), "--episodes", str(args.episodes), "--seed", str(args.seed),
        "--block", str(args.episodes), "--threads", str(args.threads), "--trigger", args.trigger,
        "--chunk-rows", str(chunk_rows(agent)), "--executors", *(str(s) for s in args.executors)]))
    specs = list(args.executors)
    runs = {(str(s), p): PathRuns() for s in specs for p in PATHS}
    order = random.Random(args.seed)
    for repeat in range(args.repeats):
        for path in order.sample(PATHS, len(PATHS)):
            print(f"repeat {repeat + 1}/{args.repeats}: {path}", flush=True)
            measured = run_core(agent, specs, args, warmup=repeat == 0) if path == "core" else run_nodes(demo_args)
            for spec, (rate, successes) in measured.items():
                runs[spec, path].rates.append(rate)
                runs[spec, path].successes += successes
    print(f"\nreal time at speed {args.speed:g}, {args.episodes} episodes from seed {args.seed} x {args.repeats} "
          f"interleaved repeats; decisions/s median [min–max]; success pooled [95% CI]")
    print("| executor | core decisions/s | nodes decisions/s | nodes / core | core success | nodes success | within |")
    print("|---|---|---|---|---|---|---|")
    for spec in specs:
        core, nodes = runs[str(spec), "core"], runs[str(spec), "nodes"]
        ratio = Spread.of([n / c for n, c in zip(nodes.rates, core.rates, strict=True) if c > 0])
        core_ci = wilson(sum(core.successes), len(core.successes))
        nodes_rate = sum(nodes.successes) / len(nodes.successes)
        inside = core_ci[0] <= nodes_rate <= core_ci[1]
        print(f"| {spec} | {_spread(core.rates)} | {_spread(nodes.rates)} | {ratio.median:.2f} "
              f"[{ratio.low:.2f}–{ratio.high:.2f}] | {_success(core.successes)} | {_success(nodes.successes)} | "
              f"{'yes' if inside else 'no'} |")
    print(demo.machine_line(demo.policy_facts(demo_args.model, args.threads), args.threads))
    return 0


def _spread(values: list[float]) -> str:
    s = Spread.of(values)
    return f"{s.median:.1f} [{s.low:.1f}–{s.high:.1f}]"


def _success(successes: list[bool]) -> str:
    low, high = wilson(sum(successes), len(successes))
    return f"{sum(successes) / len(successes):.0%} [{low:.2f}–{high:.2f}]"


if __name__ == "__main__":
    sys.exit(main())
