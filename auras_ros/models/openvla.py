"""OpenVLA checkpoints in the Hugging Face layout of ``openvla/openvla-7b`` as Auras AR agents.

Our own implementation of the format (OpenVLA's code is not a dependency), checked against the actions
its ``predict_action`` produced on a tiny checkpoint (``tools/openvla_golden.py``,
``test/models/test_openvla.py``). A directory holds ``config.json`` (``"model_type": "openvla"``), the
weights (``model-*.safetensors`` listed by ``model.safetensors.index.json``, or one
``model.safetensors``), ``preprocessor_config.json`` and the tokenizer.

What the model computes, as ``OpenVLAForActionPrediction`` does:

- vision: DINOv2 with 4 registers and SigLIP (transformers' own models, the timm weights renamed on
  load) on the same 224x224 image (a camera frame of another size resized as the processor does:
  ``interpolations`` bicubic, PIL's antialiased resampling, the input spec's "bicubic"), each
  normalised with its own mean and std; the features are both
  towers' patch tokens after their second-to-last block (no final norm), concatenated along the width;
- projector ``fused-gelu-mlp``: fc1 (to 4x the vision width), GELU, fc2 (to the LM width), GELU, fc3;
- the LM (Llama-2) reads [BOS, the projected patches, the rest of the prompt]: the prompt is
  ``In: What action should the robot take to {instruction}?\\nOut:`` with the token 29871 appended;
- each of the action dimensions is one greedy token; token t is bin ``vocab - t`` of ``n_action_bins``
  uniform bins on [-1, 1] (``vocab`` the text vocabulary less its padding), unnormalised with the
  ``q01``/``q99`` of the ``unnorm_key`` dataset where its ``mask`` holds.

One difference, on purpose: the greedy choice is over the action tokens only (the merged Auras forward
needs it), the reference's over the whole vocabulary. A trained OpenVLA emits action tokens, where the
two agree; the golden test checks that they do.

Weights are read tensor by tensor from the safetensors files straight onto the device, in the target
dtype, into modules built there: a 7B checkpoint loads in bf16 without an fp32 copy or a second
whole copy in host memory.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from safetensors import safe_open
from torch import nn
from transformers import (AutoTokenizer, Dinov2WithRegistersConfig, Dinov2WithRegistersModel, LlamaConfig,
                          LlamaForCausalLM, PreTrainedModel, SiglipVisionConfig, SiglipVisionModel)

from auras_ros.core.errors import ConfigError, InputError, one_of
from auras_ros.models.action_bins import ActionBins
from auras_ros.models.ar_config import ARConfig
from auras_ros.models.ar_vla import ARVLAAgent, default_dtype
from auras_ros.models.checkpoint_files import read_json_object, read_weights

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
INDEX_FILE = "model.safetensors.index.json"
SINGLE_WEIGHTS_FILE = "model.safetensors"
MODEL_TYPE = "openvla"
BACKBONES = ("dinosiglip-vit-so-224px",)
PROJECTOR = "fused-gelu-mlp"
EMPTY_TOKEN = 29871  # Llama-2's "▁": predict_action appends it when the prompt does not end with it
# A checkpoint stores no head counts: the published towers' head widths give them (ViT-L: 1024/16,
# SO400M: 1152/16), for the real widths and for narrower test towers alike.
DINO_HEAD_WIDTH, SIGLIP_HEAD_WIDTH = 64, 72
# config.json's text_config holds only what differs from transformers 4.40's LlamaConfig defaults,
# which are Llama-2-7B's; spelled out so that another transformers version's defaults cannot leak in.
LLAMA2_DEFAULTS: dict[str, Any] = dict(
    vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
    hidden_act="silu", max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0,
    attention_bias=False, tie_word_embeddings=False,
)
RESIZE_RULES = {"resize-naive": "resize", "resize-crop": "crop", "letterbox": "pad"}
# The processor's torchvision Resize on a PIL image, with antialiasing: PIL's resampling, which the input
# spec's "bicubic" is (a camera frame of another size gets the reference's very pixels).
INTERPOLATIONS = {"bicubic": "bicubic"}
DINO = "vision_backbone.featurizer."
SIGLIP = "vision_backbone.fused_featurizer."
LM = "language_model."
PROJ = "projector."


def prompt_text(instruction: str) -> str:
    """OpenVLA's prompt for an instruction (the form its model card and training use)."""
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def is_openvla_dir(path: Path) -> bool:
    """A directory whose config.json says ``"model_type": "openvla"``."""
    try:
        data = json.loads((path / CONFIG_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("model_type") == MODEL_TYPE


# ---- the action de-tokenisation ----------------------------------------------------------------


class OpenVLABins(ActionBins):
    """``predict_action``'s de-tokenisation: token ``vocab - 1 - b`` is bin b (0-based); the last bin
    shares the last of the ``n_bins - 1`` bin centres (the reference clips it there); then ``q01``/``q99``
    unnormalisation where ``mask`` holds, the normalised value elsewhere."""

    def __init__(self, vocab_size: int, n_bins: int, q01: Sequence[float], q99: Sequence[float],
                 mask: Sequence[bool]) -> None:
        super().__init__(tuple(vocab_size - 1 - b for b in range(n_bins)), q01, q99)
        self.edges = np.linspace(-1.0, 1.0, n_bins)
        self.centres = (self.edges[:-1] + self.edges[1:]) / 2.0
        self.mask = np.asarray(mask, dtype=bool)

    def to_action(self, tokens: Sequence[int], where: str = "OpenVLABins.to_action") -> np.ndarray:
        bins = self.bins(tokens, where)
        if bins.shape[0] != self.low.shape[0]:
            raise InputError("number of action tokens", where, str(self.low.shape[0]), bins.shape[0])
        normalised = self.centres[np.minimum(bins, self.centres.shape[0] - 1)]
        unnormalised = 0.5 * (normalised + 1.0) * (self.high - self.low) + self.low
        return np.where(self.mask, unnormalised, normalised).astype(np.float32)

    def to_tokens(self, action: Sequence[float]) -> tuple[int, ...]:
        """The inverse up to bin width (OpenVLA's ActionTokenizer: ``np.digitize`` on the bin edges)."""
        a = np.asarray(action, dtype=np.float64)
        normalised = np.where(self.mask, 2.0 * (a - self.low) / (self.high - self.low) - 1.0, a)
        bins = np.clip(np.digitize(np.clip(normalised, -1.0, 1.0), self.edges) - 1, 0, self.n_bins - 1)
        return tuple(self.token_ids[b] for b in bins)


def action_stats(norm_stats: Any, unnorm_key: str | None, where: str) -> tuple[list[float], list[float], list[bool]]:
    """q01, q99 and mask of ``unnorm_key``'s actions; no key is fine only when there is one dataset."""
    if not isinstance(norm_stats, dict) or not norm_stats:
        raise ConfigError(f"'norm_stats' in {where}", norm_stats, "a non-empty mapping of dataset name -> statistics")
    keys = sorted(norm_stats)
    if unnorm_key is None:
        if len(keys) > 1:
            raise ConfigError("unnorm_key", None, f"{one_of(keys)} (the checkpoint has statistics for several datasets)")
        unnorm_key = keys[0]
    if unnorm_key not in norm_stats:
        raise ConfigError("unnorm_key", unnorm_key, f"{one_of(keys)} (the datasets in {where}'s norm_stats)")
    stats = norm_stats[unnorm_key].get("action") if isinstance(norm_stats[unnorm_key], dict) else None
    if not isinstance(stats, dict) or "q01" not in stats or "q99" not in stats:
        raise ConfigError(f"norm_stats[{unnorm_key!r}]['action'] in {where}", stats, "a mapping with 'q01' and 'q99'")
    q01, q99 = [float(v) for v in stats["q01"]], [float(v) for v in stats["q99"]]
    mask = [bool(v) for v in stats.get("mask", [True] * len(q01))]
    if not q01 or len(q99) != len(q01) or len(mask) != len(q01):
        raise ConfigError(f"norm_stats[{unnorm_key!r}]['action'] in {where}", stats, "q01, q99 (and mask) of one length >= 1")
    return q01, q99, mask


# ---- the fused vision tower --------------------------------------------------------------------


@dataclass(frozen=True)
class FusedVisionConfig:
    """What the AR agent's checks read of a tower's config."""

    image_size: int
    patch_size: int
    hidden_size: int  # both towers' widths: the projector's input


class FusedVisionTower(nn.Module):
    """DINOv2 (registers) and SigLIP side by side, built with only the blocks whose output is used (all but
    the last). A perception carry is the pair of hidden states; stage k runs block k of each tower."""

    def __init__(self, dino: Dinov2WithRegistersModel, siglip: SiglipVisionModel, image_size: int, patch_size: int) -> None:
        super().__init__()
        self.dino, self.siglip = dino, siglip
        self.prefix_tokens = 1 + int(dino.config.num_register_tokens)  # CLS + registers, dropped from the features
        self.config = FusedVisionConfig(image_size, patch_size, int(dino.config.hidden_size) + int(siglip.config.hidden_size))
        self.depth = max(len(dino.encoder.layer), len(siglip.encoder.layers))

    def embed(self, dino_pixels: torch.Tensor, siglip_pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.dino.embeddings(dino_pixels), self.siglip.embeddings(siglip_pixels)

    def run(self, carry: tuple[torch.Tensor, torch.Tensor], lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        dino, siglip = carry
        for layer in self.dino.encoder.layer[lo:hi]:
            dino = _hidden(layer(dino))
        for layer in self.siglip.encoder.layers[lo:hi]:
            siglip = _hidden(layer(siglip, None))
        return dino, siglip

    def features(self, carry: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        dino, siglip = carry
        return torch.cat([dino[:, self.prefix_tokens :], siglip], dim=2)


def _hidden(out: Any) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


def fused_projector(vision_width: int, lm_width: int) -> nn.Sequential:
    """Prismatic's ``fused-gelu-mlp`` (fc1, fc2, fc3 at indices 0, 2, 4)."""
    return nn.Sequential(nn.Linear(vision_width, 4 * vision_width), nn.GELU(), nn.Linear(4 * vision_width, lm_width),
                         nn.GELU(), nn.Linear(lm_width, lm_width))


# ---- the agent ----------------------------------------------------------------------------------


class OpenVLAAgent(ARVLAAgent):
    """The AR agent over OpenVLA's parts: perception is the fused tower (its blocks sliceable into stages),
    the projector and the prompt around the patches; generation is the AR agent's, unchanged."""

    vision_tower: FusedVisionTower

    def __init__(self, config: ARConfig, tower: FusedVisionTower, projector: nn.Module, lm: PreTrainedModel,
                 bins: OpenVLABins, means: Sequence[Sequence[float]], stds: Sequence[Sequence[float]],
                 graphs: bool | None = None, compile: bool = False, interpolation: str = "bicubic") -> None:
        super().__init__(config, tower, projector, lm, graphs, compile)
        self.input_spec = replace(self.input_spec, interpolation=interpolation)
        self.bins = bins
        self.action_token_ids = bins.token_tensor(self.device)
        # fp32 like the reference's processor; the tensors exist before any CUDA graph is captured.
        self.tower_mean = torch.tensor(means, dtype=torch.float32, device=self.device).view(2, 1, 3, 1, 1)
        self.tower_std = torch.tensor(stds, dtype=torch.float32, device=self.device).view(2, 1, 3, 1, 1)

    def _bind_vision_tower(self) -> None:
        self._layers = range(self.vision_tower.depth)  # perception stage slices cut the towers' blocks

    def embed_image(self, image: torch.Tensor) -> Any:
        x = image.to(self.device, non_blocking=True).permute(2, 0, 1).unsqueeze(0).float().div_(255.0)
        dino, siglip = ((x - self.tower_mean[i]) / self.tower_std[i] for i in (0, 1))
        return self.vision_tower.embed(dino.to(self.dtype), siglip.to(self.dtype))

    def run_vision_layers(self, hidden: Any, lo: int, hi: int) -> Any:
        return self.vision_tower.run(hidden, lo, hi)

    def finish_perception(self, hidden: Any) -> torch.Tensor:
        """[BOS, projected patches, the rest of the prompt]: Prismatic puts the image after <s>."""
        x_v = self.projector(self.vision_tower.features(hidden))
        x_l = self.token_embedding(self.prompt_ids).unsqueeze(0).to(x_v.dtype)
        return torch.cat([x_l[:, :1], x_v, x_l[:, 1:]], dim=1)

    def _check_carry(self, carry: Any) -> Any:
        tower = self.vision_tower
        n_patches = self.config.num_vision_tokens
        shapes = ((1, n_patches + tower.prefix_tokens, int(tower.dino.config.hidden_size)),
                  (1, n_patches, int(tower.siglip.config.hidden_size)))
        if (not isinstance(carry, tuple) or len(carry) != 2
                or any(not isinstance(t, torch.Tensor) or tuple(t.shape) != s for t, s in zip(carry, shapes, strict=True))):
            got = tuple(tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in carry) \
                if isinstance(carry, tuple) else type(carry).__name__
            raise InputError("perception carry", "OpenVLAAgent.perceive", f"(DINOv2, SigLIP) hidden states {shapes}", got)
        return carry


# ---- reading a checkpoint -------------------------------------------------------------------------


class Weights:
    """The checkpoint's tensors by name, read one at a time (the index names each tensor's shard)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        where = f"OpenVLA checkpoint {directory}"
        if (directory / INDEX_FILE).is_file():
            index = read_json_object(directory / INDEX_FILE, ("weight_map",))["weight_map"]
            if not isinstance(index, dict) or not index:
                raise ConfigError(f"'weight_map' in {directory / INDEX_FILE}", index, "a mapping of tensor name -> shard file")
            shard_of = {str(k): str(v) for k, v in index.items()}
        elif (directory / SINGLE_WEIGHTS_FILE).is_file():
            shard_of = {}
        else:
            raise InputError("weights", where, f"{INDEX_FILE} with its model-*.safetensors shards, or {SINGLE_WEIGHTS_FILE}",
                             sorted(p.name for p in directory.iterdir()))
        for shard in sorted(set(shard_of.values())):
            if not (directory / shard).is_file():
                raise InputError(f"shard {shard}", where, f"present (listed in {INDEX_FILE})", "missing")
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.shard_of: dict[str, str] = {}
        for shard in sorted(set(shard_of.values())) or [SINGLE_WEIGHTS_FILE]:
            with read_weights(directory / shard, lambda p: safe_open(str(p), framework="pt"), "a safetensors file") as f:
                for key in f.keys():
                    self.shapes[key] = tuple(f.get_slice(key).get_shape())
                    self.shard_of[key] = shard
        if shard_of and shard_of != self.shard_of:
            differ = sorted(k for k in {*shard_of, *self.shard_of} if shard_of.get(k) != self.shard_of.get(k))
            raise InputError("tensors of the shards", where, f"each in the shard {INDEX_FILE} names", differ[:5])

    def shape(self, key: str) -> tuple[int, ...]:
        if key not in self.shapes:
            raise ConfigError("checkpoint tensor", key, f"present in {self.directory} (an OpenVLA fused dinosiglip checkpoint)")
        return self.shapes[key]

    def blocks(self, prefix: str) -> int:
        pattern = re.compile(re.escape(prefix) + r"blocks\.(\d+)\.")
        found = {int(m.group(1)) for k in self.shapes if (m := pattern.match(k))}
        return max(found) + 1 if found else 0

    def stream(self, device: torch.device, dtype: torch.dtype) -> Any:
        """(name, tensor on device in dtype), shard by shard."""
        by_shard: dict[str, list[str]] = defaultdict(list)
        for key, shard in self.shard_of.items():
            by_shard[shard].append(key)
        for shard, keys in sorted(by_shard.items()):
            with safe_open(str(self.directory / shard), framework="pt", device=str(device)) as f:
                for key in sorted(keys):
                    yield key, f.get_tensor(key).to(dtype)


@dataclass(frozen=True)
class TowerShape:
    width: int
    depth: int  # blocks in the checkpoint (the last one's output is not used)
    mlp: int
    patch: int


def tower_shape(weights: Weights, prefix: str) -> TowerShape:
    width, _, patch, _ = weights.shape(prefix + "patch_embed.proj.weight")
    return TowerShape(width, weights.blocks(prefix), weights.shape(prefix + "blocks.0.mlp.fc1.weight")[0], patch)


def tower_configs(weights: Weights, image_size: int) -> tuple[Dinov2WithRegistersConfig, SiglipVisionConfig]:
    dino, siglip = tower_shape(weights, DINO), tower_shape(weights, SIGLIP)
    for name, shape, head in (("DINOv2", dino, DINO_HEAD_WIDTH), ("SigLIP", siglip, SIGLIP_HEAD_WIDTH)):
        if shape.depth < 2 or shape.width % head or image_size % shape.patch or (name == "DINOv2" and shape.mlp % shape.width):
            raise ConfigError(f"{name} featurizer", shape, f">= 2 blocks, a width that is a multiple of {head}, "
                              f"a patch size dividing the image size {image_size} (DINOv2: an MLP a multiple of the width)")
    if dino.patch != siglip.patch:
        raise ConfigError("patch sizes", (dino.patch, siglip.patch), "the same for both featurizers (one patch grid)")
    registers = weights.shape(DINO + "reg_token")[1]
    dino_cfg = Dinov2WithRegistersConfig(
        hidden_size=dino.width, num_hidden_layers=dino.depth - 1, num_attention_heads=dino.width // DINO_HEAD_WIDTH,
        mlp_ratio=dino.mlp // dino.width, image_size=image_size, patch_size=dino.patch, num_register_tokens=registers,
        hidden_act="gelu", layer_norm_eps=1e-6, qkv_bias=True, layerscale_value=1.0,
    )
    # timm's ViT uses the exact GELU where transformers' SigLIP defaults to the tanh one.
    siglip_cfg = SiglipVisionConfig(
        hidden_size=siglip.width, intermediate_size=siglip.mlp, num_hidden_layers=siglip.depth - 1,
        num_attention_heads=siglip.width // SIGLIP_HEAD_WIDTH, image_size=image_size, patch_size=siglip.patch,
        hidden_act="gelu", layer_norm_eps=1e-6, vision_use_head=False,
    )
    return dino_cfg, siglip_cfg


Target = list[tuple[nn.Module, str, Callable[[torch.Tensor], torch.Tensor]]]


def _same(t: torch.Tensor) -> torch.Tensor:
    return t


def _qkv(module: nn.Module, base: str, names: Sequence[str], suffix: str) -> Target:
    return [(module, f"{base}.{n}.{suffix}", lambda t, i=i: t.chunk(3, dim=0)[i]) for i, n in enumerate(names)]


def targets(key: str, tower: FusedVisionTower, projector: nn.Module, lm: nn.Module) -> Target | None:
    """Where the checkpoint tensor ``key`` goes (timm names renamed to transformers'); None: a tensor the
    features do not use (the last block, SigLIP's pooling head); a KeyError: unknown."""
    if key.startswith(LM):
        return [(lm, key[len(LM):], _same)]
    if key.startswith(PROJ):
        index = {"fc1": 0, "fc2": 2, "fc3": 4}[key.split(".")[1]]
        return [(projector, f"{index}.{key.split('.')[2]}", _same)]
    for prefix, model, layer_of in ((DINO, tower.dino, "encoder.layer"), (SIGLIP, tower.siglip, "encoder.layers")):
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        block = re.match(r"blocks\.(\d+)\.(.+)", name)
        if block is None:
            return _stem(name, model, prefix == DINO)
        i, rest = int(block.group(1)), block.group(2)
        if i >= len(getattr(model.encoder, layer_of.split(".")[1])):
            return None  # the last block: its output is not a feature
        layer = f"{layer_of}.{i}"
        dino = prefix == DINO
        attn = f"{layer}.attention" if dino else f"{layer}.self_attn"
        if rest.startswith("attn.qkv."):
            return _qkv(model, attn, ("q_proj", "k_proj", "v_proj"), rest.split(".")[-1])
        renames = {"attn.proj": f"{attn}.o_proj" if dino else f"{attn}.out_proj",
                   "norm1": f"{layer}.norm1" if dino else f"{layer}.layer_norm1",
                   "norm2": f"{layer}.norm2" if dino else f"{layer}.layer_norm2",
                   "mlp.fc1": f"{layer}.mlp.fc1", "mlp.fc2": f"{layer}.mlp.fc2"}
        if dino and rest in ("ls1.scale_factor", "ls2.scale_factor"):
            return [(model, f"{layer}.layer_scale{rest[2]}.lambda1", _same)]
        module_name, _, suffix = rest.rpartition(".")
        return [(model, f"{renames[module_name]}.{suffix}", _same)]
    raise KeyError(key)


def _stem(name: str, model: nn.Module, dino: bool) -> Target | None:
    if name.startswith("attn_pool."):
        return None
    if name.startswith("norm."):  # loaded, not run: the features come before it
        return [(model, ("layernorm." if dino else "post_layernorm.") + name.split(".")[-1], _same)]
    if name.startswith("patch_embed.proj."):
        conv = "embeddings.patch_embeddings.projection" if dino else "embeddings.patch_embedding"
        return [(model, f"{conv}.{name.split('.')[-1]}", _same)]
    if dino and name == "cls_token":
        return [(model, "embeddings.cls_token", _same)]
    if dino and name == "reg_token":
        return [(model, "embeddings.register_tokens", _same)]
    if name == "pos_embed":
        if dino:  # timm adds no position to CLS (no_embed_class); transformers' table has a CLS row: zero
            return [(model, "embeddings.position_embeddings", lambda t: torch.cat([torch.zeros_like(t[:, :1]), t], 1))]
        return [(model, "embeddings.position_embedding.weight", lambda t: t[0])]
    raise KeyError(name)


def load_weights(weights: Weights, tower: FusedVisionTower, projector: nn.Module, lm: nn.Module,
                 device: torch.device, dtype: torch.dtype) -> None:
    """Copy every tensor into its parameter, checking shapes; every parameter must be written (but
    DINOv2's mask token, which timm does not have and inference does not use)."""
    written: set[tuple[int, str]] = set()
    where = f"OpenVLA checkpoint {weights.directory}"
    with torch.no_grad():
        for key, tensor in weights.stream(device, dtype):
            try:
                places = targets(key, tower, projector, lm)
            except KeyError:
                raise ConfigError("checkpoint tensor", key, f"a tensor of OpenVLA's dinosiglip + Llama-2 layout ({where})") from None
            for module, name, convert in places or []:
                value = convert(tensor)
                try:
                    param = module.get_parameter(name)
                except AttributeError:
                    raise ConfigError("checkpoint tensor", key, f"one the model has ({where}: no {name})") from None
                if tuple(param.shape) != tuple(value.shape):
                    raise ConfigError(f"shape of {key} in {weights.shard_of[key]}", tuple(value.shape), f"{tuple(param.shape)}")
                param.copy_(value)
                written.add((id(module), name))
    for module in (tower.dino, tower.siglip, projector, lm):
        unwritten = [n for n, _ in module.named_parameters() if (id(module), n) not in written and n != "embeddings.mask_token"]
        if isinstance(module, LlamaForCausalLM) and "lm_head.weight" in unwritten and module.config.tie_word_embeddings:
            unwritten.remove("lm_head.weight")
        if unwritten:
            raise ConfigError("checkpoint tensors", unwritten[:5], f"present in {where} (missing)")


def read_config(directory: Path) -> dict[str, Any]:
    config = read_json_object(directory / CONFIG_FILE, ("model_type", "vision_backbone_id", "arch_specifier",
                                                         "text_config", "norm_stats"))
    where = str(directory / CONFIG_FILE)
    if config["vision_backbone_id"] not in BACKBONES:
        raise ConfigError(f"'vision_backbone_id' in {where}", config["vision_backbone_id"], one_of(BACKBONES))
    if not str(config["arch_specifier"]).endswith(PROJECTOR):
        raise ConfigError(f"'arch_specifier' in {where}", config["arch_specifier"], f"a '{PROJECTOR}' projector")
    text = config["text_config"]
    if not isinstance(text, dict) or text.get("model_type", "llama") != "llama":
        raise ConfigError(f"'text_config' in {where}", text, "a Llama config ('model_type': 'llama')")
    sizes = config.get("image_sizes", [224, 224])
    if not isinstance(sizes, list) or len(set(sizes)) != 1:
        raise ConfigError(f"'image_sizes' in {where}", sizes, "one size for both featurizers")
    return config


def read_preprocessor(directory: Path, image_size: int) -> tuple[str, str, list[list[float]], list[list[float]]]:
    """The resize rule, the interpolation and both towers' means and stds of ``preprocessor_config.json``."""
    path = directory / PREPROCESSOR_FILE
    data = read_json_object(path, ("image_resize_strategy", "means", "stds", "input_sizes"))
    strategy = data["image_resize_strategy"]
    if strategy not in RESIZE_RULES:
        raise ConfigError(f"'image_resize_strategy' in {path}", strategy, one_of(RESIZE_RULES))
    interpolations = data.get("interpolations", ["bicubic", "bicubic"])
    if not isinstance(interpolations, list) or len(set(interpolations)) != 1 or interpolations[0] not in INTERPOLATIONS:
        raise ConfigError(f"'interpolations' in {path}", interpolations, f"the same for both towers, {one_of(INTERPOLATIONS)}")
    means, stds = data["means"], data["stds"]
    if (not isinstance(means, list) or not isinstance(stds, list) or len(means) != 2 or len(stds) != 2
            or any(len(v) != 3 for v in (*means, *stds))):
        raise ConfigError(f"'means'/'stds' in {path}", (means, stds), "two [r, g, b] lists each (DINOv2's, SigLIP's)")
    if any(list(s)[-2:] != [image_size, image_size] for s in data["input_sizes"]):
        raise ConfigError(f"'input_sizes' in {path}", data["input_sizes"], f"[3, {image_size}, {image_size}] for both")
    return (RESIZE_RULES[strategy], INTERPOLATIONS[interpolations[0]], [[float(v) for v in m] for m in means],
            [[float(v) for v in s] for s in stds])


def prompt_ids(directory: Path, instruction: str, lm_config: LlamaConfig) -> tuple[int, ...]:
    # The LM's config, not config.json's (which transformers cannot read: "openvla" is not its type).
    tokenizer = read_weights(directory, lambda p: AutoTokenizer.from_pretrained(p, local_files_only=True, config=lm_config),
                             "the checkpoint's tokenizer (tokenizer.json / tokenizer_config.json)")
    ids = [int(i) for i in tokenizer(prompt_text(instruction)).input_ids]
    return tuple(ids if ids and ids[-1] == EMPTY_TOKEN else [*ids, EMPTY_TOKEN])


def load_agent(path: str | Path, device: str = "cpu", instruction: str | None = None, unnorm_key: str | None = None,
               dtype: str | None = None, graphs: bool | None = None) -> OpenVLAAgent:
    """The agent for the OpenVLA directory ``path``, prompted with ``instruction``, its actions unnormalised
    with ``unnorm_key``'s statistics. ``dtype``: default float32 on the CPU, bfloat16 elsewhere."""
    directory = Path(path)
    config = read_config(directory)
    q01, q99, mask = action_stats(config["norm_stats"], unnorm_key, str(directory / CONFIG_FILE))
    if not instruction:
        raise ConfigError("instruction", instruction, "the task in words, e.g. 'pick up the red block' (OpenVLA's "
                          f"prompt is {prompt_text('<instruction>')!r})")
    image_size = int(config.get("image_sizes", [224])[0])
    resize, interpolation, means, stds = read_preprocessor(directory, image_size)
    weights = Weights(directory)  # shards checked before anything is built
    dino_cfg, siglip_cfg = tower_configs(weights, image_size)
    text = {k: v for k, v in config["text_config"].items() if k not in ("model_type", "torch_dtype", "architectures")}
    lm_cfg = LlamaConfig(**{**LLAMA2_DEFAULTS, **text})
    vocab = int(lm_cfg.vocab_size) - int(config.get("pad_to_multiple_of", 0))
    n_bins = int(config.get("n_action_bins", 256))
    bins = OpenVLABins(vocab, n_bins, q01, q99, mask)
    dtype = dtype or ("float32" if torch.device(device).type == "cpu" else "bfloat16")
    ar_config = ARConfig(vision=siglip_cfg, lm=lm_cfg, prompt_ids=prompt_ids(directory, instruction, lm_cfg),
                         action_dims=len(q01), chunk_rows=1, n_bins=n_bins, action_token_ids=bins.token_ids,
                         dtype=dtype, device=device, seq_cache="static", image_mean=(0.0, 0.0, 0.0),
                         image_std=(1.0, 1.0, 1.0), resize=resize)
    target = torch.device(device)
    with torch.device(target), default_dtype(ar_config.torch_dtype):
        tower = FusedVisionTower(Dinov2WithRegistersModel(dino_cfg), SiglipVisionModel(siglip_cfg), image_size,
                                 dino_cfg.patch_size)
        projector = fused_projector(tower.config.hidden_size, int(lm_cfg.hidden_size))
        lm = LlamaForCausalLM(lm_cfg)
    load_weights(weights, tower, projector, lm, target, ar_config.torch_dtype)
    return OpenVLAAgent(ar_config, tower, projector, lm, bins, means, stds, graphs=graphs, interpolation=interpolation)

