"""What perception in another thread of the same process costs generation: the GIL.

With the denoiser eager, a SEQ decision through the composed graph took ~18 ms of wall time on a 2-core
machine where the core's took ~14.5 (perception then generation, one thread), while py-spy showed
generation's thread busy ~99% of the time: generation itself ran slower there. A small policy spends most of a request in Python between
torch calls, and only one thread of a process runs Python at a time, so every millisecond of Python
another thread runs (perception of each camera image, the executors' callbacks) is a millisecond
generation waits, whatever the CPUs left idle.

This measures it with the agent's own calls (``core.stages.generate_request`` and ``perceive_all``), one
torch thread: the latency of whole requests alone, and with a perception thread perceiving at the camera's
rate beside them, interleaved per repeat, per interpreter switch interval (``sys.setswitchinterval``,
how long a thread may hold the GIL while another waits) and, for a diffusion agent, with its denoiser
eager and traced (``DiffusionPolicyAgent.trace``, :mod:`auras_ros.models.traced`: no Python between its
operators, the lock released while it runs).

    tools/setup_env.sh python -m auras_ros.bench.gil_share --repeats 5
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from auras_ros.core.stages import Agent, Observation, generate_request, perceive_all
from auras_ros.core.stats import Spread
from auras_ros.eval.task import CatchTask
from auras_ros.models.factory import build_agent

POLICY = Path(__file__).resolve().parents[1] / "eval" / "checkpoints" / "diffusion"


def request_ms(agent: Agent, percept: object, requests: int) -> float:
    """Median wall milliseconds of one whole generation request."""
    times = []
    for i in range(requests):
        start = time.perf_counter()
        generate_request(agent, percept, i)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def perceive_at(agent: Agent, observation: Observation, period: float, stop: threading.Event) -> None:
    """Perception of one image every ``period`` seconds until ``stop``: a camera's rate, as the perception
    node's thread runs beside generation's."""
    due = time.perf_counter()
    while not stop.is_set():
        perceive_all(agent, observation)
        due += period
        stop.wait(max(due - time.perf_counter(), 0.0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(POLICY), help="agent preset or checkpoint directory")
    parser.add_argument("--camera-hz", type=float, default=60.0, help="perceptions per second beside generation")
    parser.add_argument("--requests", type=int, default=60, help="requests timed per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats (median [min-max])")
    parser.add_argument("--switch-intervals", type=float, nargs="+", default=[0.005],
                        help="sys.setswitchinterval values in seconds (5 ms is Python's default)")
    args = parser.parse_args(argv)
    if args.camera_hz <= 0 or args.requests < 3 or args.repeats < 1 or min(args.switch_intervals) <= 0:
        parser.error("--camera-hz > 0, --requests >= 3, --repeats >= 1, switch intervals > 0")
    torch.set_num_threads(1)
    agent = build_agent(args.model)
    task = CatchTask()
    task.reset(0)
    frame = task.observation()
    observation = Observation(frame.seq, 0.0, frame.data)
    percept = perceive_all(agent, observation)
    perceive_ms = []
    for _ in range(20):
        start = time.perf_counter()
        perceive_all(agent, observation)
        perceive_ms.append((time.perf_counter() - start) * 1e3)
    request_ms(agent, percept, 5)  # warm-up
    default_interval = sys.getswitchinterval()
    # Denoiser modes: a diffusion agent's traced one (the default on the CPU) and its eager one.
    modes = [("eager", False), ("traced", True)] if hasattr(agent, "trace") else [("as built", None)]
    rows = [(mode, trace, interval) for mode, trace in modes for interval in args.switch_intervals]
    alone: dict[tuple, list[float]] = {row: [] for row in rows}
    beside: dict[tuple, list[float]] = {row: [] for row in rows}
    built_trace = getattr(agent, "trace", None)
    try:
        for _ in range(args.repeats):
            for row in rows:
                _, trace, interval = row
                if trace is not None:
                    agent.trace = trace
                    request_ms(agent, percept, 2)  # a first traced call traces
                sys.setswitchinterval(interval)
                alone[row].append(request_ms(agent, percept, args.requests))
                stop = threading.Event()
                thread = threading.Thread(target=perceive_at, args=(agent, observation, 1 / args.camera_hz, stop))
                thread.start()
                try:
                    beside[row].append(request_ms(agent, percept, args.requests))
                finally:
                    stop.set()
                    thread.join()
    finally:
        sys.setswitchinterval(default_interval)
        if built_trace is not None:
            agent.trace = built_trace
    per_s = float(np.median(perceive_ms)) * args.camera_hz
    print(f"{args.model}: one perception {np.median(perceive_ms):.2f} ms (x {args.camera_hz:g}/s = {per_s:.0f} ms "
          f"of each second); {args.requests} requests x {args.repeats} interleaved repeats, median [min-max]")
    print("| denoiser | switch interval | request alone (ms) | with perception beside it (ms) | added (ms) | ratio |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        mode, _, interval = row
        a, b = Spread.of(alone[row]), Spread.of(beside[row])
        added = Spread.of([y - x for x, y in zip(alone[row], beside[row], strict=True)])
        ratio = Spread.of([y / x for x, y in zip(alone[row], beside[row], strict=True)])
        print(f"| {mode} | {interval * 1e3:g} ms | {a} | {b} | {added} | {ratio} |")

if __name__ == "__main__":
    main()
