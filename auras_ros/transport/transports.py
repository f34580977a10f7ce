"""The transports nodes use: one object per publisher/subscriber, chosen by the `transport` parameter.

pack() uses the chosen kind; unpack() follows the payload's own `transport` field, so a subscriber
reads whatever its publisher chose (in_process only when it was given the publisher's registry).
"""

from __future__ import annotations

from typing import Optional, Protocol

import torch

from auras_ros.core.errors import ConfigError, InputError, one_of, positive_int
from auras_ros.transport.in_process import HandleRegistry, pack_in_process, unpack_in_process
from auras_ros.transport.inline import pack_inline, unpack_inline
from auras_ros.transport.payload import IN_PROCESS, INLINE, SHM, TRANSPORT_NAMES, PayloadFields
from auras_ros.transport.shm import SHM_DIR, ShmPool, ShmReader

TRANSPORTS = ("inline", "shm", "in_process")


class TensorTransport(Protocol):
    name: str

    def pack(self, tensor: torch.Tensor, payload: PayloadFields) -> None: ...

    def unpack(self, payload: PayloadFields) -> torch.Tensor: ...

    def close(self) -> None: ...


class PayloadReader:
    """Unpacks a payload of any transport kind; owns the shared-memory mappings it opened."""

    def __init__(self, registry: Optional[HandleRegistry] = None, shm_dir: str = SHM_DIR) -> None:
        self.registry = registry
        self.shm = ShmReader(shm_dir)

    def unpack(self, payload: PayloadFields) -> torch.Tensor:
        kind = payload.transport
        if kind == INLINE:
            return unpack_inline(payload)
        if kind == SHM:
            return self.shm.unpack(payload)
        if kind == IN_PROCESS:
            if self.registry is None:
                raise InputError("transport", "unpack", "inline or shm: this receiver shares no in-process "
                                 "registry with its publisher", "in_process")
            return unpack_in_process(self.registry, payload)
        raise InputError("transport", "unpack", one_of(f"{v} ({n})" for v, n in TRANSPORT_NAMES.items()), kind)

    def close(self) -> None:
        self.shm.close()


class InlineTransport:
    """Bytes in the message (any host). A CUDA tensor is copied to host memory."""

    name = "inline"

    def __init__(self, reader: PayloadReader) -> None:
        self.reader = reader

    def pack(self, tensor: torch.Tensor, payload: PayloadFields) -> None:
        pack_inline(tensor, payload)

    def unpack(self, payload: PayloadFields) -> torch.Tensor:
        return self.reader.unpack(payload)

    def close(self) -> None:
        self.reader.close()


class ShmTransport:
    """Bytes in this process's shared-memory pool (same host). A CUDA tensor is copied to host memory.

    The pool is created on the first pack, so a subscriber-only transport owns no segment.
    """

    name = "shm"

    def __init__(self, reader: PayloadReader, slot_count: int, slot_bytes: int, shm_dir: str) -> None:
        self.reader = reader
        self.slot_count = slot_count
        self.slot_bytes = slot_bytes
        self.shm_dir = shm_dir
        self.pool: Optional[ShmPool] = None

    def pack(self, tensor: torch.Tensor, payload: PayloadFields) -> None:
        if self.pool is None:
            self.pool = ShmPool(self.slot_count, self.slot_bytes, self.shm_dir)
        self.pool.pack(tensor, payload)

    def unpack(self, payload: PayloadFields) -> torch.Tensor:
        return self.reader.unpack(payload)

    def close(self) -> None:
        self.reader.close()
        if self.pool is not None:
            self.pool.close()


class InProcessTransport:
    """A handle into the registry the composed nodes share: no copy, any device."""

    name = "in_process"

    def __init__(self, reader: PayloadReader, registry: HandleRegistry) -> None:
        self.reader = reader
        self.registry = registry

    def pack(self, tensor: torch.Tensor, payload: PayloadFields) -> None:
        pack_in_process(self.registry, tensor, payload)

    def unpack(self, payload: PayloadFields) -> torch.Tensor:
        return self.reader.unpack(payload)

    def close(self) -> None:
        self.reader.close()


def make_transport(name: str, *, registry: Optional[HandleRegistry] = None, slot_count: int = 4,
                   slot_bytes: int = 8 << 20, shm_dir: str = SHM_DIR) -> TensorTransport:
    """The transport a node's `transport` parameter names.

    registry: the composed process's HandleRegistry; required for "in_process", and lets any
    transport unpack in-process payloads. slot_count, slot_bytes: the shm pool's size.
    """
    if name not in TRANSPORTS:
        raise ConfigError("transport", name, one_of(TRANSPORTS))
    if registry is not None and not isinstance(registry, HandleRegistry):
        raise ConfigError("registry", registry, "a HandleRegistry")
    if name == "shm":
        # Checked here, not on the first pack, so a bad parameter stops the node at startup.
        if not isinstance(slot_count, int) or slot_count < 2:
            raise ConfigError("slot_count", slot_count, "an integer >= 2")
        positive_int("slot_bytes", slot_bytes)
        return ShmTransport(PayloadReader(registry, shm_dir), slot_count, slot_bytes, shm_dir)
    if name == "in_process":
        if registry is None:
            raise ConfigError("registry", None, "the HandleRegistry the composed nodes share")
        return InProcessTransport(PayloadReader(registry, shm_dir), registry)
    return InlineTransport(PayloadReader(registry, shm_dir))
