"""Benchmark of the ROS-free executors on a synthetic workload with real compute in every stage.

    python -m auras_ros.bench.core [--perception-ms 8] [--generation-ms 8] [--decisions 150] [--json out.json]

Runs SEQ, DEC, PAR(2), PAR(4) and the Auras pipeline at several degrees side by side on one machine in
one process, and prints decisions/s (and the ratio against SEQ from the same run), decision-interval
CV and p99, observation age p50/p99, plus the executor's own overhead per frame against a bare loop
doing the same calls. torch runs one thread per stage so that two stages really use two cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import torch

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.clock import WallClock
from auras_ros.core.metrics import MetricsRecorder, RunMetrics
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.runner import Runner
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig

CAMERA_HZ = 1000.0  # faster than any executor here, so every frame finds a new observation


@dataclass(frozen=True)
class Row:
    name: str
    metrics: RunMetrics


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


def run(make: Callable[[SyntheticAgent, PeriodicCamera, WallClock, MetricsRecorder], Runner],
        agent: SyntheticAgent, decisions: int, warmup: int, camera_hz: float = CAMERA_HZ) -> RunMetrics:
    clock = WallClock()
    camera = PeriodicCamera(camera_hz, lambda seq, stamp: (seq % 97) / 97, start=clock.now())
    runner = make(agent, camera, clock, MetricsRecorder(warmup_decisions=warmup))
    try:
        return runner.run(decisions=decisions)
    finally:
        runner.close()


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
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--perception-ms", type=float, default=8.0, help="perception cost per request")
    parser.add_argument("--generation-ms", type=float, default=8.0, help="generation cost per request (batch 1)")
    parser.add_argument("--decisions", type=int, default=150, help="decisions measured per configuration")
    parser.add_argument("--warmup", type=int, default=10, help="decisions discarded before measuring")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.perception_ms <= 0 or args.generation_ms <= 0 or args.decisions < 3:
        parser.error("--perception-ms and --generation-ms must be > 0, --decisions >= 3")

    torch.set_num_threads(1)
    config = calibrate(args.perception_ms, args.generation_ms, SyntheticConfig())
    agent = SyntheticAgent(config)
    print(f"workload: perception {config.perception_layers} layers, generation {config.iterations} iterations "
          f"(~{args.perception_ms:g} ms + ~{args.generation_ms:g} ms per request), torch threads per stage: 1",
          flush=True)

    configs: list[tuple[str, Callable]] = [
        ("SEQ", lambda a, s, c, r: SequentialRunner(a, s, c, recorder=r)),
        ("DEC", lambda a, s, c, r: DecoupledRunner(a, s, c, recorder=r)),
        ("PAR(2)", lambda a, s, c, r: ParallelRunner(a, s, c, 2, recorder=r)),
        ("PAR(4)", lambda a, s, c, r: ParallelRunner(a, s, c, 4, recorder=r)),
    ]
    for pp_p, pp_g in [(1, 1), (1, 2), (1, 3), (2, 4)]:
        pipeline = PipelineConfig(pp_p, pp_g, fetch_offset=-1)
        configs.append((f"Auras L={pipeline.in_flight_limit} ({pp_p}+{pp_g}, fetch -1)",
                        lambda a, s, c, r, p=pipeline: AurasPipeline(a, p, s, c, recorder=r)))
    rows = []
    for name, make in configs:
        rows.append(Row(name, run(make, agent, args.decisions, args.warmup)))
        print(f"  measured {name}", file=sys.stderr, flush=True)

    # Interval stability at a fixed frame period a little above the natural frame time.
    natural = rows[-2].metrics.interval_mean
    fixed = PipelineConfig(1, 3, fetch_offset=-1, frame_period=natural * 1.15)
    rows.append(Row(f"Auras L=4 fixed {fixed.frame_period * 1e3:.1f} ms",
                    run(lambda a, s, c, r: AurasPipeline(a, fixed, s, c, recorder=r), agent, args.decisions,
                        args.warmup)))

    seq_rate = rows[0].metrics.decisions_per_s
    print()
    print(f"| {'executor':<32} | {'decisions/s':>11} | {'x SEQ':>6} | {'interval CV':>11} | {'interval p99 ms':>15} "
          f"| {'age p50 ms':>10} | {'age p99 ms':>10} | {'in flight':>9} |")
    print(f"|{'-' * 34}|{'-' * 13}|{'-' * 8}|{'-' * 13}|{'-' * 17}|{'-' * 12}|{'-' * 12}|{'-' * 11}|")
    for row in rows:
        m = row.metrics
        print(f"| {row.name:<32} | {m.decisions_per_s:>11.1f} | {m.decisions_per_s / seq_rate:>6.2f} | "
              f"{m.interval_cv:>11.3f} | {m.interval_p99 * 1e3:>15.2f} | {m.age_p50 * 1e3:>10.2f} | "
              f"{m.age_p99 * 1e3:>10.2f} | {m.in_flight_max:>9} |")

    # Executor overhead: the same calls with almost no work, pipeline frame vs bare loop.
    tiny = SyntheticAgent(SyntheticConfig(width=8, perception_tokens=2, perception_layers=1, generation_width=8,
                                          iterations=1))
    bare = bare_loop_frame_ms(tiny, 2000)
    overhead = {}
    for label, pipeline in [("inline (1+1, fetch 0)", PipelineConfig(1, 1, fetch_offset=0)),
                            ("concurrent (1+1, fetch -1)", PipelineConfig(1, 1, fetch_offset=-1))]:
        metrics = run(lambda a, s, c, r, p=pipeline: AurasPipeline(a, p, s, c, recorder=r), tiny, 2000, 50,
                      camera_hz=1e7)  # a new observation for every frame, however short
        overhead[label] = metrics.stage_latency["frame"].p50 * 1e3 - bare
    print()
    print(f"executor overhead per frame (p50, against a bare loop making the same calls, {bare * 1e3:.0f} us):")
    for label, ms in overhead.items():
        print(f"  {label:<28} {ms * 1e3:7.1f} us")

    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workload": asdict(config), "rows": [{"name": r.name, **asdict(r.metrics)} for r in rows],
                       "overhead_ms": overhead, "bare_loop_ms": bare}, f, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
