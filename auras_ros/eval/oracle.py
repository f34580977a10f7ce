"""The scripted expert as an :class:`Agent`, so it runs through the very same executors as the
learned policies.

Perception sees only the observation it is given: the agent's position from its ``state`` and the
target's from the red pixels of its ``image``, and turns them into the expert's action. So an
executor that hands perception the wrong (e.g. an old) observation gets the wrong action. Generation
does no work of its own: each iteration copies the percept it reads into the request's state. So
what the decision holds is the expert action on the observation its *last* generation step read —
the public context makes it fresh, a private context (PAR, naive pipelining) keeps it as old as the
request.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from auras_ros.core.errors import InputError
from auras_ros.core.stages import PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep, Observation
from auras_ros.eval.task_config import TaskConfig


def target_from_image(image: np.ndarray, config: TaskConfig) -> np.ndarray:
    """The target's (x, y) in the arena: the centroid of the red pixels of a top-camera render."""
    rgb = np.asarray(image, dtype=np.int16)
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 160) & (rgb[..., 2] < 160)  # white floor, dark walls, blue agent
    if not red.any():
        raise InputError("image", "target_from_image", "a render showing the red target", "no red pixels")
    rows, cols = np.nonzero(red)
    size = image.shape[0]
    half = config.arena + 0.12  # the camera frames the arena walls (see task._model_xml)
    pixel = 2 * half / size
    # Image row 0 is the +y edge of the arena, column 0 the -x edge.
    return np.array([-half + (cols.mean() + 0.5) * pixel, half - (rows.mean() + 0.5) * pixel])


class ExpertAgent:
    def __init__(self, config: TaskConfig, iterations: int = 4, chunk_rows: int = 1) -> None:
        self.config = config
        self._iterations = iterations
        self.chunk_rows = chunk_rows

    @property
    def generation_iterations(self) -> int:
        return self._iterations

    @property
    def max_perception_stages(self) -> int:
        return 1

    def perceive(self, carry: Any, stage: int, num_stages: int) -> np.ndarray:
        if not isinstance(carry, Observation) or not isinstance(carry.data, Mapping):
            raise InputError("observation", "ExpertAgent.perceive", "an Observation of the catch task", type(carry).__name__)
        agent = np.asarray(carry.data["state"], dtype=np.float64)
        target = target_from_image(carry.data["image"], self.config)
        velocity = self.config.gain * (target - agent)
        return np.clip(velocity / self.config.max_speed, -1.0, 1.0)

    def init_request(self, request_id: int) -> np.ndarray:
        return np.zeros(2)

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        percept = np.asarray(context[PERCEPT_KEY])
        return GenerationResult(states=[percept.copy() for _ in steps])

    def finish(self, state: Any) -> AgentOutput:
        return AgentOutput(action=np.tile(np.asarray(state, dtype=np.float64), self.chunk_rows))

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        return self.finish(percept)

    def percept_to_tensor(self, percept: Any) -> Any:
        raise NotImplementedError("the scripted expert's percept never crosses a topic")

    percept_from_tensor = percept_to_tensor


class IdleAgent(ExpertAgent):
    """Does nothing: every decision is "stand still"."""

    def perceive(self, carry: Any, stage: int, num_stages: int) -> np.ndarray:
        return np.zeros(2)
