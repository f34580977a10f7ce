"""One GEMM for the projections that read the same input: a decoder layer's q, k and v, and its MLP's
gate and up. Wider GEMMs fill more of a large GPU's multiprocessors than three or two narrow ones.

The transformers modules are left as they are: each projection is replaced by a :class:`FusedPart`
of one :class:`FusedProjections`, whose first part called with an input runs the fused GEMM and
keeps its column blocks until every part has taken its own (per thread, since PAR's workers run the
same layers at once). Each output column is the same dot product as before; only the GEMM kernel
that computes it may differ, so ``bench.gpu_profile`` checks the action tokens against the unfused
path on the same inputs.
"""

from __future__ import annotations

import threading
from typing import Sequence

import torch
from torch import nn

GROUPS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


class FusedProjections(nn.Module):
    """The weights of several ``nn.Linear`` of one input, concatenated by output row."""

    def __init__(self, linears: Sequence[nn.Linear]) -> None:
        super().__init__()
        if len({(m.in_features, m.weight.dtype, m.weight.device) for m in linears}) != 1:
            raise ValueError("FusedProjections: the projections must share input size, dtype and device")
        self.weight = nn.Parameter(torch.cat([m.weight.detach() for m in linears]), requires_grad=False)
        biases = [m.bias for m in linears]
        self.bias = None if all(b is None for b in biases) else nn.Parameter(torch.cat(
            [b.detach() if b is not None else m.weight.new_zeros(m.out_features) for b, m in zip(biases, linears)]),
            requires_grad=False)
        self.sizes = [m.out_features for m in linears]
        self._pending = threading.local()

    def part(self, index: int, x: torch.Tensor) -> torch.Tensor:
        pending = self._pending
        if getattr(pending, "x", None) is not x:
            pending.x = x
            pending.blocks = nn.functional.linear(x, self.weight, self.bias).split(self.sizes, dim=-1)
            pending.left = set(range(len(self.sizes)))
        block = pending.blocks[index]
        pending.left.discard(index)
        if not pending.left:  # every part served: nothing of this input is kept past its layer
            pending.x = pending.blocks = None
        return block


class FusedPart(nn.Module):
    """Stands where one of the fused ``nn.Linear`` stood; returns its block of the fused product."""

    def __init__(self, fused: FusedProjections, index: int) -> None:
        super().__init__()
        self.fused = [fused]  # a list: the shared module is registered once, on its parent
        self.index = index
        self.in_features, self.out_features = fused.weight.shape[1], fused.sizes[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused[0].part(self.index, x)


def fuse_projections(module: nn.Module) -> int:
    """Fuses every group of :data:`GROUPS` found under ``module``, in place; returns how many groups."""
    fused = 0
    for parent in list(module.modules()):
        for names in GROUPS:
            linears = [getattr(parent, name, None) for name in names]
            if not all(isinstance(m, nn.Linear) for m in linears):
                continue
            group = FusedProjections(linears)
            parent.add_module("fused_" + "_".join(n.removesuffix("_proj") for n in names), group)
            for index, name in enumerate(names):
                setattr(parent, name, FusedPart(group, index))
            fused += 1
    return fused
