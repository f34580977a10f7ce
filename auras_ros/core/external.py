"""Running generation in one process while perception runs in another (the distributed ROS graph).

A generation node only sees percepts that arrive from the perception node. :class:`ExternalPerception`
wraps an agent so that the executors treat an arrived percept as an observation whose perception is
already done: its single perception slice hands the percept through, so the pipeline writes it into
the public context slot of the frame it arrived in and every in-flight generation step reads the
freshest one, exactly as in the composed pipeline. ``fetch_offset`` keeps its meaning: -1 reads only
percepts that arrived before this frame began. With ``stages`` > 1 the arrived percept passes through
that many slices, one per frame, so a graph with ``pp_perception`` P keeps the core's schedule: the
observation admitted in frame t is written into the public context in frame t + P - 1.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

from auras_ros.core.errors import InputError
from auras_ros.core.stages import (Agent, AgentOutput, GenerationResult, GenerationStep, Observation, chunk_rows,
                                   generate_request, inpaints)

if TYPE_CHECKING:
    from auras_ros.core.inpaint import Inpaint


class ExternalPerception:
    """An :class:`Agent` whose perception happened elsewhere; generation is the wrapped agent's."""

    def __init__(self, agent: Agent, stages: int = 1) -> None:
        self.agent = agent
        self.stages = stages

    @property
    def generation_iterations(self) -> int:
        return self.agent.generation_iterations

    @property
    def max_perception_stages(self) -> int:
        return self.stages

    @property
    def chunk_rows(self) -> int:
        """The wrapped agent's (ASYNC paces its requests by the rows its chunks play)."""
        return chunk_rows(self.agent)

    @property
    def chunk_period(self) -> float | None:
        """The wrapped agent's seconds between chunk rows, where it states them."""
        return getattr(self.agent, "chunk_period", None)

    @property
    def inpaints(self) -> bool:
        """Whether the wrapped agent guides its chunks toward the executing one (the ``inpaint`` overlap)."""
        return inpaints(self.agent)

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        if not isinstance(carry, Observation):
            raise InputError("carry", "ExternalPerception.perceive", "an Observation holding a percept",
                             type(carry).__name__)
        return carry.data if stage == num_stages - 1 else carry

    def init_request(self, request_id: int) -> Any:
        return self.agent.init_request(request_id)

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        return self.agent.generate(context, steps)

    def finish(self, state: Any) -> AgentOutput:
        return self.agent.finish(state)

    def generate_request(self, percept: Any, request_id: int, inpaint: Inpaint | None = None) -> AgentOutput:
        return generate_request(self.agent, percept, request_id, inpaint)
