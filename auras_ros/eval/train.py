"""Behaviour cloning of the two policy families on the expert's demonstrations.

    python -m auras_ros.eval.train --policy diffusion|ar [--out DIR] [--steps N]

- diffusion: :class:`DiffusionPolicyAgent` (small ResNet-shaped encoder + the agent's position, small
  FiLM UNet over an 8-step action chunk, 10 DDIM steps), trained with the standard epsilon-prediction
  loss.
- ar: :class:`ARVLAAgent` (tiny CLIP vision tower, 16px patches -> 16 vision tokens, + projector + tiny
  Llama), trained with next-token cross-entropy (teacher forcing, Gaussian soft labels over neighbouring
  bins) on OpenVLA-style binned action tokens (4 chunk rows x 2 axes = 8 tokens). A from-scratch tower
  collapses without help: the LM first fits the action marginal and the cheapest way to quiet the
  random vision features is to make X_V constant (its spread across images fell to ~0.3% of its
  scale, the first shipped AR checkpoint). Three things fix it: pixels normalised with the
  demonstrations' own mean/std (the floor becomes 0, the two disks stand out), a 3x learning rate for
  the tower + projector, and deep supervision: a training-only linear head reads row 0's action bins
  straight from the flattened X_V (dropped after training; inference is vision -> projector -> LM).
  The progress bar shows ``xv``, the spread of X_V across the batch relative to its scale.

Seeded end to end (demonstrations, initialisation, batches), single process, CPU; the checkpoints are
written with the adapters' own savers and load with their local loaders.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import CLIPVisionConfig

from auras_ros.eval.demos import DemoConfig, Demos, collect
from auras_ros.eval.task_config import TaskConfig
from auras_ros.models.ar_checkpoint import save_checkpoint
from auras_ros.models.ar_config import ARConfig, tiny_llama
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.diffusion import DiffusionPolicyAgent, DiffusionPolicyConfig, tiny
from auras_ros.models.schedule import squaredcos_cap_v2_betas

CHECKPOINTS = Path(__file__).parent / "checkpoints"
AR_CHUNK_ROWS = 4  # action tokens l_a = AR_CHUNK_ROWS * 2
SOFT_LABEL_BINS = 1.0  # std of the AR soft labels, in bins
AR_STEPS = 5000  # the AR default (diffusion: TrainConfig.steps)
AR_VISION_LR_SCALE = 3.0  # tower + projector (+ the auxiliary head) learn 3x faster than the LM
AR_AUX_WEIGHT = 1.0  # deep supervision of X_V (see the module docstring)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2500
    batch: int = 48
    lr: float = 1e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2


def diffusion_config(task: TaskConfig = TaskConfig()) -> DiffusionPolicyConfig:
    return tiny(image_size=(task.image_size, task.image_size), encoder_width=8, feature_dim=64, state_dim=2,
                action_dim=2, horizon=8, n_action_steps=4, down_dims=(32, 64), kernel_size=3, n_groups=8,
                step_embed_dim=32, n_steps=10, train_timesteps=100, sampler="ddim")


def ar_config(task: TaskConfig = TaskConfig(), image_mean: tuple[float, float, float] | None = None,
              image_std: tuple[float, float, float] | None = None) -> ARConfig:
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                              image_size=task.image_size, patch_size=16, num_channels=3)
    pixels = {}
    if image_mean is not None and image_std is not None:
        pixels = dict(image_mean=tuple(image_mean), image_std=tuple(image_std))
    return ARConfig(vision=vision, lm=tiny_llama(vocab_size=512), prompt_ids=(1, 17, 42, 99, 7, 3),
                    action_dims=2 * AR_CHUNK_ROWS, chunk_rows=AR_CHUNK_ROWS, n_bins=32, **pixels)


def pixel_statistics(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images, in [0, 1] units (float64 sums: deterministic)."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return tuple(round(float(v), 6) for v in x.mean(0)), tuple(round(float(v), 6) for v in x.std(0))


def _batches(n: int, config: TrainConfig):
    rng = np.random.default_rng(config.seed)
    for _ in range(config.steps):
        yield torch.from_numpy(rng.integers(0, n, config.batch))


def _optimizer(params, config: TrainConfig):
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    # Linear warm-up then cosine decay: the usual recipe, and it keeps short runs stable.
    warm = max(1, config.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    return opt, sched


def _update(opt, sched, loss: torch.Tensor, loss_ema: float) -> float:
    """One optimizer step; returns the running (EMA) loss shown on the progress bar."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    return loss.item() if math.isnan(loss_ema) else 0.98 * loss_ema + 0.02 * loss.item()


def train_diffusion(demos: Demos, config: TrainConfig, task: TaskConfig = TaskConfig(),
                    init: Path | None = None) -> tuple[DiffusionPolicyAgent, float]:
    dp = diffusion_config(task)
    agent = DiffusionPolicyAgent.load(init) if init else DiffusionPolicyAgent(dataclasses_replace_seed(dp, config.seed))
    model = agent.model.float().train()
    images = torch.from_numpy(demos.images).permute(0, 3, 1, 2).contiguous()  # uint8, (N, 3, H, W)
    states = torch.from_numpy(demos.states)
    chunks = torch.from_numpy(demos.chunks(dp.horizon)).float()
    abar = torch.cumprod(1.0 - squaredcos_cap_v2_betas(dp.train_timesteps), dim=0).float()
    opt, sched = _optimizer(model.parameters(), config)
    g = torch.Generator().manual_seed(config.seed)
    loss_ema = math.nan
    bar = tqdm(_batches(len(chunks), config), total=config.steps, desc="train diffusion")
    for idx in bar:
        x0 = chunks[idx]
        t = torch.randint(0, dp.train_timesteps, (len(idx),), generator=g)
        eps = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
        cond = torch.cat([model.encoder(images[idx].float() / 255.0), states[idx]], dim=1)
        loss = torch.nn.functional.mse_loss(model.denoiser(xt, t, cond), eps)
        loss_ema = _update(opt, sched, loss, loss_ema)
        bar.set_postfix(loss=f"{loss_ema:.4f}")
    model.eval()
    return agent, loss_ema


def dataclasses_replace_seed(config: DiffusionPolicyConfig, seed: int) -> DiffusionPolicyConfig:
    import dataclasses

    return dataclasses.replace(config, seed=seed)


def ar_percepts(agent: ARVLAAgent, images: torch.Tensor) -> torch.Tensor:
    """Perception for a batch (the agent's own path takes one image): [X_V, X_L] of shape (B, l, d).
    Same parts, same order as :meth:`ARVLAAgent.perception_forward`."""
    x = images.permute(0, 3, 1, 2).float().div(255.0)
    x = (x - agent.pixel_mean) / agent.pixel_std
    hidden = agent._embeddings(x)
    if agent._pre_norm is not None:
        hidden = agent._pre_norm(hidden)
    hidden = agent.run_vision_layers(hidden, 0, len(agent._layers))
    patches = hidden[:, 1:] if agent._drop_cls else hidden
    x_v = agent.projector(patches)
    x_l = agent.token_embedding(agent.prompt_ids).unsqueeze(0).expand(len(images), -1, -1)
    return torch.cat([x_v, x_l], dim=1)


def train_ar(demos: Demos, config: TrainConfig, task: TaskConfig = TaskConfig()) -> tuple[ARVLAAgent, float]:
    agent = ARVLAAgent.from_config(ar_config(task, *pixel_statistics(demos.images)), seed=config.seed)
    l_a = agent.config.action_dims
    n_v, n_bins = agent.config.num_vision_tokens, agent.config.n_bins
    # Training-only head (deep supervision): row 0's action bins from the flattened X_V.
    aux = torch.nn.Linear(n_v * int(agent.config.lm.hidden_size), 2 * n_bins)
    parts = [agent.vision_tower, agent.projector, agent.lm, aux]
    for part in parts:
        part.train()
    images = torch.from_numpy(demos.images)
    chunks = demos.chunks(AR_CHUNK_ROWS).reshape(len(demos.images), -1)
    tokens = torch.tensor([agent.bins.to_tokens(row) for row in chunks], dtype=torch.long)
    targets = torch.from_numpy(np.stack([agent.bins.bins(row.tolist(), "train_ar") for row in tokens]))
    # Gaussian soft labels over neighbouring bins: the bins are ordered, and telling the model that
    # "one bin off" is nearly right gives the from-scratch vision tower a usable gradient much sooner.
    centres = torch.arange(agent.config.n_bins, dtype=torch.float32)
    soft = torch.exp(-0.5 * ((centres - targets[..., None].float()) / SOFT_LABEL_BINS) ** 2)
    soft = soft / soft.sum(dim=-1, keepdim=True)
    fast = [p for part in (agent.vision_tower, agent.projector, aux) for p in part.parameters()]
    groups = [{"params": fast, "lr": config.lr * AR_VISION_LR_SCALE}, {"params": list(agent.lm.parameters())}]
    opt, sched = _optimizer(groups, config)
    loss_ema = math.nan
    bar = tqdm(_batches(len(tokens), config), total=config.steps, desc="train ar")
    for step, idx in enumerate(bar):
        percept = ar_percepts(agent, images[idx])
        context = percept.shape[1]  # the paper's l: vision and prompt tokens
        inputs = torch.cat([percept, agent.token_embedding(tokens[idx, : l_a - 1])], dim=1)
        hidden = agent.backbone(inputs_embeds=inputs, use_cache=False).last_hidden_state[:, context - 1:]
        logits = agent.action_logits(hidden)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, n_bins), soft[idx].reshape(-1, n_bins))
        x_v = percept[:, :n_v]
        aux_logits = aux(x_v.reshape(len(idx), -1)).view(-1, n_bins)
        loss_aux = torch.nn.functional.cross_entropy(aux_logits, soft[idx, :2].reshape(-1, n_bins))
        loss_ema = _update(opt, sched, loss + AR_AUX_WEIGHT * loss_aux, loss_ema)
        if step % 25 == 0:
            # Does the percept depend on the image? ~0 means the tower has collapsed to a constant.
            spread = (x_v.detach().std(0).mean() / x_v.detach().std().clamp_min(1e-12)).item()
            bar.set_postfix(loss=f"{loss_ema:.3f}", xv=f"{spread:.2f}")
    for part in parts:
        part.eval()
    return agent, loss_ema


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", choices=("diffusion", "ar"), required=True)
    parser.add_argument("--out", type=Path, default=None, help="checkpoint directory (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"default: {TrainConfig.steps} (diffusion), {AR_STEPS} (ar)")
    parser.add_argument("--episodes", type=int, default=DemoConfig.episodes)
    parser.add_argument("--init", type=Path, default=None, help="diffusion: continue from this checkpoint")
    parser.add_argument("--lr", type=float, default=TrainConfig.lr)
    parser.add_argument("--batch", type=int, default=TrainConfig.batch)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    args = parser.parse_args(argv)
    steps = args.steps if args.steps is not None else (AR_STEPS if args.policy == "ar" else TrainConfig.steps)
    config = TrainConfig(steps=steps, batch=args.batch, lr=args.lr, seed=args.seed, threads=args.threads)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    torch.set_flush_denormal(True)  # denormals in small late-training gradients slow CPU kernels a lot
    out = args.out or CHECKPOINTS / args.policy
    started = time.perf_counter()
    demos = collect(TaskConfig(), DemoConfig(episodes=args.episodes))
    if args.policy == "diffusion":
        agent, loss = train_diffusion(demos, config, init=args.init)
        agent.save(out)
    else:
        agent, loss = train_ar(demos, config)
        save_checkpoint(agent, out)
    seconds = time.perf_counter() - started
    info = {"policy": args.policy, "init": "continued from an earlier checkpoint of this recipe" if args.init else None,
            "train": asdict(config), "demos": asdict(DemoConfig(episodes=args.episodes)),
            "samples": len(demos.actions), "final_loss": loss, "seconds": round(seconds, 1),
            "torch": torch.__version__}
    if args.policy == "ar":
        info["recipe"] = {"patch_size": int(agent.config.vision.patch_size), "chunk_rows": AR_CHUNK_ROWS,
                          "n_bins": agent.config.n_bins, "soft_label_bins": SOFT_LABEL_BINS,
                          "vision_lr_scale": AR_VISION_LR_SCALE, "aux_weight": AR_AUX_WEIGHT,
                          "image_mean": agent.config.image_mean, "image_std": agent.config.image_std,
                          "final_loss_is": "action-token CE + aux CE (EMA)"}
    (out / "training.json").write_text(json.dumps(info, indent=1))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"{args.policy}: {seconds:.0f} s, final loss {loss:.4f}, checkpoint {out} ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
