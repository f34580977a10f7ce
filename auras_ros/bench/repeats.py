"""What every benchmark shares: executors given as spec text, runs through the shipped runners
(``core.spec.make_runner`` on a wall clock), interleaved repeats summarised as a median with its
range (``core.stats.Spread``), ratios to SEQ taken within each repeat, and an optional competing
busy process.

Interleaving: repeat r runs every executor once before repeat r + 1, so a drift in the machine's
load (other jobs come and go) lands on every row alike instead of on whichever ran last.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

from auras_ros.core.clock import WallClock
from auras_ros.core.metrics import MetricsRecorder, RunMetrics
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import Agent
from auras_ros.core.stats import Spread
from auras_ros.eval.cli import executor_argument

SEQ = ExecutorSpec("seq")


def add_arguments(parser: argparse.ArgumentParser, decisions: int) -> None:
    """The options every benchmark takes."""
    parser.add_argument("--executors", type=executor_argument, nargs="+", default=None,
                        help="executor specs (seq, dec[:G], par:K, auras:P+G[:fO][:aA]); SEQ always runs first")
    parser.add_argument("--decisions", type=int, default=decisions, help="decisions measured per run")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats per executor (median [min-max])")
    parser.add_argument("--load", type=int, default=0, help="competing busy-loop processes during the runs")
    parser.add_argument("--load-nice", type=int, default=0,
                        help="niceness of those processes (19: background jobs that the robot stack preempts)")
    parser.add_argument("--json", help="also write the rows here")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.decisions < 3 or args.repeats < 1 or args.load < 0 or not 0 <= args.load_nice <= 19:
        parser.error("--decisions >= 3, --repeats >= 1, --load >= 0 and --load-nice in 0..19")


def with_seq_first(specs: Sequence[ExecutorSpec]) -> list[ExecutorSpec]:
    return [SEQ] + [s for s in specs if s != SEQ]


def measure(spec: ExecutorSpec, agent: Agent, render: Callable[[int, float], Any], decisions: int,
            camera_hz: float, frame_period: float | None = None) -> RunMetrics:
    """One wall-clock run of the shipped runner for ``spec``; the pipeline fill (L decisions, and two
    more) is warm-up, so only steady-state intervals count."""
    clock = WallClock()
    camera = PeriodicCamera(camera_hz, render, start=clock.now())
    recorder = MetricsRecorder(warmup_decisions=spec.in_flight + 2)
    runner = make_runner(spec, agent, camera, clock, frame_period=frame_period, recorder=recorder)
    try:
        return runner.run(decisions=decisions)
    finally:
        runner.close()


@dataclass
class Row:
    """One executor over every repeat; ``x_seq`` holds its rate over SEQ's within each repeat."""

    executor: str
    in_flight: int
    runs: list[RunMetrics] = field(default_factory=list)
    x_seq: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def spread(self, metric: Callable[[RunMetrics], float]) -> Spread:
        return Spread.of([metric(m) for m in self.runs])

    def summary(self) -> dict[str, Any]:
        """The row as JSON: each quantity's median, range and repeat count."""
        quantities = {"decisions_per_s": self.spread(lambda m: m.decisions_per_s),
                      "x_seq": Spread.of(self.x_seq),
                      "interval_cv": self.spread(lambda m: m.interval_cv),
                      "interval_p99_ms": self.spread(lambda m: 1e3 * m.interval_p99),
                      "age_p50_ms": self.spread(lambda m: 1e3 * m.age_p50),
                      "age_p99_ms": self.spread(lambda m: 1e3 * m.age_p99)}
        return {"executor": self.executor, "in_flight": self.in_flight,
                **{k: vars(v) for k, v in quantities.items()}, **self.extra}


def interleaved(specs: Sequence[ExecutorSpec], repeats: int, run: Callable[[ExecutorSpec], RunMetrics],
                log: Callable[[str], None] = lambda line: None, deadline: float | None = None) -> list[Row]:
    """``run(spec)`` for every spec, ``repeats`` rounds, round by round; SEQ first in each round.
    Past ``deadline`` (``time.perf_counter()``) no new round starts, so every row keeps as many repeats."""
    specs = with_seq_first(specs)
    rows = [Row(spec.name, spec.in_flight) for spec in specs]
    for r in range(repeats):
        if deadline is not None and r > 0 and time.perf_counter() > deadline:
            log(f"  time budget spent: {r} of {repeats} repeats")
            break
        for spec, row in zip(specs, rows, strict=False):
            row.runs.append(run(spec))
            log(f"  repeat {r + 1}/{repeats}: {spec.name} {row.runs[-1].decisions_per_s:.1f} decisions/s")
        seq_rate = rows[0].runs[-1].decisions_per_s
        for row in rows:
            row.x_seq.append(row.runs[-1].decisions_per_s / seq_rate)
    return rows


COLUMNS: dict[str, Callable[[Row], Spread]] = {
    "decisions/s": lambda row: row.spread(lambda m: m.decisions_per_s),
    "x SEQ": lambda row: Spread.of(row.x_seq),
    "interval CV": lambda row: row.spread(lambda m: m.interval_cv),
    "interval p99 ms": lambda row: row.spread(lambda m: 1e3 * m.interval_p99),
    "age p50 ms": lambda row: row.spread(lambda m: 1e3 * m.age_p50),
    "age p99 ms": lambda row: row.spread(lambda m: 1e3 * m.age_p99),
}


def table(rows: Sequence[Row], lead: Sequence[str] = ()) -> str:
    """Markdown: the ``lead`` columns (from each row's ``extra``), then executor, L and every column
    of :data:`COLUMNS`, each cell the median [min–max] over the repeats."""
    head = [*lead, "executor", "L", *COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [*(str(row.extra[name]) for name in lead), row.executor, str(row.in_flight),
                 *(str(f(row)) for f in COLUMNS.values())]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


@contextlib.contextmanager
def busy_load(processes: int, nice: int = 0) -> Iterator[list[subprocess.Popen]]:
    """``processes`` competing busy loops (each keeps one core busy) at niceness ``nice``, for the
    duration."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        for loop in loops:
            os.setpriority(os.PRIO_PROCESS, loop.pid, nice)
        yield loops
    finally:
        for loop in loops:
            loop.terminate()
        for loop in loops:
            loop.wait()
