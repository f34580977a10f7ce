"""Soak: the shipped agent graph runs for minutes; does its memory stay bounded, does it keep deciding?

    python -m auras_ros.bench.soak --minutes 10 [--layout composed|distributed] [--camera-hz 120]
                                   [--transport shm] [--warmup-s 30] [--json out.json]

Starts the graph's executables (`auras_composed`, or one process per node) on a private ROS domain,
with config/auras.yaml, a camera on data/demo_frames at ``--camera-hz`` and the chosen transport,
and listens to its actions and stats. It samples each process's resident memory (VmRSS) every few
seconds and reports, per process, RSS after warm-up and at the end and the growth rate fitted over
the post-warm-up samples (MB per 10 minutes; the target is <= 1), plus actions/s, observation age
p50/p99 at actuation, drops by reason, and crashes (processes that ended before the soak did).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rclpy
import yaml
from ament_index_python.packages import get_package_share_directory
from rclpy.executors import SingleThreadedExecutor

from auras_ros.core.stats import percentile, rate
from auras_ros.launching import node_command, private_ros_env, stop_process
from auras_ros.msg import AgentAction, PipelineStats
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import add_drops, to_seconds
from auras_ros.core import topics

FRAMES = Path(__file__).resolve().parents[2] / "data" / "demo_frames"
LAYOUTS = {
    "composed": ("auras_composed",),
    "distributed": ("camera_node", "perception_node", "context_node", "generation_node", "action_node"),
}
SAMPLE_S = 5.0  # between RSS samples


@dataclass(frozen=True)
class ProcessMemory:
    process: str
    rss_start_mb: float  # first sample after warm-up
    rss_end_mb: float
    growth_mb_per_10min: float  # least-squares slope over the post-warm-up samples
    exit_code: int | None  # None: ran until the end (then stopped by SIGINT)


def rss_mb(pid: int) -> float | None:
    """Resident memory of a live process, from /proc (None once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return kb / 1024.0


def growth_per_10min(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 2:
        return float("nan")
    times, values = np.array(samples).T
    return float(np.polyfit(times, values, 1)[0] * 600.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="auras_ros.bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, required=True, help="soak length after warm-up")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default="composed")
    parser.add_argument("--camera-hz", type=float, default=120.0)
    parser.add_argument("--transport", choices=("inline", "shm", "in_process"), default="shm")
    parser.add_argument("--warmup-s", type=float, default=30.0, help="seconds before the first RSS sample counts")
    parser.add_argument("--json", type=Path, help="also write the report here")
    options = parser.parse_args(argv)
    if options.minutes <= 0 or options.warmup_s < 0 or options.camera_hz <= 0:
        print("soak: --minutes and --camera-hz must be > 0, --warmup-s >= 0", file=sys.stderr)
        return 2

    config = Path(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    overrides = {"source": str(FRAMES), "rate_hz": options.camera_hz, "transport": options.transport,
                 "stats_period": 1.0}
    with tempfile.TemporaryDirectory() as tmp, private_ros_env() as env:
        params = Path(tmp, "soak.yaml")
        # Node-specific keys: config/auras.yaml sets rate_hz under camera_node, which beats /**.
        params.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides},
                                          "camera_node": {"ros__parameters": {"rate_hz": options.camera_hz}}}))
        report = soak(LAYOUTS[options.layout], [str(config), str(params)], env, options, Path(tmp))
    print(json.dumps(report, indent=1))
    if options.json:
        options.json.write_text(json.dumps(report, indent=1))
    return 0 if report["crashes"] == 0 else 1


def soak(executables: tuple[str, ...], params_files: list[str], env: dict[str, str], options: argparse.Namespace,
         log_dir: Path) -> dict:
    rclpy.init(domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("soak_listener")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    actions: list[tuple[float, float]] = []  # (receipt time, observation age at actuation)
    stats_drops: Counter[str] = Counter()
    node.create_subscription(AgentAction, topics.ACTION,
                             lambda a: actions.append((time.monotonic(), to_seconds(a.observation_age))), ORDERED)
    for topic in (topics.PIPELINE_STATS, topics.PERCEPTION_STATS):
        node.create_subscription(PipelineStats, topic, lambda s: add_drops(stats_drops, s), ORDERED)
    procs = {}
    logs = []
    try:
        for name in executables:
            log = open(log_dir / f"{name}.log", "w")
            logs.append(log)
            procs[name] = subprocess.Popen(node_command("auras_ros", name, params_files=params_files), env=env,
                                           stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        warm = started + options.warmup_s
        end = warm + options.minutes * 60.0
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in procs}
        next_sample = warm
        while time.monotonic() < end and all(p.poll() is None for p in procs.values()):
            executor.spin_once(timeout_sec=0.05)
            now = time.monotonic()
            if now >= next_sample:
                for name, proc in procs.items():
                    mb = rss_mb(proc.pid)
                    if mb is not None:
                        samples[name].append((now - warm, mb))
                next_sample += SAMPLE_S
        exit_codes = {name: proc.poll() for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            stop_process(proc, grace_s=5.0)
        for log in logs:
            log.close()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    soaked = [(t, age) for t, age in actions if t >= warm]
    memory = [ProcessMemory(name, s[0][1] if s else float("nan"), s[-1][1] if s else float("nan"),
                            growth_per_10min(s), exit_codes[name]) for name, s in samples.items()]
    return {
        "layout": options.layout, "camera_hz": options.camera_hz, "transport": options.transport,
        "warmup_s": options.warmup_s, "minutes": options.minutes,
        "memory": [asdict(m) for m in memory],
        "actions": len(soaked), "actions_per_s": rate([t for t, _ in soaked]),
        "age_p50_s": percentile([a for _, a in soaked], 50), "age_p99_s": percentile([a for _, a in soaked], 99),
        "drops": dict(stats_drops),  # the whole run's, warm-up included, by reason
        "crashes": sum(code is not None for code in exit_codes.values()),
    }


if __name__ == "__main__":
    sys.exit(main())
