"""The catch task's configuration, apart from the task so that launch files, the simulator's parameters
and bag tools can name its defaults without importing MuJoCo."""

from __future__ import annotations

import math
from dataclasses import dataclass

from auras_ros.core.errors import ConfigError, one_of, positive_int

# catch: the target moves and bounces; reverse: the same, and once per episode, at a seeded frame, the
# target reverses its direction (a sudden target change, to measure how fast an executor reacts).
VARIANTS = ("catch", "reverse")


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
    variant: str = "catch"  # VARIANTS
    # reverse: the reversal frame is drawn uniformly from [first, last]: after a typical catch (25-60
    # frames at speed 3), with enough frames left to hold the target again before max_frames.
    reverse_frames: tuple[int, int] = (30, 60)

    def __post_init__(self) -> None:
        for name in ("image_size", "substeps", "hold_frames", "max_frames"):
            positive_int(name, getattr(self, name))
        for name in ("frame_period", "arena", "max_speed", "target_speed", "gain", "catch_radius"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(name, value, "a finite number > 0")
        if self.variant not in VARIANTS:
            raise ConfigError("task variant", self.variant, one_of(VARIANTS))
        first, last = self.reverse_frames
        if self.variant == "reverse" and not 0 <= first <= last < self.max_frames:
            raise ConfigError("reverse_frames", self.reverse_frames, f"frames 0 <= first <= last < max_frames {self.max_frames}")
        if self.target_speed >= self.max_speed:
            raise ConfigError("target_speed", self.target_speed, f"below max_speed {self.max_speed} (else it can't be caught)")
