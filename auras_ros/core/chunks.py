"""Time-aligned execution of action chunks: which row of which chunk the robot plays now.

A policy that emits a chunk of H rows at the control period ``period`` means row k for the control
step that starts ``k`` periods after its observation was sensed: row k is due while
``stamp + k*period <= now < stamp + (k+1)*period``, and its target time (when the step it commands
ends) is ``stamp + (k+1)*period``. So a decision that arrives late skips the rows whose time has
passed (its observation's age decides where it starts), and with no newer chunk the last one plays
to its end; after that no row is due and the caller's hold/stop rule applies.

When a new chunk arrives while the previous one still has rows due, an *overlap policy* decides what
plays (the peers' answers to jumps at chunk seams):

- ``replace``: the newest chunk alone (the seam is a step).
- ``ensemble[:M]``: ACT's temporal ensembling: the mean of every live chunk's row due now, weighted
  ``exp(-M * i)`` with i = 0 for the oldest chunk (ACT's m = 0.01 by default, nearly a plain mean; a
  negative M weighs newer chunks more, as LeRobot's ``temporal_ensemble_coeff`` does: ACT's own reading
  that a smaller m incorporates new observations faster, for an executor that replans every row).
- ``blend``: a crossfade from the previous chunk to the newest over the rows they share: at the j-th
  control step after the new chunk arrived (j = 0, 1, ...), with n shared steps, the newest weighs
  ``(j + 1) / (n + 1)``; once the previous chunk ends the newest plays alone.
- ``inpaint``: RTC's answer, made inside generation: the new chunk's rows that execute before it can
  take over were already guided toward the executing chunk while denoising, so the new chunk joins
  the executing one by construction and the player plays it as ``replace``.
- LeRobot's aggregate functions (its async inference's ``aggregate_fn_name``, see
  ``core.async_runner``): the player holds one merged chunk, LeRobot's action queue. When a new chunk
  arrives, each of its rows whose control step the merged chunk also has a row for becomes
  ``old_w * old + new_w * new`` (``old`` the merged chunk's row due when the new row's step begins:
  LeRobot merges by timestep, possibly an earlier merge's result), the rest of the new chunk joins as
  it is, and the merged chunk's rows after the new chunk's end are dropped (LeRobot rebuilds its queue
  from the incoming actions). (old_w, new_w): ``weighted_average`` (0.3, 0.7, LeRobot's default),
  ``average`` (0.5, 0.5), ``conservative`` (0.7, 0.3); ``latest_only`` keeps the new row, which plays
  exactly as ``replace``.

ROS-free: the action node, the simulator's world and the evaluations all call :class:`ChunkPlayer`.
The seconds between a chunk's rows are resolved by :func:`row_period` and checked by
:func:`check_period` wherever they are read (the nodes, ``core.spec``, ``core.async_runner``,
``core.inpaint``), so every consumer plays and times rows by one rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np

from auras_ros.core.errors import ConfigError, InputError, positive_int

# LeRobot's aggregate functions (async_inference/configs.py AGGREGATE_FUNCTIONS) as (old_w, new_w).
AGGREGATES = {"weighted_average": (0.3, 0.7), "latest_only": (0.0, 1.0), "average": (0.5, 0.5),
              "conservative": (0.7, 0.3)}
OVERLAPS = ("replace", "ensemble", "blend", "inpaint", *AGGREGATES)  # the policies' names
OVERLAP_FORMS = f"one of {', '.join(repr(o) for o in OVERLAPS)}, or 'ensemble:M' with M a finite number"
# Where row 0 of a chunk is due: at the chunk's arrival, or at its observation's stamp (time-aligned).
TIMINGS = ("arrival", "observation")
ACT_ENSEMBLE_COEFF = 0.01  # ACT's temporal ensembling weight exponent m (Zhao et al. 2023)
# Stamps and clocks add periods in floating point: a row due "exactly now" must not fall a hair short.
_TIME_EPS = 1e-9


def parse_overlap(text: Any) -> tuple[str, float]:
    """An overlap's text form: a name of :data:`OVERLAPS`, or ``ensemble:M`` (ACT's weight exponent M;
    plain ``ensemble`` is ACT's 0.01) -> (name, ensemble exponent); ConfigError naming the forms."""
    name, colon, coeff = text.partition(":") if isinstance(text, str) else ("", "", "")
    if name not in OVERLAPS or (colon and name != "ensemble"):
        raise ConfigError("overlap", text, OVERLAP_FORMS)
    if not colon:
        return name, ACT_ENSEMBLE_COEFF
    try:
        m = float(coeff)
    except ValueError:
        m = math.nan
    if not math.isfinite(m):
        raise ConfigError("overlap", text, OVERLAP_FORMS)
    return name, m


def check_overlap(text: Any) -> str:
    """``text`` when it is an overlap's text form (:func:`parse_overlap`), else ConfigError."""
    parse_overlap(text)
    return text


def row_index(stamp: float, period: float, now: float) -> int:
    """The index of the row due at ``now`` of a chunk sensed at ``stamp`` with rows ``period`` apart."""
    return math.floor((now - stamp) / period + _TIME_EPS)


def row_start(stamp: float, period: float, k: int) -> float:
    """When row ``k`` becomes due: :func:`row_index` reaches ``k`` at this time, within its rounding
    allowance (so a caller that waits until then and a caller that asks ``row_index`` agree)."""
    return stamp + (k - _TIME_EPS) * period


def check_period(period: Any, field: str = "chunk_period") -> float:
    """``period`` as a float when it is a finite number of seconds > 0 (a bool is not), else a
    ConfigError naming ``field``: the one check of a chunk row period."""
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not (math.isfinite(period) and period > 0):
        raise ConfigError(field, period, "a finite number of seconds > 0 between an action chunk's rows")
    return float(period)


def row_period(explicit: float | None, checkpoint: float | None, fallback: float | None) -> float | None:
    """The seconds between an action chunk's rows, by the one rule every consumer uses:

    1. ``explicit`` (a ``chunk_period`` parameter or argument) when it is given (not None, not 0);
    2. else ``checkpoint``, the period the agent's checkpoint states (``chunk_period``), when it states one;
    3. else ``fallback`` when given (not None, not 0): the caller's own rate, ``frame_period`` (one row per
       frame, the frame-stepped worlds' rule) or the action node's ``control_period``;
    4. else None: no period known; the caller refuses what needs one.

    The value chosen must pass :func:`check_period` (a negative or non-finite one is a ConfigError, never
    skipped over). The action node has no agent, so it resolves with ``checkpoint`` None: the launch files
    and the demo hand the same ``chunk_period`` to it and to the generation node."""
    if explicit is not None and explicit != 0:
        return check_period(explicit)
    if checkpoint is not None:
        return check_period(checkpoint, "the checkpoint's chunk_period")
    if fallback is not None and fallback != 0:
        return check_period(fallback, "chunk_period fallback (frame or control period)")
    return None


@dataclass(frozen=True)
class TimedChunk:
    """An action chunk with its observation's sensor stamp; rows are due one control period apart."""

    rows: np.ndarray  # (H, D)
    stamp: float
    period: float
    arrival: float  # when the chunk reached the player (for blending)
    label: int | None = None  # the caller's name for the chunk (e.g. its request id): see ChunkPlayer.source

    def row_index(self, now: float) -> int:
        """The index of the row due at ``now``: may be < 0 (before its first) or >= H (after its last)."""
        return row_index(self.stamp, self.period, now)

    def due(self, now: float) -> np.ndarray | None:
        k = self.row_index(now)
        return self.rows[max(k, 0)] if k < len(self.rows) else None

    def target_time(self, k: int) -> float:
        """When the control step that row ``k`` commands ends."""
        return self.stamp + (k + 1) * self.period

    @property
    def end(self) -> float:
        """From this time on no row of the chunk is due."""
        return self.stamp + len(self.rows) * self.period

    def live(self, now: float) -> bool:
        """A row is due at ``now`` or later: by :meth:`row_index`, so a chunk is live exactly while
        :meth:`due` has a row (a comparison with :attr:`end` can disagree within a rounding error)."""
        return self.row_index(now) < len(self.rows)


class ChunkPlayer:
    """Plays chunks by time under one overlap policy; ``row(now)`` is the command due at ``now``."""

    def __init__(self, period: float, overlap: str = "replace", chunk_rows: int | None = None) -> None:
        """``overlap``: its text form (:func:`parse_overlap`), e.g. ``replace`` or ``ensemble:-0.5``."""
        check_period(period, "chunk period")
        self.overlap, self.ensemble_coeff = parse_overlap(overlap)
        if chunk_rows is not None:
            positive_int("chunk_rows", chunk_rows)
        self.period = float(period)
        self.chunk_rows = chunk_rows
        self._chunks: list[TimedChunk] = []  # oldest first; only the newest two matter to blend
        self.skipped_rows = 0  # rows of arriving chunks whose time had already passed

    def add(self, rows: np.ndarray | Sequence[float], stamp: float, now: float, width: int,
            label: int | None = None) -> int:
        """A new chunk (flat or (H, width)) sensed at ``stamp`` arrives at ``now``; returns the rows
        skipped because their time had passed. ``label``: what :attr:`source` names this chunk by."""
        array = np.asarray(rows, dtype=np.float64)
        if array.size == 0 or array.size % width:
            raise InputError("action chunk", "ChunkPlayer.add", f"a non-empty multiple of {width} values",
                             array.size)
        array = array.reshape(-1, width)
        if self.chunk_rows is not None:
            array = array[: self.chunk_rows]
        chunk = TimedChunk(array, float(stamp), self.period, float(now), label)
        skipped = min(max(chunk.row_index(now), 0), len(array))
        self.skipped_rows += skipped
        self._chunks = [c for c in self._chunks if c.live(now)] + [chunk]
        if self.overlap in AGGREGATES:
            self._chunks = [self._aggregate(self._chunks[-2], chunk) if len(self._chunks) > 1 else chunk]
        if self.overlap in ("replace", "inpaint"):
            self._chunks = self._chunks[-1:]
        elif self.overlap == "blend":
            self._chunks = self._chunks[-2:]
        return skipped

    def row(self, now: float) -> np.ndarray | None:
        """The command due at ``now``, or None when no chunk has a row due (none yet, or all played)."""
        self._chunks = [c for c in self._chunks if c.live(now)]
        return self._mix(self._chunks, now)

    def plan(self, now: float) -> list[tuple[np.ndarray, float]]:
        """What :meth:`row` will play from ``now`` on if no newer chunk arrives, as (row, target time) per
        control step of the newest chunk, from the step due at ``now`` to its last: the rows the overlap
        policy mixes (ensemble, blend, a LeRobot aggregate's merged queue), not the newest chunk's own.
        Each step's row is the one due when the step begins (the first: at ``now``); its target time is
        when the step ends (:meth:`TimedChunk.target_time`). Reads the chunks, changes nothing."""
        live = [c for c in self._chunks if c.live(now)]
        if not live:
            return []
        newest = live[-1]
        points = []
        for k in range(max(newest.row_index(now), 0), len(newest.rows)):
            t = max(now, newest.stamp + k * self.period)
            row = self._mix([c for c in live if c.live(t)], t)
            points.append((np.array(row), newest.target_time(k)))
        return points

    def _mix(self, chunks: list[TimedChunk], now: float) -> np.ndarray | None:
        """The row due at ``now`` under the overlap policy from ``chunks`` (oldest first, each live at ``now``)."""
        if not chunks:
            return None
        if self.overlap == "ensemble":
            return self._ensemble(chunks, now)
        newest = chunks[-1]
        if self.overlap == "blend" and len(chunks) == 2:
            return self._blend(chunks[0], newest, now)
        return newest.due(now)

    @property
    def source(self) -> int | None:
        """The label of the newest chunk with a row due at the last :meth:`row`:
        the chunk the played row came from (under ensemble and blend, the newest of those mixed in, as
        every live chunk has a row due), so a change marks a chunk switch, a seam. None: no live chunk."""
        return self._chunks[-1].label if self._chunks else None

    def clear(self) -> None:
        """Forget every chunk (a stop, a reset, a clock jump): nothing plays until the next one."""
        self._chunks = []

    def _aggregate(self, playing: TimedChunk, chunk: TimedChunk) -> TimedChunk:
        """LeRobot's queue merge of ``chunk`` into the merged chunk ``playing`` (module docstring)."""
        if self.overlap == "latest_only":
            return chunk
        old_w, new_w = AGGREGATES[self.overlap]
        rows = chunk.rows.copy()
        for k in range(len(rows)):
            j = playing.row_index(chunk.stamp + k * self.period)
            if 0 <= j < len(playing.rows):
                rows[k] = old_w * playing.rows[j] + new_w * rows[k]
        return replace(chunk, rows=rows)

    def _ensemble(self, chunks: list[TimedChunk], now: float) -> np.ndarray | None:
        due = [row for row in (c.due(now) for c in chunks) if row is not None]
        weights = np.exp(-self.ensemble_coeff * np.arange(len(due)))
        return np.asarray(np.tensordot(weights, np.stack(due), axes=1) / weights.sum())

    def _blend(self, previous: TimedChunk, newest: TimedChunk, now: float) -> np.ndarray | None:
        new_row, old_row = newest.due(now), previous.due(now)
        if old_row is None or new_row is None:
            return new_row
        shared = max(math.ceil((previous.end - newest.arrival) / self.period - _TIME_EPS), 1)
        step = math.floor((now - newest.arrival) / self.period + _TIME_EPS)
        w = (step + 1) / (shared + 1)
        return np.asarray((1 - w) * old_row + w * new_row)
