"""In-process handles: composed nodes pass tensors by id through a registry they share; no copy."""

from __future__ import annotations

import threading
from collections import OrderedDict

import torch

from auras_ros.core.errors import InputError, positive_int
from auras_ros.transport.payload import IN_PROCESS, HandleNotFound, PayloadFields, check_header, fill_header


class HandleRegistry:
    """The newest `capacity` tensors published in this process, by handle id (1, 2, ...; 0 = none).

    The composed process creates one and hands it to every node; there is no global registry, so
    two composed graphs in one process (e.g. in tests) never see each other's tensors.
    Thread-safe: a MultiThreadedExecutor publishes and reads from several threads.
    """

    def __init__(self, capacity: int = 16) -> None:
        positive_int("capacity", capacity)
        self.capacity = capacity
        self._tensors: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._last_id = 0
        self._lock = threading.Lock()

    def put(self, tensor: torch.Tensor) -> int:
        with self._lock:
            self._last_id += 1
            self._tensors[self._last_id] = tensor
            if len(self._tensors) > self.capacity:
                self._tensors.popitem(last=False)
            return self._last_id

    def get(self, handle_id: int) -> torch.Tensor:
        with self._lock:
            tensor = self._tensors.get(handle_id)
            if tensor is None:
                raise HandleNotFound(handle_id, evicted=0 < handle_id <= self._last_id)
            return tensor

    def __len__(self) -> int:
        with self._lock:
            return len(self._tensors)

    def clear(self) -> None:
        with self._lock:
            self._tensors.clear()


def pack_in_process(registry: HandleRegistry, tensor: torch.Tensor, payload: PayloadFields) -> None:
    """Register the tensor as is (any device, no copy); receivers must treat it as read-only."""
    if not isinstance(tensor, torch.Tensor):
        raise InputError("tensor", "in_process pack", "a torch.Tensor", type(tensor).__name__)
    fill_header(payload, tensor, IN_PROCESS, "in_process pack")
    payload.handle_id = registry.put(tensor)


def unpack_in_process(registry: HandleRegistry, payload: PayloadFields) -> torch.Tensor:
    dtype, shape, _ = check_header(payload, "in_process unpack")
    if payload.handle_id == 0:
        raise InputError("handle_id", "in_process unpack", "an id >= 1 (0 means none)", 0)
    tensor = registry.get(payload.handle_id)
    if tensor.dtype != dtype or tuple(tensor.shape) != shape:
        raise InputError("handle_id", "in_process unpack",
                         f"a {payload.dtype} tensor of shape {list(shape)}",
                         f"{str(tensor.dtype).removeprefix('torch.')} of shape {list(tensor.shape)}")
    return tensor
