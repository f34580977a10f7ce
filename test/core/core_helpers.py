from __future__ import annotations

from typing import Any, Mapping, Sequence

from auras_ros.core.stages import PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig

FRAME = 0.05  # seconds per frame in frame-stepped tests; the camera senses once per frame
TINY = SyntheticConfig(width=16, perception_tokens=4, perception_layers=4, generation_width=32, iterations=6)


class RecordingAgent(SyntheticAgent):
    """A synthetic agent whose percepts carry their observation's seq, and which records, for every
    merged generation call, which observation it read and which request steps it ran."""

    def __init__(self, config: SyntheticConfig = TINY) -> None:
        super().__init__(config)
        self.calls: list[tuple[int, list[tuple[int, int, int]]]] = []
        self.call_frames: list[int] = []
        self.pipeline: Any = None  # set by a test that wants each call's frame

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        seq, inner = (carry.seq, carry) if stage == 0 else carry
        return seq, super().perceive(inner, stage, num_stages)

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        seq, percept = context[PERCEPT_KEY]
        self.calls.append((seq, [(s.request_id, s.begin, s.end) for s in steps]))
        if self.pipeline is not None:
            self.call_frames.append(self.pipeline.frame)
        return super().generate({**context, PERCEPT_KEY: percept}, steps)

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        return super().generate_request(percept[1], request_id)
