"""Validation of what enters a model stage, shared by every agent: one clear error, never a silent crash."""

from __future__ import annotations

from numbers import Integral
from typing import Any, Mapping

import cv2
import numpy as np
import torch
from PIL import Image

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inputs import InputSpec, scaled_size
from auras_ros.core.stages import Observation


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
        # torch cannot share a read-only buffer (a decoded message's, a PIL image's) safely: copy those.
        image = torch.from_numpy(np.ascontiguousarray(image) if image.flags.writeable else np.array(image))
    if not isinstance(image, torch.Tensor):
        raise InputError("image type", where, "numpy.ndarray or torch.Tensor", type(image).__name__)
    if image.dtype != torch.uint8:
        raise InputError("image dtype", where, "uint8 RGB", str(image.dtype))
    if image.dim() != 3 or image.shape[2] != 3:
        raise InputError("image shape", where, "(H, W, 3) RGB", tuple(image.shape))
    if tuple(image.shape[:2]) != (height, width):
        raise InputError("image size", where, f"{height}x{width} (HxW)", tuple(image.shape[:2]))
    return image


def split_observation(observation: Any, state_dim: int, where: str) -> tuple[Any, torch.Tensor | None]:
    """``(image data, state)`` of an observation (or its data): the state checked as ``state_dim`` finite
    numbers (fp32, on the CPU) when the policy takes one, else None; a policy without a state ignores the
    other keys of a richer observation."""
    data = observation.data if isinstance(observation, Observation) else observation
    if not state_dim:
        return (data["image"] if isinstance(data, Mapping) and "image" in data else data), None
    if not isinstance(data, Mapping) or "image" not in data or "state" not in data:
        raise InputError("observation data", where, "a mapping with 'image' and 'state'", type(data).__name__)
    try:
        state = torch.as_tensor(np.asarray(data["state"], dtype=np.float32))
    except (TypeError, ValueError) as error:
        raise InputError("state type", where, f"({state_dim},) numbers", repr(data["state"])[:60]) from error
    if tuple(state.shape) != (state_dim,):
        raise InputError("state shape", where, f"({state_dim},)", tuple(state.shape))
    check_finite(state, "state", where)
    return data["image"], state


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


# ---- a decoded camera image into the agent's input form (the perception node and bag_eval) ----------

def prepare_image(spec: InputSpec, rgb: np.ndarray, where: str) -> np.ndarray:
    """An HxWx3 uint8 RGB camera array (:func:`auras_ros.transport.images.to_rgb`) in the form ``spec``
    declares: the trained size by its resize rule, its channel order. An image already of the trained
    size in RGB passes through untouched (the very array), so the model sees what it was trained on."""
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
        raise InputError("camera array", where, "an HxWx3 uint8 RGB array", got)
    if spec.size is not None and tuple(rgb.shape[:2]) != tuple(spec.size):
        rgb = _to_size(rgb, spec.size, spec.resize, spec.interpolation)
    return np.ascontiguousarray(rgb[:, :, ::-1]) if spec.channels == "bgr" else rgb


def _scaled(image: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """``image`` resampled to ``height`` x ``width`` (:data:`auras_ros.core.inputs.INTERPOLATIONS`)."""
    if interpolation == "bicubic":
        return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC))
    shrink = height * width < image.shape[0] * image.shape[1]
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def _to_size(image: np.ndarray, size: tuple[int, int], rule: str, interpolation: str) -> np.ndarray:
    height, width = size
    h, w = image.shape[:2]
    if rule == "resize":
        return _scaled(image, height, width, interpolation)
    sh, sw = scaled_size(size, rule, h, w)
    scaled = _scaled(image, sh, sw, interpolation)
    if rule == "pad":
        out = np.zeros((height, width, 3), dtype=np.uint8)
        top, left = (height - sh) // 2, (width - sw) // 2
        out[top:top + sh, left:left + sw] = scaled
        return out
    top, left = (sh - height) // 2, (sw - width) // 2  # crop: the centre
    return np.ascontiguousarray(scaled[top:top + height, left:left + width])


def observation_data(spec: InputSpec, rgb: np.ndarray, state: np.ndarray | None, where: str) -> Any:
    """An observation's data as the agent takes it: the prepared image alone, or with a state model
    ``{image_key: image, state_key: state}`` (``state`` from :meth:`StateSpec.assemble`)."""
    image = prepare_image(spec, rgb, where)
    if spec.state is None:
        return image
    if state is None:
        raise InputError("robot state", where, f"{spec.state.size} joint positions", "none received yet")
    return {spec.image_key: image, spec.state_key: state}
