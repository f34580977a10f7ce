"""Decisions into commands: time-aligned execution of action chunks (:mod:`auras_ros.core.chunks`), the
one rule that the frame-stepped evaluation, the real-time evaluation and the simulator node
(:mod:`auras_ros.eval.world`) share. Imports nothing of the evaluation harness, so ``sim`` can use it alone."""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any, Callable, Sequence

import numpy as np

from auras_ros.core.chunks import TIMINGS, ChunkPlayer
from auras_ros.core.errors import ConfigError, one_of, positive_int

ROW_WIDTH = 2  # the catch task's command: (vx, vy)


def action_chunk(action: Sequence[float] | np.ndarray, width: int = ROW_WIDTH) -> np.ndarray:
    """An action vector as chunk rows ``width`` wide (default the catch task's (vx, vy)), row-major; a
    trailing partial row is ignored (the 7-vector of a 7-DoF agent reads as 3 rows of 2), an empty one is
    a single stop row."""
    values = np.asarray(action, dtype=np.float64).ravel()
    values = values[: len(values) // width * width]
    return values.reshape(-1, width) if len(values) else np.zeros((1, width))


class ChunkExecutor:
    """The world's command for each step. Each decision's chunk joins a :class:`ChunkPlayer` (at most
    ``chunk_rows`` rows of it play, under the ``overlap`` policy) and its rows are due one world period
    apart from ``timing``'s start:

    - ``arrival`` (the evaluations' rule so far): row 0 plays in the step the decision arrives in, rows
      1, 2, ... in the next ones, whatever the observation's age;
    - ``observation``: row k is due ``k`` periods after the observation was sensed, so a late decision
      skips the rows whose time has passed (a decision with no observation stamp, such as the safety
      gate's stop through the simulator, plays from its arrival).

    A decision with a true ``interrupts`` attribute (the safety gate's ramp or stop through the simulator,
    :func:`auras_ros.eval.world.decision`) first ends every chunk in play, so it plays alone under any
    overlap.

    When no row is due (nothing decided yet, or the chunk played to its end with no newer one) the last
    command holds; before the first decision the agent stands still.

    :attr:`source` is the request id of the chunk the last returned command came from (a held command
    keeps the source it was played from; None before any row played), so the measurements
    (:mod:`auras_ros.eval.seams`) see where chunks switch. ``width``: elements per row (the catch task's
    2 by default; a bag's robot may command more, :mod:`auras_ros.eval.bag_timed`)."""

    def __init__(self, chunk_rows: int, period: float, overlap: str = "replace", timing: str = "arrival",
                 width: int = ROW_WIDTH) -> None:
        if timing not in TIMINGS:
            raise ConfigError("chunk timing", timing, one_of(TIMINGS))
        positive_int("row width", width)
        self.player = ChunkPlayer(period, overlap, chunk_rows)
        self.timing = timing
        self.width = width
        self._held = np.zeros(width)
        self.source: int | None = None

    @property
    def chunk_rows(self) -> int | None:
        return self.player.chunk_rows

    def next(self, decisions: Sequence[Any], now: float) -> np.ndarray:
        """``decisions`` (those that arrived since the last step; anything with ``request_id``,
        ``output.action`` and ``observation_stamp``) join; the command for the step starting at ``now``."""
        # Several may arrive in one step: the newest request joins last, so under `replace` it wins.
        for decision in sorted(decisions, key=lambda d: d.request_id):
            if getattr(decision, "interrupts", False):
                self.player.clear()  # a safety gate's ramp or stop (world.decision): it plays alone
            stamp = decision.observation_stamp if self.timing == "observation" else None
            self.player.add(action_chunk(decision.output.action, self.width), now if stamp is None else stamp, now,
                            self.width, label=decision.request_id)
        row = self.player.row(now)
        if row is not None:
            self._held = row
            self.source = self.player.source
        return self._held


class ClockedChunks:
    """A :class:`ChunkExecutor` on a running clock ``now``, fed from two threads: each decision's chunk joins
    the moment it leaves (:meth:`on_decision`, the runner's thread) and each tick of the world or camera
    takes the row due then (:meth:`on_tick`), keeping in :attr:`sources` the request id of the chunk each
    tick's command came from (what :mod:`auras_ros.eval.seams` reads). After :meth:`close` no decision
    plays. The real-time world (:class:`auras_ros.eval.episodes.RealTimeActuator`) and the timed bag replay
    (:func:`auras_ros.eval.bag_timed.run_timed`) both play through it.

    ``lock``: what keeps a decision from joining in the middle of a tick (a lock of its own by default; a
    caller that already runs both under its own lock passes ``contextlib.nullcontext()``)."""

    def __init__(self, executor: ChunkExecutor, now: Callable[[], float],
                 lock: AbstractContextManager | None = None) -> None:
        self.executor = executor
        self._now = now
        self._lock = threading.Lock() if lock is None else lock
        self.closed = False
        self.sources: list[int | None] = []  # per tick; None before the first row played

    def on_decision(self, decision: Any) -> np.ndarray | None:
        """The command due now, ``decision``'s chunk joined; None once closed (the decision did not play)."""
        with self._lock:
            if self.closed:
                return None
            return self.executor.next([decision], self._now())

    def on_tick(self) -> np.ndarray:
        """A copy of the command due now (the last one held; zeros before any chunk), its source recorded."""
        with self._lock:
            command = self.executor.next([], self._now()).copy()
            self.sources.append(self.executor.source)
            return command

    def close(self) -> None:
        with self._lock:
            self.closed = True

    @property
    def skipped_rows(self) -> int:
        """Chunk rows whose time had passed when their chunk arrived (never played)."""
        return self.executor.player.skipped_rows
