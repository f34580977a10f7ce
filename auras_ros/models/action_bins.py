"""OpenVLA-style action tokenization: each action dimension is cut into ``n_bins`` uniform bins, and bin
``b`` is written as the vocabulary token ``token_ids[b]`` (by default the last ``n_bins`` ids)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from auras_ros.core.errors import InputError


class ActionBins:
    """Maps action tokens to bins and bins to continuous actions (bin centres between low and high)."""

    def __init__(self, token_ids: Sequence[int], low: Sequence[float], high: Sequence[float]) -> None:
        self.token_ids = tuple(int(i) for i in token_ids)
        self.n_bins = len(self.token_ids)
        self.low = np.asarray(low, dtype=np.float64)
        self.high = np.asarray(high, dtype=np.float64)
        self._bin_of = {token: b for b, token in enumerate(self.token_ids)}

    @property
    def mid_token(self) -> int:
        """The token of the middle bin: the neutral guess X_A starts from."""
        return self.token_ids[self.n_bins // 2]

    def bins(self, tokens: Sequence[int], where: str) -> np.ndarray:
        try:
            return np.asarray([self._bin_of[int(t)] for t in tokens], dtype=np.int64)
        except KeyError as missing:
            raise InputError("action token", where, f"one of the {self.n_bins} action-token ids", int(missing.args[0])) from None

    def to_action(self, tokens: Sequence[int], where: str = "ActionBins.to_action") -> np.ndarray:
        bins = self.bins(tokens, where)
        if bins.shape[0] != self.low.shape[0]:
            raise InputError("number of action tokens", where, str(self.low.shape[0]), bins.shape[0])
        width = (self.high - self.low) / self.n_bins
        return (self.low + (bins + 0.5) * width).astype(np.float32)

    def to_tokens(self, action: Sequence[float]) -> tuple[int, ...]:
        """The inverse (up to bin width): used by tests and by anyone seeding X_A from a known action."""
        a = np.asarray(action, dtype=np.float64)
        bins = np.floor((a - self.low) / (self.high - self.low) * self.n_bins).astype(np.int64)
        bins = np.clip(bins, 0, self.n_bins - 1)
        return tuple(self.token_ids[b] for b in bins)

    def token_tensor(self, device: torch.device | str) -> torch.Tensor:
        return torch.tensor(self.token_ids, dtype=torch.long, device=device)
