"""A Diffusion-Policy-shaped agent cut into perception and generation (paper §2.1, §2.2).

- **Perception**: the ResNet-18-shaped image encoder (+ the robot state, concatenated) → the
  conditioning H_o, the percept written to the public context. It can be cut into up to six slices
  (stem, four residual stages, pool+proj) for ``pp_perception`` > 1.
- **Generation**: ``n_steps`` denoising iterations of a 1-D conv UNet over the action chunk x_k.
  Every request keeps its own noisy sample (x_T drawn from the seed and its request id, scaled by the
  runtime :attr:`DiffusionPolicyAgent.noise_scale`: 0 samples deterministically); in the Auras frame all
  in-flight requests' iterations run as one batched denoiser call per sub-step, all conditioned on the
  same, latest H_o. A request may carry an :class:`~auras_ros.core.inpaint.Inpaint` (the ``inpaint``
  overlap): its iterations are then guided toward the chunk that will be executing when it arrives
  (RTC's guidance adapted to x0 in ``_vjp_step``, or the gradient-free ``_blend_step``).

Observation data: a mapping ``{"image": HxWx3 uint8 RGB, "state": (state_dim,) float}``; with
``state_dim == 0`` the bare image (or a mapping with "image") is enough.

Decision: :attr:`AgentOutput.action` is the whole action chunk, float64, flattened row-major from
shape :attr:`DiffusionPolicyConfig.chunk_shape` = (horizon, action_dim), in the normalized action
space [-1, 1] (the sampler clips x0 there, as Diffusion Policy does). The executor/robot side takes
the first ``n_action_steps`` rows, as Diffusion Policy executes 8 of 16.

Nothing is fetched from a hub: weights are random from ``seed``, or loaded from a local directory
written by :meth:`DiffusionPolicyAgent.save`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ContextManager, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from auras_ros.core.errors import ConfigError, InputError, one_of
from auras_ros.core.inpaint import Inpaint
from auras_ros.core.inputs import InputSpec, StateSpec
from auras_ros.core.stages import (PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep, check_noise_scale,
                                   expect_tensor)
from auras_ros.models.checkpoint_files import read_json_object, read_weights
from auras_ros.models.denoiser import ConditionalUnet1D
from auras_ros.models.graphs import CaptureLog, GraphedFunction, capture_for
from auras_ros.models.inputs import as_image_tensor, check_finite, check_perception_slice, split_observation
from auras_ros.models.resnet import ResNet18Encoder
from auras_ros.models.schedule import make_schedule
from auras_ros.models.seeding import seeded_rng
from auras_ros.models.traced import TracedModule

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
DENOISERS = ("unet",)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "diffusion_policy.pt"
CHECKPOINT_KIND = "auras_ros.diffusion_policy"


@dataclass(frozen=True)
class DiffusionPolicyConfig:
    """Everything that fixes the model's shape, its sampler and where it runs."""

    image_size: tuple[int, int] = (96, 96)  # (H, W); Push-T renders 96x96
    encoder_width: int = 64  # width of the first residual stage; 64 = ResNet-18
    feature_dim: int | None = None  # linear projection of the pooled features; None keeps 8 * encoder_width
    state_dim: int = 2  # robot state concatenated to the image features (Push-T: agent x, y); 0 = none
    # JointState names of the state values, in order (empty: the message's positions in its order).
    state_joints: tuple[str, ...] = ()
    resize: str = "resize"  # how a camera image of another size becomes image_size (core.inputs.RESIZE_RULES)
    global_cond_dim: int | None = None  # the UNet's conditioning width; None derives it, else it must match
    action_dim: int = 2
    horizon: int = 16  # action chunk length
    n_action_steps: int = 8  # rows of the chunk the robot executes; informative for the executor side
    denoiser: str = "unet"
    down_dims: tuple[int, ...] = (256, 512, 1024)
    kernel_size: int = 5
    n_groups: int = 8
    step_embed_dim: int = 256
    n_steps: int = 100  # denoising iterations at inference (the agent's generation_iterations)
    train_timesteps: int = 100
    sampler: str = "ddim"  # "ddim" (deterministic, any n_steps) or "ddpm" (n_steps == train_timesteps)
    clip_sample: bool = True
    seed: int = 0
    dtype: str = "float32"
    device: str = "cpu"

    @property
    def encoder_features(self) -> int:
        return 8 * self.encoder_width if self.feature_dim is None else self.feature_dim

    @property
    def cond_dim(self) -> int:
        """Width of H_o: image features + robot state."""
        return self.encoder_features + self.state_dim

    @property
    def input_spec(self) -> InputSpec:
        """The observation form this policy is trained on: images in [0, 1] (``pixel / 255``), no mean or std."""
        if self.state_joints and not self.state_dim:
            raise ConfigError("state_joints", list(self.state_joints), "none: state_dim is 0 (the image alone)")
        state = StateSpec(self.state_dim, tuple(self.state_joints)) if self.state_dim else None
        return InputSpec(size=tuple(self.image_size), resize=self.resize, state=state)

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """Shape of the action chunk that :attr:`AgentOutput.action` holds flattened."""
        return (self.horizon, self.action_dim)

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first field whose value does not fit the others."""

        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, value, "an integer >= 1")

        if len(self.image_size) != 2 or any(not isinstance(v, int) or v < 1 for v in self.image_size):
            raise ConfigError("image_size", self.image_size, "(height, width) positive integers")
        for name in ("encoder_width", "action_dim", "horizon", "kernel_size", "n_groups", "step_embed_dim", "n_steps"):
            positive(name)
        if self.feature_dim is not None:
            positive("feature_dim")
        if not isinstance(self.state_dim, int) or self.state_dim < 0:
            raise ConfigError("state_dim", self.state_dim, "an integer >= 0")
        _ = self.input_spec  # a resize rule or state joints that do not fit: ConfigError now, not at the first image
        if self.global_cond_dim is not None and self.global_cond_dim != self.cond_dim:
            raise ConfigError(
                "global_cond_dim",
                self.global_cond_dim,
                f"the conditioning width {self.cond_dim} = encoder features {self.encoder_features} + state_dim {self.state_dim}",
            )
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ConfigError("n_action_steps", self.n_action_steps, f"an integer in [1, horizon={self.horizon}]")
        if self.denoiser not in DENOISERS:
            raise ConfigError("denoiser", self.denoiser, one_of(DENOISERS))
        if not self.down_dims or any(not isinstance(d, int) or d < 1 for d in self.down_dims):
            raise ConfigError("down_dims", self.down_dims, "a non-empty tuple of positive integers")
        if any(d % self.n_groups for d in self.down_dims):
            raise ConfigError("n_groups", self.n_groups, f"a divisor of every down_dims entry {self.down_dims}")
        if self.kernel_size % 2 == 0:
            raise ConfigError("kernel_size", self.kernel_size, "an odd integer (same-length convolution)")
        if self.step_embed_dim < 4 or self.step_embed_dim % 2:
            raise ConfigError("step_embed_dim", self.step_embed_dim, "an even integer >= 4")
        levels = 2 ** (len(self.down_dims) - 1)
        if self.horizon % levels:
            raise ConfigError("horizon", self.horizon, f"a multiple of {levels} (the UNet halves it {len(self.down_dims) - 1} times)")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", self.dtype, one_of(DTYPES))
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError("seed", self.seed, "an integer >= 0")
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as error:
            raise ConfigError("device", self.device, "a torch device string such as 'cpu' or 'cuda:0'") from error
        if device.type not in ("cpu", "cuda"):
            raise ConfigError("device", self.device, "'cpu' or 'cuda[:index]'")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("device", self.device, "'cpu' (CUDA is not available on this machine)")
        make_schedule(self.n_steps, self.train_timesteps, self.sampler, self.clip_sample)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DiffusionPolicyConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(unknown[0], data[unknown[0]], f"a field of DiffusionPolicyConfig ({', '.join(sorted(known))})")
        values = dict(data)
        for name in ("image_size", "down_dims", "state_joints"):
            if name in values:
                values[name] = tuple(values[name])
        return cls(**values)


def tiny(**overrides: Any) -> DiffusionPolicyConfig:
    """A ~0.25M-parameter model for tests: 32x32 image, 8-wide encoder, 2-level UNet, 8 DDIM steps."""
    config = DiffusionPolicyConfig(
        image_size=(32, 32),
        encoder_width=8,
        state_dim=2,
        action_dim=2,
        horizon=8,
        n_action_steps=4,
        down_dims=(16, 32),
        kernel_size=3,
        n_groups=4,
        step_embed_dim=16,
        n_steps=8,
        train_timesteps=100,
        sampler="ddim",
    )
    return dataclasses.replace(config, **overrides)


def diffusion_policy_shaped(**overrides: Any) -> DiffusionPolicyConfig:
    """The paper's DP-CNN shape (Push-T): ResNet-18 at full width (512 features) + 2-d agent state,
    Diffusion Policy's default ConditionalUnet1D (down_dims 256/512/1024, kernel 5, 8 groups, 256-d step
    embedding), horizon 16, 100 DDPM denoising steps. The GPU benchmark imports this name."""
    config = DiffusionPolicyConfig(n_steps=100, train_timesteps=100, sampler="ddpm")
    return dataclasses.replace(config, **overrides)


@dataclass(frozen=True)
class DiffusionPercept:
    """H_o for the public context. ``ready`` marks, on CUDA, when the perception stream has written it."""

    cond: torch.Tensor  # (cond_dim,)
    ready: Any = None  # torch.cuda.Event | None


@dataclass(frozen=True)
class DiffusionState:
    """One request's generation state: its own noisy sample after ``iteration`` denoising iterations."""

    request_id: int
    iteration: int
    sample: torch.Tensor  # (horizon, action_dim)
    noise: torch.Tensor | None  # (n_steps, horizon, action_dim): the request's DDPM noise z_k, drawn up front


@dataclass(frozen=True)
class _Guidance:
    """The ``inpaint`` targets of a batch of requests, on the device: y (B, horizon, action_dim) in the
    sample's space, the soft mask W (B, horizon), β (B,) and the guidance method (one per batch, from
    :data:`auras_ros.core.inpaint.GUIDANCE_METHODS`). A request without one has W = 0."""

    target: torch.Tensor
    weights: torch.Tensor
    max_guidance: torch.Tensor
    method: str

    def rows(self, index: torch.Tensor) -> "_Guidance":
        return _Guidance(self.target[index], self.weights[index], self.max_guidance[index], self.method)


@dataclass(frozen=True)
class _Carry:
    """What passes between perception slices."""

    features: torch.Tensor
    state: torch.Tensor | None


class DiffusionPolicy(nn.Module):
    """The weights: image encoder + denoiser (one set, shared by every in-flight request)."""

    def __init__(self, config: DiffusionPolicyConfig) -> None:
        super().__init__()
        self.encoder = ResNet18Encoder(config.encoder_width, config.feature_dim)
        self.denoiser = ConditionalUnet1D(
            config.action_dim, config.cond_dim, config.down_dims, config.step_embed_dim, config.kernel_size, config.n_groups
        )


def request_seed(seed: int, request_id: int) -> int:
    """A generator seed from (seed, request_id), so a request's noise does not depend on the run's order."""
    return int(np.random.SeedSequence([seed, request_id]).generate_state(1, dtype=np.uint64)[0] >> 1)


class DiffusionPolicyAgent:
    """Implements :class:`auras_ros.core.stages.Agent` for a Diffusion-Policy-shaped model.

    ``graphs`` (default: on when the device is CUDA): each denoising iteration runs over fixed
    buffers per batch size, replayed as a CUDA graph on a GPU, so a frame's many small kernels are
    not launch-bound; the executors, the generation node and the benchmarks run this same path. On
    the CPU ``graphs=True`` runs the same buffers eagerly (what the tests check).

    ``trace`` (default: on when graphs are off): the denoiser runs as a TorchScript trace per batch
    shape (:class:`auras_ros.models.traced.TracedModule`): no Python between its operators and the
    interpreter's lock released while it runs, so a request costs less than half the time on the CPU
    and the process's other threads no longer come out of it; the same actions bit for bit on the CPU.
    RTC's ``vjp`` guidance, which differentiates the denoiser, always runs it eagerly. :attr:`trace`
    may be switched at run time (``bench.gil_share`` compares the two).
    """

    inpaints = True  # reads GenerationStep.inpaint (guided denoising: _vjp_step, _blend_step)

    def __init__(self, config: DiffusionPolicyConfig, model: DiffusionPolicy | None = None,
                 graphs: bool | None = None, trace: bool | None = None) -> None:
        config.validate()
        self.config = config
        self.input_spec = config.input_spec
        self.device = torch.device(config.device)
        self.dtype = DTYPES[config.dtype]
        if model is None:
            # Seeded off the global RNG, on the CPU (then moved): one seed, the same weights on every device.
            with seeded_rng(config.seed):
                model = DiffusionPolicy(config)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        schedule = make_schedule(config.n_steps, config.train_timesteps, config.sampler, config.clip_sample)
        self.schedule = schedule.to(self.device, self.dtype)
        self.timesteps = self.schedule.timesteps
        # Iteration indices live on the device, so a denoising step never waits on a host-to-device copy.
        self._iterations = torch.arange(config.n_steps, device=self.device)
        # One stream each, so perception of the next observation overlaps the denoising of earlier ones.
        self.perception_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        self.generation_stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" else None
        # generate_request (the baselines' path) gets a stream per calling thread, so PAR's workers run on
        # their own streams as in the paper instead of queueing on one.
        self._request_streams = threading.local()
        self._units = list(self.model.encoder.units)
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        self.trace = not self.graphs if trace is None else trace
        self.traced_denoiser = TracedModule(self.model.denoiser, "the diffusion denoiser")
        self._noise_scale = 1.0  # the noise as trained (see noise_scale)
        self.graph_log = CaptureLog()
        self._denoise_graph = GraphedFunction(self._denoise_step, self.device, capture_for(self.device, self.graphs),
                                              self.graph_log, "denoising iteration")
        # x0_blend guidance is a plain iteration plus elementwise work: graphed the same way.
        self._blend_graph = GraphedFunction(self._blend_step, self.device, capture_for(self.device, self.graphs),
                                            self.graph_log, "guided denoising iteration")

    @property
    def noise_scale(self) -> float:
        """The scale of every request's initial noise x_T and, for DDPM, of its per-step noise (a sampling
        temperature: 1 = as trained, 0 = deterministic). A runtime setting, not the checkpoint's: set it
        through :func:`auras_ros.core.stages.set_noise_scale` (why, and the lead's measurement, there). A
        request takes the scale set when it starts (:meth:`init_request`, :meth:`generate_request`), and
        the merged and the whole-request paths scale it alike, so merged = SEQ at any scale."""
        return self._noise_scale

    @noise_scale.setter
    def noise_scale(self, value: float) -> None:
        self._noise_scale = check_noise_scale(value)

    # -- the Agent protocol --------------------------------------------------------------------

    @property
    def generation_iterations(self) -> int:
        return self.config.n_steps

    @property
    def max_perception_stages(self) -> int:
        return len(self._units)

    @torch.inference_mode()
    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        check_perception_slice(stage, num_stages, self.max_perception_stages, "one per encoder unit")
        where = f"DiffusionPolicyAgent.perceive(stage={stage}/{num_stages})"
        with self._on(self.perception_stream):
            if stage == 0:
                carry = self._observation_carry(carry, where)
            elif not isinstance(carry, _Carry):
                raise InputError("carry", where, "the output of the previous perception slice", type(carry).__name__)
            begin, end = self._slice(stage, num_stages)
            features = carry.features
            for unit in self._units[begin:end]:
                features = unit(features)
            if stage < num_stages - 1:
                return _Carry(features, carry.state)
            parts = [features[0]] if carry.state is None else [features[0], carry.state]
            cond = torch.cat(parts)
            ready = None
            if self.perception_stream is not None:
                ready = torch.cuda.Event()
                ready.record(self.perception_stream)
            return DiffusionPercept(cond, ready)

    def init_request(self, request_id: int) -> DiffusionState:
        return self._new_state(request_id, self.generation_stream)

    @torch.inference_mode()
    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        where = "DiffusionPolicyAgent.generate"
        if PERCEPT_KEY not in context:
            raise InputError("context", where, f"a mapping holding {PERCEPT_KEY!r}", sorted(context))
        for step in steps:
            self._check_step(step, where)
        if not steps:
            return GenerationResult(states=[])
        with self._on(self.generation_stream):
            cond = self._cond(context[PERCEPT_KEY], where, self.generation_stream)
            guidance = self._guidance([step.inpaint for step in steps], where)
            samples = torch.stack([step.state.sample for step in steps])
            begins = [step.begin for step in steps]
            ends = [step.end for step in steps]
            begins_on_device = torch.tensor(begins, device=self.device)  # one copy per frame, not per step
            row_indices: dict[tuple[int, ...], torch.Tensor] = {}
            # Sub-step j advances every request that still has iterations in this frame; under the α skew
            # requests own different numbers of iterations, so the batch shrinks as short ones finish.
            for j in range(max(e - b for b, e in zip(begins, ends, strict=False))):
                rows = [r for r in range(len(steps)) if begins[r] + j < ends[r]]
                k_list = [begins[r] + j for r in rows]
                noise = self._noise([steps[r].state for r in rows], k_list)
                if len(rows) == len(steps):
                    samples = self._denoise(samples, begins_on_device + j, cond, noise, guidance)
                else:
                    # The active set only shrinks, so each distinct one is copied to the device once.
                    key = tuple(rows)
                    if key not in row_indices:
                        row_indices[key] = torch.tensor(rows, device=self.device)
                    index = row_indices[key]
                    ks = begins_on_device[index] + j
                    part = None if guidance is None else guidance.rows(index)
                    samples = samples.index_copy(0, index, self._denoise(samples[index], ks, cond, noise, part))
        states = [
            DiffusionState(step.request_id, step.end, samples[r], step.state.noise) for r, step in enumerate(steps)
        ]
        return GenerationResult(states=states)

    def finish(self, state: DiffusionState) -> AgentOutput:
        return self._finish(state, self.generation_stream)

    @torch.inference_mode()
    def generate_request(self, percept: Any, request_id: int, inpaint: Inpaint | None = None) -> AgentOutput:
        """The whole request; ``inpaint`` guides its chunk toward the executing one (see :meth:`_denoise`)."""
        where = "DiffusionPolicyAgent.generate_request"
        stream = self._request_stream()
        state = self._new_state(request_id, stream)
        with self._on(stream):
            cond = self._cond(percept, where, stream)
            guidance = self._guidance([inpaint], where)
            sample = state.sample[None]
            for k in range(self.config.n_steps):
                ks = self._iterations[k : k + 1]
                noise = None if state.noise is None else state.noise[k][None]
                sample = self._denoise(sample, ks, cond, noise, guidance)
        return self._finish(DiffusionState(request_id, self.config.n_steps, sample[0], state.noise), stream)

    def percept_to_tensor(self, percept: Any) -> torch.Tensor:
        if not isinstance(percept, DiffusionPercept):
            raise InputError("percept", "DiffusionPolicyAgent.percept_to_tensor", "a DiffusionPercept", type(percept).__name__)
        if percept.ready is not None:
            percept.ready.synchronize()  # a reader on another stream or host must see it written
        return percept.cond

    def percept_from_tensor(self, tensor: Any) -> DiffusionPercept:
        where = "DiffusionPolicyAgent.percept_from_tensor"
        cond = expect_tensor(tensor, (self.config.cond_dim,), self.dtype, "percept tensor (H_o)", where)
        return DiffusionPercept(check_finite(cond.to(self.device), "percept", where))

    @property
    def chunk_rows(self) -> int:
        """Rows of its action chunk to play before replanning (Diffusion Policy's n_action_steps)."""
        return self.config.n_action_steps

    # -- checkpoints -----------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and the state_dict to a local directory."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_FILE).write_text(json.dumps({"kind": CHECKPOINT_KIND, "config": self.config.to_json()}, indent=2))
        torch.save({name: t.detach().cpu() for name, t in self.model.state_dict().items()}, path / WEIGHTS_FILE)
        return path

    @classmethod
    def load(cls, directory: str | Path, graphs: bool | None = None, **overrides: Any) -> "DiffusionPolicyAgent":
        """Load from a local directory written by :meth:`save`; ``overrides`` may change e.g. device or dtype."""
        path = Path(directory)
        where = f"DiffusionPolicyAgent.load({str(path)!r})"
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            if not (path / name).is_file():
                raise InputError(f"checkpoint file {name!r}", where, "a file written by DiffusionPolicyAgent.save", "missing")
        meta = read_json_object(path / CONFIG_FILE, ("kind", "config"))
        if meta["kind"] != CHECKPOINT_KIND:
            raise ConfigError(f"'kind' in {path / CONFIG_FILE}", meta["kind"], repr(CHECKPOINT_KIND))
        if not isinstance(meta["config"], dict):
            raise ConfigError(f"'config' in {path / CONFIG_FILE}", meta["config"], "a JSON object of DiffusionPolicyConfig fields")
        config = dataclasses.replace(DiffusionPolicyConfig.from_json(meta["config"]), **overrides)
        config.validate()
        with seeded_rng(config.seed):  # initial values the checkpoint overwrites: drawn off the global RNG
            model = DiffusionPolicy(config)
        weights = read_weights(path / WEIGHTS_FILE, lambda p: torch.load(p, map_location="cpu", weights_only=True),
                               "a state_dict written by DiffusionPolicyAgent.save")
        try:
            model.load_state_dict(weights)
        except RuntimeError as error:
            raise ConfigError("checkpoint file", str(path / WEIGHTS_FILE),
                              f"weights that fit {CONFIG_FILE} ({' '.join(str(error).split())[:300]})") from None
        return cls(config, model, graphs)

    # -- internals ---------------------------------------------------------------------------------

    def _on(self, stream: Any) -> ContextManager[Any]:
        return torch.cuda.stream(stream) if stream is not None else nullcontext()

    def _request_stream(self) -> Any:
        if self.device.type != "cuda":
            return None
        stream = getattr(self._request_streams, "stream", None)
        if stream is None:
            stream = self._request_streams.stream = torch.cuda.Stream(self.device)
        return stream

    def _draw_noise(self, request_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A request's x_T (horizon, action_dim) and, for DDPM, its per-step noise z (n_steps, horizon,
        action_dim), unscaled, on the CPU: drawn there so a request's noise is the same on every device."""
        generator = torch.Generator().manual_seed(request_seed(self.config.seed, request_id))
        sample = torch.randn(self.config.chunk_shape, generator=generator, dtype=torch.float32)
        noise = None
        if self.schedule.stochastic:
            noise = torch.randn((self.config.n_steps, *self.config.chunk_shape), generator=generator, dtype=torch.float32)
        return sample, noise

    def _new_state(self, request_id: int, stream: Any) -> DiffusionState:
        sample, noise = self._draw_noise(request_id)
        scale = self._noise_scale
        if scale != 1.0:  # at 1 the tensors are the drawn ones, untouched: the default path bit for bit
            sample = sample * scale
            noise = None if noise is None else noise * scale
        with self._on(stream):
            # Copied on the stream that will denoise it, so no other stream can race the copy.
            return DiffusionState(
                request_id, 0, sample.to(self.device, self.dtype), None if noise is None else noise.to(self.device, self.dtype)
            )

    def _finish(self, state: DiffusionState, stream: Any) -> AgentOutput:
        if not isinstance(state, DiffusionState) or state.iteration != self.config.n_steps:
            got = state.iteration if isinstance(state, DiffusionState) else type(state).__name__
            raise InputError("state iteration", "DiffusionPolicyAgent.finish", f"{self.config.n_steps} (all denoising steps done)", got)
        with self._on(stream):
            # The copy to the host waits for this stream's denoising, and only for it.
            chunk = state.sample.detach().to("cpu", torch.float64)
        return AgentOutput(action=chunk.reshape(-1).numpy())

    @property
    def state_size(self) -> int:
        """Robot-state values an observation carries beside the image (0: the image alone)."""
        return self.config.state_dim

    def _slice(self, stage: int, num_stages: int) -> tuple[int, int]:
        """Units [begin, end) of perception slice ``stage``: contiguous, as even as possible."""
        units = len(self._units)
        return stage * units // num_stages, (stage + 1) * units // num_stages

    def _observation_carry(self, observation: Any, where: str) -> _Carry:
        data, state = split_observation(observation, self.config.state_dim, where)
        if state is not None:
            state = state.to(self.device, self.dtype)
        height, width = self.config.image_size
        image = as_image_tensor(data, height, width, where)
        pixels = image.to(self.device).permute(2, 0, 1)[None].to(self.dtype) / 255.0
        return _Carry(pixels, state)

    def _cond(self, percept: Any, where: str, stream: Any) -> torch.Tensor:
        if not isinstance(percept, DiffusionPercept):
            raise InputError("percept", where, "a DiffusionPercept from DiffusionPolicyAgent.perceive", type(percept).__name__)
        cond = percept.cond
        if tuple(cond.shape) != (self.config.cond_dim,):
            raise InputError("percept width", where, f"({self.config.cond_dim},)", tuple(cond.shape))
        if percept.ready is not None and stream is not None:
            stream.wait_event(percept.ready)
            # The tensor was allocated on the perception stream; keep its memory alive for this one too.
            cond.record_stream(stream)
        return cond

    def _check_step(self, step: GenerationStep, where: str) -> None:
        state = step.state
        if not isinstance(state, DiffusionState):
            raise InputError("step state", where, "a DiffusionState from init_request or generate", type(state).__name__)
        if not 0 <= step.begin <= step.end <= self.config.n_steps:
            raise InputError("step range", where, f"0 <= begin <= end <= {self.config.n_steps}", (step.begin, step.end))
        if state.iteration != step.begin:
            raise InputError(
                f"request {step.request_id} iteration", where, f"begin={step.begin} (iterations run in order)", state.iteration
            )

    def _noise(self, states: Sequence[DiffusionState], k_list: Sequence[int]) -> torch.Tensor | None:
        if not self.schedule.stochastic:
            return None
        return torch.stack([state.noise[k] for state, k in zip(states, k_list, strict=False)])

    def _denoise(self, samples: torch.Tensor, ks: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor | None,
                 guidance: _Guidance | None = None) -> torch.Tensor:
        """One denoising iteration for a batch of samples (B, horizon, action_dim), row r at iteration ks[r];
        with ``guidance``, guided by its method (rows whose W is 0 come out as unguided, bit for bit on
        the CPU)."""
        if guidance is not None and guidance.method == "vjp":
            return self._vjp_step(samples, ks, cond, noise, guidance)
        args: tuple[torch.Tensor, ...] = (samples, ks, cond)
        if guidance is not None:
            args += (guidance.target, guidance.weights, guidance.max_guidance)
        if noise is not None:
            args += (noise,)
        if guidance is not None:
            return self._blend_graph(*args) if self.graphs else self._blend_step(*args)
        return self._denoise_graph(*args) if self.graphs else self._denoise_step(*args)

    def _vjp_step(self, samples: torch.Tensor, ks: torch.Tensor, cond: torch.Tensor, noise: torch.Tensor | None,
                  guidance: _Guidance) -> torch.Tensor:
        """One iteration with RTC's guidance, adapted to this epsilon-predicting DDPM/DDIM sampler: the
        clean estimate x0_hat of the step (where RTC's flow matching uses x1_hat) is moved by the
        vector-Jacobian product J^T W (y - x0_hat), J = d x0_hat / d x, scaled by RTC's clipped guidance
        weight written for abar (:meth:`NoiseSchedule.guidance_weight` derives it); the noise estimate
        follows, and the sampler's own update (with its clipping) runs on the pair. The error is taken on
        the unclipped x0_hat, whose gradient does not vanish outside [-1, 1]. It needs the denoiser's
        backward pass, so these iterations run eagerly, outside the CUDA graph (about twice a plain
        iteration's time on the CPU)."""
        # Tensors made under inference_mode cannot enter autograd: the sample and the conditioning are
        # cloned outside it.
        with torch.inference_mode(False), torch.enable_grad():
            x = samples.clone().requires_grad_(True)
            eps = self.model.denoiser(x, self.timesteps[ks], cond.clone().expand(x.shape[0], -1))
            x0 = self.schedule.clean_estimate(x, eps, ks)
            error = (guidance.target - x0.detach()) * guidance.weights[..., None]
            (correction,) = torch.autograd.grad(x0, x, grad_outputs=error)
        moved = self.schedule.guidance_weight(ks, guidance.max_guidance, samples) * correction
        return self.schedule.guided_update(samples, x0.detach(), eps.detach(), moved, ks, noise)

    def _blend_step(self, samples: torch.Tensor, ks: torch.Tensor, cond: torch.Tensor, target: torch.Tensor,
                    weights: torch.Tensor, max_guidance: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """One iteration with the ``x0_blend`` guidance: the clean estimate moved toward the target by the
        soft mask itself, x0' = x0_hat + w_k W (y - x0_hat), w_k the step's clipped weight mapped to [0, 1]
        (:meth:`NoiseSchedule.blend_weight`); the noise estimate follows and the sampler's own update runs
        on the pair, as in :meth:`_vjp_step`. No gradient and no second denoiser call: the cost of a plain
        iteration. With w_k W = 1 the last iteration lands the row on y exactly (DDIM's and DDPM's last
        update is the clipped x0)."""
        eps = self._denoiser(samples, ks, cond)
        x0 = self.schedule.clean_estimate(samples, eps, ks)
        moved = self.schedule.blend_weight(ks, max_guidance, samples) * weights[..., None] * (target - x0)
        return self.schedule.guided_update(samples, x0, eps, moved, ks, noise)

    def _guidance(self, inpaints: Sequence[Inpaint | None], where: str) -> _Guidance | None:
        """The batch's guidance, one copy to the device per call; None when no request has a row to
        follow (none inpaints, or each one's mask is all zero: ``prefix`` with d = 0):
        then sampling is exactly the plain one."""
        if all(inpaint is None for inpaint in inpaints):
            return None
        horizon, width = self.config.chunk_shape
        targets, weights, betas = np.zeros((len(inpaints), horizon, width)), np.zeros((len(inpaints), horizon)), []
        for r, inpaint in enumerate(inpaints):
            if inpaint is not None and not isinstance(inpaint, Inpaint):
                raise InputError("inpaint", where, "an auras_ros.core.inpaint.Inpaint or None", type(inpaint).__name__)
            if inpaint is not None:
                targets[r], weights[r] = self._inpaint_target(inpaint)
            betas.append(0.0 if inpaint is None else inpaint.max_guidance)
        if not weights.any():
            return None
        methods = sorted({inpaint.method for inpaint in inpaints if inpaint is not None})
        if len(methods) > 1:
            raise InputError("inpaint method", where, "one guidance method for every request of a call", methods)

        def device(values: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(values), dtype=self.dtype).to(self.device)

        return _Guidance(device(targets), device(weights), device(betas), methods[0])

    def _inpaint_target(self, inpaint: Inpaint) -> tuple[np.ndarray, np.ndarray]:
        """y (horizon, action_dim) in the sample's space and W (horizon,): the decision is the whole
        sample, so the executing chunk's rows are the target as they are."""
        return inpaint.target(*self.config.chunk_shape)

    def _denoise_step(self, samples: torch.Tensor, ks: torch.Tensor, cond: torch.Tensor,
                      noise: torch.Tensor | None = None) -> torch.Tensor:
        eps = self._denoiser(samples, ks, cond)
        return self.schedule.step(samples, eps, ks, noise)

    def _denoiser(self, samples: torch.Tensor, ks: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The noise estimate of each row at its iteration ``ks``, traced or eager by :attr:`trace` (the class
        doc says why)."""
        denoiser = self.traced_denoiser if self.trace else self.model.denoiser
        return denoiser(samples, self.timesteps[ks], cond.expand(samples.shape[0], -1))
