"""Diffusion Policy's denoiser: a 1-D convolutional UNet over the action chunk, conditioned by FiLM.

Same shape as ``ConditionalUnet1D`` of Diffusion Policy (Chi et al., 2023): the diffusion timestep goes
through a sinusoidal embedding and an MLP, is concatenated with the global conditioning (the percept
H_o), and every residual block scales and shifts its features by a linear map of that vector (FiLM).
The timestep is a per-row tensor, so one batch may hold requests at different denoising steps.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device, dtype=torch.float32) * (-math.log(10000.0) / (half - 1)))
        angles = t.float()[:, None] * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class Conv1dBlock(nn.Module):
    """Conv1d → GroupNorm → Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class ConditionalResidualBlock1D(nn.Module):
    """Two Conv1dBlocks with a FiLM (scale and bias) from the conditioning vector between them."""

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, kernel_size: int, n_groups: int,
                 film_scale: bool = True) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            [Conv1dBlock(in_channels, out_channels, kernel_size, n_groups), Conv1dBlock(out_channels, out_channels, kernel_size, n_groups)]
        )
        self.out_channels = out_channels
        self.film_scale = film_scale  # False: the FiLM shifts only (LeRobot's use_film_scale_modulation=False)
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, (2 if film_scale else 1) * out_channels))
        self.residual_conv: nn.Module = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.blocks[0](x)
        if self.film_scale:
            film = self.cond_encoder(cond).reshape(cond.shape[0], 2, self.out_channels, 1)
            out = film[:, 0] * out + film[:, 1]
        else:
            out = out + self.cond_encoder(cond)[:, :, None]
        out = self.blocks[1](out)
        return out + self.residual_conv(x)


class ConditionalUnet1D(nn.Module):
    """eps = UNet(x (B, T, action_dim), timestep (B,), global_cond (B, global_cond_dim)) with shape of x.

    The horizon T is halved ``len(down_dims) - 1`` times, so it must be divisible by 2**(len(down_dims)-1).
    """

    def __init__(
        self,
        action_dim: int,
        global_cond_dim: int,
        down_dims: Sequence[int] = (256, 512, 1024),
        step_embed_dim: int = 256,
        kernel_size: int = 5,
        n_groups: int = 8,
        film_scale: bool = True,
        final_groups: int | None = None,
    ) -> None:
        """``final_groups``: the GroupNorm groups of the final conv block (None: ``n_groups``; LeRobot's
        UNet keeps 8 there whatever its ``n_groups``)."""
        super().__init__()
        dims = [action_dim, *down_dims]
        cond_dim = step_embed_dim + global_cond_dim
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )

        def block(i: int, o: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(i, o, cond_dim, kernel_size, n_groups, film_scale)

        pairs = list(zip(dims[:-1], dims[1:], strict=False))
        self.down_modules = nn.ModuleList()
        for index, (i, o) in enumerate(pairs):
            last = index == len(pairs) - 1
            sample: nn.Module = nn.Identity() if last else nn.Conv1d(o, o, 3, stride=2, padding=1)
            self.down_modules.append(nn.ModuleList([block(i, o), block(o, o), sample]))
        self.mid_modules = nn.ModuleList([block(dims[-1], dims[-1]), block(dims[-1], dims[-1])])
        self.up_modules = nn.ModuleList()
        # As in Diffusion Policy every up level upsamples (undoing the len(down_dims)-1 downsamples) and the
        # skip of the first down level stays unused.
        for i, o in reversed(pairs[1:]):
            self.up_modules.append(nn.ModuleList([block(2 * o, i), block(i, i), nn.ConvTranspose1d(i, i, 4, stride=2, padding=1)]))
        start = down_dims[0]
        self.final_conv = nn.Sequential(Conv1dBlock(start, start, kernel_size, final_groups or n_groups), nn.Conv1d(start, action_dim, 1))

    def forward(self, x: torch.Tensor, timestep: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)  # (B, action_dim, T): convolve along the horizon
        # The sinusoid is computed in fp32 (timesteps up to ~1000 lose phase in bf16), then cast to the weights.
        step = self.step_encoder[0](timestep).to(global_cond.dtype)
        cond = torch.cat((self.step_encoder[1:](step), global_cond), dim=-1)
        skips = []
        for res1, res2, downsample in self.down_modules:
            h = res2(res1(h, cond), cond)
            skips.append(h)
            h = downsample(h)
        for mid in self.mid_modules:
            h = mid(h, cond)
        for res1, res2, upsample in self.up_modules:
            h = torch.cat((h, skips.pop()), dim=1)
            h = res2(res1(h, cond), cond)
            h = upsample(h)
        return self.final_conv(h).transpose(1, 2)
