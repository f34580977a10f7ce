"""Configuration of the autoregressive (AR) VLA agent: vision tower + projector + causal LM.

The shape follows LLaVA/OpenVLA: a CLIP or SigLIP vision tower yields X_V, an MLP projector maps it to
the LM width, the prompt's token embeddings are X_L, and the LM generates ``action_dims`` action
tokens X_A, each one of ``n_bins`` bins of one action dimension.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import torch
from transformers import CLIPVisionConfig, LlamaConfig, Qwen2Config, SiglipVisionConfig

from auras_ros.core.errors import ConfigError, one_of

VisionConfig = Union[CLIPVisionConfig, SiglipVisionConfig]
LMConfig = Union[LlamaConfig, Qwen2Config]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}
VISION_TYPES = ("clip_vision_model", "siglip_vision_model")
LM_TYPES = ("llama", "qwen2")

# CLIP's published pixel statistics; SigLIP uses 0.5/0.5. Random towers do not care, real ones do.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclass
class ARConfig:
    """Everything that fixes the AR agent's shapes. ``action_dims`` is l_a (one token per dimension).

    ``chunk_rows``: how many rows of the decoded action chunk the robot plays before the next decision
    replaces it (Diffusion Policy's ``n_action_steps``). How the l_a values split into rows is the
    task's business; the model only carries the number, as checkpoint metadata. The default 1 reads the
    l_a tokens as one action, as OpenVLA does.
    """

    vision: VisionConfig
    lm: LMConfig
    prompt_ids: tuple[int, ...]
    action_dims: int = 7
    chunk_rows: int = 1
    n_bins: int = 256
    action_low: tuple[float, ...] = ()
    action_high: tuple[float, ...] = ()
    # Vocabulary ids of the bins, in bin order. Empty: the last n_bins ids of the vocabulary (OpenVLA).
    action_token_ids: tuple[int, ...] = ()
    dtype: str = "float32"
    device: str = "cpu"
    # Sequential (SEQ) path: "dynamic" = DynamicCache (eager); "static" = StaticCache, with the decode
    # step captured as a CUDA graph on CUDA.
    seq_cache: str = "dynamic"
    image_mean: tuple[float, float, float] = field(default=CLIP_MEAN)
    image_std: tuple[float, float, float] = field(default=CLIP_STD)
    # How a camera image of another size becomes image_size (auras_ros.core.inputs.RESIZE_RULES).
    resize: str = "resize"

    def __post_init__(self) -> None:
        if not self.action_low:
            self.action_low = (-1.0,) * self.action_dims
        if not self.action_high:
            self.action_high = (1.0,) * self.action_dims
        if not self.action_token_ids:
            vocab = self.lm.vocab_size
            self.action_token_ids = tuple(range(vocab - self.n_bins, vocab))
        self.prompt_ids = tuple(int(i) for i in self.prompt_ids)
        self.action_low = tuple(float(v) for v in self.action_low)
        self.action_high = tuple(float(v) for v in self.action_high)
        self.action_token_ids = tuple(int(i) for i in self.action_token_ids)
        self.validate()

    @property
    def image_size(self) -> int:
        return int(self.vision.image_size)

    @property
    def num_vision_tokens(self) -> int:
        """n_v: one token per patch (CLIP's CLS token is dropped, as LLaVA does)."""
        return (self.image_size // int(self.vision.patch_size)) ** 2

    @property
    def context_length(self) -> int:
        """l = n_v + n_l: the percept's length, where the action tokens start."""
        return self.num_vision_tokens + len(self.prompt_ids)

    @property
    def torch_dtype(self) -> torch.dtype:
        return DTYPES[self.dtype]

    def validate(self) -> None:
        if self.vision.model_type not in VISION_TYPES:
            raise ConfigError("vision.model_type", self.vision.model_type, one_of(VISION_TYPES))
        if self.lm.model_type not in LM_TYPES:
            raise ConfigError("lm.model_type", self.lm.model_type, one_of(LM_TYPES))
        if self.image_size % int(self.vision.patch_size) != 0:
            raise ConfigError("vision.image_size", self.image_size, f"a multiple of patch_size {self.vision.patch_size}")
        if self.dtype not in DTYPES:
            raise ConfigError("dtype", self.dtype, one_of(DTYPES))
        if self.seq_cache not in ("dynamic", "static"):
            raise ConfigError("seq_cache", self.seq_cache, one_of(("dynamic", "static")))
        if self.action_dims < 1:
            raise ConfigError("action_dims", self.action_dims, "an integer >= 1")
        rows = self.chunk_rows
        if isinstance(rows, bool) or not isinstance(rows, int) or not 1 <= rows <= self.action_dims:
            # A row holds at least one action token, so a chunk has at most action_dims rows.
            raise ConfigError("chunk_rows", self.chunk_rows, f"an integer in [1, action_dims={self.action_dims}]")
        vocab = int(self.lm.vocab_size)
        if not 2 <= self.n_bins <= vocab:
            raise ConfigError("n_bins", self.n_bins, f"between 2 and the LM vocabulary size {vocab}")
        if len(self.action_token_ids) != self.n_bins or len(set(self.action_token_ids)) != self.n_bins:
            raise ConfigError("action_token_ids", self.action_token_ids, f"{self.n_bins} distinct token ids (one per bin)")
        if not all(0 <= i < vocab for i in self.action_token_ids):
            raise ConfigError("action_token_ids", self.action_token_ids, f"ids in [0, {vocab})")
        if not self.prompt_ids or not all(0 <= i < vocab for i in self.prompt_ids):
            raise ConfigError("prompt_ids", self.prompt_ids, f"a non-empty sequence of ids in [0, {vocab})")
        for name in ("action_low", "action_high"):
            if len(getattr(self, name)) != self.action_dims:
                raise ConfigError(name, getattr(self, name), f"{self.action_dims} values (one per action dimension)")
        if not all(lo < hi for lo, hi in zip(self.action_low, self.action_high, strict=False)):
            raise ConfigError("action_low/action_high", (self.action_low, self.action_high), "low < high in every dimension")


def tiny_clip(image_size: int = 32, patch_size: int = 8, layers: int = 3) -> CLIPVisionConfig:
    return CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
        image_size=image_size, patch_size=patch_size, num_channels=3,
    )


def tiny_siglip(image_size: int = 32, patch_size: int = 8, layers: int = 3) -> SiglipVisionConfig:
    return SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=2,
        image_size=image_size, patch_size=patch_size, num_channels=3, vision_use_head=False,
    )


def tiny_llama(vocab_size: int = 512) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )


def tiny_qwen2(vocab_size: int = 512) -> Qwen2Config:
    return Qwen2Config(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
    )


def tiny_config(lm: str = "llama", vision: str = "clip", **overrides) -> ARConfig:
    """A seconds-fast config for tests and the CPU bench: 16 vision tokens, 6 prompt tokens, l_a = 5
    (read as two (vx, vy) rows and a spare token: ``chunk_rows=2``)."""
    lm_cfg = {"llama": tiny_llama, "qwen2": tiny_qwen2}
    vision_cfg = {"clip": tiny_clip, "siglip": tiny_siglip}
    if lm not in lm_cfg:
        raise ConfigError("lm", lm, one_of(lm_cfg))
    if vision not in vision_cfg:
        raise ConfigError("vision", vision, one_of(vision_cfg))
    kwargs = dict(
        vision=vision_cfg[vision](), lm=lm_cfg[lm](), prompt_ids=(1, 17, 42, 99, 7, 3),
        action_dims=5, chunk_rows=2, n_bins=32,
    )
    if vision == "siglip":
        kwargs.update(image_mean=SIGLIP_MEAN, image_std=SIGLIP_STD)
    kwargs.update(overrides)
    return ARConfig(**kwargs)


def openvla_7b_shaped(dtype: str = "bfloat16", device: str = "cuda", prompt_tokens: int = 40) -> ARConfig:
    """OpenVLA-7B's shape with random weights: Llama-2-7B LM, ViT-L/14 at 336 px (576 vision tokens),
    ~40 prompt tokens, l_a = 7 action tokens of 256 bins each."""
    vision = CLIPVisionConfig(
        hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
        image_size=336, patch_size=14, num_channels=3, hidden_act="quick_gelu",
    )
    lm = LlamaConfig(
        vocab_size=32000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=2048,
    )
    prompt = tuple(1 + (7919 * i) % 31000 for i in range(prompt_tokens))
    return ARConfig(vision=vision, lm=lm, prompt_ids=prompt, action_dims=7, n_bins=256, dtype=dtype, device=device)
