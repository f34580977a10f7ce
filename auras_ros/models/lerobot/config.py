"""What a LeRobot (>= 0.4) ``pretrained_model/`` directory holds, read and checked in one place.

Files: ``config.json`` (the policy's config, ``"type"`` naming the policy), ``model.safetensors``
(the policy's state dict), ``policy_preprocessor.json`` / ``policy_postprocessor.json`` with their
normaliser state files (:mod:`auras_ros.models.lerobot.normalize`).

Observations: the agents take what the project's other agents take, ``{"image": HxWx3 uint8 RGB,
"state": (state_dim,) float}`` (the bare image for a policy without a state), the image at the size of
the checkpoint's VISUAL feature; the perception node brings a camera frame of another size there
(:class:`~auras_ros.core.inputs.InputSpec`). One camera: a checkpoint with several VISUAL features,
or an ENV state, is refused at load.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file

from auras_ros.core.errors import ConfigError
from auras_ros.core.inputs import InputSpec, StateSpec
from auras_ros.models.checkpoint_files import read_json_object, read_weights
from auras_ros.models.lerobot.normalize import FeatureNorm, read_processor

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "policy_preprocessor.json"
POSTPROCESSOR_FILE = "policy_postprocessor.json"
REQUIRED_FILES = (CONFIG_FILE, WEIGHTS_FILE, PREPROCESSOR_FILE, POSTPROCESSOR_FILE)
ACTION_KEY = "action"
STATE_KEY = "observation.state"


def is_lerobot_dir(path: Path) -> bool:
    """A directory LeRobot wrote: its config names a policy ``type`` and the processors are beside it."""
    return (path / CONFIG_FILE).is_file() and (path / PREPROCESSOR_FILE).is_file()


@dataclass(frozen=True)
class LeRobotCheckpoint:
    """A LeRobot policy directory, read: its config, weights, features and (un)normalisers."""

    path: Path
    config: dict[str, Any]
    weights: dict[str, torch.Tensor]
    image_key: str | None  # the VISUAL feature's key (one camera), None: no camera
    image_shape: tuple[int, int, int] | None  # (C, H, W)
    state_dim: int  # 0: no robot state
    action_dim: int
    normalize: dict[str, FeatureNorm]  # the preprocessor's, per input feature key
    unnormalize_action: FeatureNorm  # the postprocessor's, for the action

    @property
    def type(self) -> str:
        return str(self.config["type"])

    def get(self, name: str, default: Any = None) -> Any:
        return self.config.get(name, default)

    def require(self, name: str, allowed: Any, expected: str) -> None:
        """ConfigError unless the config's ``name`` is in ``allowed`` (what this loader reproduces)."""
        value = self.config.get(name)
        if value not in allowed:
            raise ConfigError(f"{name!r} in {self.path / CONFIG_FILE}", value, expected)

    def input_spec(self) -> InputSpec:
        """The observation form: the VISUAL feature's name and trained size, the state's size."""
        size = None if self.image_shape is None else (self.image_shape[1], self.image_shape[2])
        return InputSpec(size=size, state=StateSpec(self.state_dim) if self.state_dim else None,
                         camera=self.image_key or "")

    def image_norm(self) -> FeatureNorm:
        return self.normalize.get(self.image_key or "", FeatureNorm("IDENTITY"))

    def state_norm(self) -> FeatureNorm:
        return self.normalize.get(STATE_KEY, FeatureNorm("IDENTITY"))


def read_checkpoint(path: Path) -> LeRobotCheckpoint:
    """Read and check a LeRobot ``pretrained_model/`` directory; ConfigError naming the file and field."""
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigError("LeRobot checkpoint", str(path), f"a pretrained_model/ directory with {', '.join(REQUIRED_FILES)} "
                          f"(missing {', '.join(missing)})")
    config = read_json_object(path / CONFIG_FILE, ("type", "input_features", "output_features"))
    inputs, outputs = config["input_features"], config["output_features"]
    where = f"{path / CONFIG_FILE}"
    if not isinstance(inputs, dict) or not isinstance(outputs, dict):
        raise ConfigError(f"features in {where}", (inputs, outputs), "input_features and output_features objects")
    images = {key: _shape(f, key, where) for key, f in inputs.items() if _type(f) == "VISUAL"}
    if len(images) > 1:
        raise ConfigError(f"VISUAL input_features in {where}", sorted(images), "one camera (several are not supported yet)")
    others = sorted(key for key, f in inputs.items() if _type(f) not in ("VISUAL", "STATE"))
    if others:
        raise ConfigError(f"input_features in {where}", others, "VISUAL and STATE features only (ENV state is not supported yet)")
    states = [key for key, f in inputs.items() if _type(f) == "STATE"]
    if states and states != [STATE_KEY]:
        raise ConfigError(f"STATE input_features in {where}", states, f"one, named {STATE_KEY!r}")
    if ACTION_KEY not in outputs or _type(outputs[ACTION_KEY]) != "ACTION":
        raise ConfigError(f"output_features in {where}", sorted(outputs), f"an ACTION feature named {ACTION_KEY!r}")
    image_key = next(iter(images), None)
    image_shape = images[image_key] if image_key else None
    if image_shape is not None and (len(image_shape) != 3 or image_shape[0] != 3):
        raise ConfigError(f"shape of {image_key!r} in {where}", list(image_shape), "[3, height, width] (RGB)")
    state_dim = _shape(inputs[STATE_KEY], STATE_KEY, where)[0] if states else 0
    action_dim = _shape(outputs[ACTION_KEY], ACTION_KEY, where)[0]
    normalize = read_processor(path / PREPROCESSOR_FILE, "normalizer_processor")
    unnormalize = read_processor(path / POSTPROCESSOR_FILE, "unnormalizer_processor")
    weights = read_weights(path / WEIGHTS_FILE, load_file, "a safetensors state dict written by LeRobot's save_pretrained")
    return LeRobotCheckpoint(path, config, weights, image_key, image_shape, state_dim, action_dim,
                             normalize, unnormalize.get(ACTION_KEY, FeatureNorm("IDENTITY")))


def _type(feature: Any) -> Any:
    return feature.get("type") if isinstance(feature, Mapping) else None


def _shape(feature: Any, key: str, where: str) -> tuple[int, ...]:
    shape = feature.get("shape") if isinstance(feature, Mapping) else None
    if not isinstance(shape, list) or not shape or any(not isinstance(v, int) or v < 1 for v in shape):
        raise ConfigError(f"shape of {key!r} in {where}", shape, "a list of positive integers")
    return tuple(shape)


def take_weights(weights: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors under ``prefix`` with the prefix cut off."""
    return {key[len(prefix):]: value for key, value in weights.items() if key.startswith(prefix)}


def load_into(module: torch.nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Load ``state`` strictly: a missing or surplus tensor or a shape that does not fit is a ConfigError
    naming the file and the first few offenders, not a loader's traceback."""
    try:
        module.load_state_dict(dict(state), strict=True)
    except RuntimeError as error:
        raise ConfigError("checkpoint file", str(path / WEIGHTS_FILE),
                          f"weights that fit {CONFIG_FILE} ({' '.join(str(error).split())[:400]})") from None
