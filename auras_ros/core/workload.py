"""A synthetic agent with real compute in each stage, for benchmarks and tests of the executors.

Perception is a stack of dense layers over a token matrix (compute-bound, like a vision encoder);
each generation iteration is one dense layer over the batch of in-flight request states (memory-bound
on the weights at small batch, like LLM decoding or a small denoiser), so running several requests'
iterations as one merged call costs about as much as one. torch releases the GIL inside its kernels,
so perception and generation threads really run at once on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from auras_ros.core.errors import ConfigError, InputError, positive_int
from auras_ros.core.inputs import InputSpec
from auras_ros.core.stages import (PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep, Observation,
                                   expect_tensor)


@dataclass(frozen=True)
class SyntheticConfig:
    width: int = 256  # hidden width d
    perception_tokens: int = 64  # rows of the perception input
    perception_layers: int = 8
    generation_width: int = 1024  # generation weights are generation_width x generation_width
    iterations: int = 8  # generation iterations n
    action_dim: int = 7
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("width", "perception_tokens", "perception_layers", "generation_width", "iterations", "action_dim"):
            positive_int(name, getattr(self, name))
        if self.action_dim > self.generation_width:
            raise ConfigError("action_dim", self.action_dim, f"<= generation_width ({self.generation_width})")


class SyntheticAgent:
    """Implements :class:`auras_ros.core.stages.Agent`. Observation data: a float scalar (the scene), or
    a uint8 image whose mean brightness is the scene."""

    def __init__(self, config: SyntheticConfig = SyntheticConfig()) -> None:
        self.config = config
        self.input_spec = InputSpec()  # any image size: it reads only the mean brightness
        g = torch.Generator().manual_seed(config.seed)
        d, w = config.width, config.generation_width
        self._perception_weights = [torch.randn(d, d, generator=g) / d**0.5 for _ in range(config.perception_layers)]
        self._readout = torch.randn(d, w, generator=g) / d**0.5
        self._generation_weight = torch.randn(w, w, generator=g) / w**0.5
        self._basis = torch.randn(config.perception_tokens, d, generator=g)

    @property
    def generation_iterations(self) -> int:
        return self.config.iterations

    @property
    def max_perception_stages(self) -> int:
        return self.config.perception_layers

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        if stage == 0:
            if not isinstance(carry, Observation):
                raise InputError("carry", "SyntheticAgent.perceive", "an Observation at slice 0", type(carry).__name__)
            data = carry.data
            scene = float(np.asarray(data).mean()) / 255.0 if np.ndim(data) > 0 else float(data)
            if not np.isfinite(scene):
                raise InputError("observation data", "SyntheticAgent.perceive", "a finite number", scene)
            carry = torch.tanh(self._basis * scene)
        layers = self._perception_weights
        lo, hi = stage * len(layers) // num_stages, (stage + 1) * len(layers) // num_stages
        for weight in layers[lo:hi]:
            carry = torch.tanh(carry @ weight)
        if stage == num_stages - 1:
            return carry.mean(dim=0) @ self._readout  # the percept: one conditioning vector
        return carry

    def init_request(self, request_id: int) -> Any:
        g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + request_id)
        return torch.randn(self.config.generation_width, generator=g)

    def _iterate(self, states: torch.Tensor, percept: torch.Tensor) -> torch.Tensor:
        return torch.tanh(states @ self._generation_weight + percept)

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        percept = context[PERCEPT_KEY]
        states = torch.stack([s.state for s in steps])
        remaining = torch.tensor([s.end - s.begin for s in steps])
        for j in range(int(remaining.max())):
            # One merged call per sub-step: every request still iterating advances together.
            active = remaining > j
            if bool(active.all()):
                states = self._iterate(states, percept)
            else:
                states = states.clone()
                states[active] = self._iterate(states[active], percept)
        return GenerationResult(states=list(states.unbind(0)))

    def finish(self, state: Any) -> AgentOutput:
        return AgentOutput(action=state[: self.config.action_dim].double().numpy().copy())

    def percept_to_tensor(self, percept: Any) -> torch.Tensor:
        return percept

    def percept_from_tensor(self, tensor: Any) -> torch.Tensor:
        return expect_tensor(tensor, (self.config.generation_width,), torch.float32, "percept", "SyntheticAgent")

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        state = self.init_request(request_id).unsqueeze(0)
        for _ in range(self.config.iterations):
            state = self._iterate(state, percept)
        return self.finish(state[0])
