"""Static-shape calls replayed as CUDA graphs, so a GPU frame is not bound by kernel launches.

:class:`CapturedCall` replays one closure over fixed tensors. :class:`GraphedFunction` wraps a
function of tensors: per input signature (shapes and dtypes) and per calling thread it keeps static
input buffers and one captured call; each call copies the inputs in, replays, and returns a copy of
the output. Without a capture function (the CPU, or graphs off) the same buffers are used and the
function runs eagerly, so everything but the capture itself runs, and is tested, without a GPU.

Every executor calls these from several threads at once (DEC's two stages, PAR's workers, Auras's
stage threads), so a capture must never meet another one: :func:`cuda_graph_capture` captures under
one process-wide lock, in ``thread_local`` error mode (other threads may keep allocating, syncing and
replaying while one thread captures), on a private stream and memory pool, and when a capture fails
it ends the capture and hands the pool back, so the allocator and the calling thread's stream are as
they were. The failed call path then runs eagerly; :class:`CaptureLog` counts it and names it.

Python's cyclic garbage collector must not run inside a capture: freeing a graph there (one of a
finished worker thread, say) destroys CUDA objects from the capturing thread, which invalidates the
capture (seen on an H200 under PAR(4)). So a capture collects first and holds the collector off
until it ends, and no captured call sits in a reference cycle: a graph goes when its thread does.
"""

from __future__ import annotations

import functools
import gc
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

Replay = Callable[[], None]
Capture = Callable[[Callable[[], None], torch.device], Replay]
"""Captures a closure once and returns what replays it; raises when the closure cannot be captured."""

# CUDA stream capture is a property of the process (the caching allocator routes a capturing stream's
# allocations to the graph's pool), so captures from different agents must not overlap either; nor
# may a graph be destroyed during one. Re-entrant: a finaliser may run in the capturing thread.
_CAPTURE_LOCK = threading.RLock()


def cuda_graph_capture(fn: Callable[[], None], device: torch.device) -> Replay:
    """``fn`` captured as one CUDA graph (see the module doc); returns the graph's replay."""
    stream = torch.cuda.Stream(device)
    with _CAPTURE_LOCK, _no_collection():
        stream.wait_stream(torch.cuda.current_stream(device))
        pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.stream(stream):
            graph.capture_begin(pool=pool, capture_error_mode="thread_local")
            try:
                fn()
            except BaseException:
                _abandon(graph, device, pool)
                raise
            try:
                graph.capture_end()
            except BaseException:
                _release_pool(device, pool)
                raise
        torch.cuda.current_stream(device).wait_stream(stream)
    return _Graph(graph).replay


class _Graph:
    """A captured graph that is destroyed only where no capture runs (a finished worker's graphs go
    when its thread does, possibly while another thread captures)."""

    def __init__(self, graph: torch.cuda.CUDAGraph) -> None:
        self.graph: torch.cuda.CUDAGraph | None = graph

    def replay(self) -> None:
        assert self.graph is not None
        self.graph.replay()

    def __del__(self) -> None:
        with _CAPTURE_LOCK:
            self.graph = None


class _no_collection:
    """Collects garbage now, then holds the cyclic collector off (in every thread) until exit."""

    def __enter__(self) -> None:
        gc.collect()
        self.was_enabled = gc.isenabled()
        gc.disable()

    def __exit__(self, *exc: object) -> None:
        if self.was_enabled:
            gc.enable()


def _abandon(graph: torch.cuda.CUDAGraph, device: torch.device, pool: tuple[int, int]) -> None:
    """Ends a capture whose closure raised; the stream leaves capture mode whatever the outcome."""
    try:
        graph.capture_end()  # raises when the capture was invalidated (the usual case)
    except RuntimeError:
        _release_pool(device, pool)


def _release_pool(device: torch.device, pool: tuple[int, int]) -> None:
    # A capture_end that raises skips the allocator's end-of-capture step, which would leave every
    # later allocation checked against a dead capture; torch has no public call for it.
    index = device.index if device.index is not None else torch.cuda.current_device()
    end = getattr(torch._C, "_cuda_endAllocateToPool", None) or torch._C._cuda_endAllocateCurrentStreamToPool
    end(index, pool)
    torch._C._cuda_releasePool(index, pool)


@dataclass(frozen=True)
class Fallback:
    """A call path whose capture failed and which runs eagerly from then on."""

    call: str
    thread: str
    error: str


@dataclass
class CaptureLog:
    """An agent's captures, counted across all its threads, and the call paths that fell back."""

    captured: int = 0
    fallbacks: list[Fallback] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, call: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self.captured += 1
            else:
                self.fallbacks.append(Fallback(call, threading.current_thread().name, error))

    def summary(self) -> str:
        """One line for logs, benchmark notes and /diagnostics."""
        with self._lock:
            line = f"{self.captured} captured, {len(self.fallbacks)} fell back to eager"
            names = sorted({f"{f.call} ({f.error})" for f in self.fallbacks})
        return line + (": " + "; ".join(names) if names else "")


class CapturedCall:
    """``fn`` reading and writing fixed tensors, replayed as one CUDA graph, or called eagerly.

    With a ``capture`` function the first ``warmup`` calls run eagerly (on the current stream), as
    PyTorch requires before capture, then ``fn`` is captured; if that fails the call stays eager,
    ``error`` says why and ``log`` records it under ``name``. Without one it is always eager.
    """

    def __init__(self, fn: Callable[[], None], device: torch.device, capture: Capture | None,
                 log: CaptureLog | None = None, name: str = "call", warmup: int = 2) -> None:
        self.fn = fn
        self.replay: Replay | None = None
        self.error: str | None = None
        if capture is None:
            return
        for _ in range(warmup):
            fn()
        try:
            self.replay = capture(fn, device)
        except Exception as exc:  # noqa: BLE001 - capture is an optimisation: fall back to eager, counted and named
            self.error = f"{type(exc).__name__}: {exc}"[:300]
        if log is not None:
            log.record(name, self.error)

    def __call__(self) -> None:
        if self.replay is not None:
            self.replay()
        else:
            self.fn()


def weak_call(method: Callable[[], None]) -> Callable[[], None]:
    """``method`` called through a weak reference to its object, so that an object keeping a
    :class:`CapturedCall` of its own method forms no reference cycle (see the module doc)."""
    ref = weakref.WeakMethod(method)

    def call() -> None:
        bound = ref()
        if bound is not None:
            bound()

    return call


def _call_into(fn: Callable[..., torch.Tensor], inputs: tuple[torch.Tensor, ...], out: list[Any]) -> None:
    out[:] = [fn(*inputs)]


@dataclass
class _Entry:
    inputs: tuple[torch.Tensor, ...]
    out: list[Any] = field(default_factory=list)  # [the output], written by each call
    call: CapturedCall | None = None


class GraphedFunction:
    """``fn(*tensors) -> tensor`` over static buffers, captured per input signature and thread."""

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, capture: Capture | None,
                 log: CaptureLog | None = None, name: str = "call") -> None:
        self.fn = fn
        self.device = device
        self.capture = capture
        self.log = log
        self.name = name
        self._local = threading.local()  # each thread (PAR worker, stage thread) replays its own graphs

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        entries: dict[tuple, _Entry] = self._local.__dict__.setdefault("entries", {})
        key = tuple((tuple(a.shape), a.dtype) for a in args)
        entry = entries.get(key)
        if entry is None:
            entry = self._capture(args)
            entries[key] = entry  # only a whole entry: a capture that raised leaves nothing behind
        for buffer, value in zip(entry.inputs, args, strict=True):
            buffer.copy_(value, non_blocking=True)
        assert entry.call is not None
        entry.call()
        return entry.out[0].clone()

    def _capture(self, args: tuple[torch.Tensor, ...]) -> _Entry:
        entry = _Entry(tuple(a.detach().clone().to(self.device) for a in args))
        run = functools.partial(_call_into, self.fn, entry.inputs, entry.out)  # no reference back to entry
        entry.call = CapturedCall(run, self.device, self.capture, self.log, self.name)
        return entry


def capture_for(device: torch.device, graphs: bool) -> Capture | None:
    """The capture an agent uses: CUDA graphs on a CUDA device when ``graphs`` is on, else none."""
    return cuda_graph_capture if graphs and device.type == "cuda" else None
