"""The ``inpaint`` overlap: a request's chunk continues the chunk that will be executing when it arrives.

Real-Time Chunking (RTC, Black et al. 2025, arXiv 2506.07339) generates the next chunk while the
current one executes, and guides its first rows toward the current chunk during denoising, so the seam
is smooth. What a request needs for that is described here, without ROS and without any model:

- :class:`ExecutingChunk`: the chunk that will be executing when the request finishes, the newest one
  its runner emitted: its rows (the decision's action) and its observation stamp; row k of a chunk is
  due from ``stamp + k * period`` (the time-aligned execution of :mod:`auras_ros.core.chunks`).
- :class:`Inpaint`: one request's conditioning: that chunk, the stamp the new chunk will be timed from,
  the measured delay (observation to arrival) and the guidance limit β. ``target(horizon, width)`` gives
  the executing chunk's rows at the new chunk's row times and the soft mask over them;
  ``delay_rows`` is RTC's d, the new chunk's rows whose time has passed when it arrives (they are
  skipped, and the executing chunk's rows play in their place).
- :func:`prefix_weights`: RTC's soft mask: 1 for the first d rows, exponentially decaying weights over
  the rows up to ``end`` (RTC's H - s), 0 after; :func:`mask_weights` the mask of a request by
  ``InpaintConfig.mask`` (below).
- :class:`ExecutingChunks`: what a runner keeps to hand each request its :class:`Inpaint`.
- :data:`GUIDANCE_METHODS`: how the agent guides toward the target (``InpaintConfig.method``): RTC's
  vector-Jacobian guidance, or ``x0_blend``, the clean estimate blended toward it by the mask, which
  costs no more than a plain denoising step (RTC's backward pass doubles a step on the CPU; at the
  real-time world's speed 3 that cost, not the guidance, lost episodes).

RTC's s (the execution horizon, the rows of the executing chunk that played before the new chunk's
row 0) is not a knob here: it is the distance between the two chunks' stamps in rows, so the soft mask
ends where the executing chunk runs out (``end = H_executing - s``).

The mask (``InpaintConfig.mask``, :data:`MASKS`, :func:`mask_weights`):

- ``prefix`` (the default): RTC's soft mask behind a frozen prefix; with d = 0 nothing of the new chunk
  has passed when it arrives, nothing is frozen, and the request is sampled exactly as without
  inpainting (the issue's contract that d = 0 is plain sampling).
- ``rtc``: RTC's soft mask at every d, d = 0 included (RTC softly attends to the overlap from row d on
  whatever d is).

Why ``prefix`` is the default although it leaves Auras's seams as ``replace``'s (issue #18): Auras's
decisions mostly arrive within one row period of their observation (d = 0 for ~97% of them at the
real-time world's speed 3), so under ``prefix`` they are sampled plainly. ``rtc`` guides them and halves
the seam, but Auras replans every row: each chunk plays about one row before the next replaces it, and
a mask reaching H - s rows ahead anchors every chunk to the previous one's plan, and that one to its
predecessor's (RTC assumes s rows play between two chunks), so the robot reacts late and moves slowly.
On 20 paired episodes at speed 3 (Auras 1+4, replace: success 0.90-1.00, seam p50 1.25-1.38,
reaction 2 frames), ``rtc`` with β = 50 / 5 / 2 / 1 gave success 0.25 / 0.55 / 0.90 / 1.00, seam p50
0.62 / 0.56 / 0.84 / 1.02 and reaction 4 / 4 / 3 / 3 frames: no β keeps replace's success with half its
seam. On a controller that plays rows on ticks of the stamps' grid (the real-time world) the first row
of the new chunk to play is d + 1, right after the executing chunk's row at the new row d's time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from auras_ros.core.chunks import check_period, row_index
from auras_ros.core.errors import ConfigError, InputError, one_of

# β. RTC's reference evaluation uses 5 with 5 flow steps, where only the pure-noise step is clipped. The
# cosine DDIM/DDPM grids here end much nearer the clean sample (the shipped 10-step DDIM's last step sits
# at flow time 0.975, where RTC's unclipped weight is 40): 5 would cut the last steps' correction to an
# eighth and leave the prefix unfrozen (measured 0.18-0.27 off on the shipped checkpoint, 0.01-0.02 with
# 50; python -m auras_ros.eval.inpaint_seams). 50 clips no step of that grid and only the noisiest steps
# of a 100-step DDPM grid.
DEFAULT_MAX_GUIDANCE = 50.0

# How a denoising step is guided toward the executing chunk:
# - "vjp": RTC's guidance, the clean estimate moved by the vector-Jacobian product J^T W (y - x0_hat)
#   (a backward pass through the denoiser each step, about twice a plain step's time);
# - "x0_blend": the clean estimate moved by the soft mask itself, x0_hat + w_k W (y - x0_hat), no gradient
#   and no extra denoiser call (a plain step's time; w_k is RTC's clipped weight mapped to [0, 1],
#   NoiseSchedule.blend_weight, so β clips both methods at the same steps).
# The default is x0_blend: on the shipped checkpoint at the real-time world's speed 3 it keeps replace's
# success where vjp, its frames overrun by the backward pass, loses a third of the episodes (issue #18).
GUIDANCE_METHODS = ("vjp", "x0_blend")
DEFAULT_METHOD = "x0_blend"

# Which of the new chunk's rows are guided (InpaintConfig.mask, mask_weights): RTC's soft mask when a prefix
# is frozen (d >= 1), or at every d (see the module docstring for why the first is the default).
MASKS = ("prefix", "rtc")
DEFAULT_MASK = "prefix"


def prefix_weights(delay: int, end: int, total: int) -> np.ndarray:
    """RTC's exponential soft mask over ``total`` rows: 1 for rows < ``delay`` (d), then for d <= i <
    ``end`` the linear ramp ``u = (end - i) / (end - d + 1)`` bent as ``u * (e^u - 1) / (e - 1)``, 0 from
    ``end`` on. ``end`` wins over ``delay``: rows from ``end`` on are 0 even when d > end."""
    for name, value in (("delay", delay), ("end", end), ("total", total)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"prefix_weights {name}", value, "an integer >= 0")
    if end > total:
        raise ConfigError("prefix_weights end", end, f"an integer in [0, total={total}]")
    start = min(delay, end)
    rows = np.arange(total, dtype=np.float64)
    ramp = np.clip((start - 1 - rows) / (end - start + 1) + 1, 0.0, 1.0)
    weights = np.where(ramp >= 1.0, 1.0, ramp * np.expm1(ramp) / math.expm1(1.0))  # frozen rows exactly 1
    weights[rows >= end] = 0.0
    return weights


def mask_weights(mask: str, delay: int, end: int, total: int) -> np.ndarray:
    """The guidance mask over ``total`` rows for d = ``delay`` and the overlap's ``end``: RTC's
    :func:`prefix_weights`, except under ``prefix`` with d = 0 (nothing frozen): all 0."""
    if mask not in MASKS:
        raise ConfigError("inpaint mask", mask, one_of(MASKS))
    weights = prefix_weights(delay, end, total)  # checks the arguments
    return np.zeros(total) if mask == "prefix" and delay == 0 else weights


@dataclass(frozen=True)
class InpaintConfig:
    """``period``: seconds between a chunk's rows (the control period); ``max_guidance``: β, the clip on
    RTC's guidance weight; ``method``: one of :data:`GUIDANCE_METHODS`; ``mask``: one of :data:`MASKS`."""

    period: float
    max_guidance: float = DEFAULT_MAX_GUIDANCE
    method: str = DEFAULT_METHOD
    mask: str = DEFAULT_MASK

    def __post_init__(self) -> None:
        check_period(self.period, "inpaint period")
        if isinstance(self.max_guidance, bool) or not isinstance(self.max_guidance, (int, float)) or not (
                math.isfinite(self.max_guidance) and self.max_guidance >= 0):
            raise ConfigError("inpaint max_guidance", self.max_guidance, "a finite number >= 0")
        if self.method not in GUIDANCE_METHODS:
            raise ConfigError("inpaint method", self.method, one_of(GUIDANCE_METHODS))
        if self.mask not in MASKS:
            raise ConfigError("inpaint mask", self.mask, one_of(MASKS))


@dataclass(frozen=True)
class ExecutingChunk:
    """An emitted chunk: ``action`` flat, row-major, in the agent's action space; ``stamp`` its
    observation's sensor stamp."""

    action: np.ndarray
    stamp: float

    def rows(self, width: int, where: str) -> np.ndarray:
        if self.action.size == 0 or self.action.size % width:
            raise InputError("executing chunk", where, f"a non-empty multiple of the row width {width} values",
                             self.action.size)
        return self.action.reshape(-1, width)


@dataclass(frozen=True)
class Inpaint:
    """One request's conditioning on the chunk that will be executing when it arrives.

    ``stamp``: the observation stamp the new chunk will be timed from; ``delay``: seconds from that
    stamp to its arrival (the measured generation latency)."""

    chunk: ExecutingChunk
    stamp: float
    delay: float
    config: InpaintConfig

    @property
    def delay_rows(self) -> int:
        """d: the new chunk's rows whose time has passed when it arrives (what the player skips)."""
        return max(row_index(self.stamp, self.config.period, self.stamp + self.delay), 0)

    @property
    def max_guidance(self) -> float:
        return self.config.max_guidance

    @property
    def method(self) -> str:
        return self.config.method

    def target(self, horizon: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """The executing chunk's rows at the times of the new chunk's rows 0..horizon-1, shape
        (horizon, width) (zeros where it has none), and the mask (horizon,) by ``config.mask``
        (:func:`mask_weights`); both all zero when the executing chunk has no row from the new chunk's
        row 0 on, or the mask guides no row (``prefix`` with d = 0)."""
        executing = self.chunk.rows(width, "Inpaint.target")
        # s: the executing chunk's rows due before the new chunk's row 0.
        shift = row_index(self.chunk.stamp, self.config.period, self.stamp)
        target = np.zeros((horizon, width))
        weights = np.zeros(horizon)
        if shift < 0 or shift >= len(executing):
            # shift < 0: an observation older than the executing chunk's (PAR's requests finish out of
            # order): that chunk has no row for the new row 0's time, so there is nothing to follow.
            return target, weights
        end = min(horizon, len(executing) - shift)
        weights[:] = mask_weights(self.config.mask, self.delay_rows, end, horizon)
        if weights.any():
            target[:end] = executing[shift:shift + end]
        return target, weights


class ExecutingChunks:
    """A runner's record for ``inpaint``: the newest chunk it emitted (the one executing) and the
    measured delay, each request's :class:`Inpaint` from them. Thread-safe (PAR's workers emit)."""

    def __init__(self, config: InpaintConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._newest: tuple[int, ExecutingChunk | None] | None = None  # (request id, its chunk if finite)
        self._stamp = 0.0  # the newest decision's observation stamp
        self._delay = 0.0  # its age: observation stamp to leaving
        self._spacing = 0.0  # stamps between the two newest decisions

    def emitted(self, request_id: int, action: Any, stamp: float, age: float) -> bool:
        """Request ``request_id``'s decision (observation ``stamp``, ``age`` old when it left) left: its
        chunk executes from now on (an older request's arriving late does not replace a newer one, as
        the player's ``replace`` orders them by request id). A chunk with a non-finite value is not
        followed (False: the caller counts it): the next requests sample plainly rather than carry it
        on into every later chunk."""
        rows = np.asarray(action, dtype=np.float64).reshape(-1)
        finite = bool(np.isfinite(rows).all())
        with self._lock:
            if self._newest is not None and request_id < self._newest[0]:
                return finite
            if self._newest is not None:
                self._spacing = max(stamp - self._stamp, 0.0)
            self._delay = max(age, 0.0)
            self._stamp = stamp
            self._newest = (request_id, ExecutingChunk(rows, stamp) if finite else None)
        return finite

    def request(self, stamp: float, finish_in: int = 0) -> Inpaint | None:
        """The :class:`Inpaint` for a request whose generation reads an observation stamped ``stamp`` and
        that finishes ``finish_in`` decisions from now (Auras: its remaining generation frames, each
        reading a newer percept, so its chunk will be timed from about ``stamp + finish_in`` decision
        spacings); None before any chunk was emitted or while the newest was not finite."""
        with self._lock:
            chunk = None if self._newest is None else self._newest[1]
            if chunk is None:
                return None
            return Inpaint(chunk, stamp + finish_in * self._spacing, self._delay, self.config)
