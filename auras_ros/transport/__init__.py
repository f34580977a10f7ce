"""Tensors across topics (msg/TensorPayload.msg): inline bytes (any host), POSIX shared memory
(same host), an in-process handle (composed nodes). ROS-free: imports torch and numpy only.

    transport = make_transport(node_parameter, registry=registry_if_composed)
    transport.pack(tensor, msg.tensor)      # publisher
    tensor = transport.unpack(msg.tensor)   # subscriber: follows msg.tensor.transport

unpack raises InputError (core.errors) naming the bad field for malformed payloads, and a
PayloadUnavailable (PayloadOverwritten, HandleNotFound, SegmentMissing) for a tensor that is
gone by the time it is read; a node counts both as drops.
"""

from auras_ros.transport.in_process import HandleRegistry
from auras_ros.transport.payload import (
    DTYPES, IN_PROCESS, INLINE, SHM, HandleNotFound, PayloadOverwritten, PayloadUnavailable)
from auras_ros.transport.shm import SegmentMissing, ShmPool, ShmReader, cleanup_stale_segments
from auras_ros.transport.transports import TRANSPORTS, PayloadReader, TensorTransport, make_transport

__all__ = [
    "DTYPES", "INLINE", "SHM", "IN_PROCESS", "TRANSPORTS",
    "HandleRegistry", "HandleNotFound", "PayloadOverwritten", "PayloadUnavailable", "SegmentMissing",
    "ShmPool", "ShmReader", "PayloadReader", "TensorTransport", "make_transport", "cleanup_stale_segments",
]
