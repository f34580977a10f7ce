"""FP8 linear layers for a language model's projections: an opt-in speed lever with a measured cost.

Each ``nn.Linear`` becomes :class:`FP8Linear`: its weight stored once as float8 e4m3 with one scale
per output row, its input quantised per token at run time (one scale per row of the activations), and
the product taken by ``torch._scaled_mm`` with a bf16 result. On Hopper GPUs that doubles the matrix
rate over bf16; the accuracy cost is a model's, so ``bench.gpu_profile`` measures how many action
tokens change against the bf16 path on the same inputs. Everything here is static-shape and free of
host syncs, so it runs inside the CUDA graphs of :mod:`auras_ros.models.graphs`.
"""

from __future__ import annotations

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
E4M3_MAX = float(torch.finfo(E4M3).max)
ROW_MULTIPLE = 16  # torch._scaled_mm wants both dimensions of its first operand divisible by 16


def _row_scales(x: torch.Tensor) -> torch.Tensor:
    """One fp32 scale per row, mapping the row's largest magnitude to the format's largest value."""
    return x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12) / E4M3_MAX


class FP8Linear(nn.Module):
    """``linear`` with an e4m3 weight (row scales) and per-token e4m3 activations; output in x's dtype."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        if weight.shape[1] % ROW_MULTIPLE or weight.shape[0] % ROW_MULTIPLE:
            raise ValueError(f"FP8Linear: weight {tuple(weight.shape)} needs both sizes divisible by {ROW_MULTIPLE}")
        scale = _row_scales(weight)
        # _scaled_mm takes its second operand column-major: the transpose of a row-major [out, in].
        self.register_buffer("weight", (weight.float() / scale).to(E4M3))
        self.register_buffer("weight_scale", scale.t().contiguous())  # [1, out]
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.in_features, self.out_features = linear.in_features, linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)
        n = rows.shape[0]
        pad = (-n) % ROW_MULTIPLE
        if pad:
            rows = nn.functional.pad(rows, (0, 0, 0, pad))
        scale = _row_scales(rows)
        quantised = (rows.float() / scale).to(E4M3)
        out = torch._scaled_mm(quantised, self.weight.t(), scale_a=scale, scale_b=self.weight_scale,
                               out_dtype=x.dtype)[:n]
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def use_fp8_linears(module: nn.Module) -> int:
    """Replaces every ``nn.Linear`` under ``module`` by :class:`FP8Linear`, in place; returns how many."""
    replaced = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Linear):
            setattr(module, name, FP8Linear(child))
            replaced += 1
        else:
            replaced += use_fp8_linears(child)
    return replaced
