"""A rosbag2 (mcap) written by `rosbags` with our messages reads back into the rosidl classes.

rosbags serializes with its own CDR implementation from the .msg text, rclpy deserializes with
the generated typesupport: agreement means bags recorded or replayed without ROS stay usable.
"""

from __future__ import annotations

import array
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from auras_ros.nodes.roundtrip_samples import SAMPLES

MSG_DIR = Path(get_package_share_directory("auras_ros"), "msg")


@pytest.fixture(scope="module")
def typestore():
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for path in sorted(MSG_DIR.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"auras_ros/msg/{path.stem}"))
    store.register(types)
    return store


def type_name(msg: Any) -> str:
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


def to_rosbags(msg: Any, store) -> Any:
    """Rebuild a rosidl message as the typestore's class, field by field."""
    fields = {}
    for name in msg.get_fields_and_field_types():
        value = getattr(msg, name)
        if hasattr(value, "get_fields_and_field_types"):
            value = to_rosbags(value, store)
        elif isinstance(value, list) and value and hasattr(value[0], "get_fields_and_field_types"):
            value = [to_rosbags(v, store) for v in value]
        elif isinstance(value, (array.array, np.ndarray)):
            value = np.asarray(value)  # keeps the element type (uint8, float64, ...)
        fields[name] = value
    return store.types[type_name(msg)](**fields)


def test_type_hashes_match_rosidl(typestore):
    """rosbags derives the same RIHS01 type hashes from the .msg text as rosidl did at build."""
    for path in sorted(MSG_DIR.glob("*.json")):
        name = f"auras_ros/msg/{path.stem}"
        generated = {h["type_name"]: h["hash_string"] for h in json.loads(path.read_text())["type_hashes"]}
        assert typestore.hash_rihs01(name) == generated[name]


def test_mcap_bag_reads_back_into_generated_classes(typestore, tmp_path):
    bag = tmp_path / "bag"
    with Writer(bag, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for t_ns, sample in enumerate(SAMPLES.values(), start=1):
            msg = sample.make()
            conn = writer.add_connection(sample.topic, type_name(msg), typestore=typestore)
            writer.write(conn, t_ns * 1_000_000, typestore.serialize_cdr(to_rosbags(msg, typestore), type_name(msg)))

    assert list(bag.glob("*.mcap")), "the bag should use mcap storage"
    by_topic = {s.topic: s for s in SAMPLES.values()}
    seen = []
    with Reader(bag) as reader:
        for conn, _, raw in reader.messages():
            sample = by_topic[conn.topic]
            assert deserialize_message(bytes(raw), sample.msg_type) == sample.make()
            seen.append(conn.topic)
    assert sorted(seen) == sorted(by_topic)
