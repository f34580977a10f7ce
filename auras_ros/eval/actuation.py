"""Decisions into commands: receding-horizon execution of action chunks, the one rule that the
frame-stepped evaluation, the real-time evaluation and the simulator node (:mod:`auras_ros.eval.world`)
share. Imports nothing of the evaluation harness, so ``sim`` can use it alone."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from auras_ros.core.metrics import Decision


class ChunkExecutor:
    """Both policies emit an action chunk (rows of (vx, vy)). A decision replaces the chunk and its row
    0 plays; each later tick without a new decision plays the next row (up to ``chunk_rows``), then
    the last played row holds. Before the first decision the agent stands still."""

    def __init__(self, chunk_rows: int) -> None:
        self.chunk_rows = chunk_rows
        self._chunk: np.ndarray | None = None
        self._played = 0

    def next(self, decisions: Sequence[Decision]) -> np.ndarray:
        if decisions:
            # Several may leave in one frame (never in these executors, but be exact): newest wins.
            newest = max(decisions, key=lambda d: d.request_id)
            self._chunk = np.asarray(newest.output.action, dtype=np.float64).reshape(-1, 2)
            self._played = 0
        if self._chunk is None:
            return np.zeros(2)
        row = min(self._played, self.chunk_rows - 1, len(self._chunk) - 1)
        self._played += 1
        return self._chunk[row]
