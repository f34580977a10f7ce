"""What the ROS graph costs per decision, against the ROS-free core running the same model.

    python -m auras_ros.bench.ros_overhead [--decisions 100] [--repeats 5] [--camera-hz 20] [--json out.json]
        [--spinners events single events-shared] [--no-dds] [--no-distributed]

Every arrangement runs SEQ on the same agent (the synthetic preset) and the same frames. The core's
latency is its decision time minus the observation stamp (the camera is sampled the moment a request
starts). The graph's latency is the time an AgentAction reaches a subscriber minus the camera image's
stamp: camera → perception → percept → context node → ContextState → generation → action. The
arrangements: the composed process (the shipped ``compose`` and ``NodeSpinners``), with local delivery
(message objects handed over in process, nodes/local_delivery.py; the listener takes them inline, as
an in-process subscriber may) or with every hop through DDS, each
under both single-threaded executors; and the distributed graph (one process per node, the shipped
executables, tensors in shared memory, the listener in this process). The camera rate stays below
SEQ's throughput so no request waits for the previous one.

A repeat measures the core and then every arrangement, in an order rotated from repeat to repeat (so a
burst of other load hits each in turn); an arrangement's overhead in a repeat is its p50 (p99) minus
the core's of that same repeat. Each row is the median of the repeats with their range.

Torch's intra-op threads: set them for the whole run with ``OMP_NUM_THREADS`` (the node processes
inherit it; the table's header prints the count). On this loaded 2-core machine two threads made
core SEQ's p50 2.8 ms with one thread and 200-250 ms with two (OpenMP teams waiting for preempted
threads). Use the variable, not ``torch.set_num_threads``: that sets only the calling thread's
count, and with the nodes' threads left at two the composed graph's p50 rose from 6 to ~90 ms.

    OMP_NUM_THREADS=1 python -m auras_ros.bench.ros_overhead
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import rclpy
import torch
import yaml

from auras_ros.bench.composed_run import ActionListener, Arrival, run_composed
from auras_ros.core.baselines import SequentialRunner
from auras_ros.core.clock import WallClock
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.stats import Spread, percentile
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig
from auras_ros.launching import node_command, private_ros_env, stop_process
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.nodes.spinners import SPINNERS, NodeSpinners

FRAMES = Path(__file__).resolve().parents[2] / "data" / "demo_frames"
GRAPH_PARAMS = {"executor": "seq", "source": str(FRAMES), "stats_period": 3600.0}


@dataclass(frozen=True)
class Composed:
    local_delivery: bool
    spinner: str

    @property
    def name(self) -> str:
        return f"composed, {'local delivery' if self.local_delivery else 'DDS between nodes'}, {self.spinner}"


DISTRIBUTED = "distributed (processes, shm)"


def core_latencies(agent: SyntheticAgent, image: np.ndarray, decisions: int, camera_hz: float) -> list[float]:
    """SEQ on the core, one request per camera period as in the graph (back to back, on this loaded
    machine, the core ran slower than the graph); the observation is sensed as its request starts."""
    clock = WallClock()
    latencies: list[float] = []
    runner = SequentialRunner(agent, PeriodicCamera(1e6, lambda seq, stamp: image, start=clock.now()), clock,
                              on_decision=lambda d: latencies.append(d.decision_time - d.observation_stamp))
    while len(latencies) < decisions:
        runner.step()
        time.sleep(1.0 / camera_hz)  # pacing, as the camera's timer paces the graph
    return latencies


def composed_latencies(arrangement: Composed, agent: SyntheticAgent, decisions: int, camera_hz: float,
                       domain_id: int) -> list[float]:
    arrivals = run_composed(agent, {**GRAPH_PARAMS, "transport": "in_process", "rate_hz": camera_hz}, decisions,
                            10 * decisions / camera_hz + 30, domain_id,  # a hang guard
                            local_delivery=arrangement.local_delivery, spinner=arrangement.spinner)
    return latencies(arrivals)


def latencies(arrivals: list[Arrival]) -> list[float]:
    """Each action's arrival minus its observation's camera stamp."""
    return [a.time - to_seconds(a.action.observation_stamp) for a in arrivals]


def distributed_latencies(decisions: int, camera_hz: float, env: dict[str, str], workdir: Path) -> list[float]:
    params = workdir / "distributed.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        **GRAPH_PARAMS, "model": "synthetic", "transport": "shm", "rate_hz": camera_hz}}}))
    logs = [open(workdir / f"{exe}.log", "w") for exe in ("camera_node", "perception_node", "context_node",
                                                          "generation_node")]
    procs = [subprocess.Popen(node_command("auras_ros", Path(log.name).stem, params_files=[str(params)]),
                              env=env, stdout=log, stderr=subprocess.STDOUT) for log in logs]
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    listener = ActionListener(context, decisions, None)
    spinners = NodeSpinners([listener.node], context=context).start()
    try:
        # Node start-up (interpreter, torch) is not measured: the first decisions are the warm-up.
        listener.done.wait(timeout=10 * decisions / camera_hz + 60)
    finally:
        spinners.shutdown()
        listener.node.destroy_node()
        rclpy.try_shutdown(context=context)
        for proc in procs:
            stop_process(proc, grace_s=5.0)
        for log in logs:
            log.close()
    return latencies(listener.arrivals)


def measure(arrangements: list, decisions: int, warmup: int, repeats: int, camera_hz: float,
            env: dict[str, str], workdir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per arrangement and repeat: (p50, p99) overhead over the core in seconds."""
    agent = SyntheticAgent(SyntheticConfig())
    image = cv2.cvtColor(cv2.imread(str(sorted(FRAMES.glob("*.png"))[0])), cv2.COLOR_BGR2RGB)
    total = decisions + warmup
    runs: dict[str, Callable[[], list[float]]] = {
        a.name: (lambda a=a: composed_latencies(a, agent, total, camera_hz, int(env["ROS_DOMAIN_ID"])))
        for a in arrangements if isinstance(a, Composed)}
    if DISTRIBUTED in arrangements:
        runs[DISTRIBUTED] = lambda: distributed_latencies(total, camera_hz, env, workdir)
    names = list(runs)
    overheads: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for repeat in range(repeats):
        core = core_latencies(agent, image, total, camera_hz)[warmup:]
        order = names[repeat % len(names):] + names[:repeat % len(names)]
        for name in order:
            graph = runs[name]()[warmup:]
            if len(graph) < 3:
                raise SystemExit(f"ros_overhead: only {len(graph)} decisions arrived through {name}")
            overheads[name].append((percentile(graph, 50) - percentile(core, 50),
                                    percentile(graph, 99) - percentile(core, 99)))
            print(f"  repeat {repeat + 1}/{repeats} {name}: +{overheads[name][-1][0] * 1e3:.2f} ms p50, "
                  f"+{overheads[name][-1][1] * 1e3:.2f} ms p99", flush=True)
    return overheads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=100, help="measured decisions per run")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--camera-hz", type=float, default=20.0)
    parser.add_argument("--no-distributed", action="store_true", help="composed arrangements only")
    parser.add_argument("--no-dds", action="store_true", help="no composed arrangement with DDS between its nodes")
    parser.add_argument("--spinners", nargs="+", choices=tuple(SPINNERS), default=list(SPINNERS),
                        help="the composed process's rclpy executor arrangements (spinners) to measure")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    arrangements: list = [Composed(local, spinner) for local in ((True,) if args.no_dds else (True, False))
                          for spinner in args.spinners]
    if not args.no_distributed:
        arrangements.append(DISTRIBUTED)
    with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
        overheads = measure(arrangements, args.decisions, args.warmup, args.repeats, args.camera_hz, env, Path(tmp))
    rows = {name: (Spread.of([p50 * 1e3 for p50, _ in values]), Spread.of([p99 * 1e3 for _, p99 in values]))
            for name, values in overheads.items()}
    print(f"\nROS overhead per decision over the core (SEQ, synthetic model, {args.decisions} decisions, "
          f"{torch.get_num_threads()} torch threads, median [min–max] of {args.repeats} interleaved repeats):\n")
    print(f"| {'arrangement':<40} | {'overhead p50 ms':>20} | {'overhead p99 ms':>20} |")
    print(f"|{'-' * 42}|{'-' * 22}|{'-' * 22}|")
    for name, (p50, p99) in rows.items():
        print(f"| {name:<40} | {str(p50):>20} | {str(p99):>20} |")
    if args.json:
        Path(args.json).write_text(json.dumps({name: {"p50_ms": asdict(p50), "p99_ms": asdict(p99),
                                                      "repeats_s": overheads[name]}
                                               for name, (p50, p99) in rows.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
