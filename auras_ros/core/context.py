"""The public context: timestamped world state that perception (and any other source) writes and every
in-flight generation step reads, with a staleness policy per key.

Double buffering without locks on the read side: each key's history is an immutable tuple of frozen
entries, replaced whole by a writer. A reader picks up whatever tuple is current, so it never blocks on
a writer and never sees a half-written entry. Writers serialise among themselves on one condition
variable, which ``wait`` readers also use to sleep until something fresher arrives.
"""

from __future__ import annotations

import enum
import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch

from auras_ros.core.clock import Clock
from auras_ros.core.errors import ConfigError, InputError, one_of


class Policy(str, enum.Enum):
    """What a read does when the selected entry is older than its key's ``max_age``."""

    HOLD = "hold"  # return it anyway, flagged stale
    DROP = "drop"  # return nothing; the caller skips this frame and counts it
    WAIT = "wait"  # block until a fresh entry arrives or ``wait_timeout`` passes
    ERROR = "error"  # raise StaleContextError


class Verdict(str, enum.Enum):
    FRESH = "fresh"
    STALE_HELD = "stale_held"
    DROPPED = "dropped"
    WAIT_TIMEOUT = "wait_timeout"
    MISSING = "missing"


FETCH_OFFSETS = (0, -1)


class StaleContextError(RuntimeError):
    """A key with policy ``error`` was read while its newest usable entry was too old."""

    def __init__(self, key: str, age: float, max_age: float) -> None:
        self.key, self.age, self.max_age = key, age, max_age
        super().__init__(f"public context key {key!r} is stale: age {age:.6f} s > max_age {max_age:.6f} s")


# A ROS Duration and a ROS double parameter have no infinity, so parameters and ContextEntry messages
# say "never stale" as 0 where the core says inf: these two functions are the only crossing.
NEVER_STALE_SECONDS = 0.0


def max_age_from_seconds(seconds: float) -> float:
    """The core's ``max_age`` from its parameter or message form (0: never stale)."""
    return math.inf if seconds == NEVER_STALE_SECONDS else seconds


def max_age_to_seconds(max_age: float) -> float:
    """The parameter or message form (0: never stale) of the core's ``max_age``."""
    return NEVER_STALE_SECONDS if math.isinf(max_age) else max_age


@dataclass(frozen=True)
class KeySpec:
    """How one world-state key ages. ``max_age`` is in seconds of the pipeline clock."""

    key: str
    max_age: float = math.inf
    policy: Policy = Policy.HOLD
    wait_timeout: float = 0.1
    cancels_in_flight: bool = False  # a changed value (e.g. a new instruction) invalidates in-flight requests

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise ConfigError("key", self.key, "a non-empty string")
        if not isinstance(self.max_age, (int, float)) or math.isnan(self.max_age) or self.max_age <= 0:
            raise ConfigError(f"{self.key}.max_age", self.max_age, "a number of seconds > 0 (inf for never stale)")
        try:
            object.__setattr__(self, "policy", Policy(self.policy))
        except ValueError:
            raise ConfigError(f"{self.key}.policy", self.policy, one_of(p.value for p in Policy)) from None
        if not math.isfinite(self.wait_timeout) or self.wait_timeout < 0:
            raise ConfigError(f"{self.key}.wait_timeout", self.wait_timeout, "a finite number of seconds >= 0")


@dataclass(frozen=True)
class ContextEntry:
    """One write: ``stamp`` is the sensor time of the observation it derives from, ``frame`` the
    pipeline frame whose slot it was written into, ``produced_at`` the clock time of the write."""

    key: str
    value: Any
    stamp: float
    produced_at: float
    seq: int
    frame: int


@dataclass(frozen=True)
class ContextRead:
    """The outcome of reading one key: the entry (``None`` when nothing may be used), its age and verdict."""

    key: str
    entry: ContextEntry | None
    age: float | None
    verdict: Verdict

    @property
    def usable(self) -> bool:
        return self.verdict in (Verdict.FRESH, Verdict.STALE_HELD)

    @property
    def stale(self) -> bool:
        return self.verdict is not Verdict.FRESH


class ContextSnapshot(Mapping[str, ContextRead]):
    """An immutable view of several keys, read at one frame."""

    def __init__(self, reads: Mapping[str, ContextRead], frame: int | None) -> None:
        self._reads = dict(reads)
        self.frame = frame

    def __getitem__(self, key: str) -> ContextRead:
        return self._reads[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._reads)

    def __len__(self) -> int:
        return len(self._reads)

    def values_by_key(self) -> dict[str, Any]:
        """The usable values, keyed by name: what a generation step gets to see."""
        return {k: r.entry.value for k, r in self._reads.items() if r.usable and r.entry is not None}


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


MAX_SEQ = 2**53  # a sequence number at or above this is absurd: 285,000 years of frames at 1 kHz


class SourceOrder:
    """The order of one key's observations: by sensor stamp, within one run of their source.

    A source draws an id at each start (``Percept.source_id``); a new id restarts the ordering, so a
    restarted perception node (seq from 1 again) or a bag replayed from the top (stamps from the past
    again) is taken from its first message on, instead of after its numbers pass the old run's.
    Absurd values are refused: a seq outside [0, MAX_SEQ), a stamp that is not finite or lies beyond
    now + ``future_tolerance`` (one of those would otherwise hold every later message back).
    """

    def __init__(self, future_tolerance: float) -> None:
        if not isinstance(future_tolerance, (int, float)) or not 0 <= future_tolerance < math.inf:
            raise ConfigError("future_tolerance", future_tolerance, "a finite number of seconds >= 0")
        self._tolerance = float(future_tolerance)
        self._last: tuple[int, float] | None = None  # (source, stamp) of the last admitted observation
        self.restarts = 0

    def admit(self, source: int, seq: int, stamp: float, now: float, where: str) -> bool:
        """Check one observation; InputError names what is wrong. True when it starts a new source run."""
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < MAX_SEQ:
            raise InputError("observation_seq", where, "an integer in [0, 2**53)", seq)
        if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise InputError("stamp", where, "a finite sensor time in seconds", stamp)
        if stamp > now + self._tolerance:
            raise InputError("stamp", where, f"not after now + {self._tolerance} s ({now:.6f})", round(stamp, 6))
        last = self._last
        restart = last is not None and last[0] != source
        if last is not None and not restart and stamp < last[1]:
            raise InputError("stamp", where, f"not before the source's previous stamp {last[1]:.6f}", round(stamp, 6))
        self._last = (source, float(stamp))
        self.restarts += restart
        return restart


class PublicContext:
    """Bounded (``history`` entries per key), per-frame-slotted, staleness-checked world state."""

    def __init__(self, specs: Iterable[KeySpec], clock: Clock, history: int = 8) -> None:
        if not isinstance(history, int) or history < 2:
            raise ConfigError("history", history, "an integer >= 2 (fetch_offset -1 needs the previous frame)")
        self._clock = clock
        self._history_len = history
        self._specs: dict[str, KeySpec] = {}
        self._entries: dict[str, tuple[ContextEntry, ...]] = {}
        self._changed = threading.Condition()
        self._listeners: list[Callable[[str], None]] = []
        self._frame = 0
        for spec in specs:
            self.declare(spec)

    # -- configuration -------------------------------------------------------------------------
    def declare(self, spec: KeySpec) -> None:
        with self._changed:
            if spec.key in self._specs and self._specs[spec.key] != spec:
                raise ConfigError(spec.key, spec, f"one declaration per key (already {self._specs[spec.key]})")
            self._specs[spec.key] = spec
            self._entries.setdefault(spec.key, ())

    def spec(self, key: str) -> KeySpec:
        try:
            return self._specs[key]
        except KeyError:
            raise ConfigError("key", key, one_of(sorted(self._specs))) from None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def on_invalidate(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(key)`` whenever a ``cancels_in_flight`` key changes value."""
        self._listeners.append(listener)

    # -- frames --------------------------------------------------------------------------------
    def begin_frame(self, frame: int) -> None:
        """Writes from now on land in ``frame``'s slot (the pipeline calls this at each frame start)."""
        self._frame = frame

    @property
    def frame(self) -> int:
        return self._frame

    # -- writing -------------------------------------------------------------------------------
    def write(self, key: str, value: Any, *, stamp: float, seq: int, frame: int | None = None) -> ContextEntry:
        spec = self.spec(key)
        if not isinstance(stamp, (int, float)) or not math.isfinite(stamp):
            raise ConfigError(f"{key}.stamp", stamp, "a finite sensor time in seconds")
        entry = ContextEntry(key, value, float(stamp), self._clock.now(), int(seq),
                             self._frame if frame is None else int(frame))
        with self._changed:
            old = self._entries[key]
            changed = spec.cancels_in_flight and bool(old) and not _same_value(old[-1].value, value)
            self._entries[key] = (old + (entry,))[-self._history_len:]
            self._changed.notify_all()
        if changed:
            for listener in self._listeners:
                listener(key)
        return entry

    def clear(self, key: str) -> None:
        """Forget every entry of ``key`` (e.g. generation-owned state of cancelled requests)."""
        self.spec(key)
        with self._changed:
            self._entries[key] = ()

    # -- reading -------------------------------------------------------------------------------
    def _select(self, key: str, frame: int | None, fetch_offset: int) -> ContextEntry | None:
        entries = self._entries[key]  # one atomic load: the tuple never changes under us
        if frame is None:
            return entries[-1] if entries else None
        bound = frame + fetch_offset
        for entry in reversed(entries):
            if entry.frame <= bound:
                return entry
        return None

    def read(self, key: str, *, frame: int | None = None, fetch_offset: int = 0, block: bool = True,
             give_up: Callable[[], bool] | None = None) -> ContextRead:
        """Read ``key`` as generation in ``frame`` sees it: the newest entry written in frame
        ``frame + fetch_offset`` or earlier (``frame=None``: the newest entry), judged by its policy.

        ``block=False`` never sleeps: a ``wait`` key that is not fresh reads as WAIT_TIMEOUT at once.
        A reader that only reports the context (the context node) must not stall the thread that
        also takes its writes. ``give_up()`` true ends a blocked wait as WAIT_TIMEOUT early (a reader
        being stopped; its stopper calls :meth:`wake_waiters` after making it true)."""
        if fetch_offset not in FETCH_OFFSETS:
            raise ConfigError("fetch_offset", fetch_offset, one_of(FETCH_OFFSETS))
        spec = self.spec(key)
        entry = self._select(key, frame, fetch_offset)
        if entry is None and spec.policy is not Policy.WAIT:
            return ContextRead(key, None, None, Verdict.MISSING)
        age = None if entry is None else self._clock.now() - entry.stamp
        if age is not None and age <= spec.max_age:
            return ContextRead(key, entry, age, Verdict.FRESH)
        if spec.policy is Policy.HOLD:
            return ContextRead(key, entry, age, Verdict.STALE_HELD)
        if spec.policy is Policy.DROP:
            return ContextRead(key, None, age, Verdict.DROPPED)
        if spec.policy is Policy.ERROR and age is not None:
            raise StaleContextError(key, age, spec.max_age)
        if not block:
            return ContextRead(key, None, age, Verdict.WAIT_TIMEOUT)
        return self._wait_fresh(spec, frame, fetch_offset, give_up)

    def wake_waiters(self) -> None:
        """Wake every blocked ``wait`` read, to check its ``give_up`` again."""
        with self._changed:
            self._changed.notify_all()

    def _wait_fresh(self, spec: KeySpec, frame: int | None, fetch_offset: int,
                    give_up: Callable[[], bool] | None) -> ContextRead:
        deadline = self._clock.now() + spec.wait_timeout
        with self._changed:
            while True:
                entry = self._select(spec.key, frame, fetch_offset)
                now = self._clock.now()
                if entry is not None and now - entry.stamp <= spec.max_age:
                    return ContextRead(spec.key, entry, now - entry.stamp, Verdict.FRESH)
                remaining = deadline - now
                if remaining <= 0 or self._clock.simulated or (give_up is not None and give_up()):
                    # Simulated time does not pass while we wait, so nothing fresher can come.
                    age = None if entry is None else now - entry.stamp
                    return ContextRead(spec.key, None, age, Verdict.WAIT_TIMEOUT)
                self._changed.wait(remaining)

    def snapshot(self, keys: Iterable[str] | None = None, *, frame: int | None = None,
                 fetch_offset: int = 0) -> ContextSnapshot:
        keys = self.keys if keys is None else tuple(keys)
        return ContextSnapshot({k: self.read(k, frame=frame, fetch_offset=fetch_offset) for k in keys}, frame)

    def history(self, key: str) -> tuple[ContextEntry, ...]:
        self.spec(key)
        return self._entries[key]
