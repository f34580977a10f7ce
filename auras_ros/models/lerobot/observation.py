"""One observation into the tensors a LeRobot policy's perception starts from (shared by its agents)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from auras_ros.core.errors import InputError
from auras_ros.core.stages import Observation
from auras_ros.models.inputs import as_image_tensor, check_finite
from auras_ros.models.lerobot.config import LeRobotCheckpoint
from auras_ros.models.lerobot.normalize import FeatureNorm


def observation_tensors(observation: Any, checkpoint: LeRobotCheckpoint, norms: tuple[FeatureNorm, FeatureNorm],
                        device: torch.device, dtype: torch.dtype, where: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(image, state)``, each normalised as the checkpoint's preprocessor does (``norms``: the image's
    and the state's, on ``device`` in fp32, where LeRobot normalises): the image (1, 3, H, W) from
    ``pixel / 255``, the state (1, state_dim); None for what the policy does not take."""
    image_norm, state_norm = norms
    data = observation.data if isinstance(observation, Observation) else observation
    state = None
    if checkpoint.state_dim:
        if not isinstance(data, Mapping) or "image" not in data or "state" not in data:
            raise InputError("observation data", where, "a mapping with 'image' and 'state'", type(data).__name__)
        try:
            values = torch.as_tensor(np.asarray(data["state"], dtype=np.float32))
        except (TypeError, ValueError) as error:
            raise InputError("state type", where, f"({checkpoint.state_dim},) numbers", repr(data["state"])[:60]) from error
        if tuple(values.shape) != (checkpoint.state_dim,):
            raise InputError("state shape", where, f"({checkpoint.state_dim},)", tuple(values.shape))
        check_finite(values, "state", where)
        state = state_norm.normalize(values.to(device)[None]).to(dtype)
        data = data["image"]
    elif isinstance(data, Mapping) and "image" in data:
        data = data["image"]  # a policy without a state ignores the other keys of a richer observation
    if checkpoint.image_shape is None:
        return None, state
    _, height, width = checkpoint.image_shape
    pixels = as_image_tensor(data, height, width, where).to(device).permute(2, 0, 1)[None].to(torch.float32) / 255.0
    image = image_norm.normalize(pixels).to(dtype)
    return image, state
