"""A LeRobot ``act`` (Action Chunking Transformer) policy checkpoint as an Auras agent.

- **Perception** (six slices: stem, layer1..4, head): the VISUAL feature normalised by the
  preprocessor's statistics, the ResNet backbone (frozen batch norm), its feature map projected to
  ``dim_model`` tokens with 2-D sine positions; the latent token (the VAE's prior mean, zero, through
  its projection) and the normalised state's token with learned positions; then the transformer
  encoder. The percept is the encoder's output and its positions, what the decoder cross-attends.
- **Generation**: the transformer decoder, one layer per iteration (``generation_iterations =
  n_decoder_layers``), every layer cross-attending the freshest percept in the public context; in the
  Auras frame the requests that sit at the same layer run as one batched call.
- **Decision**: the first ``n_action_steps`` rows of ``action_head(norm(decoder output))``,
  unnormalised by the postprocessor's statistics, flattened (``chunk_rows = n_action_steps``), as
  LeRobot's ``select_action`` queues them.

At inference LeRobot's ACT does not run its VAE encoder: those tensors are in the checkpoint and left
unused. ``temporal_ensemble_coeff`` (blending overlapping chunks across decisions) and
``replace_final_stride_with_dilation`` are refused at load.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.stages import PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep, expect_tensor
from auras_ros.models.inputs import check_finite, check_perception_slice
from auras_ros.models.lerobot.backbone import ResNetBackbone, backbone_from_weights
from auras_ros.models.lerobot.config import CONFIG_FILE, LeRobotCheckpoint, load_into, take_weights
from auras_ros.models.lerobot.observation import observation_tensors

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {"relu": F.relu, "gelu": F.gelu, "glu": F.glu}
UNUSED_AT_INFERENCE = "vae_encoder"  # the VAE encoder only trains; select_action never runs it


@dataclass(frozen=True)
class ACTShape:
    dim: int
    heads: int
    feedforward: int
    activation: str
    pre_norm: bool
    encoder_layers: int
    decoder_layers: int
    latent_dim: int
    chunk_size: int
    n_action_steps: int


class TransformerLayer(nn.Module):
    """One encoder (``cross=False``) or decoder layer of ACT, with its tensor names. Each sub-layer
    (self-attention, cross-attention, feed-forward) adds its residual and uses the next norm: after the
    sum (post-norm) or before the sub-layer (``pre_norm``)."""

    def __init__(self, shape: ACTShape, cross: bool) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(shape.dim, shape.heads)
        self.multihead_attn = nn.MultiheadAttention(shape.dim, shape.heads) if cross else None
        self.linear1 = nn.Linear(shape.dim, shape.feedforward)
        self.linear2 = nn.Linear(shape.feedforward, shape.dim)
        self.norm1 = nn.LayerNorm(shape.dim)
        self.norm2 = nn.LayerNorm(shape.dim)
        self.norm3 = nn.LayerNorm(shape.dim) if cross else None
        self.activation = ACTIVATIONS[shape.activation]
        self.pre_norm = shape.pre_norm

    def _residual(self, x: torch.Tensor, norm: nn.Module, sublayer: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        return x + sublayer(norm(x)) if self.pre_norm else norm(x + sublayer(x))

    def forward(self, x: torch.Tensor, pos: torch.Tensor, memory: torch.Tensor | None = None,
                memory_pos: torch.Tensor | None = None) -> torch.Tensor:
        """``x`` (L, B, D) with positions ``pos``; a decoder layer also cross-attends ``memory`` (S, B, D)."""
        x = self._residual(x, self.norm1, lambda h: self.self_attn(h + pos, h + pos, h, need_weights=False)[0])
        norms = [self.norm2]
        if self.multihead_attn is not None:
            assert memory is not None and memory_pos is not None and self.norm3 is not None
            attend = self.multihead_attn
            x = self._residual(x, self.norm2, lambda h: attend(h + pos, memory + memory_pos, memory, need_weights=False)[0])
            norms = [self.norm3]
        return self._residual(x, norms[0], lambda h: self.linear2(self.activation(self.linear1(h))))


class LayerStack(nn.Module):
    """LeRobot's ``ACTEncoder`` / ``ACTDecoder`` tensors: ``layers`` and a final ``norm``."""

    def __init__(self, layers: list[TransformerLayer], norm: nn.Module) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.norm = norm


class ACTModel(nn.Module):
    """ACT's inference weights under LeRobot's names (``model.`` cut off)."""

    def __init__(self, shape: ACTShape, backbone: ResNetBackbone, state_dim: int, action_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.encoder = LayerStack([TransformerLayer(shape, cross=False) for _ in range(shape.encoder_layers)],
                                  nn.LayerNorm(shape.dim) if shape.pre_norm else nn.Identity())
        self.decoder = LayerStack([TransformerLayer(shape, cross=True) for _ in range(shape.decoder_layers)],
                                  nn.LayerNorm(shape.dim))
        self.encoder_robot_state_input_proj = nn.Linear(state_dim, shape.dim) if state_dim else None
        self.encoder_latent_input_proj = nn.Linear(shape.latent_dim, shape.dim)
        self.encoder_img_feat_input_proj = nn.Conv2d(backbone.out_channels, shape.dim, kernel_size=1)
        self.encoder_1d_feature_pos_embed = nn.Embedding(2 if state_dim else 1, shape.dim)
        self.decoder_pos_embed = nn.Embedding(shape.chunk_size, shape.dim)
        self.action_head = nn.Linear(shape.dim, action_dim)


def sine_positions_2d(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """ACT's 2-D sine positions for an (H, W) feature map, (H*W, dim) in row-major token order: the
    first half encodes the row, the second the column; each coordinate is normalised to (0, 2 pi] and
    spread over sin/cos pairs at frequencies 10000^(-2i/half)."""
    half = dim // 2
    frequencies = 10000 ** (2 * (torch.arange(half, dtype=torch.float32, device=device) // 2) / half)

    def encode(n: int) -> torch.Tensor:
        steps = torch.arange(1, n + 1, dtype=torch.float32, device=device)
        angles = (steps / (steps[-1:] + 1e-6) * (2 * math.pi))[:, None] / frequencies  # (n, half)
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=-1).flatten(1)

    rows = encode(height)[:, None, :].expand(height, width, half)
    cols = encode(width)[None, :, :].expand(height, width, half)
    return torch.cat((rows, cols), dim=-1).reshape(height * width, dim)


@dataclass(frozen=True)
class ACTPercept:
    """What the decoder cross-attends: the encoder's output and its positions, each (S, D)."""

    memory: torch.Tensor
    pos: torch.Tensor


@dataclass(frozen=True)
class ACTState:
    """One request's decoder tokens (chunk_size, D) after ``iteration`` decoder layers."""

    request_id: int
    iteration: int
    tokens: torch.Tensor


class LeRobotACTAgent:
    """Implements :class:`~auras_ros.core.stages.Agent` for a LeRobot ACT checkpoint (see the module doc)."""

    def __init__(self, checkpoint: LeRobotCheckpoint, device: str = "cpu") -> None:
        where = f"{checkpoint.path / CONFIG_FILE}"
        get = checkpoint.get
        if checkpoint.image_key is None:
            raise ConfigError(f"input_features in {where}", sorted(get("input_features")), "one VISUAL feature (a camera)")
        if int(get("n_obs_steps", 1)) != 1:
            raise ConfigError(f"'n_obs_steps' in {where}", get("n_obs_steps"), "1 (ACT takes the current observation)")
        if get("temporal_ensemble_coeff") is not None:
            raise ConfigError(f"'temporal_ensemble_coeff' in {where}", get("temporal_ensemble_coeff"),
                              "null (temporal ensembling across decisions is not supported)")
        if get("replace_final_stride_with_dilation"):
            raise ConfigError(f"'replace_final_stride_with_dilation' in {where}", True, "false")
        checkpoint.require("feedforward_activation", ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}")
        self.shape = ACTShape(
            dim=int(get("dim_model", 512)), heads=int(get("n_heads", 8)), feedforward=int(get("dim_feedforward", 3200)),
            activation=str(get("feedforward_activation", "relu")), pre_norm=bool(get("pre_norm", False)),
            encoder_layers=int(get("n_encoder_layers", 4)), decoder_layers=int(get("n_decoder_layers", 1)),
            latent_dim=int(get("latent_dim", 32)), chunk_size=int(get("chunk_size", 100)),
            n_action_steps=int(get("n_action_steps", 100)),
        )
        if not 1 <= self.shape.n_action_steps <= self.shape.chunk_size:
            raise ConfigError(f"'n_action_steps' in {where}", self.shape.n_action_steps,
                              f"an integer in [1, chunk_size={self.shape.chunk_size}]")
        if self.shape.dim % self.shape.heads:
            raise ConfigError(f"'n_heads' in {where}", self.shape.heads, f"a divisor of dim_model={self.shape.dim}")
        self.checkpoint = checkpoint
        self.device = torch.device(device)
        self.dtype = torch.float32
        weights = {key: value for key, value in take_weights(checkpoint.weights, "model.").items()
                   if not key.startswith(UNUSED_AT_INFERENCE)}
        backbone = backbone_from_weights(take_weights(weights, "backbone."), "frozen_batch", where)
        model = ACTModel(self.shape, backbone, checkpoint.state_dim, checkpoint.action_dim)
        load_into(model, weights, checkpoint.path)
        self.model = model.to(self.device).eval()
        self.input_spec = checkpoint.input_spec()
        self._norms = (checkpoint.image_norm().to(self.device, torch.float32), checkpoint.state_norm().to(self.device, torch.float32))
        self._unnormalize = checkpoint.unnormalize_action
        self._units: list[Any] = [*backbone.units, self._encode]  # the last one also takes the state
        _, height, width = checkpoint.image_shape  # type: ignore[misc]
        with torch.no_grad():
            map_h, map_w = backbone(torch.zeros(1, 3, height, width, device=self.device)).shape[-2:]
        self._image_pos = sine_positions_2d(int(map_h), int(map_w), self.shape.dim, self.device)
        self.percept_tokens = (2 if checkpoint.state_dim else 1) + int(map_h * map_w)

    # -- the Agent protocol --------------------------------------------------------------------

    @property
    def generation_iterations(self) -> int:
        return self.shape.decoder_layers

    @property
    def max_perception_stages(self) -> int:
        return len(self._units)

    @property
    def state_size(self) -> int:
        return self.checkpoint.state_dim

    @property
    def chunk_rows(self) -> int:
        return self.shape.n_action_steps

    @torch.inference_mode()
    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        check_perception_slice(stage, num_stages, self.max_perception_stages, "stem, layer1..4, encoder")
        where = f"LeRobotACTAgent.perceive(stage={stage}/{num_stages})"
        if stage == 0:
            carry = observation_tensors(carry, self.checkpoint, self._norms, self.device, self.dtype, where)
        elif not (isinstance(carry, tuple) and len(carry) == 2):
            raise InputError("carry", where, "the output of the previous perception slice", type(carry).__name__)
        features, state = carry
        begin, end = stage * len(self._units) // num_stages, (stage + 1) * len(self._units) // num_stages
        for index in range(begin, end):
            features = self._encode(features, state) if index == len(self._units) - 1 else self._units[index](features)
        return features if stage == num_stages - 1 else (features, state)

    def init_request(self, request_id: int) -> ACTState:
        return ACTState(request_id, 0, torch.zeros(self.shape.chunk_size, self.shape.dim, device=self.device, dtype=self.dtype))

    @torch.inference_mode()
    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        where = "LeRobotACTAgent.generate"
        if PERCEPT_KEY not in context:
            raise InputError("context", where, f"a mapping holding {PERCEPT_KEY!r}", sorted(context))
        percept = self._percept(context[PERCEPT_KEY], where)
        for step in steps:
            self._check_step(step, where)
        tokens = [step.state.tokens for step in steps]
        layers = [step.begin for step in steps]
        for _ in range(max((step.end - step.begin for step in steps), default=0)):
            groups: dict[int, list[int]] = {}
            for r, step in enumerate(steps):
                if layers[r] < step.end:
                    groups.setdefault(layers[r], []).append(r)
            # Requests at the same decoder layer share its weights: one batched call per distinct layer.
            for layer, rows in sorted(groups.items()):
                out = self._decode_layer(layer, torch.stack([tokens[r] for r in rows], dim=1), percept)
                for i, r in enumerate(rows):
                    tokens[r] = out[:, i]
                    layers[r] += 1
        return GenerationResult(states=[ACTState(step.request_id, step.end, tokens[r]) for r, step in enumerate(steps)])

    @torch.inference_mode()
    def finish(self, state: ACTState) -> AgentOutput:
        if not isinstance(state, ACTState) or state.iteration != self.shape.decoder_layers:
            got = state.iteration if isinstance(state, ACTState) else type(state).__name__
            raise InputError("state iteration", "LeRobotACTAgent.finish", f"{self.shape.decoder_layers} (every decoder layer done)", got)
        actions = self.model.action_head(self.model.decoder.norm(state.tokens))[: self.shape.n_action_steps]
        return AgentOutput(action=self._unnormalize.unnormalize(actions.to("cpu", torch.float32)).to(torch.float64).reshape(-1).numpy())

    @torch.inference_mode()
    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        percept = self._percept(percept, "LeRobotACTAgent.generate_request")
        tokens = self.init_request(request_id).tokens[:, None]
        for layer in range(self.shape.decoder_layers):
            tokens = self._decode_layer(layer, tokens, percept)
        return self.finish(ACTState(request_id, self.shape.decoder_layers, tokens[:, 0]))

    def percept_to_tensor(self, percept: Any) -> torch.Tensor:
        percept = self._percept(percept, "LeRobotACTAgent.percept_to_tensor")
        return torch.stack([percept.memory, percept.pos])

    def percept_from_tensor(self, tensor: Any) -> ACTPercept:
        where = "LeRobotACTAgent.percept_from_tensor"
        value = expect_tensor(tensor, (2, self.percept_tokens, self.shape.dim), self.dtype, "percept tensor (encoder output)", where)
        value = check_finite(value.to(self.device), "percept", where)
        return ACTPercept(value[0], value[1])

    # -- internals ---------------------------------------------------------------------------------

    def _encode(self, feature_map: torch.Tensor, state: torch.Tensor | None) -> ACTPercept:
        """Tokens and positions of one observation through the transformer encoder."""
        model = self.model
        latent = torch.zeros(1, self.shape.latent_dim, device=self.device, dtype=self.dtype)
        tokens = [model.encoder_latent_input_proj(latent)]
        if model.encoder_robot_state_input_proj is not None:
            assert state is not None
            tokens.append(model.encoder_robot_state_input_proj(state))
        image_tokens = model.encoder_img_feat_input_proj(feature_map).flatten(2)[0].transpose(0, 1)  # (h*w, D)
        x = torch.cat([*tokens, image_tokens])[:, None]  # (S, 1, D)
        pos = torch.cat([model.encoder_1d_feature_pos_embed.weight, self._image_pos.to(self.dtype)])[:, None]
        for layer in model.encoder.layers:
            x = layer(x, pos)
        return ACTPercept(model.encoder.norm(x)[:, 0], pos[:, 0])

    def _decode_layer(self, layer: int, tokens: torch.Tensor, percept: ACTPercept) -> torch.Tensor:
        """Decoder layer ``layer`` on ``tokens`` (chunk, B, D) of B requests, all reading ``percept``."""
        batch = tokens.shape[1]
        memory = percept.memory[:, None].expand(-1, batch, -1)
        memory_pos = percept.pos[:, None].expand(-1, batch, -1)
        query_pos = self.model.decoder_pos_embed.weight[:, None]
        return self.model.decoder.layers[layer](tokens, query_pos, memory, memory_pos)

    def _percept(self, percept: Any, where: str) -> ACTPercept:
        if not isinstance(percept, ACTPercept):
            raise InputError("percept", where, "an ACTPercept from LeRobotACTAgent.perceive", type(percept).__name__)
        if tuple(percept.memory.shape) != (self.percept_tokens, self.shape.dim):
            raise InputError("percept shape", where, f"({self.percept_tokens}, {self.shape.dim})", tuple(percept.memory.shape))
        return percept

    def _check_step(self, step: GenerationStep, where: str) -> None:
        state = step.state
        if not isinstance(state, ACTState):
            raise InputError("step state", where, "an ACTState from init_request or generate", type(state).__name__)
        if not 0 <= step.begin <= step.end <= self.shape.decoder_layers:
            raise InputError("step range", where, f"0 <= begin <= end <= {self.shape.decoder_layers}", (step.begin, step.end))
        if state.iteration != step.begin:
            raise InputError(f"request {step.request_id} iteration", where, f"begin={step.begin} (layers run in order)", state.iteration)
