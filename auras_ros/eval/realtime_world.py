"""The catch task in wall time: a thread steps the world at the camera rate, so a slow agent pays."""

from __future__ import annotations

import math
import threading
import time
from typing import Callable

import numpy as np

from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import Observation
from auras_ros.eval.task import CatchTask, EpisodeScore


class RealTimeWorld:
    """The same world in wall time: a thread steps it every ``frame_period`` seconds and renders the
    camera; :meth:`act` sets the command whenever a decision arrives, so a slow agent acts late.

    It is an ObservationSource on the wall clock: ``latest(now)`` is the newest render stamped with the
    wall time it was sensed at.

    ``speed``: world seconds per wall second (the world ticks every ``frame_period / speed`` wall
    seconds; per-frame dynamics are unchanged, so a policy trained frame-stepped sees the same world,
    only an agent's compute costs more world frames). ``on_tick``: called under the world's lock just
    before every step; an action it returns is applied for that step (e.g. the next row of a chunk).
    """

    def __init__(self, task: CatchTask, clock_now=time.monotonic, speed: float = 1.0,
                 on_tick: Callable[[], np.ndarray | None] | None = None) -> None:
        if not math.isfinite(speed) or speed <= 0:
            raise ConfigError("speed", speed, "a finite factor > 0 (world seconds per wall second)")
        self.task = task
        self._now = clock_now
        self.speed = speed
        self.period = task.config.frame_period / speed  # wall seconds per world frame (camera period)
        self._on_tick = on_tick
        self._lock = threading.Lock()
        self._new_frame = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: Observation | None = None
        self.overruns = 0

    def start(self, seed: int) -> None:
        # A GL context belongs to the thread that made it, so the world thread owns every render.
        self.task.close()
        self._stop.clear()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._loop, args=(seed, ready), name="realtime-world", daemon=True)
        self._thread.start()
        ready.wait()

    def _loop(self, seed: int, ready: threading.Event) -> None:
        try:
            with self._lock:
                first = self.task.reset(seed)
                self._latest = Observation(first.seq, self._now(), first.data)
        finally:
            ready.set()
        period = self.period
        next_tick = self._now() + period
        while not self._stop.is_set():
            delay = next_tick - self._now()
            if delay > 0:
                self._stop.wait(delay)  # sleeps until the next world tick, or stop
            with self._lock:
                if self.task.done:
                    break
                action = self._on_tick() if self._on_tick is not None else None
                if action is not None:
                    self.task.apply(action)
                self.task.step()
                observation = self.task.observation()
                self._latest = Observation(observation.seq, next_tick, observation.data)
                self._new_frame.notify_all()
            next_tick += period
            if self._now() > next_tick:
                self.overruns += 1  # the renderer could not keep the camera rate
                next_tick = self._now()
        self.task.close()
        with self._lock:
            self._stop.set()
            self._new_frame.notify_all()

    def act(self, fn: Callable[[CatchTask], None]) -> None:
        """Run ``fn(task)`` under the world's lock, between two world steps."""
        with self._lock:
            fn(self.task)

    def wait_newer(self, seq: int, timeout: float) -> bool:
        """Block until a render newer than ``seq`` is there (or the episode ended, or ``timeout``)."""
        with self._new_frame:
            return self._new_frame.wait_for(
                lambda: self._stop.is_set() or (self._latest is not None and self._latest.seq > seq), timeout)

    def latest(self, now: float) -> Observation | None:
        return self._latest

    @property
    def done(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the episode to end (success or max_frames)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self) -> EpisodeScore:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.task.score
