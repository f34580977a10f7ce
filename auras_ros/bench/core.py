"""Benchmark of the ROS-free executors on a synthetic workload with real compute in every stage.

    python -m auras_ros.bench.core [--perception-ms 8] [--generation-ms 8] [--decisions 150] [--repeats 5]
                                   [--executors seq dec par:2 auras:1+3:f-1:a0 ...] [--load 1] [--json out.json]

Runs SEQ, DEC, PAR and the Auras pipeline at several degrees through the shipped runners
(``core.spec.make_runner``) on one machine in one process, in interleaved repeats, and prints for
each the median [min–max] of decisions/s, its ratio to SEQ within each repeat, decision-interval CV
and p99, and observation age p50/p99; then the executor's own overhead per frame against a bare
loop doing the same calls. torch runs one thread per stage so that two stages really use two cores.
``--load N`` runs N competing busy-loop processes for the whole measurement (``--load-nice 19``: as
background jobs that the benchmark preempts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from typing import Callable

import torch

from auras_ros.bench.repeats import add_arguments, busy_load, check_arguments, interleaved, measure, table
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.core.stats import Spread, percentile
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig

CAMERA_HZ = 1000.0  # faster than any executor here, so every frame finds a new observation
DEFAULT_EXECUTORS = ("seq", "dec", "par:2", "par:4", "auras:1+1:f-1:a0", "auras:1+2:f-1:a0", "auras:1+3:f-1:a0",
                     "auras:2+4:f-1:a0")
OVERHEAD_EXECUTORS = ("auras:1+1:f0:a0", "auras:1+1:f-1:a0")


def scene(seq: int, stamp: float) -> float:
    return (seq % 97) / 97


def calibrate(perception_ms: float, generation_ms: float, base: SyntheticConfig) -> SyntheticConfig:
    """Pick layer and iteration counts so one request's perception and generation cost what was asked."""
    probe = SyntheticAgent(replace(base, perception_layers=4, iterations=8))
    observation = Observation(0, 0.0, 0.5)
    percept = perceive_all(probe, observation)

    def best_of(fn: Callable[[], object], repeats: int = 20) -> float:
        fn()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
        return min(times)

    per_layer = best_of(lambda: perceive_all(probe, observation)) / 4
    per_iteration = best_of(lambda: probe.generate_request(percept, 0)) / 8
    return replace(base, perception_layers=max(1, round(perception_ms / 1e3 / per_layer)),
                   iterations=max(1, round(generation_ms / 1e3 / per_iteration)))


def bare_loop_frame_ms(agent: SyntheticAgent, frames: int) -> float:
    """p50 time of the same perceive + merged generate calls a (1, 1, fetch 0) frame makes, no executor."""
    times = []
    state = agent.init_request(0)
    for f in range(frames):
        started = time.perf_counter()
        percept = agent.perceive(Observation(f, 0.0, 0.5), 0, 1)
        result = agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, state, 0, agent.generation_iterations)])
        agent.finish(result.states[0])
        times.append(time.perf_counter() - started)
    return percentile(times, 50) * 1e3


def overhead_us(repeats: int, frames: int = 2000) -> dict[str, Spread]:
    """The executor's own cost per frame (p50 frame time of the runner minus the bare loop's, on an
    almost empty workload), per repeat, interleaved like the rows."""
    tiny = SyntheticAgent(SyntheticConfig(width=8, perception_tokens=2, perception_layers=1, generation_width=8,
                                          iterations=1))
    samples: dict[str, list[float]] = {text: [] for text in OVERHEAD_EXECUTORS}
    for _ in range(repeats):
        bare = bare_loop_frame_ms(tiny, frames)
        for text in OVERHEAD_EXECUTORS:
            # A new observation for every frame, however short.
            metrics = measure(ExecutorSpec.parse(text), tiny, scene, frames, camera_hz=1e7)
            samples[text].append((metrics.stage_latency["frame"].p50 * 1e3 - bare) * 1e3)
    return {text: Spread.of(values) for text, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--perception-ms", type=float, default=8.0, help="perception cost per request")
    parser.add_argument("--generation-ms", type=float, default=8.0, help="generation cost per request (batch 1)")
    parser.add_argument("--frame-period-ms", type=float, default=None,
                        help="run every executor at this fixed frame period (default: as fast as possible)")
    add_arguments(parser, decisions=150)
    args = parser.parse_args(argv)
    check_arguments(parser, args)
    if args.perception_ms <= 0 or args.generation_ms <= 0:
        parser.error("--perception-ms and --generation-ms must be > 0")
    specs = args.executors or [ExecutorSpec.parse(text) for text in DEFAULT_EXECUTORS]
    period = args.frame_period_ms / 1e3 if args.frame_period_ms else None

    torch.set_num_threads(1)
    config = calibrate(args.perception_ms, args.generation_ms, SyntheticConfig())
    agent = SyntheticAgent(config)
    print(f"workload: perception {config.perception_layers} layers, generation {config.iterations} iterations "
          f"(~{args.perception_ms:g} ms + ~{args.generation_ms:g} ms per request), torch threads per stage: 1, "
          f"{args.repeats} interleaved repeats of {args.decisions} decisions, competing busy processes: {args.load} "
          f"(nice {args.load_nice})",
          flush=True)
    with busy_load(args.load, args.load_nice):
        rows = interleaved(specs, args.repeats, lambda spec: measure(spec, agent, scene, args.decisions, CAMERA_HZ, period),
                           log=lambda line: print(line, file=sys.stderr, flush=True))
        overhead = overhead_us(args.repeats)
    print()
    print(table(rows))
    print()
    print("executor overhead per frame, us (p50 frame time minus a bare loop making the same calls):")
    for text, spread in overhead.items():
        print(f"  {text:<20} {spread}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workload": asdict(config), "load": args.load, "load_nice": args.load_nice, "repeats": args.repeats,
                       "decisions": args.decisions, "rows": [row.summary() for row in rows],
                       "overhead_us": {k: vars(v) for k, v in overhead.items()}}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
