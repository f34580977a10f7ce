"""Inline transport: the tensor's bytes travel in TensorPayload.data; works across hosts."""

from __future__ import annotations

from array import array

import torch

from auras_ros.core.errors import InputError
from auras_ros.transport.payload import INLINE, PayloadFields, check_header, fill_header, from_bytes, host_bytes


def pack_inline(tensor: torch.Tensor, payload: PayloadFields) -> None:
    """Copy the tensor's bytes into payload.data (a CUDA tensor is first copied to host).

    One memcpy: the generated message keeps an array('B') as is, and rosidl's C conversion reads
    it through the buffer protocol. Measured on a 4.7 MB tensor: bytes 2.1 ms, array assigned
    after filling 0.3 ms (the setter copies it), empty array assigned then filled 0.1 ms, numpy
    array 390 ms (converted element by element).
    """
    src = host_bytes(tensor, "inline pack")
    fill_header(payload, tensor, INLINE, "inline pack")
    payload.data = array("B")
    # numpy's memcpy: torch's copy of a few MB was 10x slower on a busy 2-core machine (its thread pool).
    payload.data.frombytes(memoryview(src.numpy()))


def unpack_inline(payload: PayloadFields) -> torch.Tensor:
    """A tensor viewing payload.data: no copy; it keeps the buffer alive and shares its memory.

    A read-only buffer (e.g. bytes) is copied once, since torch tensors assume writable memory.
    """
    dtype, shape, nbytes = check_header(payload, "inline unpack")
    try:
        view = memoryview(payload.data).cast("B")
    except TypeError:
        raise InputError("data", "inline unpack", "a bytes-like object", type(payload.data).__name__) from None
    if len(view) != nbytes:
        raise InputError("data", "inline unpack", f"{nbytes} bytes (nbytes)", f"{len(view)} bytes")
    buffer = payload.data if not view.readonly else bytearray(view)
    return from_bytes(buffer, 0, dtype, shape, nbytes)
