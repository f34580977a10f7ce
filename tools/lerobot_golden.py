"""Write the LeRobot reference checkpoints and golden actions that test/models/test_lerobot.py checks.

Run it ONCE in a scratch environment that has LeRobot installed, never in the project's venv (LeRobot
pins its own torch); it writes ``test/data/lerobot_diffusion/`` and ``test/data/lerobot_act/``:

- ``pretrained_model/``: the policy exactly as LeRobot writes it (``policy.save_pretrained`` plus the
  pre/post-processors' ``save_pretrained``: ``config.json``, ``model.safetensors``,
  ``policy_preprocessor.json``, ``policy_postprocessor.json`` and their normaliser state files);
- ``golden.npz``: the inputs (uint8 HxWx3 images, float32 states; for diffusion the initial noise
  ``x0`` and the per-step DDPM noise ``z``) and the actions LeRobot's ``select_action`` produced
  (unnormalised by the postprocessor), one chunk of ``n_action_steps`` rows per observation, with the
  observations fed in order (so ``n_obs_steps`` history counts);
- diffusion also ``golden_ddim.npz``: the same weights and inputs under ``DDIM_CHANGES`` to the config
  (DDIM in fewer steps than training), the actions LeRobot produced with them.

Versions used for the committed files (x86_64, CPU, fp32):
    python 3.11.7, lerobot 0.4.4 (PyPI, installed --no-deps), torch 2.14.1+cu130,
    torchvision 0.29.1+cu130, diffusers 0.35.2, safetensors, numpy from the same environment.
Scratch environment::

    python3.11 -m venv /tmp/lerobot_env
    /tmp/lerobot_env/bin/pip install torch==2.14.1 torchvision==0.29.1
    /tmp/lerobot_env/bin/pip install --no-deps lerobot==0.4.4
    /tmp/lerobot_env/bin/pip install "diffusers>=0.27.2,<0.36.0" "huggingface-hub>=0.34.2,<0.36.0" \
        draccus==0.10.0 "einops>=0.8.0,<0.9.0" safetensors "datasets>=4.0.0,<5.0.0" "deepdiff>=7.0.1,<9.0.0" \
        termcolor jsonlines "packaging>=24.2,<26.0" "opencv-python-headless>=4.9.0,<4.13.0" gymnasium \
        "av>=15.0.0,<16.0.0" "imageio[ffmpeg]" pyserial pynput
    /tmp/lerobot_env/bin/pip install --no-deps "accelerate>=1.10.0,<2.0.0" psutil
    /tmp/lerobot_env/bin/python tools/lerobot_golden.py

Tiny widths keep each checkpoint well under 2 MB: the backbone is torchvision's ResNet-18 layout
(same module names, two BasicBlocks per stage, the same stem) at stage widths 16/16/32/32 instead of
64/128/256/512, registered under the name ``resnet18`` for the duration of this script only. Every
norm weight and statistic is perturbed from its initial value so that a loader that skipped one
would not match.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

ROOT = Path(__file__).resolve().parents[1] / "test" / "data"
DDIM_CHANGES = {"noise_scheduler_type": "DDIM", "num_inference_steps": 5}
STAGE_WIDTHS = {64: 16, 128: 16, 256: 32, 512: 32}  # torchvision's planes -> our narrow planes
IMAGE_SHAPE = (3, 48, 64)
STATE_DIM = 4
ACTION_DIM = 3
N_OBSERVATIONS = 4


class NarrowResNet18(ResNet):
    """torchvision's ResNet-18 with narrow stages: the module names and the block layout stay."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(BasicBlock, [2, 2, 2, 2], **kwargs)  # type: ignore[arg-type]
        width = STAGE_WIDTHS[64]
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(width)
        self.fc = nn.Linear(STAGE_WIDTHS[512], 1000)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):  # type: ignore[no-untyped-def]
        if planes == 64:
            self.inplanes = STAGE_WIDTHS[64]  # the stem's width, before layer1 reads it
        return super()._make_layer(block, STAGE_WIDTHS[planes], blocks, stride, dilate)


def narrow_resnet18(weights: object = None, **kwargs: object) -> ResNet:
    assert weights is None, "random weights only"
    return NarrowResNet18(**kwargs)


def perturb_norms(module: nn.Module, generator: torch.Generator) -> None:
    """Move every norm's affine parameters and running statistics off their initial values."""
    with torch.no_grad():
        for name, tensor in list(module.named_parameters()) + list(module.named_buffers()):
            if tensor.dtype != torch.float32:
                continue
            leaf = name.rsplit(".", 1)[-1]
            is_norm = any(part.startswith(("bn", "norm")) for part in name.split(".")) or ".downsample.1." in name
            if "running_var" in leaf:
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
            elif "running_mean" in leaf:
                tensor.copy_(0.1 * torch.randn(tensor.shape, generator=generator))
            elif is_norm or isinstance(module.get_submodule(name.rsplit(".", 1)[0]), (nn.GroupNorm, nn.LayerNorm)):
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=generator))


def stats() -> dict[str, dict[str, torch.Tensor]]:
    rng = np.random.default_rng(7)
    return {
        "observation.image": {
            "mean": torch.tensor([0.45, 0.5, 0.55]).reshape(3, 1, 1),
            "std": torch.tensor([0.2, 0.25, 0.3]).reshape(3, 1, 1),
        },
        "observation.state": {
            "min": torch.tensor(rng.uniform(-2, -1, STATE_DIM), dtype=torch.float32),
            "max": torch.tensor(rng.uniform(1, 3, STATE_DIM), dtype=torch.float32),
            "mean": torch.tensor(rng.uniform(-0.5, 0.5, STATE_DIM), dtype=torch.float32),
            "std": torch.tensor(rng.uniform(0.5, 1.5, STATE_DIM), dtype=torch.float32),
        },
        "action": {
            "min": torch.tensor(rng.uniform(-3, -1, ACTION_DIM), dtype=torch.float32),
            "max": torch.tensor(rng.uniform(1, 2, ACTION_DIM), dtype=torch.float32),
            "mean": torch.tensor(rng.uniform(-0.5, 0.5, ACTION_DIM), dtype=torch.float32),
            "std": torch.tensor(rng.uniform(0.5, 1.5, ACTION_DIM), dtype=torch.float32),
        },
    }


def features() -> tuple[dict, dict]:
    from lerobot.configs.types import FeatureType, PolicyFeature

    inputs = {
        "observation.image": PolicyFeature(type=FeatureType.VISUAL, shape=IMAGE_SHAPE),
        "observation.state": PolicyFeature(type=FeatureType.STATE, shape=(STATE_DIM,)),
    }
    outputs = {"action": PolicyFeature(type=FeatureType.ACTION, shape=(ACTION_DIM,))}
    return inputs, outputs


def observations() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (N_OBSERVATIONS, IMAGE_SHAPE[1], IMAGE_SHAPE[2], 3), dtype=np.uint8)
    states = rng.uniform(-1.5, 2.0, (N_OBSERVATIONS, STATE_DIM)).astype(np.float32)
    return images, states


def batch_of(image: np.ndarray, state: np.ndarray) -> dict[str, torch.Tensor]:
    """One raw observation as LeRobot's preprocessor takes it: a CHW float image in [0, 1], the state."""
    pixels = torch.from_numpy(image).permute(2, 0, 1).to(torch.float32) / 255.0
    return {"observation.image": pixels, "observation.state": torch.from_numpy(state)}


def save(policy: nn.Module, pre: object, post: object, out: Path) -> Path:
    model_dir = out / "pretrained_model"
    if out.exists():
        shutil.rmtree(out)
    model_dir.mkdir(parents=True)
    policy.save_pretrained(model_dir)  # type: ignore[attr-defined]
    pre.save_pretrained(model_dir)  # type: ignore[attr-defined]
    post.save_pretrained(model_dir)  # type: ignore[attr-defined]
    return model_dir


def drain(queue: object) -> torch.Tensor:
    rows = list(queue)  # type: ignore[call-overload]
    queue.clear()  # type: ignore[attr-defined]
    return torch.stack(rows, dim=1)  # (1, rows, action_dim)


def diffusion() -> None:
    from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
    from lerobot.policies.factory import make_pre_post_processors

    inputs, outputs = features()
    config = DiffusionConfig(
        input_features=inputs, output_features=outputs, device="cpu",
        n_obs_steps=2, horizon=16, n_action_steps=8,
        resize_shape=(40, 52), crop_ratio=0.9, crop_is_random=True,
        vision_backbone="resnet18", pretrained_backbone_weights=None, use_group_norm=True,
        spatial_softmax_num_keypoints=8, down_dims=(16, 32), kernel_size=5, n_groups=8,
        diffusion_step_embed_dim=16, use_film_scale_modulation=True,
        noise_scheduler_type="DDPM", num_train_timesteps=10, beta_schedule="squaredcos_cap_v2",
        prediction_type="epsilon", clip_sample=True, clip_sample_range=1.0,
    )
    torch.manual_seed(0)
    policy = DiffusionPolicy(config)
    perturb_norms(policy, torch.Generator().manual_seed(1))
    policy.eval()
    pre, post = make_pre_post_processors(config, dataset_stats=stats())
    model_dir = save(policy, pre, post, ROOT / "lerobot_diffusion")

    images, states = observations()
    noise_rng = torch.Generator().manual_seed(2)
    x0 = torch.randn((N_OBSERVATIONS, config.horizon, ACTION_DIM), generator=noise_rng)
    actions, z = diffusion_actions(policy, pre, post, images, states, x0)
    np.savez_compressed(model_dir.parent / "golden.npz", images=images, states=states, x0=x0.numpy(), z=z.numpy(),
                        actions=actions)
    ddim = DiffusionPolicy(dataclasses.replace(config, **DDIM_CHANGES))
    ddim.load_state_dict(policy.state_dict())
    ddim.eval()
    ddim_actions, _ = diffusion_actions(ddim, pre, post, images, states, x0)
    np.savez_compressed(model_dir.parent / "golden_ddim.npz", actions=ddim_actions)
    print("diffusion:", model_dir, actions.shape, ddim_actions.shape)


def diffusion_actions(policy: nn.Module, pre: Any, post: Any, images: np.ndarray, states: np.ndarray,
                      x0: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    """LeRobot's chunks for the observations in order, request i starting from ``x0[i]``, and the
    per-step DDPM noise it drew (zero where it draws none: the last step, and every DDIM step)."""
    scheduler = policy.diffusion.noise_scheduler  # type: ignore[union-attr]
    steps = policy.diffusion.num_inference_steps  # type: ignore[union-attr]
    shape = (1, *x0.shape[1:])
    z = torch.zeros((len(images), steps, *shape[1:]))
    actions = []
    policy.reset()  # type: ignore[operator]
    for i in range(len(images)):
        # DDPM draws its per-step noise from the global generator (LeRobot passes none); seed it and
        # replay the same draws below, so the noise is an input our agent can take.
        torch.manual_seed(100 + i)
        first = policy.select_action(pre(batch_of(images[i], states[i])), noise=x0[i][None])  # type: ignore[operator]
        rest = drain(policy._queues["action"])  # type: ignore[index]
        chunk = torch.cat([first[:, None], rest], dim=1)
        actions.append(post(chunk)[0].numpy())
        torch.manual_seed(100 + i)
        if type(scheduler).__name__ == "DDPMScheduler":
            for k, t in enumerate(scheduler.timesteps):
                if t > 0:
                    z[i, k] = torch.randn(shape)[0]
    return np.stack(actions).astype(np.float32), z


def act() -> None:
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    inputs, outputs = features()
    config = ACTConfig(
        input_features=inputs, output_features=outputs, device="cpu",
        n_obs_steps=1, chunk_size=10, n_action_steps=5,
        vision_backbone="resnet18", pretrained_backbone_weights=None, replace_final_stride_with_dilation=False,
        pre_norm=False, dim_model=32, n_heads=4, dim_feedforward=64, feedforward_activation="relu",
        n_encoder_layers=2, n_decoder_layers=1, use_vae=True, latent_dim=8, n_vae_encoder_layers=1,
        temporal_ensemble_coeff=None, dropout=0.1,
    )
    torch.manual_seed(0)
    policy = ACTPolicy(config)
    perturb_norms(policy, torch.Generator().manual_seed(1))
    policy.eval()
    pre, post = make_pre_post_processors(config, dataset_stats=stats())
    model_dir = save(policy, pre, post, ROOT / "lerobot_act")

    images, states = observations()
    actions = []
    policy.reset()
    for i in range(N_OBSERVATIONS):
        first = policy.select_action(pre(batch_of(images[i], states[i])))
        rest = drain(policy._action_queue)
        chunk = torch.cat([first[:, None], rest], dim=1)
        actions.append(post(chunk)[0].numpy())
    np.savez_compressed(model_dir.parent / "golden.npz", images=images, states=states,
                        actions=np.stack(actions).astype(np.float32))
    print("act:", model_dir, np.stack(actions).shape)


def main() -> None:
    import lerobot

    torchvision.models.resnet18 = narrow_resnet18  # the policies look their backbone up by this name
    torch.set_num_threads(1)
    print("lerobot", lerobot.__version__ if hasattr(lerobot, "__version__") else "?", "torch", torch.__version__,
          "torchvision", torchvision.__version__, file=sys.stderr)
    diffusion()
    act()
    for name in ("lerobot_diffusion", "lerobot_act"):
        size = sum(p.stat().st_size for p in (ROOT / name).rglob("*") if p.is_file())
        print(name, f"{size / 1e6:.2f} MB", json.dumps(sorted(p.name for p in (ROOT / name / "pretrained_model").iterdir())))


if __name__ == "__main__":
    main()
