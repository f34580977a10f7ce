"""The noise schedule of a diffusion policy: DDPM training betas (squaredcos_cap_v2), sampled by DDPM or DDIM.

Both samplers are written as one update with per-iteration coefficient tables,

    x_prev = a[k] * clip(x0_hat) + b[k] * eps + c[k] * x + s[k] * z_k,
    x0_hat = (x - sqrt(1 - abar_t) * eps) / sqrt(abar_t),

so one batched call can advance rows that sit at different iterations k (the Auras frame mixes requests
at different denoising steps): every coefficient is gathered per row. The formulas follow the
``diffusers`` DDPMScheduler (fixed_small variance) and DDIMScheduler (eta = 0) that Diffusion Policy uses,
with "leading" timestep spacing. :meth:`NoiseSchedule.guided_update` is the same update after the
inpainting guidance moved x0_hat (the ``inpaint`` overlap, :mod:`auras_ros.core.inpaint`).
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
    # Guidance tables (a guided iteration gathers them rather than recomputing them per call):
    eps_per_x0: torch.Tensor  # (n,) sqrt(abar_t) / sqrt(1 - abar_t): how eps moves when x0_hat moves, x fixed
    blend_base: torch.Tensor  # (n,) sqrt(abar_t (1 - abar_t)): blend_weight before β and its clip at 1

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
            eps_per_x0=move(self.eps_per_x0),
            blend_base=move(self.blend_base),
        )

    def step(self, x: torch.Tensor, eps: torch.Tensor, k: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """One sampling iteration for a batch ``x`` (B, ...) whose row r sits at iteration ``k[r]``."""
        return self.update(x, self.clean_estimate(x, eps, k), eps, k, noise)

    def clean_estimate(self, x: torch.Tensor, eps: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """x0_hat = (x - sqrt(1 - abar_t) eps) / sqrt(abar_t), not clipped."""
        return (x - _at(self.sqrt_one_minus_abar, k, x) * eps) / _at(self.sqrt_abar, k, x)

    def update(self, x: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, k: torch.Tensor,
               noise: torch.Tensor | None) -> torch.Tensor:
        """The sampler's update from the clean estimate ``x0`` (clipped here) and the noise estimate ``eps``."""
        if self.clip_sample:
            x0 = x0.clamp(-1.0, 1.0)
        out = _at(self.coef_x0, k, x) * x0 + _at(self.coef_eps, k, x) * eps + _at(self.coef_x, k, x) * x
        if noise is not None:
            out = out + _at(self.noise_scale, k, x) * noise
        return out

    def guidance_weight(self, k: torch.Tensor, max_guidance: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """RTC's clipped guidance weight, written for this sampler's x0_hat, per row (shaped to broadcast
        over ``x``): lambda = min(1 / sqrt(abar_t), β sqrt(1 - abar_t)), ``max_guidance`` β per row (B,).

        RTC writes its flow-matching guidance as v + min(c / r^2, β) J_flow^T W (y - x1_hat), c = (1 - t) / t,
        r^2 = (1 - t)^2 / (t^2 + (1 - t)^2). The flow's x_t is this VP x scaled by sqrt(t^2 + (1 - t)^2),
        with sqrt(abar) = t / sqrt(t^2 + (1 - t)^2); written for this x the guidance moves x0_hat by lambda
        times J^T W (y - x0_hat), J = d x0_hat / d x (unclipped it is ΠGDM's r_t^-2 = 1 / (1 - abar_t) score
        term, through Tweedie)."""
        sqrt_abar, sqrt_one_minus = _at(self.sqrt_abar, k, x), _at(self.sqrt_one_minus_abar, k, x)
        return torch.minimum(1 / sqrt_abar, max_guidance.reshape(sqrt_abar.shape) * sqrt_one_minus)

    def blend_weight(self, k: torch.Tensor, max_guidance: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The ``x0_blend`` guidance's per-row scale in [0, 1]: :meth:`guidance_weight` over its unclipped
        value 1 / sqrt(abar_t) (J^T's scale when the noise estimate barely depends on x), i.e.
        min(1, β sqrt(abar_t (1 - abar_t))): 1 wherever β does not clip, so the clean estimate is moved
        the whole way W (y - x0_hat) there, less only at the noisiest steps (and never with β = 0)."""
        scale = _at(self.blend_base, k, x) * max_guidance.reshape((-1,) + (1,) * (x.dim() - 1))
        return scale.clamp_(max=1.0)

    def guided_update(self, x: torch.Tensor, x0: torch.Tensor, eps: torch.Tensor, moved: torch.Tensor,
                      k: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        """:meth:`update` after guidance moved the clean estimate ``x0`` by ``moved``. The noise estimate
        moves with it, ``eps' = (x - sqrt(abar) x0') / sqrt(1 - abar)``, so the pair stays consistent with
        x, as v' = (x1' - x_t) / (1 - t) does in RTC; a row whose move is zero is updated exactly as by
        :meth:`update`."""
        return self.update(x, x0 + moved, eps - _at(self.eps_per_x0, k, x) * moved, k, noise)


def _at(table: torch.Tensor, k: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Row r's entry of a per-iteration table at iteration ``k[r]``, shaped to broadcast over ``x``'s row."""
    return table[k].reshape((-1,) + (1,) * (x.dim() - 1))


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
        eps_per_x0=abar_t.sqrt() / (1 - abar_t).sqrt(),
        blend_base=(abar_t * (1 - abar_t)).sqrt(),
    )
