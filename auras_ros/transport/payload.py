"""What every transport shares: the TensorPayload fields, dtype names, the byte view of a tensor,
validation of a received payload, and the exceptions a receiver counts as drops.

ROS-free: a payload is any object with the TensorPayload.msg field names (the generated
`auras_ros.msg.TensorPayload`, or a plain dataclass in tests).
"""

from __future__ import annotations

import math
import sys
from typing import Any, Protocol, Sequence

import torch

from auras_ros.core.errors import InputError

# Values of TensorPayload.transport (msg/TensorPayload.msg).
INLINE = 0
SHM = 1
IN_PROCESS = 2
TRANSPORT_NAMES = {INLINE: "inline", SHM: "shm", IN_PROCESS: "in_process"}

# dtype names as torch spells them without the "torch." prefix. numpy has no bfloat16, so bytes
# always go through uint8 views of torch tensors, never through numpy dtypes.
DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in ("bool", "uint8", "int8", "int16", "int32", "int64",
                 "float16", "bfloat16", "float32", "float64", "complex64", "complex128")
}
DTYPE_NAMES: dict[torch.dtype, str] = {dtype: name for name, dtype in DTYPES.items()}

_UINT32_MAX = 2**32 - 1

if sys.byteorder != "little":  # the wire format is little-endian bytes of the tensor's memory
    raise ImportError("auras_ros.transport supports little-endian hosts only")


class PayloadFields(Protocol):
    """The fields of msg/TensorPayload.msg that the transports read and write."""

    dtype: str
    shape: Any          # uint32[]: array('I') in a ROS message, any int sequence elsewhere
    transport: int
    data: Any           # uint8[]: array('B') in a ROS message, any bytes-like object elsewhere
    shm_name: str
    shm_offset: int
    shm_generation: int
    nbytes: int
    handle_id: int


class PayloadUnavailable(Exception):
    """A well-formed payload whose tensor is gone by the time it is read; a receiver counts it as a drop."""


class PayloadOverwritten(PayloadUnavailable):
    """The publisher reused the shared-memory slot before this reader copied the tensor out."""

    def __init__(self, shm_name: str, shm_offset: int, expected_generation: int, found_generation: int) -> None:
        self.shm_name = shm_name
        self.shm_offset = shm_offset
        self.expected_generation = expected_generation
        self.found_generation = found_generation
        super().__init__(f"slot at {shm_name}+{shm_offset} was overwritten: written as generation "
                         f"{expected_generation}, now {found_generation}")


class HandleNotFound(PayloadUnavailable):
    """The in-process registry does not hold this handle (evicted, or never issued by it)."""

    def __init__(self, handle_id: int, evicted: bool) -> None:
        self.handle_id = handle_id
        self.evicted = evicted
        why = "was evicted (the registry keeps only the newest tensors)" if evicted else "was never issued by this registry"
        super().__init__(f"tensor handle {handle_id} {why}")


def dtype_name(dtype: torch.dtype, where: str) -> str:
    try:
        return DTYPE_NAMES[dtype]
    except KeyError:
        raise InputError("dtype", where, "one of " + ", ".join(DTYPES), str(dtype)) from None


def host_bytes(tensor: torch.Tensor, where: str) -> torch.Tensor:
    """The tensor's C-contiguous bytes as a flat uint8 CPU tensor (a view when it already is one).

    A CUDA tensor is copied to host memory here: inline and shared-memory payloads carry host bytes.
    """
    if not isinstance(tensor, torch.Tensor):
        raise InputError("tensor", where, "a torch.Tensor", type(tensor).__name__)
    dtype_name(tensor.dtype, where)
    tensor = tensor.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    # reshape(-1) first: view(uint8) of a 0-d tensor, or of elements wider than a byte, needs a 1-d tensor.
    return tensor.contiguous().reshape(-1).view(torch.uint8)


def fill_header(payload: PayloadFields, tensor: torch.Tensor, transport: int, where: str) -> int:
    """Write dtype, shape, transport, nbytes; clear the other transports' fields; return nbytes."""
    if any(d > _UINT32_MAX for d in tensor.shape):
        raise InputError("shape", where, f"dimensions <= {_UINT32_MAX} (uint32)", tuple(tensor.shape))
    nbytes = tensor.numel() * tensor.element_size()
    payload.dtype = dtype_name(tensor.dtype, where)
    payload.shape = list(tensor.shape)
    payload.transport = transport
    payload.nbytes = nbytes
    payload.data = b""
    payload.shm_name = ""
    payload.shm_offset = 0
    payload.shm_generation = 0
    payload.handle_id = 0
    return nbytes


def check_header(payload: PayloadFields, where: str) -> tuple[torch.dtype, tuple[int, ...], int]:
    """Validate dtype, shape and nbytes of a received payload; return (dtype, shape, nbytes)."""
    dtype = DTYPES.get(payload.dtype)
    if dtype is None:
        raise InputError("dtype", where, "one of " + ", ".join(DTYPES), payload.dtype)
    shape = tuple(int(d) for d in payload.shape)
    expected = math.prod(shape) * dtype.itemsize
    if payload.nbytes != expected:
        raise InputError("nbytes", where, f"{expected} for {payload.dtype} of shape {list(shape)}", payload.nbytes)
    return dtype, shape, expected


def from_bytes(buffer: Any, offset: int, dtype: torch.dtype, shape: Sequence[int], nbytes: int) -> torch.Tensor:
    """A tensor viewing nbytes of buffer at offset (no copy; the caller copies where the buffer is reused)."""
    if nbytes == 0:
        return torch.empty(tuple(shape), dtype=dtype)
    flat = torch.frombuffer(buffer, dtype=torch.uint8, count=nbytes, offset=offset)
    return flat.view(dtype).reshape(tuple(shape))
