"""Helpers of the reliability suite: the agent graph's nodes as separate processes that a test can
SIGKILL and start again, and a probe node in the test process that publishes bad input and records
what the graph says. Every wait is on a message or a process, with a timeout that only guards a hang."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Time

from auras_ros.launching import node_command, stop_process
from auras_ros.msg import ContextEntry, ContextState, PipelineStats
from auras_ros.nodes.payload import PayloadCodec
from auras_ros.nodes.ros_convert import to_time
from node_graph import Listener

CONFIG = Path(get_package_share_directory("auras_ros"), "config", "auras.yaml")
HANG_GUARD_S = 120.0  # how long a test waits for what must come; never a measured threshold


class NodeProcesses:
    """auras_ros node executables, one process each, started with config/auras.yaml and overrides."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen] = {}
        self.arguments: dict[str, list[str]] = {}
        self._logs: list[Path] = []

    def start(self, executable: str, **params: Any) -> subprocess.Popen:
        overrides = [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]
        self.arguments[executable] = overrides
        log = self.log_dir / f"{len(self._logs)}_{executable}.log"
        self._logs.append(log)
        with open(log, "w") as out:
            proc = subprocess.Popen(node_command("auras_ros", executable, params_files=[str(CONFIG)]) + overrides,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[executable] = proc
        return proc

    def kill(self, executable: str) -> None:
        """SIGKILL: the node gets no chance to clean up, as in a crash or an OOM kill."""
        proc = self.procs[executable]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def restart(self, executable: str) -> subprocess.Popen:
        self.kill(executable)
        params = dict(arg.split(":=", 1) for arg in self.arguments[executable][1::2])
        return self.start(executable, **params)

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self._logs)

    def close(self) -> list[int]:
        return [stop_process(proc, grace_s=5.0) for proc in self.procs.values()]

    def __enter__(self) -> "NodeProcesses":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Probe(Listener):
    """node_graph's Listener, waiting on the graph's processes with the suite's hang guard by default."""

    def spin_until(self, done: Callable[[], bool], processes: list[subprocess.Popen] = (),
                   timeout_s: float = HANG_GUARD_S, each: Callable[[], None] | None = None) -> bool:
        return super().spin_until(done, timeout_s, processes, each)


def context_state(codec: Any, tensor: torch.Tensor | None, *, stamp: Any, seq: int, source_id: int = 1,
                  verdict: int = ContextEntry.VERDICT_FRESH, key: str = "percept") -> ContextState:
    """A one-key ContextState as the context node would forward it."""
    entry = ContextEntry(key=key, observation_seq=seq, source_id=source_id, verdict=verdict)
    entry.stamp = stamp
    if tensor is not None:
        codec.encode(tensor, entry.value)
    msg = ContextState()
    msg.entries.append(entry)
    return msg


def drops(stats: list[PipelineStats]) -> Counter[str]:
    """Drops by reason, summed over every PipelineStats window received."""
    total: Counter[str] = Counter()
    for window in stats:
        total.update(dict(zip(window.drop_reasons, window.drop_counts, strict=False)))
    return total


def inline_codec() -> PayloadCodec:
    return PayloadCodec({"transport": "inline", "shm_slots": 2, "shm_slot_bytes": 1})


def now_stamp(probe: Probe, offset_s: float = 0.0) -> Time:
    return to_time(probe.node.get_clock().now().nanoseconds * 1e-9 + offset_s)
