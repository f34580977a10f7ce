"""The noise schedule of a diffusion policy: DDPM training betas (squaredcos_cap_v2), sampled by DDPM or DDIM.

Both samplers are written as one update with per-iteration coefficient tables,

    x_prev = a[k] * clip(x0_hat) + b[k] * eps + c[k] * x + s[k] * z_k,
    x0_hat = (x - sqrt(1 - abar_t) * eps) / sqrt(abar_t),

so one batched call can advance rows that sit at different iterations k (the Auras frame mixes requests
at different denoising steps): every coefficient is gathered per row. The formulas follow the
``diffusers`` DDPMScheduler (fixed_small variance) and DDIMScheduler (eta = 0) that Diffusion Policy uses,
with "leading" timestep spacing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from auras_ros.core.errors import ConfigError, one_of

SAMPLERS = ("ddim", "ddpm")


def squaredcos_cap_v2_betas(train_timesteps: int, max_beta: float = 0.999) -> torch.Tensor:
    """The cosine schedule of Nichol & Dhariwal (2021), as diffusers' ``squaredcos_cap_v2``."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [
        min(1 - alpha_bar((i + 1) / train_timesteps) / alpha_bar(i / train_timesteps), max_beta)
        for i in range(train_timesteps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


@dataclass(frozen=True)
class NoiseSchedule:
    """Per-iteration tables for ``n_steps`` sampling iterations (iteration k uses timestep ``timesteps[k]``)."""

    timesteps: torch.Tensor  # (n,) int64, descending
    sqrt_abar: torch.Tensor  # (n,) sqrt(abar_t)
    sqrt_one_minus_abar: torch.Tensor  # (n,)
    coef_x0: torch.Tensor  # (n,) a[k]
    coef_eps: torch.Tensor  # (n,) b[k]
    coef_x: torch.Tensor  # (n,) c[k]
    noise_scale: torch.Tensor  # (n,) s[k]; all zero for DDIM (deterministic)
    clip_sample: bool

    @property
    def stochastic(self) -> bool:
        return bool((self.noise_scale > 0).any())

    def to(self, device: torch.device | str, dtype: torch.dtype) -> "NoiseSchedule":
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return NoiseSchedule(
            timesteps=self.timesteps.to(device),
            sqrt_abar=move(self.sqrt_abar),
            sqrt_one_minus_abar=move(self.sqrt_one_minus_abar),
            coef_x0=move(self.coef_x0),
            coef_eps=move(self.coef_eps),
            coef_x=move(self.coef_x),
            noise_scale=move(self.noise_scale),
            clip_sample=self.clip_sample,
        )

    def step(self, x: torch.Tensor, eps: torch.Tensor, k: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """One sampling iteration for a batch ``x`` (B, ...) whose row r sits at iteration ``k[r]``."""
        shape = (-1,) + (1,) * (x.dim() - 1)

        def at(table: torch.Tensor) -> torch.Tensor:
            return table[k].reshape(shape)

        x0 = (x - at(self.sqrt_one_minus_abar) * eps) / at(self.sqrt_abar)
        if self.clip_sample:
            x0 = x0.clamp(-1.0, 1.0)
        out = at(self.coef_x0) * x0 + at(self.coef_eps) * eps + at(self.coef_x) * x
        if noise is not None:
            out = out + at(self.noise_scale) * noise
        return out


def make_schedule(n_steps: int, train_timesteps: int, sampler: str, clip_sample: bool = True) -> NoiseSchedule:
    """Tables for sampling in ``n_steps`` iterations from a model trained on ``train_timesteps``."""
    if sampler not in SAMPLERS:
        raise ConfigError("sampler", sampler, one_of(SAMPLERS))
    if not isinstance(train_timesteps, int) or train_timesteps < 1:
        raise ConfigError("train_timesteps", train_timesteps, "an integer >= 1")
    if not isinstance(n_steps, int) or not 1 <= n_steps <= train_timesteps:
        raise ConfigError("n_steps", n_steps, f"an integer in [1, train_timesteps={train_timesteps}]")
    if sampler == "ddpm" and n_steps != train_timesteps:
        # DDPM's posterior variance assumes consecutive timesteps; fewer steps is what DDIM is for.
        raise ConfigError("n_steps", n_steps, f"train_timesteps={train_timesteps} for sampler 'ddpm' (use 'ddim')")

    abar = torch.cumprod(1.0 - squaredcos_cap_v2_betas(train_timesteps), dim=0)
    ratio = train_timesteps // n_steps
    timesteps = torch.arange(n_steps - 1, -1, -1, dtype=torch.int64) * ratio
    prev = timesteps - ratio
    abar_t = abar[timesteps]
    # The last iteration lands on abar = 1 (the clean sample), as diffusers' set_alpha_to_one.
    abar_prev = torch.where(prev >= 0, abar[prev.clamp(min=0)], torch.ones_like(abar_t))

    zeros = torch.zeros_like(abar_t)
    if sampler == "ddim":
        coef_x0, coef_eps, coef_x, noise_scale = abar_prev.sqrt(), (1 - abar_prev).sqrt(), zeros, zeros
    else:
        alpha_t = abar_t / abar_prev
        beta_t = 1 - alpha_t
        coef_x0 = abar_prev.sqrt() * beta_t / (1 - abar_t)
        coef_x = alpha_t.sqrt() * (1 - abar_prev) / (1 - abar_t)
        variance = ((1 - abar_prev) / (1 - abar_t) * beta_t).clamp(min=1e-20)
        noise_scale = torch.where(prev >= 0, variance.sqrt(), zeros)
        coef_eps = zeros
    return NoiseSchedule(
        timesteps=timesteps,
        sqrt_abar=abar_t.sqrt(),
        sqrt_one_minus_abar=(1 - abar_t).sqrt(),
        coef_x0=coef_x0,
        coef_eps=coef_eps,
        coef_x=coef_x,
        noise_scale=noise_scale,
        clip_sample=clip_sample,
    )
