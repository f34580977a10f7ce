"""The contract between the pipeline executor and an agent model.

As in vLLM's engine, scheduling stays apart from execution: the executors in ``auras_ros.core``
decide which request runs which iterations in which frame; an :class:`Agent` only computes, and knows
nothing of where its requests came from.

An agent is split into
- **perception**: the one-step encoders. Its output, the *percept*, is written to the public context
  under :data:`PERCEPT_KEY`. It may be cut into ``num_stages`` slices (the paper's ``pp_perception``),
  each run in a different frame.
- **generation**: ``generation_iterations`` iterations (denoising steps, or action tokens). In the
  Auras pipeline all in-flight requests' iterations of one frame run as ONE merged call
  (:meth:`Agent.generate`) that reads the freshest public context; the baselines run a whole request
  at once on a fixed percept (:meth:`Agent.generate_request`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

from auras_ros.core.errors import ConfigError, InputError

if TYPE_CHECKING:
    from auras_ros.core.inpaint import Inpaint

PERCEPT_KEY = "percept"
"""Public-context key under which perception writes its output."""


@dataclass(frozen=True)
class Observation:
    """What the robot sensed at sensor time ``stamp`` (seconds on the pipeline clock)."""

    seq: int
    stamp: float
    data: Any


@dataclass(frozen=True)
class AgentOutput:
    """One decision: a continuous action and, for autoregressive agents, the raw action tokens."""

    action: np.ndarray
    tokens: tuple[int, ...] = ()


@dataclass(frozen=True)
class GenerationStep:
    """One in-flight request's share of a frame: iterations ``[begin, end)`` on its ``state``;
    ``inpaint``: the chunk its decision should continue, for an agent that :func:`inpaints` (else None)."""

    request_id: int
    state: Any
    begin: int
    end: int
    inpaint: Inpaint | None = None


@dataclass(frozen=True)
class GenerationResult:
    """What a merged generation call returns.

    ``states`` follows the order of the steps. ``context_writes`` are public-context updates the
    generation itself produces (an AR agent's shared action tokens X_A); the executor writes them.
    """

    states: list[Any]
    context_writes: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Agent(Protocol):
    """An embodied agent cut into perception and generation.

    Optional attributes, read through the helpers below with a default for agents that lack them:
    ``state_size`` (:func:`state_size`), ``chunk_rows`` (:func:`chunk_rows`), ``reset()``
    (:func:`reset_episode`), ``noise_scale`` (:func:`set_noise_scale`) and ``inpaints``
    (:func:`inpaints`: such an agent reads :attr:`GenerationStep.inpaint` and takes
    ``generate_request(percept, request_id, inpaint=...)``; the runners pass neither to any other).
    """

    @property
    def generation_iterations(self) -> int:
        """n: denoising steps (diffusion) or action tokens l_a (AR)."""
        ...

    @property
    def max_perception_stages(self) -> int:
        """How many slices perception can be cut into (1: not splittable)."""
        ...

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        """Run perception slice ``stage`` of ``num_stages``.

        Slice 0 receives the :class:`Observation`; each slice returns the carry of the next; the last
        slice returns the percept.
        """
        ...

    def init_request(self, request_id: int) -> Any:
        """Initial per-request generation state (e.g. the noise sample x_0, seeded by request id)."""
        ...

    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        """All ``steps`` of one frame as one merged call, every one reading the same ``context``.

        ``context`` maps public-context keys to values; it always holds :data:`PERCEPT_KEY`.
        """
        ...

    def finish(self, state: Any) -> AgentOutput:
        """Turn a request's final generation state into its decision."""
        ...

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        """A whole request's generation on one fixed percept, by the fastest honest sequential path
        (AR: prefill + KV-cache decode). The SEQ, DEC and PAR baselines use it."""
        ...

    def percept_to_tensor(self, percept: Any) -> Any:
        """The one tensor (``torch.Tensor``) that carries this agent's percept across a topic."""
        ...

    def percept_from_tensor(self, tensor: Any) -> Any:
        """The percept back from its tensor. A tensor of another dtype or shape than this agent's
        percept raises :class:`~auras_ros.core.errors.InputError` naming what arrived and what was
        expected, so a receiver can refuse it before admission."""
        ...


def expect_tensor(value: Any, shape: tuple[int, ...], dtype: Any, what: str, where: str) -> Any:
    """``value`` if it is a torch tensor of exactly ``shape`` and ``dtype``, else an InputError."""
    if not isinstance(value, torch.Tensor):
        raise InputError(what, where, f"a torch.Tensor {_tensor_text(shape, dtype)}", type(value).__name__)
    if tuple(value.shape) != tuple(shape) or value.dtype != dtype:
        raise InputError(what, where, _tensor_text(shape, dtype), _tensor_text(tuple(value.shape), value.dtype))
    return value


def _tensor_text(shape: tuple[int, ...], dtype: Any) -> str:
    return f"{str(dtype).removeprefix('torch.')}{list(shape)}"


def state_size(agent: Agent) -> int:
    """Robot-state values the agent's observations carry beside the image (0: the image alone). An agent
    that takes a state says so with a ``state_size`` attribute; its observation data is then
    ``{"image": ..., "state": ...}``."""
    return int(getattr(agent, "state_size", 0))


def chunk_rows(agent: Agent) -> int:
    """Rows of the agent's action chunk (its decision's action, read as rows) that the robot plays
    before the next decision replaces it. It is the model's own metadata (saved with its checkpoint):
    an agent that plays a chunk says so with a ``chunk_rows`` attribute; 1 plays the first row alone."""
    return int(getattr(agent, "chunk_rows", 1))


def inpaints(agent: Agent) -> bool:
    """Whether the agent guides its chunks toward the executing one (the ``inpaint`` overlap,
    :mod:`auras_ros.core.inpaint`): an agent that does says so with ``inpaints = True``."""
    return bool(getattr(agent, "inpaints", False))


def samples_noise(agent: Agent) -> bool:
    """Whether the agent's generation starts from sampled noise (the diffusion policies): such an agent
    says so with a ``noise_scale`` attribute, the scale :func:`set_noise_scale` sets."""
    return hasattr(agent, "noise_scale")


def check_noise_scale(value: Any) -> float:
    """``value`` as a float when it is a finite number >= 0 (a bool is not), else a ConfigError naming
    ``noise_scale``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError("noise_scale", value, "a finite number >= 0 (1: the noise as trained, 0: none)")
    return float(value)


def set_noise_scale(agent: Agent, scale: Any) -> None:
    """Scale the noise a diffusion agent samples from: every request's initial noise x_T and, for a
    stochastic sampler (DDPM), its per-step noise z_k (a sampling temperature; 1 = as trained, 0 =
    deterministic "mean" sampling). A runtime setting of the agent, not of its checkpoint.

    Why: each request draws its own x_T, so consecutive chunks are independent samples of the policy and
    the seams between them are large; 0 removes that sampling variance between consecutive chunks, at the
    cost of the policy's multimodality (every request on one observation gives the same chunk). The
    lead's measurement (issue #18; shipped diffusion checkpoint, real-time world speed 3, 20 paired seeds
    from 70000, ``eval.chunk_table --variant reverse``): auras:1+4:f0:a0@replace at scale 0 had 100%
    success, seam p50/p99 0.611/0.788 and reaction 2.5 frames, against 100%, 1.225/1.584 and 2.0 at
    scale 1; seq 100%, 0.599/0.891; scale 0.5 gave seams 0.670/1.024. (One x_T shared by all requests
    instead gave 0% success: the scale is per request, not a shared sample.)

    ConfigError for a scale that is not a finite number >= 0, or one other than 1 for an agent that
    samples no noise (:func:`samples_noise`); 1 for such an agent changes nothing."""
    value = check_noise_scale(scale)
    if not samples_noise(agent):
        if value != 1.0:
            raise ConfigError("noise_scale", scale, f"1 for {type(agent).__name__}: it samples no noise "
                              "(only the diffusion policies do)")
        return
    agent.noise_scale = value  # type: ignore[attr-defined]


def generate_request(agent: Agent, percept: Any, request_id: int, inpaint: Inpaint | None = None) -> AgentOutput:
    """A whole request on a fixed percept; ``inpaint`` reaches only an agent that :func:`inpaints` (the
    others take no such argument)."""
    if inpaint is None:
        return agent.generate_request(percept, request_id)
    return agent.generate_request(percept, request_id, inpaint=inpaint)  # type: ignore[call-arg]


def reset_episode(agent: Agent) -> None:
    """An episode starts: an agent that keeps state from one observation to the next (LeRobot diffusion's
    ``n_obs_steps`` history) forgets it through its optional ``reset()``, so the new episode's first
    decisions never see the last one's frames. The evaluators call it before each episode's runner."""
    reset = getattr(agent, "reset", None)
    if callable(reset):
        reset()


def perceive_all(agent: Agent, observation: Observation, num_stages: int = 1) -> Any:
    """Run every perception slice of one observation back to back (the sequential path)."""
    carry: Any = observation
    for stage in range(num_stages):
        carry = agent.perceive(carry, stage, num_stages)
    return carry
