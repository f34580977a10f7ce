"""CPU time per hop of the agent's message path, measured where the work is done (ROS-free).

The composed agent's threads show under one process and, in ``top``, often under one name; what each
hop of a message costs (decode, preprocess, perceive, publish, context update, generation) is measured
by the code that does it: ``time.thread_time`` around the hop, the calling thread's CPU, so waiting costs
nothing, summed with the number of messages it handled.

A hop that runs inside another in the same thread (local delivery runs an inline subscriber's callback
in the publisher's thread) counts for itself alone: its CPU is taken off the enclosing hop's, so the
hops of one ledger add up to the CPU they took together. The nodes of one process share a ledger for
that (``nodes.composed.compose``).
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True)
class HopCost:
    """CPU seconds a hop took, over ``messages`` messages (or frames)."""

    seconds: float
    messages: int

    @property
    def ms_per_message(self) -> float:
        return 1e3 * self.seconds / self.messages if self.messages else float("nan")


class CpuLedger:
    """CPU seconds and message counts by hop name; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._messages: dict[str, int] = {}
        self._open = threading.local()  # per thread: the CPU of the hops nested in each hop open in it

    @contextmanager
    def hop(self, name: str) -> Iterator[None]:
        """Count the CPU this thread spends in the block (less that of hops nested in it) to ``name``."""
        stack: list[float] = self._open.__dict__.setdefault("stack", [])
        stack.append(0.0)
        started = time.thread_time()
        try:
            yield
        finally:
            elapsed = time.thread_time() - started
            nested = stack.pop()
            if stack:
                stack[-1] += elapsed
            self.add(name, elapsed - nested)

    def add(self, name: str, seconds: float, messages: int = 1) -> None:
        """``seconds`` of CPU measured by the caller (a loop timing its own iterations) for ``name``."""
        with self._lock:
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
            self._messages[name] = self._messages.get(name, 0) + messages

    def snapshot(self) -> dict[str, HopCost]:
        with self._lock:
            return {name: HopCost(seconds, self._messages[name]) for name, seconds in self._seconds.items()}
