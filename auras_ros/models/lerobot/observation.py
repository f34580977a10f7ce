"""One observation into the tensors a LeRobot policy's perception starts from (shared by its agents)."""

from __future__ import annotations

from typing import Any

import torch

from auras_ros.models.inputs import as_image_tensor, split_observation
from auras_ros.models.lerobot.config import LeRobotCheckpoint
from auras_ros.models.lerobot.normalize import FeatureNorm


def observation_tensors(observation: Any, checkpoint: LeRobotCheckpoint, norms: tuple[FeatureNorm, FeatureNorm],
                        device: torch.device, dtype: torch.dtype, where: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``(image, state)``, each normalised as the checkpoint's preprocessor does (``norms``: the image's
    and the state's, on ``device`` in fp32, where LeRobot normalises): the image (1, 3, H, W) from
    ``pixel / 255``, the state (1, state_dim); None for what the policy does not take."""
    image_norm, state_norm = norms
    data, values = split_observation(observation, checkpoint.state_dim, where)
    state = None if values is None else state_norm.normalize(values.to(device)[None]).to(dtype)
    if checkpoint.image_shape is None:
        return None, state
    _, height, width = checkpoint.image_shape
    pixels = as_image_tensor(data, height, width, where).to(device).permute(2, 0, 1)[None].to(torch.float32) / 255.0
    image = image_norm.normalize(pixels).to(dtype)
    return image, state
