"""torchvision's ResNet (BasicBlock) layout in plain torch, built from a state dict, and the image
preprocessing LeRobot's policies run in front of it.

torchvision does not import beside the project's torch, so the backbone LeRobot builds with
``torchvision.models.resnet18/34`` is written out with the same module names (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer2.0.downsample.0`` ...), so the checkpoint's tensors load by name. The stage
widths and block counts are read off the weights, so a ResNet-18 or -34 at any width loads; a
Bottleneck ResNet (50 and up) is refused. Norms as LeRobot builds them: GroupNorm with
``channels // 16`` groups (Diffusion Policy's ``use_group_norm``), or frozen batch statistics
(ACT's FrozenBatchNorm2d, and a BatchNorm2d in eval mode, which computes the same).
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn

from auras_ros.core.errors import ConfigError

NORMS = ("group", "frozen_batch")


class FrozenBatchNorm2d(nn.Module):
    """Batch norm with fixed statistics: ``x * w / sqrt(var + eps) + (b - mean * w / sqrt(var + eps))``."""

    weight: torch.Tensor
    bias: torch.Tensor
    running_mean: torch.Tensor
    running_var: torch.Tensor

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((channels,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def make_norm(kind: str, channels: int) -> nn.Module:
    if kind == "group":
        if channels < 16:
            raise ConfigError("backbone width", channels, "at least 16 channels (GroupNorm with channels // 16 groups)")
        return nn.GroupNorm(channels // 16, channels)
    return FrozenBatchNorm2d(channels)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int, downsample: bool, norm: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = make_norm(norm, channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = make_norm(norm, channels)
        self.downsample = (nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), make_norm(norm, channels))
                           if downsample else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNetBackbone(nn.Module):
    """Image (B, 3, H, W) → the last stage's feature map (B, C, H/32, W/32), cut into :attr:`units`
    (stem, layer1..layer4) so perception can run them in different frames."""

    def __init__(self, widths: list[int], blocks: list[list[bool]], norm: str) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ConfigError("backbone norm", norm, f"one of {NORMS}")
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = make_norm(norm, widths[0])
        in_channels = widths[0]
        self._stages: list[nn.Sequential] = []  # layer1..layer4, registered under those names below
        for index, (width, downsamples) in enumerate(zip(widths[1:], blocks, strict=True)):
            stride = 1 if index == 0 else 2
            layer = [BasicBlock(in_channels if b == 0 else width, width, stride if b == 0 else 1, down, norm)
                     for b, down in enumerate(downsamples)]
            self._stages.append(nn.Sequential(*layer))
            setattr(self, f"layer{index + 1}", self._stages[-1])
            in_channels = width
        self.out_channels = in_channels

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)

    @property
    def units(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        return [self.stem, *self._stages]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = unit(x)
        return x


def backbone_from_weights(weights: Mapping[str, torch.Tensor], norm: str, where: str) -> ResNetBackbone:
    """A :class:`ResNetBackbone` shaped like ``weights`` (keys ``conv1.weight``, ``layerS.B.conv1.weight`` ...)."""
    if "conv1.weight" not in weights:
        raise ConfigError(f"backbone weights in {where}", sorted(weights)[:5],
                          "torchvision ResNet tensors (conv1.weight, layer1.0.conv1.weight, ...)")
    if any(".conv3." in key for key in weights):
        raise ConfigError(f"backbone in {where}", "Bottleneck blocks (resnet50 or larger)", "a BasicBlock ResNet (resnet18, resnet34)")
    widths = [int(weights["conv1.weight"].shape[0])]
    blocks: list[list[bool]] = []
    for stage in range(1, 5):
        indices = sorted({int(m.group(1)) for key in weights if (m := re.match(rf"layer{stage}\.(\d+)\.conv1\.weight$", key))})
        if not indices or indices != list(range(len(indices))):
            raise ConfigError(f"backbone layer{stage} in {where}", indices, "blocks numbered 0, 1, ... (a torchvision ResNet)")
        widths.append(int(weights[f"layer{stage}.0.conv1.weight"].shape[0]))
        blocks.append([f"layer{stage}.{b}.downsample.0.weight" in weights for b in indices])
    return ResNetBackbone(widths, blocks, norm)


# ---- the image in front of the backbone -----------------------------------------------------------

def resize(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """torchvision's ``Resize(size)`` on a float tensor: bilinear with antialiasing, corners not aligned."""
    if tuple(images.shape[-2:]) == tuple(size):
        return images
    return F.interpolate(images, size=list(size), mode="bilinear", align_corners=False, antialias=True)


def center_crop(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """torchvision's ``CenterCrop(size)``: the offset rounds half to even, as Python's round does."""
    height, width = images.shape[-2:]
    top, left = int(round((height - size[0]) / 2.0)), int(round((width - size[1]) / 2.0))
    return images[..., top:top + size[0], left:left + size[1]]
