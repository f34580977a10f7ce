"""Context values across topics: tensors through the node's tensor transport, text inline as UTF-8."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from auras_ros.nodes.params import Param
from auras_ros.transport import INLINE, TRANSPORTS, HandleRegistry, cleanup_stale_segments, make_transport

TEXT_DTYPE = "utf-8"  # TensorPayload.dtype of a text value (e.g. the instruction)


def transport_params() -> tuple[Param, ...]:
    return (
        Param("transport", "inline", "how tensors cross topics: inline bytes (any host), shm (same host), "
              "in_process (composed nodes only)", choices=TRANSPORTS),
        Param("shm_slots", 8, "shared-memory pool: slots (bounded; reused round-robin)", low=2, high=1024),
        Param("shm_slot_bytes", 8 << 20, "shared-memory pool: bytes per slot (largest tensor)", low=1, high=1 << 32),
    )


class PayloadCodec:
    """Encode a context value into a TensorPayload message and back. Decoding follows the payload's
    own transport field, so a reader understands every publisher."""

    def __init__(self, params: dict[str, Any], registry: HandleRegistry | None = None) -> None:
        if params["transport"] == "shm":
            # Segments of publishers that died (SIGKILL, a crash) would otherwise stay in /dev/shm.
            cleanup_stale_segments()
        self.transport = make_transport(params["transport"], registry=registry, slot_count=params["shm_slots"],
                                        slot_bytes=params["shm_slot_bytes"])

    def encode(self, value: Any, payload: Any) -> None:
        if isinstance(value, str):
            payload.transport = INLINE
            payload.dtype = TEXT_DTYPE
            payload.data = value.encode()
            payload.nbytes = len(payload.data)
            payload.shape = [len(payload.data)]
            return
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value)
        self.transport.pack(value, payload)

    def decode(self, payload: Any) -> Any:
        if payload.dtype == TEXT_DTYPE:
            return bytes(payload.data).decode()
        return self.transport.unpack(payload)

    @property
    def truncated_reads(self) -> int:
        """Shared-memory reads refused because another process truncated the segment (every transport
        reads through one PayloadReader)."""
        return self.transport.reader.shm.truncated

    def close(self) -> None:
        self.transport.close()
