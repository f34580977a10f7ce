"""The largest message Fast DDS carries between two processes on one host, read from the profile in effect.

Measured here (rmw_fastrtps_cpp, Fast DDS 2.14, best effort, 30 Hz): a message passes between processes
when it fits the *publishing* process's shared-memory segment. Fast DDS cuts every message into 64 KB
fragments and writes all of them into that segment at once; when the message is larger, fragments are
recycled before the reader took them unless it keeps up, and the whole message is lost (520,000 B
through the default 524,288 B segment: 30 of 30 delivered; 600,000 B: 0 of 30; 2.2 MB through a 2 MB
segment: 5 of 30). The subscriber sees at most a ``message_lost`` event, and none at all when nothing
follows the lost message.

The segment is Fast DDS's default (512 KB) unless ``FASTRTPS_DEFAULT_PROFILES_FILE`` names an XML
profile whose default participant uses an SHM transport descriptor with a ``segment_size``
(config/fastdds_shm_profile.xml: 32 MB). ROS-free: reads the environment and the XML file only.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from typing import Any, Mapping

PROFILES_ENV = "FASTRTPS_DEFAULT_PROFILES_FILE"
FASTDDS_DEFAULT_SEGMENT = 512 * 1024  # SharedMemTransport's segment when none is configured


@dataclass(frozen=True)
class MessageLimit:
    """The largest message (bytes) that reaches another process on this host, and where that comes from."""

    nbytes: int
    source: str

    def describe(self) -> str:
        return f"{self.nbytes:,} B ({self.source})"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]  # the XML namespace of Fast DDS profiles is optional


def _children(element: Any, name: str) -> list[Any]:
    return [child for child in element.iter() if _local(child.tag) == name]


def segment_limit(env: Mapping[str, str] | None = None) -> MessageLimit:
    """The publishing side's shared-memory segment under ``env`` (default: this process's environment).

    A profile that cannot be read leaves Fast DDS on its defaults too (it logs its own error), so the
    default segment is the answer then, said so in ``source``."""
    env = os.environ if env is None else env
    path = env.get(PROFILES_ENV, "")
    default = MessageLimit(FASTDDS_DEFAULT_SEGMENT, f"Fast DDS's default shared-memory segment: {PROFILES_ENV} "
                                                    "is not set")
    if not path:
        return default
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        return MessageLimit(FASTDDS_DEFAULT_SEGMENT, f"Fast DDS's default shared-memory segment: {PROFILES_ENV}="
                                                     f"{path} is unreadable ({error})")
    segments = {}
    for descriptor in _children(root, "transport_descriptor"):
        ids, kinds, sizes = (_children(descriptor, name) for name in ("transport_id", "type", "segment_size"))
        if ids and kinds and (kinds[0].text or "").strip() == "SHM":
            size = (sizes[0].text or "").strip() if sizes else ""
            segments[(ids[0].text or "").strip()] = int(size) if size.isdigit() else FASTDDS_DEFAULT_SEGMENT
    for participant in _children(root, "participant"):
        if participant.get("is_default_profile") != "true":
            continue
        used = [(t.text or "").strip() for t in _children(participant, "transport_id")]
        shm = [segments[name] for name in used if name in segments]
        if shm:
            return MessageLimit(min(shm), f"shared-memory segment_size in {path}")
    return MessageLimit(FASTDDS_DEFAULT_SEGMENT, f"Fast DDS's default shared-memory segment: {path} sets none "
                                                 "for its default participant")


def message_bytes(msg: Any) -> int:
    """About a message's serialized size: all of it for a serialized message (bytes, as a bag player
    publishes them), else its ``data`` field (an image's pixels or compressed bytes), which dwarfs the
    rest of any message this check is for."""
    if isinstance(msg, (bytes, bytearray, memoryview)):
        return len(msg)
    data = getattr(msg, "data", b"")
    return len(data) if hasattr(data, "__len__") else 0
