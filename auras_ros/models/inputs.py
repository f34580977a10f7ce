"""Validation of what enters a model stage, shared by every agent: one clear error, never a silent crash."""

from __future__ import annotations

from numbers import Integral
from typing import Any

import numpy as np
import torch

from auras_ros.core.errors import ConfigError, InputError


def check_perception_slice(stage: Any, num_stages: Any, max_stages: int, slices: str) -> None:
    """``stage`` of ``num_stages`` must name a perception slice this agent has (``slices`` says what
    one is). A bad one is a mistake in the executor's configuration, never in what the sensor sent,
    so it is a :class:`ConfigError`: the pipeline reports it as a frame fault, where an
    :class:`InputError` would silently drop the observation and try the next one the same way."""
    if not _is_integer(num_stages) or not 1 <= num_stages <= max_stages:
        raise ConfigError("num_stages", num_stages, f"an integer in [1, {max_stages}] ({slices})")
    if not _is_integer(stage) or not 0 <= stage < num_stages:
        raise ConfigError("stage", stage, f"an integer in [0, {num_stages})")


def _is_integer(value: Any) -> bool:
    return isinstance(value, Integral) and not isinstance(value, bool)


def as_image_tensor(image: Any, height: int, width: int, where: str) -> torch.Tensor:
    """Check an HxWx3 uint8 RGB image (numpy or torch) and return it as a uint8 torch tensor."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if not isinstance(image, torch.Tensor):
        raise InputError("image type", where, "numpy.ndarray or torch.Tensor", type(image).__name__)
    if image.dtype != torch.uint8:
        raise InputError("image dtype", where, "uint8 RGB", str(image.dtype))
    if image.dim() != 3 or image.shape[2] != 3:
        raise InputError("image shape", where, "(H, W, 3) RGB", tuple(image.shape))
    if tuple(image.shape[:2]) != (height, width):
        raise InputError("image size", where, f"{height}x{width} (HxW)", tuple(image.shape[:2]))
    return image


def check_finite(tensor: torch.Tensor, name: str, where: str) -> torch.Tensor:
    """Reject NaN or infinite values before they poison a whole batch of in-flight requests."""
    if tensor.is_floating_point() and not _all_finite(tensor):
        bad = int((~torch.isfinite(tensor)).sum())
        raise InputError(f"{name} values", where, "finite numbers", f"{bad} NaN/inf of {tensor.numel()}")
    return tensor


def _all_finite(tensor: torch.Tensor) -> bool:
    # On the CPU, numpy's check costs a third of torch's dispatch: it runs on every percept of every hop.
    if tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64, torch.float16):
        return bool(np.isfinite(tensor.detach().numpy()).all())
    return bool(torch.isfinite(tensor).all())
