"""What an agent takes as input, declared by the agent (and its checkpoint) in one :class:`InputSpec`.

A camera delivers any size and encoding; a model takes the one form it was trained on. The spec says
which: the image's key and trained size, how another size is brought to it, the channel order and the
normalisation, and the robot state's size and joints. The perception node and ``bag_eval`` both
put every decoded camera array through :func:`auras_ros.models.inputs.observation_data`, which applies
the spec, so the node path and the bag evaluation feed the model identical observations.

This module is the declaration only (numpy, no image library): the core's own agents declare their
inputs with it too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from auras_ros.core.errors import ConfigError, InputError, one_of, positive_int
from auras_ros.core.stages import state_size

# How an image of another size becomes the trained size. "resize" stretches to it; "pad" scales the
# whole image to fit and pads the rest with black (keeps the aspect ratio and everything in view);
# "crop" scales to cover and cuts the centre. A policy trained with random crops is evaluated on the
# centre crop, so "crop" is the eval rule for it too.
RESIZE_RULES = ("resize", "pad", "crop")
CHANNEL_ORDERS = ("rgb", "bgr")
# How the pixels are resampled on the way. "area": area averaging when shrinking (no aliasing from a
# 1280x960 frame to 64x64), bilinear when growing (OpenCV). "bicubic": PIL's antialiased bicubic, what
# torchvision's Resize does to a PIL image, so a model trained through it (OpenVLA's processor) sees
# the very pixels its reference would.
INTERPOLATIONS = ("area", "bicubic")


def scaled_size(size: tuple[int, int], rule: str, height: int, width: int) -> tuple[int, int]:
    """The (H, W) an image of ``height`` x ``width`` is scaled to by ``rule`` on its way to ``size``:
    ``size`` itself for "resize"; for "pad" (fit inside) and "crop" (cover), the aspect kept, before the
    padding or the cut."""
    if rule == "resize":
        return size
    scale = min(size[0] / height, size[1] / width) if rule == "pad" else max(size[0] / height, size[1] / width)
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class StateSpec:
    """The robot state beside the image: ``size`` values from ``sensor_msgs/JointState.position``.

    ``joints`` names them in the order the model takes them (looked up by name in each message);
    empty: the message's positions in message order, as many as ``size``."""

    size: int
    joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive_int("state size", self.size)
        if self.joints and len(self.joints) != self.size:
            raise ConfigError("state joints", list(self.joints), f"{self.size} joint names, one per state value")

    def with_joints(self, joints: Sequence[str]) -> StateSpec:
        """This spec with the joints a parameter names (empty: unchanged)."""
        return StateSpec(self.size, tuple(joints)) if joints else self

    def assemble(self, names: Sequence[str], positions: Sequence[float], where: str) -> np.ndarray:
        """The state vector from one JointState's ``name`` and ``position``, or InputError naming the
        joints expected and the ones the message has."""
        names, values = list(names), np.asarray(positions, dtype=np.float32).ravel()
        if not self.joints:
            if values.size != self.size:
                raise InputError("state size", where, f"{self.size} joint positions in message order (or state "
                                 "joints naming them)", f"{values.size} positions, joints {names}")
            return values
        missing = [joint for joint in self.joints if joint not in names]
        if missing:
            raise InputError("state joints", where, f"joints {list(self.joints)} (missing {missing})", names)
        if len(names) != values.size:
            raise InputError("state positions", where, f"one position per name of {names}", f"{values.size} positions")
        return values[[names.index(joint) for joint in self.joints]]


@dataclass(frozen=True)
class InputSpec:
    """One agent's observation form. ``size`` (H, W) None: the image is taken at any size, as decoded.

    Normalisation is ``(pixel / 255 - mean) / std`` per channel; the agent applies it on its device as
    its first operation (uint8 crosses to the device, a quarter of float32's bytes), everything before
    it happens on the host in :func:`auras_ros.models.inputs.prepare_image`."""

    size: tuple[int, int] | None = None
    resize: str = "resize"
    channels: str = "rgb"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    image_key: str = "image"
    state: StateSpec | None = None
    state_key: str = "state"
    camera: str = ""  # the checkpoint's name of its camera (LeRobot's VISUAL feature key); "": unnamed
    interpolation: str = "area"

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or any(
                isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.size)):
            raise ConfigError("input size", self.size, "(height, width) positive integers, or None")
        if self.resize not in RESIZE_RULES:
            raise ConfigError("resize", self.resize, one_of(RESIZE_RULES))
        if self.channels not in CHANNEL_ORDERS:
            raise ConfigError("channels", self.channels, one_of(CHANNEL_ORDERS))
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigError("interpolation", self.interpolation, one_of(INTERPOLATIONS))
        if len(self.mean) != 3 or len(self.std) != 3 or not all(s > 0 for s in self.std):
            raise ConfigError("normalisation", (self.mean, self.std), "3 means and 3 standard deviations > 0")

    @property
    def state_size(self) -> int:
        return self.state.size if self.state is not None else 0

    def with_joints(self, joints: Sequence[str]) -> InputSpec:
        """This spec with the state's joints named by a parameter; ConfigError for a model without a state."""
        if not joints:
            return self
        if self.state is None:
            raise ConfigError("state joints", list(joints), "none: the model takes the image alone")
        return replace(self, state=self.state.with_joints(joints))


@dataclass(frozen=True)
class RobotInputs:
    """What the robot gives an agent, as configured before any message arrives: the camera topic (and
    which of a checkpoint's cameras it shows; "": whichever one the checkpoint has), the robot-state
    topic ("": none) and the state's size when it is known ahead (``state_joints`` named; None: not until
    the first message, which is then checked on its own)."""

    camera_topic: str
    camera: str = ""
    state_topic: str = ""
    state_size: int | None = None

    def describe(self) -> str:
        camera = f"camera {self.camera!r}" if self.camera else "one camera"
        if not self.state_topic:
            state = "no robot state"
        elif self.state_size is None:
            state = f"a robot state of a size not known before its first message on {self.state_topic}"
        else:
            state = f"a robot state of {self.state_size} values on {self.state_topic}"
        return f"{camera} on {self.camera_topic}, {state}"


def needs(spec: InputSpec) -> str:
    """What an agent's inputs are, in words, for a refusal."""
    camera = f"camera {spec.camera!r}" if spec.camera else "one camera"
    size = f" ({spec.size[0]}x{spec.size[1]})" if spec.size else ""
    state = f"a robot state of {spec.state.size} values" if spec.state else "no robot state"
    return f"{camera}{size}, {state}"


def check_robot_inputs(spec: InputSpec, robot: RobotInputs, model: str) -> None:
    """Refuse, in one line naming what the model needs and what the robot gives, a robot that cannot feed
    the model: a camera other than the checkpoint's, no robot state for a model that takes one, or a state
    of another size. Called at configure (the perception node, bag_eval), before any image is perceived."""
    wrong = []
    if spec.camera and robot.camera and robot.camera != spec.camera:
        wrong.append("camera")
    if spec.state is not None and not robot.state_topic:
        wrong.append("no state topic")
    elif spec.state is not None and robot.state_size is not None and robot.state_size != spec.state.size:
        wrong.append("state size")
    if wrong:
        raise ConfigError(f"robot inputs for model {model!r} ({', '.join(wrong)})", robot.describe(),
                          f"what the model needs: {needs(spec)}")


def input_spec(agent: Any) -> InputSpec:
    """The agent's :class:`InputSpec` (its ``input_spec`` attribute); an agent without one takes the
    decoded image as it is, with a state of its ``state_size`` positions in message order."""
    spec = getattr(agent, "input_spec", None)
    if spec is not None:
        return spec
    size = state_size(agent)
    return InputSpec(state=StateSpec(size) if size else None)
