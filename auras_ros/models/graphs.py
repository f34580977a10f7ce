"""Static-shape calls replayed as CUDA graphs, so a GPU frame is not bound by kernel launches.

:class:`CapturedCall` replays one closure over fixed tensors. :class:`GraphedFunction` wraps a
function of tensors: per input signature (shapes and dtypes) and per calling thread it keeps static
input buffers and one captured call; each call copies the inputs in, replays, and returns a copy of
the output. On the CPU (or with ``enabled=False`` on CUDA) the same buffers are used and the function
runs eagerly, so everything but the capture itself runs, and is tested, without a GPU.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import torch


class CapturedCall:
    """``fn`` reading and writing fixed tensors, replayed as one CUDA graph (or called eagerly on CPU).

    The first ``warmup`` calls run eagerly on a side stream, as PyTorch requires before capture.
    If capture fails (an op that syncs with the host), the call stays eager and ``error`` says why.
    """

    def __init__(self, fn: Callable[[], None], device: torch.device, use_graph: bool, warmup: int = 2) -> None:
        self.fn = fn
        self.graph: torch.cuda.CUDAGraph | None = None
        self.error: str | None = None
        if not (use_graph and device.type == "cuda"):
            return
        side = torch.cuda.Stream(device)
        side.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(side):
            for _ in range(warmup):
                fn()
        torch.cuda.current_stream(device).wait_stream(side)
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn()
            self.graph = graph
        except Exception as exc:  # capture is an optimisation: fall back to eager, but say so
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            torch.cuda.synchronize(device)

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.fn()


@dataclass
class _Entry:
    inputs: tuple[torch.Tensor, ...]
    output: torch.Tensor | None = None
    call: CapturedCall | None = None


class GraphedFunction:
    """``fn(*tensors) -> tensor`` over static buffers, captured per input signature and thread."""

    def __init__(self, fn: Callable[..., torch.Tensor], device: torch.device, enabled: bool = True) -> None:
        self.fn = fn
        self.device = device
        self.enabled = enabled
        self._local = threading.local()  # each thread (PAR worker, stage thread) replays its own graphs

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        entries: dict[tuple, _Entry] = self._local.__dict__.setdefault("entries", {})
        key = tuple((tuple(a.shape), a.dtype) for a in args)
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = self._capture(args)
        for buffer, value in zip(entry.inputs, args):
            buffer.copy_(value, non_blocking=True)
        entry.call()
        return entry.output.clone()

    @property
    def errors(self) -> list[str]:
        """Why capture failed, for the calls of this thread that stayed eager on a GPU."""
        entries = self._local.__dict__.get("entries", {})
        return [e.call.error for e in entries.values() if e.call is not None and e.call.error]

    def _capture(self, args: tuple[torch.Tensor, ...]) -> _Entry:
        entry = _Entry(tuple(a.detach().clone().to(self.device) for a in args))

        def run() -> None:
            entry.output = self.fn(*entry.inputs)

        entry.call = CapturedCall(run, self.device, use_graph=self.enabled)
        return entry
