"""One place that turns a model name or a local checkpoint directory into an agent, for the nodes,
the CLI and the benchmarks. Nothing is fetched from a hub."""

from __future__ import annotations

from pathlib import Path

from auras_ros.core.errors import ConfigError, InputError, one_of
from auras_ros.core.stages import Agent

PRESETS = ("synthetic", "diffusion-tiny", "ar-tiny")  # diffusion-tiny sees 96x96 images, ar-tiny 32x32


def build_agent(model: str, device: str = "cpu") -> Agent:
    """``model`` is a preset name or a checkpoint directory written by an agent's save function."""
    if model == "synthetic":
        from auras_ros.core.workload import SyntheticAgent
        return SyntheticAgent()
    if model == "diffusion-tiny":
        from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
        return DiffusionPolicyAgent(tiny(device=device, state_dim=0, image_size=(96, 96)))
    if model == "ar-tiny":
        from auras_ros.models.ar_config import tiny_config
        from auras_ros.models.ar_vla import ARVLAAgent
        return ARVLAAgent.from_config(tiny_config(device=device))
    path = Path(model)
    if not path.is_dir():
        raise ConfigError("model", model, f"{one_of(PRESETS)}, or a local checkpoint directory")
    from auras_ros.models import ar_checkpoint, diffusion, lerobot
    if lerobot.is_lerobot_dir(path):  # also has a config.json: told apart by LeRobot's processor file
        return lerobot.load_agent(path, device=device)
    if (path / diffusion.CONFIG_FILE).is_file() and (path / diffusion.WEIGHTS_FILE).is_file():
        return diffusion.DiffusionPolicyAgent.load(path, device=device)
    if (path / ar_checkpoint.CONFIG_FILE).is_file():
        return ar_checkpoint.load_checkpoint(path, device=device)
    raise InputError("checkpoint files", f"build_agent({model})",
                     f"{diffusion.CONFIG_FILE} + {diffusion.WEIGHTS_FILE} (diffusion), {ar_checkpoint.CONFIG_FILE} (AR) "
                     "or a LeRobot pretrained_model/ (config.json + policy_preprocessor.json)",
                     sorted(p.name for p in path.iterdir()))

