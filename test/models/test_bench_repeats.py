"""What every benchmark shares: interleaved repeats, ratios to SEQ within a repeat, the median with
its range, the time budget and the competing load."""

from __future__ import annotations

import os
import time

import numpy as np

from auras_ros.bench.repeats import busy_load, interleaved, table
from auras_ros.core.metrics import Decision, MetricsRecorder, RunMetrics
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import AgentOutput


def metrics_at(rate: float) -> RunMetrics:
    """A run whose decisions came exactly 1/rate apart."""
    recorder = MetricsRecorder()
    for i in range(4):
        recorder.decision(Decision(i, AgentOutput(np.zeros(1)), i, i / rate, (i / rate,), i / rate + 0.01, i, 0))
    return recorder.summary()


SPECS = [ExecutorSpec.parse(t) for t in ("par:2", "seq", "auras:1+2:f0:a0")]


def test_repeats_interleave_and_ratios_are_taken_within_a_repeat():
    rates = iter([10.0, 20.0, 30.0, 5.0, 15.0, 5.0])  # repeat 1: seq, par:2, auras; repeat 2: the same
    order: list[str] = []

    def run(spec: ExecutorSpec) -> RunMetrics:
        order.append(spec.name)
        return metrics_at(next(rates))

    rows = interleaved(SPECS, 2, run)
    assert order == ["seq", "par:2", "auras:1+2:f0:a0"] * 2  # SEQ first, every row once per round
    seq, par, auras = rows
    assert seq.x_seq == [1.0, 1.0]
    assert par.x_seq == [2.0, 3.0] and auras.x_seq == [3.0, 1.0]  # against SEQ of the same repeat
    summary = par.summary()
    assert summary["decisions_per_s"]["median"] == 17.5 and (summary["decisions_per_s"]["low"],
                                                               summary["decisions_per_s"]["high"]) == (15.0, 20.0)
    assert summary["x_seq"]["median"] == 2.5 and summary["in_flight"] == 2
    lines = table(rows).splitlines()
    assert lines[3].startswith("| par:2 | 2 | 17.5 [15–20] | 2.5 [2–3] |")


def test_no_new_round_after_the_deadline():
    rows = interleaved(SPECS, 5, lambda spec: metrics_at(10.0), deadline=time.perf_counter() - 1)
    assert [len(row.runs) for row in rows] == [1, 1, 1]


def test_busy_load_runs_for_the_block_and_is_cleaned_up():
    with busy_load(1, nice=19) as loops:
        assert len(loops) == 1 and loops[0].poll() is None
        assert os.getpriority(os.PRIO_PROCESS, loops[0].pid) == 19
    assert loops[0].poll() is not None
