"""The catch task's configuration, apart from the task so that launch files, the simulator's parameters
and bag tools can name its defaults without importing MuJoCo."""

from __future__ import annotations

import math
from dataclasses import dataclass

from auras_ros.core.errors import ConfigError, positive_int


@dataclass(frozen=True)
class TaskConfig:
    image_size: int = 64  # square renders from the top camera
    frame_period: float = 0.05  # seconds of world time per frame (20 Hz camera and control)
    substeps: int = 10  # physics steps per frame
    arena: float = 0.8  # target and agent stay in [-arena, arena]^2
    max_speed: float = 1.5  # agent speed at |action| = 1, units/s
    target_speed: float = 0.5  # units/s
    gain: float = 16.0  # expert: velocity = gain * (target - agent), clipped; gain*dt = 0.8
    catch_radius: float = 0.1
    hold_frames: int = 10  # consecutive frames within catch_radius for success
    max_frames: int = 120  # episode length limit
    min_start_distance: float = 0.8

    def __post_init__(self) -> None:
        for name in ("image_size", "substeps", "hold_frames", "max_frames"):
            positive_int(name, getattr(self, name))
        for name in ("frame_period", "arena", "max_speed", "target_speed", "gain", "catch_radius"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(name, value, "a finite number > 0")
        if self.target_speed >= self.max_speed:
            raise ConfigError("target_speed", self.target_speed, f"below max_speed {self.max_speed} (else it can't be caught)")
