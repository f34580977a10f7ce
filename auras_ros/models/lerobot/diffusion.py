"""A LeRobot ``diffusion`` policy checkpoint as an Auras agent.

- **Perception** (six slices: stem, layer1..4, head): the VISUAL feature normalised by the
  preprocessor's statistics, resized to ``resize_shape`` and centre-cropped to ``crop_shape`` (the
  eval crop), the ResNet backbone, spatial softmax keypoints and the ``out`` projection; the state
  normalised. Each observation's ``[state, image features]`` joins the last ``n_obs_steps`` ones
  (the first observation repeated until there are enough, as LeRobot's queues fill), and their
  concatenation is the percept, the UNet's global conditioning.
- **Generation**: the denoising loop of :class:`~auras_ros.models.diffusion.DiffusionPolicyAgent`
  (merged across in-flight requests, one batched UNet call per sub-step, CUDA graphs on a GPU, the
  ``inpaint`` guidance) over LeRobot's UNet and noise scheduler.
- **Decision**: rows ``n_obs_steps - 1 .. n_obs_steps - 1 + n_action_steps`` of the denoised chunk,
  unnormalised by the postprocessor's statistics, flattened (``chunk_rows = n_action_steps``), as
  LeRobot's ``select_action`` queues them.

What LeRobot's ``DiffusionConfig`` may say and this loader reproduces: a ResNet BasicBlock backbone
with GroupNorm or frozen BatchNorm, ``noise_scheduler_type`` DDPM (``num_inference_steps`` equal to the
training steps) or DDIM, ``beta_schedule`` squaredcos_cap_v2, ``prediction_type`` epsilon,
``clip_sample_range`` 1; anything else is refused at load naming the field.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inpaint import Inpaint
from auras_ros.core.stages import AgentOutput
from auras_ros.models.denoiser import ConditionalUnet1D
from auras_ros.models.diffusion import DiffusionPercept, DiffusionPolicyAgent, DiffusionPolicyConfig, DiffusionState
from auras_ros.models.inputs import check_perception_slice
from auras_ros.models.lerobot.backbone import ResNetBackbone, backbone_from_weights, center_crop, resize
from auras_ros.models.lerobot.config import CONFIG_FILE, LeRobotCheckpoint, load_into, take_weights
from auras_ros.models.lerobot.observation import observation_tensors

# The request's noise: (x_0 (horizon, action_dim), z (n_steps, horizon, action_dim) or None for DDIM).
NoiseSource = Callable[[int], tuple[torch.Tensor, torch.Tensor | None]]
SAMPLERS = {"DDPM": "ddpm", "DDIM": "ddim"}
BACKBONE_UNITS = {0: "conv1", 1: "bn1", 4: "layer1", 5: "layer2", 6: "layer3", 7: "layer4"}  # nn.Sequential(children[:-2])
UNET_FINAL_GROUPS = 8  # LeRobot's final conv block keeps the default 8 groups whatever n_groups says


class SpatialSoftmax(nn.Module):
    """Keypoints: a 1x1 conv to ``keypoints`` maps, a softmax over each map's pixels, and the expected
    (x, y) on a [-1, 1] grid (``pos_grid``, loaded from the checkpoint)."""

    pos_grid: torch.Tensor

    def __init__(self, channels: int, height: int, width: int, keypoints: int) -> None:
        super().__init__()
        self.nets = nn.Conv2d(channels, keypoints, kernel_size=1)
        xs, ys = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
        grid = np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())
        self.keypoints = keypoints

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.nets(features)
        attention = torch.softmax(maps.flatten(2), dim=-1)  # (B, K, H*W)
        return (attention @ self.pos_grid).flatten(1)  # (B, 2K)


class RgbEncoder(nn.Module):
    """LeRobot's ``DiffusionRgbEncoder`` at eval: resize, centre crop, backbone, keypoints, ``relu(out(.))``."""

    def __init__(self, backbone: ResNetBackbone, image_hw: tuple[int, int], resize_shape: tuple[int, int] | None,
                 crop_shape: tuple[int, int] | None, keypoints: int) -> None:
        super().__init__()
        self.resize_shape = resize_shape
        self.crop_shape = crop_shape
        self.backbone = backbone
        seen = crop_shape or resize_shape or image_hw
        with torch.no_grad():
            height, width = backbone(torch.zeros(1, 3, *seen)).shape[-2:]
        self.pool = SpatialSoftmax(backbone.out_channels, height, width, keypoints)
        self.out = nn.Linear(2 * keypoints, 2 * keypoints)
        self.feature_dim = 2 * keypoints

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        if self.resize_shape is not None:
            image = resize(image, self.resize_shape)
        if self.crop_shape is not None:
            image = center_crop(image, self.crop_shape)
        return image

    def head(self, features: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.out(self.pool(features)))

    @property
    def units(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """Perception's slices: stem (with the resize and crop in front), layer1..4, head."""
        stem = self.backbone.units[0]
        return [lambda x: stem(self.prepare(x)), *self.backbone.units[1:], self.head]


class LeRobotDiffusionModel(nn.Module):
    """The weights, under the names the inherited denoising loop uses (``encoder``, ``denoiser``)."""

    def __init__(self, encoder: RgbEncoder, denoiser: ConditionalUnet1D) -> None:
        super().__init__()
        self.encoder = encoder
        self.denoiser = denoiser


def denoising_config(checkpoint: LeRobotCheckpoint, cond_dim: int, device: str) -> DiffusionPolicyConfig:
    """The denoising loop's own config for this checkpoint (its percept is the global conditioning)."""
    get = checkpoint.get
    where = f"{checkpoint.path / CONFIG_FILE}"
    checkpoint.require("noise_scheduler_type", SAMPLERS, f"one of {sorted(SAMPLERS)}")
    checkpoint.require("beta_schedule", ("squaredcos_cap_v2",), "'squaredcos_cap_v2' (the only schedule reproduced)")
    checkpoint.require("prediction_type", ("epsilon",), "'epsilon' (the only prediction type reproduced)")
    if get("clip_sample", True) and float(get("clip_sample_range", 1.0)) != 1.0:
        raise ConfigError(f"'clip_sample_range' in {where}", get("clip_sample_range"), "1.0 (clipping to [-1, 1])")
    train_steps = int(get("num_train_timesteps", 100))
    image_hw = (checkpoint.image_shape[1], checkpoint.image_shape[2]) if checkpoint.image_shape else (1, 1)
    return DiffusionPolicyConfig(
        image_size=image_hw, encoder_width=1, feature_dim=cond_dim, state_dim=0, action_dim=checkpoint.action_dim,
        horizon=int(get("horizon", 16)), n_action_steps=int(get("n_action_steps", 8)),
        down_dims=tuple(get("down_dims", (512, 1024, 2048))), kernel_size=int(get("kernel_size", 5)),
        n_groups=int(get("n_groups", 8)), step_embed_dim=int(get("diffusion_step_embed_dim", 128)),
        n_steps=int(get("num_inference_steps") or train_steps), train_timesteps=train_steps,
        sampler=SAMPLERS[get("noise_scheduler_type")], clip_sample=bool(get("clip_sample", True)), device=device,
    )


def lerobot_weights(checkpoint: LeRobotCheckpoint) -> dict[str, torch.Tensor]:
    """LeRobot's tensor names → :class:`LeRobotDiffusionModel`'s."""
    renamed = {}
    for key, value in take_weights(checkpoint.weights, "diffusion.rgb_encoder.").items():
        if key.endswith("num_batches_tracked"):
            continue  # a BatchNorm's training counter; frozen statistics do not use it
        if key.startswith("backbone."):
            key = "backbone." + _backbone_name(key[len("backbone."):])
        renamed[f"encoder.{key}"] = value
    for key, value in take_weights(checkpoint.weights, "diffusion.unet.").items():
        key = key.replace("diffusion_step_encoder.", "step_encoder.").replace(".conv1.", ".blocks.0.").replace(".conv2.", ".blocks.1.")
        renamed[f"denoiser.{key}"] = value
    return renamed


class LeRobotDiffusionAgent(DiffusionPolicyAgent):
    """:class:`~auras_ros.core.stages.Agent` for a LeRobot diffusion checkpoint (see the module doc).

    ``noise``: the request's starting sample and per-step noise by request id (default: drawn from the
    seed and the request id, as the project's diffusion agent draws them); a test hands the noise a
    reference run used. The observation history is per agent, in the order perception finishes
    observations; :meth:`reset` empties it (LeRobot's ``policy.reset()`` at an episode's start).
    """

    def __init__(self, checkpoint: LeRobotCheckpoint, device: str = "cpu", graphs: bool | None = None,
                 noise: NoiseSource | None = None) -> None:
        where = f"{checkpoint.path / CONFIG_FILE}"
        if checkpoint.image_key is None or not checkpoint.state_dim:
            raise ConfigError(f"input_features in {where}", sorted(checkpoint.config["input_features"]),
                              "one VISUAL feature and 'observation.state' (what LeRobot's diffusion policy needs)")
        if checkpoint.get("use_separate_rgb_encoder_per_camera"):
            raise ConfigError(f"'use_separate_rgb_encoder_per_camera' in {where}", True, "false (one camera)")
        if checkpoint.get("pretrained_backbone_weights") and checkpoint.get("use_group_norm"):
            raise ConfigError(f"'use_group_norm' in {where}", True, "false with pretrained backbone weights (as LeRobot says)")
        self.checkpoint = checkpoint
        self.n_obs_steps = int(checkpoint.get("n_obs_steps", 2))
        horizon, n_action = int(checkpoint.get("horizon", 16)), int(checkpoint.get("n_action_steps", 8))
        if not 1 <= n_action <= horizon - self.n_obs_steps + 1:
            raise ConfigError(f"'n_action_steps' in {where}", n_action,
                              f"an integer in [1, horizon - n_obs_steps + 1 = {horizon - self.n_obs_steps + 1}]")
        weights = take_weights(checkpoint.weights, "diffusion.rgb_encoder.backbone.")
        backbone = backbone_from_weights({_backbone_name(k): v for k, v in weights.items()},
                                         "group" if checkpoint.get("use_group_norm", True) else "frozen_batch", where)
        image_hw = (checkpoint.image_shape[1], checkpoint.image_shape[2])  # type: ignore[index]
        encoder = RgbEncoder(backbone, image_hw, _pair(checkpoint.get("resize_shape")), _pair(checkpoint.get("crop_shape")),
                             int(checkpoint.get("spatial_softmax_num_keypoints", 32)))
        self.obs_dim = checkpoint.state_dim + encoder.feature_dim
        config = denoising_config(checkpoint, self.obs_dim * self.n_obs_steps, device)
        config.validate()
        denoiser = ConditionalUnet1D(config.action_dim, config.cond_dim, config.down_dims, config.step_embed_dim,
                                     config.kernel_size, config.n_groups, bool(checkpoint.get("use_film_scale_modulation", True)),
                                     UNET_FINAL_GROUPS)
        model = LeRobotDiffusionModel(encoder, denoiser)
        load_into(model, lerobot_weights(checkpoint), checkpoint.path)
        self.noise_source = noise
        self._history: deque[torch.Tensor] = deque(maxlen=self.n_obs_steps)
        self._history_lock = threading.Lock()
        super().__init__(config, model, graphs)  # type: ignore[arg-type]
        self.input_spec = checkpoint.input_spec()
        self._norms = (checkpoint.image_norm().to(self.device, torch.float32), checkpoint.state_norm().to(self.device, torch.float32))
        self._unnormalize = checkpoint.unnormalize_action  # on the host, where the decision is read

    @property
    def state_size(self) -> int:
        return self.checkpoint.state_dim

    def reset(self) -> None:
        """Forget the observation history (a new episode)."""
        with self._history_lock:
            self._history.clear()

    @torch.inference_mode()
    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        check_perception_slice(stage, num_stages, self.max_perception_stages, "stem, layer1..4, head")
        where = f"LeRobotDiffusionAgent.perceive(stage={stage}/{num_stages})"
        with self._on(self.perception_stream):
            if stage == 0:
                image, state = observation_tensors(carry, self.checkpoint, self._norms, self.device, self.dtype, where)
                carry = (image, state)
            elif not (isinstance(carry, tuple) and len(carry) == 2):
                raise InputError("carry", where, "the output of the previous perception slice", type(carry).__name__)
            features, state = carry
            begin, end = self._slice(stage, num_stages)
            for unit in self._units[begin:end]:
                features = unit(features)
            if stage < num_stages - 1:
                return (features, state)
            cond = self._remember(torch.cat([state[0], features[0]]))
            ready = None
            if self.perception_stream is not None:
                ready = torch.cuda.Event()
                ready.record(self.perception_stream)
            return DiffusionPercept(cond, ready)

    def _remember(self, observation_features: torch.Tensor) -> torch.Tensor:
        with self._history_lock:
            while len(self._history) < self.n_obs_steps - 1:
                self._history.append(observation_features)  # the first observation stands in for the missing past
            self._history.append(observation_features)
            return torch.cat(list(self._history))

    def _draw_noise(self, request_id: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The inherited draw, or the ``noise`` source's (checked); the inherited ``_new_state`` scales
        either by :attr:`noise_scale`."""
        if self.noise_source is None:
            return super()._draw_noise(request_id)
        sample, steps = self.noise_source(request_id)
        shape = self.config.chunk_shape
        where = f"LeRobotDiffusionAgent noise for request {request_id}"
        if tuple(sample.shape) != shape:
            raise InputError("starting sample", where, f"shape {shape}", tuple(sample.shape))
        if self.schedule.stochastic and (steps is None or tuple(steps.shape) != (self.config.n_steps, *shape)):
            raise InputError("per-step noise", where, f"shape {(self.config.n_steps, *shape)} (DDPM)",
                             None if steps is None else tuple(steps.shape))
        return sample, steps if self.schedule.stochastic else None

    def _finish(self, state: DiffusionState, stream: Any) -> AgentOutput:
        chunk = torch.from_numpy(super()._finish(state, stream).action).reshape(self.config.chunk_shape).to(torch.float32)
        start = self.n_obs_steps - 1
        rows = chunk[start:start + self.config.n_action_steps]
        return AgentOutput(action=self._unnormalize.unnormalize(rows).to(torch.float64).reshape(-1).numpy())

    def _inpaint_target(self, inpaint: Inpaint) -> tuple[np.ndarray, np.ndarray]:
        """The decision is rows ``n_obs_steps - 1`` on of the sample, unnormalised: the executing chunk's
        rows go back to the sample's space there; the rows before (the past observation steps') and after
        follow nothing."""
        start, rows = self.n_obs_steps - 1, self.config.n_action_steps
        action, mask = inpaint.target(rows, self.config.action_dim)
        target, weights = np.zeros(self.config.chunk_shape), np.zeros(self.config.horizon)
        target[start:start + rows] = self._unnormalize.normalize(torch.from_numpy(action).to(torch.float32)).numpy()
        weights[start:start + rows] = mask
        return target, weights


def _backbone_name(key: str) -> str:
    unit, rest = key.split(".", 1)
    if not unit.isdigit() or int(unit) not in BACKBONE_UNITS:
        raise ConfigError("checkpoint tensor", f"diffusion.rgb_encoder.backbone.{key}", "a torchvision ResNet backbone tensor")
    return f"{BACKBONE_UNITS[int(unit)]}.{rest}"


def _pair(value: Any) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))
