"""The scripted expert as an :class:`Agent`, so it runs through the very same executors as the
learned policies.

Perception reads the world's ground truth at the moment it runs (privileged state) and turns it into
the expert's action: with ``pp_perception = 1`` every executor perceives in the frame its observation
was taken, so the percept is exactly "the expert on that observation". Generation does no work of
its own: each iteration copies the percept it reads into the request's state. So what the decision
holds is the expert action on the observation its *last* generation step read — the public context
makes it fresh, a private context (PAR, naive pipelining) keeps it as old as the request.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from auras_ros.core.stages import PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep
from auras_ros.eval.task import CatchTask


class ExpertAgent:
    def __init__(self, task: CatchTask, iterations: int = 4, chunk_rows: int = 1) -> None:
        self.task = task
        self._iterations = iterations
        self.chunk_rows = chunk_rows

    @property
    def generation_iterations(self) -> int:
        return self._iterations

    @property
    def max_perception_stages(self) -> int:
        return 1

    def perceive(self, carry: Any, stage: int, num_stages: int) -> np.ndarray:
        return self.task.expert_action()

    def init_request(self, request_id: int) -> np.ndarray:
        return np.zeros(2)

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        percept = np.asarray(context[PERCEPT_KEY])
        return GenerationResult(states=[percept.copy() for _ in steps])

    def finish(self, state: Any) -> AgentOutput:
        return AgentOutput(action=np.tile(np.asarray(state, dtype=np.float64), self.chunk_rows))

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        return self.finish(percept)


class IdleAgent(ExpertAgent):
    """Does nothing: every decision is "stand still"."""

    def perceive(self, carry: Any, stage: int, num_stages: int) -> np.ndarray:
        return np.zeros(2)
