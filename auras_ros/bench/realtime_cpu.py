"""Where the CPU goes in real time: CPU seconds per process and per thread of a real-time run through
the composed nodes (the simulator node, the composed agent), against the core's run of the same
episodes in this process, and CPU milliseconds per decision for each.

    python -m auras_ros.bench.realtime_cpu --executor seq --episodes 4 --seed 50000 --speed 3

    python -m auras_ros.bench.realtime_cpu --hops --executor seq --episodes 4 --seed 50000 --speed 3

``--model DIR``: the policy checkpoint both paths run (default: the shipped diffusion policy, the demo's
default); the core loads it in this process, the nodes load it in theirs.

``--hops``: the CPU each hop of a message costs inside the agent process, where ``top`` shows one process
and threads of few names: the composed agent nodes run in this process (``nodes.composed.compose``, as
``auras_composed`` runs them, with the demo's parameters) against ``sim_node`` in its own, and each node
adds ``time.thread_time`` around its hops to one ledger (core/cpu_costs.py): image intake (the callback;
rclpy takes and deserializes the message before it, uncounted), decode, preprocess, perceive, percept
publish, context update, context intake by generation, and the generation frame (pacing, the step and
its actions' publication). What no hop counts (the executors' spinning, DDS, rclpy's deserialization,
the action node, timers) is the process's CPU less the hops'.

Linux only: it samples ``/proc/<pid>/task/<tid>/stat`` (user + system time) of this process and of
every process it starts, every ``--sample-s`` seconds, and keeps each thread's last reading, so a
thread that ends counts up to its last sample (at most one sampling period short). Both paths are the
code users run (``eval.realtime``'s episodes and ``demo``'s blocks).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from auras_ros import demo
from auras_ros.core.spec import ExecutorSpec, Row
from auras_ros.core.stages import chunk_rows
from auras_ros.eval.episodes import evaluate_realtime
from auras_ros.models.factory import build_agent
from auras_ros.eval.cli import executor_argument

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""  # the process or thread ended between listing and reading


def thread_cpu(pid: int) -> dict[tuple[int, str], float]:
    """CPU seconds (user + system) of each thread of ``pid``, keyed by (tid, thread name)."""
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        stat = _read(task / "stat")
        if not stat:
            continue
        # The name field may hold spaces: the fields after it start past the last ')'.
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(task.name), _read(task / "comm").strip()] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return out


def descendants(root: int) -> list[int]:
    """Every live process whose parent chain reaches ``root``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        stat = _read(entry / "stat")
        if stat:
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def process_label(pid: int) -> str:
    """A started node's name from its command line (``sim_node``, ``auras_composed``), else its comm."""
    argv = _read(Path(f"/proc/{pid}/cmdline")).split("\0")
    for arg in argv:
        name = Path(arg).name
        if name in ("sim_node", "auras_composed") or name.endswith("_node"):
            return name
    return _read(Path(f"/proc/{pid}/comm")).strip() or str(pid)


@dataclass
class CpuSampler:
    """Samples this process's threads (``own``) or its descendants' (not ``own``) in a thread of its own."""

    own: bool
    period_s: float = 0.2
    # (process label, pid) -> (tid, thread name) -> last CPU seconds seen
    seen: dict[tuple[str, int], dict[tuple[int, str], float]] = field(default_factory=lambda: defaultdict(dict))
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _baseline: dict[tuple[int, str], float] = field(default_factory=dict)

    def __enter__(self) -> "CpuSampler":
        self._baseline = self._sample_once() if self.own else {}
        self._thread = threading.Thread(target=self._loop, name="cpu-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._sample_once()

    def _loop(self) -> None:
        while not self._stop.wait(self.period_s):
            self._sample_once()

    def _sample_once(self) -> dict[tuple[int, str], float]:
        me = os.getpid()
        pids = [me] if self.own else descendants(me)
        own: dict[tuple[int, str], float] = {}
        for pid in pids:
            label = "this process (core)" if pid == me else process_label(pid)
            for key, seconds in thread_cpu(pid).items():
                if key[1] == "cpu-sampler":
                    continue
                self.seen[label, pid][key] = seconds
                own[key] = seconds
        return own

    def by_process(self) -> dict[str, float]:
        return self._totals(lambda label, thread: label)

    def by_thread(self) -> dict[str, float]:
        """CPU seconds per (process, thread name), threads of one name summed; DDS names threads by port
        (dds.shm.7663), so digits are folded: one name per kind, across runs."""
        return self._totals(lambda label, thread: f"{label} / {re.sub(r'[0-9]+', '#', thread)}")

    def _totals(self, name: Callable[[str, str], str]) -> dict[str, float]:
        totals: dict[str, float] = defaultdict(float)
        for (label, _), threads in self.seen.items():
            for key, seconds in threads.items():
                # This process's threads count from the sampler's start (started processes: empty baseline).
                totals[name(label, key[1])] += seconds - self._baseline.get(key, 0.0)
        return dict(totals)


def _minus(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) - b.get(k, 0.0) for k in a.keys() | b.keys()}


def report(title: str, processes: dict[str, float], threads: dict[str, float], decisions: int, wall_s: float,
           top: int) -> None:
    total = sum(processes.values())
    per_decision = f"{1000 * total / decisions:.1f} ms" if decisions > 0 else "n/a (no decision)"
    print(f"\n{title}: {total:.2f} CPU s over {wall_s:.1f} wall s ({total / wall_s:.2f} cores), {decisions} "
          f"decisions, {per_decision} CPU per decision")
    for label, seconds in sorted(processes.items(), key=lambda kv: -kv[1]):
        print(f"  {label:<28} {seconds:7.2f} s  {100 * seconds / total if total else 0:5.1f}%")
    print("  busiest threads (threads of one name summed):")
    for label, seconds in sorted(threads.items(), key=lambda kv: -kv[1])[:top]:
        print(f"    {label:<44} {seconds:7.2f} s")


def hop_costs(row: Row, episodes: int, seed: int, demo_args: argparse.Namespace, timeout_s: float) -> int:
    """``--hops`` (the module's docstring): one run of ``episodes`` episodes, the ledger printed."""
    import subprocess
    import tempfile

    import rclpy
    import yaml
    from ament_index_python.packages import get_package_share_directory

    from auras_ros.launching import node_command, private_ros_env, stop_process
    from auras_ros.nodes.composed import compose, stop_composed
    from auras_ros.nodes.generation_node import GenerationNode
    from auras_ros.nodes.spinners import NodeSpinners
    from auras_ros.transport import HandleRegistry

    config = str(Path(get_package_share_directory("auras_ros"), "config", "auras.yaml"))
    with private_ros_env() as env, tempfile.TemporaryDirectory() as tmp:
        sim_file, agent_file = Path(tmp, "sim.yaml"), Path(tmp, "agent.yaml")
        sim_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": demo.sim_params(row, seed, episodes, demo_args)}}))
        agent_file.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
            **demo.agent_params(row, demo_args), "outputs": ["agent_action"]}}}))
        context = rclpy.Context()
        rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
        nodes = compose(HandleRegistry(), camera=False, context=context,
                        cli_args=["--ros-args", "--params-file", config, "--params-file", str(agent_file)])
        generation = next(node for node in nodes if isinstance(node, GenerationNode))
        spinners = NodeSpinners(nodes, context=context).start()
        cpu_before, started = time.process_time(), time.monotonic()
        with open(Path(tmp, "sim.log"), "w") as log:
            sim = subprocess.Popen(node_command("auras_ros", "sim_node", name="sim_node", params_files=[str(sim_file)]),
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            code = sim.wait(timeout=timeout_s)  # it ends when its episodes are done
        finally:
            stop_process(sim)
            wall, process_cpu = time.monotonic() - started, time.process_time() - cpu_before
            costs, decisions = generation.cpu.snapshot(), generation.recorder.decisions_recorded
            stop_composed(spinners, nodes)
            rclpy.try_shutdown(context=context)
        if code != 0:
            print(f"sim_node exited {code}:\n{Path(tmp, 'sim.log').read_text()[-3000:]}", file=sys.stderr)
            return 1
    hops = sum(cost.seconds for cost in costs.values())
    print(f"\n{row} at speed {demo_args.speed:g}, {episodes} episodes from seed {seed}: the agent process "
          f"(composed nodes) took {process_cpu:.2f} CPU s over {wall:.1f} wall s, {decisions} decisions "
          f"({1e3 * process_cpu / max(decisions, 1):.1f} ms CPU per decision)")
    print("| hop                              | messages | CPU ms / message | CPU s | share of the process |")
    print("|----------------------------------|----------|------------------|-------|----------------------|")
    for name, cost in sorted(costs.items(), key=lambda kv: -kv[1].seconds):
        print(f"| {name:<32} | {cost.messages:>8} | {cost.ms_per_message:>16.3f} | {cost.seconds:>5.2f} | "
              f"{100 * cost.seconds / process_cpu:>19.1f}% |")
    print(f"| {'(no hop: executors, DDS, gate)':<32} | {'':>8} | {'':>16} | {process_cpu - hops:>5.2f} | "
          f"{100 * (process_cpu - hops) / process_cpu:>19.1f}% |")
    return 0


def main(argv: list[str] | None = None) -> int:
    if not Path("/proc/self/task").is_dir():
        print("realtime_cpu: needs Linux's /proc", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executor", type=executor_argument, default=ExecutorSpec("seq"))
    parser.add_argument("--model", type=Path, default=demo.POLICY,
                        help="policy checkpoint directory, run by the core and the nodes alike (default: the "
                             "shipped diffusion policy, as the demo's)")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--seed", type=int, default=50000)
    parser.add_argument("--speed", type=float, default=3.0)
    parser.add_argument("--trigger", choices=("image", "frame"), default="image", help="the nodes' perception trigger")
    parser.add_argument("--top", type=int, default=12, help="threads listed per path")
    parser.add_argument("--sample-s", type=float, default=0.2)
    parser.add_argument("--hops", action="store_true", help="CPU per hop inside the agent process (nodes only)")
    parser.add_argument("--timeout", type=float, default=600.0, help="--hops: seconds before the run is given up")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    # The core's agent, and the rows per chunk the nodes' world plays: the model's own, as the core plays them.
    agent = build_agent(str(args.model))
    demo_parser = demo.build_parser()
    demo_args = demo.checked(demo_parser, demo_parser.parse_args([
        "--model", str(args.model), "--world", "realtime", "--speed", str(args.speed),
        "--episodes", str(args.episodes), "--seed", str(args.seed), "--block", str(args.episodes),
        "--trigger", args.trigger, "--chunk-rows", str(chunk_rows(agent)),
        "--executors", str(args.executor)]))
    if args.hops:
        return hop_costs(demo_args.rows[0], args.episodes, args.seed, demo_args, args.timeout)

    started = time.monotonic()
    with CpuSampler(own=True, period_s=args.sample_s) as core:
        ev = evaluate_realtime(agent, args.model.name, [args.executor], args.episodes, chunk_rows(agent), args.speed,
                               seed0=args.seed, warmup=False, progress=False)
    core_wall = time.monotonic() - started
    result = next(r for r in ev.results if r.config.spec == str(args.executor))
    core_decisions = len(result.config.ages_frames)  # one age per decision

    # The node processes start up (imports, model, discovery) inside the sampled time: a run of one
    # episode and a run of all of them differ by the episodes alone, so their difference is the steady
    # cost, start-up excluded.
    runs = []
    for episodes in (1, args.episodes):
        demo_args.episodes = demo_args.block = episodes
        started = time.monotonic()
        with CpuSampler(own=False, period_s=args.sample_s) as nodes:
            node_result = demo.evaluate(demo_args.rows, demo_args)[0]
        runs.append((nodes, len(node_result.ages_frames), time.monotonic() - started, node_result.decisions_per_s))
    (short, short_decisions, short_wall, _), (long, long_decisions, long_wall, node_rate) = runs
    print(f"\n{args.executor} at speed {args.speed:g}, {args.episodes} episodes from seed {args.seed}; "
          f"decisions/s core {result.decisions_per_s:.1f}, nodes {node_rate:.1f}")
    report("core (eval.realtime, one process)", core.by_process(), core.by_thread(), core_decisions, core_wall,
           args.top)
    report(f"nodes (sim_node + auras_composed), episodes 2..{args.episodes} (a 1-episode run subtracted)",
           _minus(long.by_process(), short.by_process()), _minus(long.by_thread(), short.by_thread()),
           long_decisions - short_decisions, long_wall - short_wall, args.top)
    report("nodes: start-up and the first episode", short.by_process(), short.by_thread(), short_decisions,
           short_wall, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
