"""A ResNet-18-shaped image encoder in plain torch, sliceable by residual stage.

Diffusion Policy's vision encoder is torchvision's ResNet-18 with its fc removed and every BatchNorm
replaced by GroupNorm (groups = channels // 16), because BatchNorm statistics misbehave with the EMA
weights it trains. torchvision is not available here, so the same shape is written out: a 7x7 stem and
max-pool, four stages of two BasicBlocks at widths w, 2w, 4w, 8w (w = 64 for ResNet-18), global average
pooling, and an optional linear projection.

The encoder is a list of :attr:`units` (stem, stage 1..4, pool+proj) so that perception can be cut into
that many pipeline stages (pp_perception), each run in a different frame.
"""

from __future__ import annotations

import torch
from torch import nn


def group_count(channels: int) -> int:
    """Diffusion Policy's channels // 16 groups, lowered to a divisor of ``channels`` for narrow test widths."""
    groups = max(1, channels // 16)
    while channels % groups:
        groups -= 1
    return groups


def norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(group_count(channels), channels)


class BasicBlock(nn.Module):
    """torchvision's BasicBlock with GroupNorm."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.norm1 = norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = norm(out_channels)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), norm(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return torch.relu(out + self.downsample(x))


class ResNet18Encoder(nn.Module):
    """Image (B, 3, H, W) in [0, 1] → features (B, :attr:`out_features`)."""

    def __init__(self, width: int = 64, feature_dim: int | None = None) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width]
        stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            norm(width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages = []
        in_channels = width
        for i, out_channels in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1)))
            in_channels = out_channels
        # Diffusion Policy keeps the 512 pooled features (fc = Identity); a projection is optional.
        proj: nn.Module = nn.Identity() if feature_dim is None else nn.Linear(widths[-1], feature_dim)
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), proj)
        self.units = nn.ModuleList([stem, *stages, head])
        self.out_features = widths[-1] if feature_dim is None else feature_dim

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image
        for unit in self.units:
            x = unit(x)
        return x
