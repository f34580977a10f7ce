"""What the ROS graph costs per decision, against the ROS-free core running the same model.

    python -m auras_ros.bench.ros_overhead [--decisions 200] [--camera-hz 20] [--json out.json]

Both run SEQ on the same agent and the same frames in this one process. The core's latency is its
decision time minus the observation stamp (the camera is sampled the moment a request starts). The
ROS graph's latency is the time an AgentAction reaches a subscriber minus the camera image's stamp:
camera → perception → percept topic → context node → ContextState → generation → action topic, all in
one process (composed mode, in-process tensor handles, one executor thread per node). The camera rate
stays below SEQ's throughput so no request waits for the previous one. The overhead is the difference
of the medians (and of the 99th percentiles).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import rclpy
from rclpy.parameter import Parameter

from auras_ros.core.baselines import SequentialRunner
from auras_ros.core.clock import WallClock
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig
from auras_ros.launching import private_ros_env
from auras_ros.msg import AgentAction
from auras_ros.nodes.composed import compose, stop_composed
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.nodes.spinners import NodeSpinners
from auras_ros.transport import HandleRegistry

FRAMES = Path(__file__).resolve().parents[2] / "data" / "demo_frames"


def core_latencies(agent: SyntheticAgent, image: np.ndarray, decisions: int) -> list[float]:
    clock = WallClock()
    latencies: list[float] = []
    runner = SequentialRunner(agent, PeriodicCamera(1e6, lambda seq, stamp: image, start=clock.now()), clock,
                              on_decision=lambda d: latencies.append(d.decision_time - d.observation_stamp))
    runner.run(decisions=decisions)
    return latencies


def ros_latencies(agent: SyntheticAgent, decisions: int, camera_hz: float, domain_id: int) -> list[float]:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    overrides = [Parameter(k, value=v) for k, v in {
        "mode": "seq", "transport": "in_process", "source": str(FRAMES), "rate_hz": camera_hz,
        "stats_period": 3600.0}.items()]
    nodes = compose(HandleRegistry(), action=False, agent=agent, context=context, parameter_overrides=overrides)
    listener = rclpy.create_node("overhead_listener", context=context)
    latencies: list[float] = []

    arrived = threading.Event()

    def on_action(msg: AgentAction) -> None:
        latencies.append(listener.get_clock().now().nanoseconds * 1e-9 - to_seconds(msg.observation_stamp))
        if len(latencies) >= decisions:
            arrived.set()

    listener.create_subscription(AgentAction, "auras/action", on_action, ORDERED)
    spinners = NodeSpinners([*nodes, listener], context=context).start()
    try:
        arrived.wait(timeout=10 * decisions / camera_hz + 30)  # a hang guard
    finally:
        stop_composed(spinners, [*nodes, listener])
        rclpy.try_shutdown(context=context)
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--decisions", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--camera-hz", type=float, default=20.0)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    agent = SyntheticAgent(SyntheticConfig())
    image = cv2.cvtColor(cv2.imread(str(sorted(FRAMES.glob("*.png"))[0])), cv2.COLOR_BGR2RGB)
    total = args.decisions + args.warmup
    core = core_latencies(agent, image, total)[args.warmup:]
    with private_ros_env() as env:
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = env["ROS_AUTOMATIC_DISCOVERY_RANGE"]
        ros = ros_latencies(agent, total, args.camera_hz, int(env["ROS_DOMAIN_ID"]))[args.warmup:]
    if len(ros) < 3:
        print(f"ros_overhead: only {len(ros)} decisions arrived through the graph", file=sys.stderr)
        return 1
    rows = {"core (SEQ, no ROS)": core, "ROS graph (composed, SEQ)": ros}
    print(f"| {'path':<28} | {'decisions':>9} | {'latency p50 ms':>14} | {'latency p99 ms':>14} |")
    print(f"|{'-' * 30}|{'-' * 11}|{'-' * 16}|{'-' * 16}|")
    for name, values in rows.items():
        print(f"| {name:<28} | {len(values):>9} | {np.percentile(values, 50) * 1e3:>14.2f} | "
              f"{np.percentile(values, 99) * 1e3:>14.2f} |")
    p50 = (np.percentile(ros, 50) - np.percentile(core, 50)) * 1e3
    p99 = (np.percentile(ros, 99) - np.percentile(core, 99)) * 1e3
    print(f"\nROS overhead per decision: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    if args.json:
        Path(args.json).write_text(json.dumps({"core_s": core, "ros_s": ros, "overhead_p50_ms": p50,
                                               "overhead_p99_ms": p99}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
