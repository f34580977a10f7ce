"""Run an executor over a camera that shows given data, frame by frame on a simulated clock: the loaded
checkpoints' tests compare its decisions with golden ones."""

from __future__ import annotations

from typing import Any, Callable

from auras_ros.core.clock import SimClock
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import Agent


def decisions_over(agent: Agent, executor: str, frames: int, frame_period: float,
                   data: Callable[[int], Any]) -> list:
    """``executor``'s decisions over ``frames`` frames of a camera whose image ``seq`` is ``data(seq)``."""
    camera = PeriodicCamera(1 / frame_period, lambda seq, stamp: data(seq))
    decisions: list = []
    runner = make_runner(ExecutorSpec.parse(executor), agent, camera, SimClock(), frame_period=frame_period,
                         on_decision=lambda d: decisions.append(d) or True)
    try:
        runner.run(frames=frames)
    finally:
        runner.close()
    return decisions
