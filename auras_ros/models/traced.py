"""A module run as a TorchScript trace, one per input signature: for small models on the CPU.

A small denoiser spends most of its time in Python between torch calls, and only one thread of a process
runs Python at a time. Traced, its forward runs as one graph in C++: no Python between the operators, and
the interpreter's lock released for the whole call, so the agent's other threads (perception, the nodes'
executors) run beside it instead of out of its time (``bench.gil_share``: the shipped diffusion policy's
request 12.6 ms eager, about 6 ms traced, bit for bit the same actions on the CPU).

A trace records the operators one call ran, with the shapes of that call: so one trace per signature
(shapes, dtypes, devices of the arguments), made on its first call. A trace would also freeze a branch
taken on a value Python read from a tensor (an ``if`` on a tensor, ``.item()``); torch's TracerWarning
cannot tell that from a harmless check of a shape (``group_norm`` does one), so each new trace is checked
instead: on two other inputs of its signature it must give exactly what the module gives, or the module
is not traced at all and runs eagerly, once said in the log (:attr:`refused`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from typing import Hashable

import torch

log = logging.getLogger(__name__)


def signature(args: tuple[torch.Tensor, ...]) -> Hashable:
    return tuple((tuple(a.shape), a.dtype, a.device) for a in args)


class TracedModule:
    """Calls ``module`` through a trace per argument signature (see the module doc); eagerly when the
    module cannot be traced faithfully. Thread-safe: a signature is traced once, under a lock."""

    def __init__(self, module: torch.nn.Module, name: str) -> None:
        self.module = module
        self.name = name
        self.refused: str | None = None  # why the module runs eagerly (a trace would freeze a value)
        self._traces: dict[Hashable, torch.jit.ScriptModule] = {}
        self._lock = threading.Lock()

    @property
    def traces(self) -> int:
        return len(self._traces)

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        if self.refused is not None:
            return self.module(*args)
        key = signature(args)
        trace = self._traces.get(key)
        if trace is None:
            trace = self._trace(key, args)
            if trace is None:
                return self.module(*args)
        return trace(*args)

    def _trace(self, key: Hashable, args: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule | None:
        with self._lock:
            if key in self._traces or self.refused is not None:
                return self._traces.get(key)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", torch.jit.TracerWarning)  # checked below instead
                # torch 2.x deprecates TorchScript for torch.compile/export; the pinned 2.13 traces as ever.
                warnings.simplefilter("ignore", DeprecationWarning)
                trace = torch.jit.trace(self.module, tuple(a.detach().clone() for a in args), check_trace=False)
            for scale in (-1.7, 0.6):
                other = tuple(_other_input(a, scale) for a in args)
                try:
                    faithful = torch.equal(trace(*other), self.module(*other))
                except Exception as error:  # noqa: BLE001 - whatever fails, the eager module is the answer
                    faithful, why = False, f"{type(error).__name__}: {error}"
                else:
                    why = "another input of the same shapes gave another result than the module"
                if not faithful:
                    self.refused = why
                    log.warning("%s runs eagerly, not traced: %s", self.name, why)
                    return None
            self._traces[key] = trace
            return trace


def _other_input(tensor: torch.Tensor, scale: float) -> torch.Tensor:
    """An input of the same signature with other values: floats scaled and shifted, integers shifted."""
    if tensor.is_floating_point():
        return tensor.detach() * scale + 0.25
    return tensor.detach() + (1 if scale > 0 else 2)
