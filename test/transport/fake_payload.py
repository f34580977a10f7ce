"""A plain stand-in for msg/TensorPayload, for transport tests without ROS."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FakePayload:
    """The fields of msg/TensorPayload.msg, without ROS."""

    dtype: str = ""
    shape: list[int] = field(default_factory=list)
    transport: int = 0
    data: Any = b""
    shm_name: str = ""
    shm_offset: int = 0
    shm_generation: int = 0
    nbytes: int = 0
    handle_id: int = 0
