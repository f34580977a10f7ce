"""The autoregressive VLA agent (OpenVLA/LLaVA-shaped) cut into perception and generation.

Perception: vision tower → MLP projector → X_V, followed by the prompt's token embeddings X_L. The
percept is one tensor ``[1, l, d]`` with ``l = n_v + n_l``; the vision tower's encoder layers can be
cut into up to ``num_hidden_layers`` slices (the carry between slices is the tower's hidden states).

Generation produces l_a action tokens X_A, each restricted to the action-token range and mapped to a
bin centre of one action dimension (:mod:`auras_ros.models.action_bins`):

- :meth:`ARVLAAgent.generate_request` (SEQ/DEC/PAR): prefill over [X_V, X_L] and l_a − 1 KV-cache
  decode steps, greedy.
- :meth:`ARVLAAgent.generate` (Auras, paper §2.2): the public context holds the percept and the
  *shared* action tokens X_A (:data:`ACTION_TOKENS_KEY`). Each frame runs ONE forward over
  [X_V, X_L, X_A] without a KV cache (the percept changes every frame, so a cache would be stale).
  Causal masking makes the logits at position l−1+i depend only on the first l+i tokens, so this one
  forward serves every in-flight request, whatever decode step it is at.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, CLIPVisionModel, DynamicCache, PreTrainedModel, SiglipVisionModel

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inputs import InputSpec
from auras_ros.core.stages import (PERCEPT_KEY, AgentOutput, GenerationResult, GenerationStep, Observation,
                                   expect_tensor)
from auras_ros.models.action_bins import ActionBins
from auras_ros.models.ar_config import ARConfig
from auras_ros.models.ar_static import StaticDecoder
from auras_ros.models.graphs import CaptureLog, GraphedFunction, capture_for
from auras_ros.models.inputs import as_image_tensor, check_finite, check_perception_slice
from auras_ros.models.seeding import seeded_rng

ACTION_TOKENS_KEY = "action_tokens"
"""Public-context key of the shared action tokens X_A: a LongTensor ``[l_a]`` of vocabulary ids."""


class default_dtype:
    """Build modules directly in the target dtype: no fp32 copy of a 7B model ever exists."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype

    def __enter__(self) -> None:
        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc: Any) -> None:
        torch.set_default_dtype(self.previous)


def build_projector(vision_width: int, lm_width: int) -> nn.Sequential:
    """LLaVA-1.5's two-layer GELU MLP from the vision width to the LM width."""
    return nn.Sequential(nn.Linear(vision_width, lm_width), nn.GELU(), nn.Linear(lm_width, lm_width))


def build_vision_tower(config: ARConfig) -> PreTrainedModel:
    cls = CLIPVisionModel if config.vision.model_type == "clip_vision_model" else SiglipVisionModel
    return cls(config.vision)


def build_lm(config: ARConfig) -> PreTrainedModel:
    return AutoModelForCausalLM.from_config(config.lm)


def projector_widths(projector: nn.Module) -> tuple[int, int]:
    linears = [m for m in projector.modules() if isinstance(m, nn.Linear)]
    return linears[0].in_features, linears[-1].out_features


def new_dynamic_cache(lm_config: Any) -> DynamicCache:
    try:
        return DynamicCache(config=lm_config)
    except TypeError:  # transformers 4.x takes no config
        return DynamicCache()


class ARVLAAgent:
    """An :class:`auras_ros.core.stages.Agent` over a vision tower, a projector and a causal LM.

    On CUDA, :meth:`perceive` runs on :attr:`perception_stream` and :meth:`generate` on
    :attr:`generation_stream`, so an executor that calls them from two threads overlaps them on the GPU;
    each call waits for its own stream before returning, so its result is ready to use.
    :meth:`generate_request` runs on the caller's current stream (PAR workers bring their own).

    ``graphs`` (default: on when the device is CUDA): one-slice perception, the merged generation
    forward (always over all l_a positions, so its shape is the same every frame) and the SEQ decode
    (StaticCache) run over fixed buffers, replayed as CUDA graphs on a GPU, so the executors, the
    generation node and the benchmarks all run the same launch-free path. On the CPU ``graphs=True``
    runs the same buffers eagerly (what the tests check).

    ``compile``: the merged forward compiled by ``torch.compile`` (inductor fuses the norms, rotary
    embedding and activations around the GEMMs) before its CUDA graph is captured; the first frame
    then waits for the compilation. ``bench.gpu_profile`` measures its speed and token changes.
    """

    def __init__(self, config: ARConfig, vision_tower: PreTrainedModel, projector: nn.Module, lm: PreTrainedModel,
                 graphs: bool | None = None, compile: bool = False) -> None:
        self.config = config
        self.device = torch.device(config.device)
        self.dtype = config.torch_dtype
        check_parts_fit(config, vision_tower, projector, lm)
        # The observation form it was trained on; the normalisation below is the spec's.
        self.input_spec = InputSpec(size=(config.image_size, config.image_size), resize=config.resize,
                                    mean=tuple(config.image_mean), std=tuple(config.image_std))
        self.vision_tower = vision_tower.to(self.device, self.dtype).eval()
        self.projector = projector.to(self.device, self.dtype).eval()
        self.lm = lm.to(self.device, self.dtype).eval()
        self._bind_vision_tower()
        self.backbone = self.lm.base_model
        self.compiled = compile
        if compile:
            self.lm.requires_grad_(False)  # inference only: dynamo traces no autograd
        self._merged_backbone = torch.compile(self.backbone, dynamic=False) if compile else self.backbone
        self.head = self.lm.get_output_embeddings()
        self.token_embedding = self.lm.get_input_embeddings()
        # transformers 5.17 calls the cache `past_key_values`, 5.24 calls it `cache`.
        params = inspect.signature(self.backbone.forward).parameters
        self.cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self.bins = ActionBins(config.action_token_ids, config.action_low, config.action_high)
        self.action_token_ids = self.bins.token_tensor(self.device)
        self.prompt_ids = torch.tensor(config.prompt_ids, dtype=torch.long, device=self.device)
        self.pixel_mean = torch.tensor(self.input_spec.mean, device=self.device).view(1, 3, 1, 1)
        self.pixel_std = torch.tensor(self.input_spec.std, device=self.device).view(1, 3, 1, 1)
        self.perception_stream: torch.cuda.Stream | None = None
        self.generation_stream: torch.cuda.Stream | None = None
        if self.device.type == "cuda":
            self.perception_stream = torch.cuda.Stream(self.device)
            self.generation_stream = torch.cuda.Stream(self.device)
        self.graphs = self.device.type == "cuda" if graphs is None else graphs
        l_a = config.action_dims
        self.graph_log = CaptureLog()
        capture = capture_for(self.device, self.graphs)
        self._perception_graph = GraphedFunction(self.perception_forward, self.device, capture, self.graph_log,
                                                 "perception")
        self._merged_graph = GraphedFunction(lambda percept, x_a: self.merged_action_tokens(percept, x_a, l_a),
                                             self.device, capture, self.graph_log, "merged generation")
        self._decoders = threading.local()  # a StaticCache per calling thread (PAR workers decode at once)

    @classmethod
    def from_config(cls, config: ARConfig, seed: int = 0, graphs: bool | None = None,
                    compile: bool = False) -> "ARVLAAgent":
        """Random weights from ``seed``, built on the target device in the target dtype (the global RNG
        is neither read nor changed)."""
        with seeded_rng(seed, config.device), torch.device(config.device), default_dtype(config.torch_dtype):
            vision = build_vision_tower(config)
            projector = build_projector(int(config.vision.hidden_size), int(config.lm.hidden_size))
            lm = build_lm(config)
        return cls(config, vision, projector, lm, graphs, compile)

    def _bind_vision_tower(self) -> None:
        """The tower's parts perception runs one by one (a subclass with another tower binds its own)."""
        tower = getattr(self.vision_tower, "vision_model", self.vision_tower)
        self._embeddings = tower.embeddings
        self._pre_norm = getattr(tower, "pre_layrnorm", None)
        self._layers = tower.encoder.layers
        self._drop_cls = self.config.vision.model_type == "clip_vision_model"
        # transformers 4.x CLIP layers take a third (causal mask) argument and return tuples.
        self._layer_args = (None, None) if "causal_attention_mask" in inspect.signature(self._layers[0].forward).parameters else (None,)

    # ---- the Agent protocol -------------------------------------------------------------------

    @property
    def generation_iterations(self) -> int:
        return self.config.action_dims

    @property
    def max_perception_stages(self) -> int:
        return len(self._layers)

    @torch.inference_mode()
    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        check_perception_slice(stage, num_stages, self.max_perception_stages, "one per vision encoder layer")
        with self._on(self.perception_stream):
            if num_stages == 1 and self.graphs:
                out = self._perception_graph(self._image_of(carry).to(self.device))
            else:
                hidden = self.embed_image(self._image_of(carry)) if stage == 0 else self._check_carry(carry)
                lo, hi = self._layer_bounds(num_stages)[stage : stage + 2]
                hidden = self.run_vision_layers(hidden, lo, hi)
                out = self.finish_perception(hidden) if stage == num_stages - 1 else hidden
        self._wait(self.perception_stream)
        return out

    def init_request(self, request_id: int) -> torch.Tensor:
        """A new request's view of X_A before its first frame: every position at the middle bin."""
        return self.initial_action_tokens()

    @torch.inference_mode()
    def generate(self, context: Mapping[str, Any], steps: Sequence[GenerationStep]) -> GenerationResult:
        """One frame of merged generation: a Jacobi-style refresh of the shared action tokens X_A.

        One forward over [X_V, X_L, X_A] (no KV cache) gives, at every position l−1+i, the greedy
        action token given the percept and X_A[:i]. Each step's iterations ``[begin, end)`` take those
        predictions at positions ``begin .. end−1``; the other positions keep their X_A value. The new
        X_A goes back to the public context (``context_writes``), and every step's state becomes this
        snapshot of X_A; :meth:`finish` reads a request's last snapshot.

        With a fixed percept this is Jacobi iteration of greedy decoding: after k frames that refresh
        every position, X_A[:k] equals the KV-cache greedy decode, so after l_a frames X_A equals
        :meth:`generate_request`'s tokens. When the percept changes, the tokens track the newest
        observation instead (the paper's point). The forward only runs over the first l + max(end) − 1
        tokens: causal masking makes later tokens irrelevant to the positions served.
        """
        where = "ARVLAAgent.generate"
        if PERCEPT_KEY not in context:
            raise InputError("public context", where, f"a {PERCEPT_KEY!r} entry", sorted(context))
        percept = self.check_percept(context[PERCEPT_KEY], where)
        x_a = context.get(ACTION_TOKENS_KEY)
        x_a = self.initial_action_tokens() if x_a is None else self.check_action_tokens(x_a, where)
        if not steps:
            return GenerationResult(states=[])
        l_a = self.config.action_dims
        for step in steps:
            if not 0 <= step.begin < step.end <= l_a:
                raise InputError("step iterations", where, f"0 <= begin < end <= {l_a}", (step.begin, step.end))
        with self._on(self.generation_stream):
            if self.generation_stream is not None:
                percept.record_stream(self.generation_stream)
            if self.graphs:  # all l_a positions: one shape every frame; causal masking keeps served ones exact
                n_positions, predicted = l_a, self._merged_graph(percept, x_a)
            else:
                n_positions = max(step.end for step in steps)
                predicted = self.merged_action_tokens(percept, x_a, n_positions)
            served = torch.zeros(l_a, dtype=torch.bool, device=self.device)
            for step in steps:
                served[step.begin : step.end] = True
            padded = torch.cat([predicted, x_a[n_positions:]])
            new_x_a = torch.where(served, padded, x_a)
        self._wait(self.generation_stream)
        # One tensor serves as every step's snapshot: nobody writes into it after this point.
        return GenerationResult(states=[new_x_a] * len(steps), context_writes={ACTION_TOKENS_KEY: new_x_a})

    def finish(self, state: Any) -> AgentOutput:
        tokens = self.check_action_tokens(state, "ARVLAAgent.finish").tolist()
        return AgentOutput(action=self.bins.to_action(tokens), tokens=tuple(tokens))

    @torch.inference_mode()
    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        """Greedy prefill + KV-cache decode on a fixed percept (the honest SEQ path)."""
        percept = self.check_percept(percept, "ARVLAAgent.generate_request")
        if self.graphs or self.config.seq_cache == "static":
            tokens = self.static_decoder().decode(percept)
        else:
            tokens = self.kv_cache_decode(percept)
        return self.finish(tokens)

    def percept_to_tensor(self, percept: Any) -> torch.Tensor:
        return self.check_percept(percept, "ARVLAAgent.percept_to_tensor")

    def percept_from_tensor(self, tensor: Any) -> torch.Tensor:
        shape = (1, self.config.context_length, int(self.config.lm.hidden_size))
        percept = expect_tensor(tensor, shape, self.dtype, "percept tensor", "ARVLAAgent.percept_from_tensor")
        return check_finite(percept.to(self.device), "percept", "ARVLAAgent.percept_from_tensor")

    @property
    def chunk_rows(self) -> int:
        """Rows of its action chunk to play before replanning (:attr:`ARConfig.chunk_rows`)."""
        return self.config.chunk_rows

    # ---- building blocks ---------------------------------------------------------------------------

    def initial_action_tokens(self) -> torch.Tensor:
        return torch.full((self.config.action_dims,), self.bins.mid_token, dtype=torch.long, device=self.device)

    def pixels(self, image: torch.Tensor) -> torch.Tensor:
        """uint8 HxWx3 → normalised [1, 3, H, W] in the model dtype."""
        x = image.to(self.device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        return ((x - self.pixel_mean) / self.pixel_std).to(self.dtype)

    def embed_image(self, image: torch.Tensor) -> torch.Tensor:
        hidden = self._embeddings(self.pixels(image))
        return self._pre_norm(hidden) if self._pre_norm is not None else hidden

    def run_vision_layers(self, hidden: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        for layer in self._layers[lo:hi]:
            out = layer(hidden, *self._layer_args)
            hidden = out[0] if isinstance(out, tuple) else out
        return hidden

    def finish_perception(self, hidden: torch.Tensor) -> torch.Tensor:
        """Projector over the patch features, then the prompt embeddings: the percept [X_V, X_L]."""
        patches = hidden[:, 1:] if self._drop_cls else hidden
        x_v = self.projector(patches)
        x_l = self.token_embedding(self.prompt_ids).unsqueeze(0).to(x_v.dtype)
        return torch.cat([x_v, x_l], dim=1)

    def perception_forward(self, image: torch.Tensor) -> torch.Tensor:
        """All of perception in one call, with static shapes (CUDA-graph capturable)."""
        hidden = self.run_vision_layers(self.embed_image(image), 0, len(self._layers))
        return self.finish_perception(hidden)

    def action_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the action tokens only: selecting their columns is the same greedy choice as
        masking every other vocabulary entry to −inf."""
        return self.head(hidden)[..., self.action_token_ids]

    def greedy_action_tokens(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.action_token_ids[self.action_logits(hidden).argmax(dim=-1)]

    def merged_hidden(self, percept: torch.Tensor, x_a: torch.Tensor, n_positions: int) -> torch.Tensor:
        """Final hidden states at positions l−1 .. l−2+n_positions from one forward over
        [percept, X_A[:n_positions−1]] (the last action token feeds no position that is read)."""
        context = percept.shape[1]  # the paper's l: vision and prompt tokens
        inputs = torch.cat([percept, self.token_embedding(x_a[: n_positions - 1]).unsqueeze(0)], dim=1)
        hidden = self._merged_backbone(inputs_embeds=inputs, use_cache=False).last_hidden_state
        return hidden[:, context - 1 : context - 1 + n_positions]

    def merged_action_tokens(self, percept: torch.Tensor, x_a: torch.Tensor, n_positions: int) -> torch.Tensor:
        return self.greedy_action_tokens(self.merged_hidden(percept, x_a, n_positions))[0]

    def kv_cache_decode(self, percept: torch.Tensor) -> torch.Tensor:
        cache = new_dynamic_cache(self.lm.config)
        out = self.backbone(inputs_embeds=percept, use_cache=True, **{self.cache_kwarg: cache})
        token = self.greedy_action_tokens(out.last_hidden_state[:, -1:])[0]
        tokens = [token]
        for _ in range(self.config.action_dims - 1):
            embeds = self.token_embedding(token).unsqueeze(0)
            out = self.backbone(inputs_embeds=embeds, use_cache=True, **{self.cache_kwarg: cache})
            token = self.greedy_action_tokens(out.last_hidden_state[:, -1:])[0]
            tokens.append(token)
        return torch.cat(tokens)

    def static_decoder(self) -> StaticDecoder:
        """This thread's decoder (its own StaticCache and, on CUDA, its own decode-step graph)."""
        decoder = getattr(self._decoders, "decoder", None)
        if decoder is None:
            decoder = self._decoders.decoder = StaticDecoder(self, capture_for(self.device, True), self.graph_log)
        return decoder

    # ---- checks -------------------------------------------------------------------------------

    def check_percept(self, percept: Any, where: str) -> torch.Tensor:
        shape = (1, self.config.context_length, int(self.config.lm.hidden_size))
        if not isinstance(percept, torch.Tensor):
            raise InputError("percept type", where, "torch.Tensor [1, n_v + n_l, d]", type(percept).__name__)
        if tuple(percept.shape) != shape:
            raise InputError("percept shape", where, str(shape), tuple(percept.shape))
        if percept.dtype != self.dtype:
            raise InputError("percept dtype", where, str(self.dtype), str(percept.dtype))
        return check_finite(percept.to(self.device), "percept", where)

    def check_action_tokens(self, tokens: Any, where: str) -> torch.Tensor:
        if isinstance(tokens, (list, tuple, np.ndarray)):
            tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tuple(tokens.shape) != (self.config.action_dims,):
            got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise InputError("action tokens", where, f"a LongTensor of shape ({self.config.action_dims},)", got)
        return tokens.to(self.device)

    def _image_of(self, carry: Any) -> torch.Tensor:
        data = carry.data if isinstance(carry, Observation) else carry
        key = self.input_spec.image_key
        if isinstance(data, Mapping):
            if key not in data:
                raise InputError("observation data", "ARVLAAgent.perceive", f"an image or a mapping with {key!r}", sorted(data))
            data = data[key]
        return as_image_tensor(data, self.config.image_size, self.config.image_size, "ARVLAAgent.perceive")

    def _check_carry(self, carry: Any) -> torch.Tensor:
        n_tokens = self.config.num_vision_tokens + (1 if self._drop_cls else 0)
        shape = (1, n_tokens, int(self.config.vision.hidden_size))
        if not isinstance(carry, torch.Tensor) or tuple(carry.shape) != shape:
            got = tuple(carry.shape) if isinstance(carry, torch.Tensor) else type(carry).__name__
            raise InputError("perception carry", "ARVLAAgent.perceive", f"vision hidden states {shape}", got)
        return carry

    def _layer_bounds(self, num_stages: int) -> list[int]:
        n = len(self._layers)
        return [round(k * n / num_stages) for k in range(num_stages + 1)]

    def _on(self, stream: torch.cuda.Stream | None) -> Any:
        if stream is None:
            return _nullcontext()
        stream.wait_stream(torch.cuda.current_stream(self.device))
        return torch.cuda.stream(stream)

    @staticmethod
    def _wait(stream: torch.cuda.Stream | None) -> None:
        if stream is not None:
            stream.synchronize()


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def check_parts_fit(config: ARConfig, vision_tower: nn.Module, projector: nn.Module, lm: PreTrainedModel) -> None:
    """The parts must agree on widths and image size, or the first forward fails deep inside."""
    vision_cfg = vision_tower.config
    if int(vision_cfg.image_size) != config.image_size:
        raise ConfigError("vision.image_size", int(vision_cfg.image_size), f"the config's image_size {config.image_size}")
    d_in, d_out = projector_widths(projector)
    if d_in != int(vision_cfg.hidden_size):
        raise ConfigError("projector.in_features", d_in, f"the vision tower's hidden_size {vision_cfg.hidden_size}")
    if d_out != int(lm.config.hidden_size):
        raise ConfigError("projector.out_features", d_out, f"the LM's hidden_size {lm.config.hidden_size}")
    if int(lm.config.vocab_size) != int(config.lm.vocab_size):
        raise ConfigError("lm.vocab_size", int(lm.config.vocab_size), f"the config's vocab_size {config.lm.vocab_size}")
