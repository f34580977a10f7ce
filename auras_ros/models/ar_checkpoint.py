"""Local checkpoints of the AR agent. Nothing here reaches a model hub: every load is ``local_files_only``.

A checkpoint directory holds::

    ar_config.json          prompt ids, action dims, chunk rows, bins, bounds, image size, dtype
    vision/                 the vision tower (save_pretrained)
    projector.safetensors   the projector's state dict
    lm/                     the causal LM (save_pretrained)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModelForCausalLM, CLIPVisionModel, SiglipVisionModel

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.models.ar_config import ARConfig
from auras_ros.models.ar_vla import ARVLAAgent, build_projector
from auras_ros.models.checkpoint_files import read_json_object, read_weights

CONFIG_FILE = "ar_config.json"
PROJECTOR_FILE = "projector.safetensors"
REQUIRED_FILES = (CONFIG_FILE, "vision/config.json", PROJECTOR_FILE, "lm/config.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
# ARConfig fields stored as JSON (the two model configs live in their own folders).
SCALAR_FIELDS = ("prompt_ids", "action_dims", "chunk_rows", "n_bins", "action_low", "action_high",
                 "action_token_ids", "dtype", "seq_cache", "image_mean", "image_std", "resize")
# Fields that checkpoints written before they existed lack, read by legacy_fields instead.
OPTIONAL_FIELDS = ("chunk_rows", "resize")


def legacy_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """Values for the optional fields an older ``ar_config.json`` does not hold.

    Checkpoints written before ``chunk_rows`` was stored were all trained for the catch task, whose l_a
    tokens are (vx, vy) rows all played before replanning: l_a // 2 rows, the rule the agent used to
    apply to every config itself.
    """
    action_dims = stored["action_dims"]
    # A malformed action_dims is ARConfig's to report, by name; it only must not crash here first.
    # Images were only ever taken at the trained size before ``resize`` was stored: stretching is the
    # rule that changes nothing for those.
    return {"chunk_rows": max(1, action_dims // 2) if isinstance(action_dims, int) else 1, "resize": "resize"}


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
    required = tuple(name for name in SCALAR_FIELDS if name not in OPTIONAL_FIELDS)
    stored = read_json_object(directory / CONFIG_FILE, (*required, "image_size"))
    fields = {**legacy_fields(stored), **{name: stored[name] for name in SCALAR_FIELDS if name in stored}}
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
