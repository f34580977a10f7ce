"""LeRobot (>= 0.4) policy checkpoints as Auras agents: ``model:=/path/to/pretrained_model``.

Our own implementation of the formats and the math (LeRobot is not a dependency); each policy type is
checked against golden actions LeRobot itself produced (``tools/lerobot_golden.py``,
``test/models/test_lerobot.py``).
"""

from __future__ import annotations

from pathlib import Path

from auras_ros.core.errors import ConfigError, one_of
from auras_ros.core.stages import Agent
from auras_ros.models.checkpoint_files import read_json_object
from auras_ros.models.lerobot.config import CONFIG_FILE, is_lerobot_dir, read_checkpoint

SUPPORTED_TYPES = ("diffusion", "act")
__all__ = ["SUPPORTED_TYPES", "is_lerobot_dir", "load_agent"]


def load_agent(path: str | Path, device: str = "cpu") -> Agent:
    """The agent for the LeRobot policy directory ``path``; an unsupported ``type`` is refused in one
    line that lists the supported ones."""
    kind = read_json_object(Path(path) / CONFIG_FILE, ("type",))["type"]
    if kind not in SUPPORTED_TYPES:  # before the weights are read: a large unsupported checkpoint fails at once
        raise ConfigError(f"'type' in {Path(path) / CONFIG_FILE}", kind,
                          f"{one_of(SUPPORTED_TYPES)} (the LeRobot policies supported here)")
    checkpoint = read_checkpoint(Path(path))
    if checkpoint.type == "diffusion":
        from auras_ros.models.lerobot.diffusion import LeRobotDiffusionAgent
        return LeRobotDiffusionAgent(checkpoint, device=device)
    from auras_ros.models.lerobot.act import LeRobotACTAgent
    return LeRobotACTAgent(checkpoint, device=device)
