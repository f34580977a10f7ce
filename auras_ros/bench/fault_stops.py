"""Time from a fault to the world's commanded stop: each node of the agent graph killed (SIGKILL) or frozen
(SIGSTOP) while the graph drives the simulator, measured on the world's own command.

    python -m auras_ros.bench.fault_stops [--runs 5] [--faults action_node:kill camera:freeze ...]
                                          [--steady-s 20] [--set NODE.PARAM=VALUE ...] [--json out.json]

(inside ``tools/setup_env.sh``). First ``--steady-s`` seconds without a fault: world frames with a zero
command then are false stops (``--faults`` with no pair measures only that; ``--set
action_node.action_timeout=0.5`` compares other limits).

The graph is the one ``launch/sim.launch.py`` starts (distributed, ``use_sim_time``, config/auras.yaml),
with the world in real time (``sim_node`` mode realtime, speed 1: sim time runs with wall time), the gate's
output (``auras/gated_action``) executed through the world's base-controller command timeout
(``command_timeout``: ``BASE_COMMAND_TIMEOUT``, the launch file's default), and a camera driver between the simulator and
perception: a relay process that republishes the simulator's images on ``camera/image_raw`` as a camera
node would, so the camera can die or freeze too. One graph serves every run: after each fault the victim
is resumed (SIGCONT) or started again, and the next run waits until the world moves again.

A run's figure is the world's time from the fault (the stamp of the newest world frame when the signal was
sent) to the first world frame whose applied command is zero, so it includes every hop down to the
world's actuation, quantised to the world's frame period (0.05 s). Reported per fault: the median and the
range over the runs, and runs without a stop within ``--give-up-s``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml
from ament_index_python.packages import get_package_share_directory

from auras_ros.core import topics
from auras_ros.core.safety import BASE_COMMAND_TIMEOUT
from auras_ros.launching import node_command, private_ros_env, stop_process

AGENT = ("perception_node", "context_node", "generation_node", "action_node")
VICTIMS = ("action_node", "generation_node", "perception_node", "context_node", "camera")
SIGNALS = {"kill": signal.SIGKILL, "freeze": signal.SIGSTOP}
SIM_IMAGES = "sim/camera/image_raw"  # where the simulator's camera publishes; the relay is the driver
MOVING_FRAMES = 5  # consecutive world frames with a non-zero command: the graph is driving again


@dataclass
class FaultResult:
    victim: str
    fault: str
    stops_s: list[float] = field(default_factory=list)  # world seconds from the fault to the zero command
    no_stop: int = 0  # runs without a stop within give_up_s

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.stops_s) if self.stops_s else None


def _overrides(seed: int, settings: dict[str, dict[str, object]]) -> dict:
    """The launch file's parameters for the nodes, node by node (generation and the world both have a
    ``frame_period``)."""
    def agent(**extra: object) -> dict:
        return {"ros__parameters": {"use_sim_time": True, **extra}}  # a new dict each: yaml aliases fail rcl

    nodes = {
        "sim_node": {"ros__parameters": {
            "mode": "realtime", "seed": seed, "episodes": 0, "max_frames": 10**6, "hold_frames": 10**6,
            "action_topic": topics.GATED_ACTION, "command_timeout": BASE_COMMAND_TIMEOUT}},
        "perception_node": agent(),
        "context_node": agent(),
        "generation_node": agent(frame_period=0.0),
        "action_node": agent(outputs=["agent_action"]),
        "camera": agent(),
    }
    for node, values in settings.items():
        nodes[node]["ros__parameters"].update(values)
    return nodes


def graph_commands(config: str, overrides: str) -> dict[str, list[str]]:
    """name -> command line of each process of the graph."""
    commands = {"sim_node": node_command("auras_ros", "sim_node", "sim_node", [overrides],
                                         [(topics.IMAGE, SIM_IMAGES)]),
                "camera": [sys.executable, "-m", "auras_ros.bench.fault_stops", "--relay", "--ros-args",
                           "-r", "__node:=camera", "--params-file", overrides]}
    for name in AGENT:
        commands[name] = node_command("auras_ros", name, name, [config, overrides])
    return commands


def relay() -> int:
    """The camera driver stand-in: the simulator's images, republished as a camera node publishes them
    (same message, same QoS), until SIGINT."""
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from sensor_msgs.msg import Image

    from auras_ros.nodes.qos import SENSOR_LATEST

    rclpy.init(args=sys.argv)
    node = rclpy.create_node("camera")
    publisher = node.create_publisher(Image, topics.IMAGE, SENSOR_LATEST)
    node.create_subscription(Image, SIM_IMAGES, publisher.publish, SENSOR_LATEST)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


class World:
    """The world's applied commands, heard on sim/state."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from auras_ros.msg import SimState
        from auras_ros.nodes.qos import ORDERED
        from auras_ros.nodes.ros_convert import to_seconds

        self._rclpy = rclpy
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("fault_stops_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.frames: list[tuple[float, bool]] = []  # (world stamp, command non-zero)
        self.node.create_subscription(SimState, "sim/state", lambda s: self.frames.append(
            (to_seconds(s.header.stamp), any(v != 0.0 for v in s.applied_action))), ORDERED)

    def spin_until(self, done, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def moving(self) -> bool:
        recent = self.frames[-MOVING_FRAMES:]
        return len(recent) == MOVING_FRAMES and all(moving for _, moving in recent)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self._rclpy.try_shutdown(context=self.context)


def measure(victims_faults: list[tuple[str, str]], runs: int, seed: int, give_up_s: float, steady_s: float,
            log_dir: Path, settings: dict[str, dict[str, object]]) -> tuple[tuple[int, int], list[FaultResult]]:
    """((zero-command frames, frames) over ``steady_s`` without a fault, once the world moves: false
    stops), and the results per fault."""
    config = str(Path(get_package_share_directory("auras_ros"), "config", "auras.yaml"))
    overrides = log_dir / "overrides.yaml"
    overrides.write_text(yaml.safe_dump(_overrides(seed, settings)))
    results = []
    with private_ros_env() as env:
        commands = graph_commands(config, str(overrides))
        logs = {name: open(log_dir / f"{name}.log", "a") for name in commands}
        procs = {name: subprocess.Popen(cmd, env=env, stdout=logs[name], stderr=subprocess.STDOUT)
                 for name, cmd in commands.items()}
        world = World(int(env["ROS_DOMAIN_ID"]))
        try:
            if not world.spin_until(lambda: world.moving() or _exited(procs), 120.0) or _exited(procs):
                raise RuntimeError(f"the world does not move (exited: {_exited(procs)}); logs in {log_dir}")
            world.frames.clear()
            world.spin_until(lambda: False, steady_s)
            steady = (sum(not moving for _, moving in world.frames), len(world.frames))
            for victim, fault in victims_faults:
                result = FaultResult(victim, fault)
                for _ in range(runs):
                    if not world.spin_until(lambda: world.moving() or _exited(procs), 120.0) or _exited(procs):
                        raise RuntimeError(f"the world does not move (before {victim} {fault}; exited: "
                                           f"{_exited(procs)}); logs in {log_dir}")
                    fault_stamp = world.frames[-1][0]
                    seen = len(world.frames)
                    procs[victim].send_signal(SIGNALS[fault])
                    stopped = lambda seen=seen: any(not moving for _, moving in world.frames[seen:])  # noqa: E731
                    if world.spin_until(stopped, give_up_s):
                        stamp = next(s for s, moving in world.frames[seen:] if not moving)
                        result.stops_s.append(round(stamp - fault_stamp, 3))
                    else:
                        result.no_stop += 1
                    if fault == "freeze":
                        procs[victim].send_signal(signal.SIGCONT)
                    else:
                        procs[victim].wait()
                        procs[victim] = subprocess.Popen(commands[victim], env=env, stdout=logs[victim],
                                                         stderr=subprocess.STDOUT)
                    world.frames.clear()
                print(f"{victim:16s} {fault:6s} median {result.median_s} s, runs {result.stops_s}, "
                      f"no stop {result.no_stop}", flush=True)
                results.append(result)
        finally:
            world.close()
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)
                stop_process(proc)
            for log in logs.values():
                log.close()
    return steady, results


def _exited(procs: dict[str, subprocess.Popen]) -> list[str]:
    return [name for name, proc in procs.items() if proc.poll() is not None]


def main(argv: list[str] | None = None) -> int:
    if "--relay" in (argv if argv is not None else sys.argv[1:]):
        return relay()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="faults of each kind (median over them)")
    parser.add_argument("--faults", nargs="*", default=[f"{v}:{f}" for v in VICTIMS for f in SIGNALS],
                        help=f"victim:fault pairs; victims {', '.join(VICTIMS)}; faults {', '.join(SIGNALS)}")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--give-up-s", type=float, default=10.0, help="wall seconds to wait for a stop")
    parser.add_argument("--steady-s", type=float, default=20.0,
                        help="wall seconds without a fault first: zero commands then are false stops")
    parser.add_argument("--set", nargs="+", default=[], metavar="NODE.PARAM=VALUE",
                        help="parameter overrides, e.g. action_node.action_timeout=0.5 sim_node.command_timeout=0.0")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--log-dir", type=Path, help="the processes' output (default: a temporary directory)")
    args = parser.parse_args(argv)
    pairs = []
    for text in args.faults:
        victim, _, fault = text.partition(":")
        if victim not in VICTIMS or fault not in SIGNALS:
            parser.error(f"--faults {text!r}: expected victim:fault with a victim in {VICTIMS} and a fault in "
                         f"{tuple(SIGNALS)}")
        pairs.append((victim, fault))
    settings: dict[str, dict[str, object]] = {}
    for text in args.set:
        name, _, value = text.partition("=")
        node, _, param = name.partition(".")
        if node not in _overrides(0, {}) or not param or not value:
            parser.error(f"--set {text!r}: expected NODE.PARAM=VALUE with a node in {sorted(_overrides(0, {}))}")
        settings.setdefault(node, {})[param] = yaml.safe_load(value)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="fault_stops_"))
    log_dir.mkdir(parents=True, exist_ok=True)
    (false_stops, frames), results = measure(pairs, args.runs, args.seed, args.give_up_s, args.steady_s, log_dir,
                                             settings)
    print(f"\nwithout a fault: {false_stops} of {frames} world frames with a zero command (false stops)")
    print("\n| fault | stop (world s): median [range] | runs without a stop |\n|---|---|---|")
    for r in results:
        span = f"{r.median_s:.2f} [{min(r.stops_s):.2f}–{max(r.stops_s):.2f}]" if r.stops_s else "none"
        print(f"| {r.victim} {r.fault} | {span} | {r.no_stop} of {len(r.stops_s) + r.no_stop} |")
    if args.json:
        args.json.write_text(json.dumps({"steady": {"zero_frames": false_stops, "frames": frames}, "faults": [
            {**asdict(r), "median_s": r.median_s} for r in results]}, indent=2))
    return 0 if false_stops == 0 and all(r.no_stop == 0 for r in results) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
