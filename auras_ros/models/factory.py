"""One place that turns a model name or a local checkpoint directory into an agent, for the nodes,
the CLI and the benchmarks. Nothing is fetched from a hub."""

from __future__ import annotations

from pathlib import Path

from auras_ros.core.errors import ConfigError, InputError, one_of
from auras_ros.core.stages import Agent

PRESETS = ("synthetic", "diffusion-tiny", "ar-tiny")  # diffusion-tiny sees 96x96 images, ar-tiny 32x32


def build_agent(model: str, device: str = "cpu", *, instruction: str | None = None,
                unnorm_key: str | None = None, dtype: str | None = None) -> Agent:
    """``model`` is a preset name or a checkpoint directory written by an agent's save function.
    ``instruction``, ``unnorm_key`` and ``dtype``: an OpenVLA checkpoint's task in words, the dataset whose
    action statistics unnormalise its actions, and the dtype its weights load in (None: float32 on the
    CPU, bfloat16 elsewhere) (:mod:`auras_ros.models.openvla`)."""
    path = Path(model)
    if path.is_dir() and (path / "config.json").is_file():
        from auras_ros.models import openvla
        if openvla.is_openvla_dir(path):
            return openvla.load_agent(path, device=device, instruction=instruction, unnorm_key=unnorm_key, dtype=dtype)
    if instruction is not None or unnorm_key is not None or dtype is not None:
        raise ConfigError("instruction/unnorm_key/dtype", (instruction, unnorm_key, dtype),
                          f"only with an OpenVLA checkpoint, not {model!r}")
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
                     f"{diffusion.CONFIG_FILE} + {diffusion.WEIGHTS_FILE} (diffusion), {ar_checkpoint.CONFIG_FILE} (AR), "
                     "a LeRobot pretrained_model/ (config.json + policy_preprocessor.json) "
                     "or an OpenVLA checkpoint (config.json with \"model_type\": \"openvla\")",
                     sorted(p.name for p in path.iterdir()))

