"""How smooth and how quick the played commands are: chunk seams, jerk and reaction to a target change.

All three read the trace of one episode: ``commands[i]``, the command in force during world step i (from
frame i to frame i + 1, normalized as the task applies it: :attr:`EpisodeScore.commands`), and
``sources[i]``, the request id of the chunk that command came from (:attr:`ChunkExecutor.source`, None
before the first chunk played). |x| of a command is its Euclidean norm over the command's dimensions.

- **Seam**: a step i >= 1 whose command comes from a newer chunk than step i - 1's (``sources[i] >
  sources[i - 1]``, both chunks; the first chunk after standing still is no seam). Its discontinuity
  is |commands[i] - commands[i - 1]|; per episode the largest (NaN when no seam).
- **Jerk**: the third difference of the commands over the control period ``period`` (world seconds),
  |c[i] - 3 c[i-1] + 3 c[i-2] - c[i-3]| / period³, for every i >= 3; per episode its 99th percentile.
- **Reaction time** (task variant ``reverse``): the target's velocity flips to ``v`` at the start of
  step r (frame r → r + 1), so step r + 1 is the first whose command can depend on an observation that
  shows it. Reaction = i - r frames for the first step i > r with ``commands[i] · v > 0`` (the command
  heads with the new target motion); an agent acting on fresh observations reacts in 1 frame, each
  frame of observation age adds one. None when no command after r heads that way before the episode
  ends (or there was no reversal). A wall bounce right after r can change v again; rare at the
  target's speed, and the same for every executor on a seed.

The aggregate of a table row (:class:`ChunkSummary`): seam p50/p99 are percentiles over episodes of
each episode's largest seam, jerk p99 is over every step of every episode, reaction p50 over the
episodes that reacted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from auras_ros.core.errors import InputError
from auras_ros.core.stats import mean, percentile, wilson


def seam_jumps(commands: Sequence[Sequence[float]], sources: Sequence[int | None]) -> list[float]:
    """|Δcommand| at every seam of the trace (see the module docstring)."""
    if len(commands) != len(sources):
        raise InputError("chunk sources", "seam_jumps", f"one per command ({len(commands)})", len(sources))
    c = np.asarray(commands, dtype=np.float64)
    jumps = []
    for i in range(1, len(sources)):
        new, old = sources[i], sources[i - 1]
        if new is not None and old is not None and new > old:
            jumps.append(float(np.linalg.norm(c[i] - c[i - 1])))
    return jumps


def jerk(commands: Sequence[Sequence[float]], period: float) -> np.ndarray:
    """|third difference| / period³ per step from the fourth on (empty for fewer than 4 steps)."""
    c = np.asarray(commands, dtype=np.float64).reshape(len(commands), -1)
    if len(c) < 4:
        return np.zeros(0)
    return np.asarray(np.linalg.norm(np.diff(c, n=3, axis=0), axis=1) / period ** 3)


def reaction_frames(commands: Sequence[Sequence[float]], reversal_frame: int | None,
                    velocity: Sequence[float] | None) -> int | None:
    """Frames from the reversal at step ``reversal_frame`` to the first later command heading along
    ``velocity`` (the target's new velocity), or None (see the module docstring)."""
    if reversal_frame is None or velocity is None:
        return None
    v = np.asarray(velocity, dtype=np.float64)
    for i in range(reversal_frame + 1, len(commands)):
        if float(np.dot(np.asarray(commands[i], dtype=np.float64), v)) > 0:
            return i - reversal_frame
    return None


@dataclass
class ChunkMetrics:
    """One episode's trace, measured."""

    seams: int
    seam_max: float  # largest |Δcommand| at a seam; NaN without one
    jerk_p99: float  # command units / s³
    reaction_frames: int | None
    reversal_frame: int | None = None  # the step the target reversed at (variant reverse)
    jerks: list[float] = field(default_factory=list, repr=False)

    @classmethod
    def of(cls, commands: Sequence[Sequence[float]], sources: Sequence[int | None], period: float,
           reversal_frame: int | None = None, reversal_velocity: Sequence[float] | None = None) -> ChunkMetrics:
        jumps = seam_jumps(commands, sources)
        jerks = [float(j) for j in jerk(commands, period)]
        return cls(len(jumps), max(jumps, default=math.nan), percentile(jerks, 99),
                   reaction_frames(commands, reversal_frame, reversal_velocity), reversal_frame, jerks)


@dataclass
class ChunkSummary:
    """A table row's episodes: success, time to success and the chunk measurements."""

    episodes: int
    success_rate: float
    success_ci: tuple[float, float]
    time_to_success: float  # mean frames over successful episodes
    seam_max_p50: float
    seam_max_p99: float
    jerk_p99: float
    reaction_p50: float  # frames, over the episodes that reacted
    reacted: int  # episodes with a reaction (of those with a reversal)
    reversals: int

    @classmethod
    def of(cls, successes: Sequence[bool], success_frames: Sequence[int | None],
           metrics: Sequence[ChunkMetrics]) -> ChunkSummary:
        n, k = len(successes), sum(successes)
        seam_maxes = [m.seam_max for m in metrics if not math.isnan(m.seam_max)]
        reactions = [m.reaction_frames for m in metrics if m.reaction_frames is not None]
        return cls(n, k / n if n else math.nan, wilson(k, n), mean([f for f in success_frames if f is not None]),
                   percentile(seam_maxes, 50), percentile(seam_maxes, 99),
                   percentile([j for m in metrics for j in m.jerks], 99),
                   percentile(reactions, 50), len(reactions),
                   sum(1 for m in metrics if m.reversal_frame is not None))
