"""Simulator episodes in rosbag2 (mcap), ROS-free: writing with the `rosbags` typestore (the project's
messages registered from their msg/*.msg text) and checking a bag before anything replays it.

    python -m auras_ros.sim.record --episodes N --out DIR [--seed S] [--max-frames F]

A recorded bag holds, per world frame, ``/clock``, ``sim/state`` (ground truth with the expert's action)
and ``camera/image_raw``, and ``sim/score`` per episode; the scripted expert drives the episodes.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from auras_ros.core.errors import InputError
from auras_ros.eval.task import TaskConfig
from auras_ros.sim import messages as m
from auras_ros.sim.world import SimWorld

# What a bag needs for replay + evaluation: the camera and the ground truth.
REQUIRED = {m.IMAGE_TOPIC: m.TYPES[m.IMAGE_TOPIC], m.STATE_TOPIC: m.TYPES[m.STATE_TOPIC]}


class BagError(InputError):
    """A bag that can not be replayed or evaluated; the message names what is missing or broken."""

    def __init__(self, path: Path | str, problem: str) -> None:
        ValueError.__init__(self, f"bag {path}: {problem}")
        self.what, self.where, self.expected, self.got = "bag", str(path), "a replayable simulator bag", problem


def msg_dir() -> Path:
    """The project's .msg files: installed (share/auras_ros/msg) or, in a source tree, msg/."""
    try:
        from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
        installed = Path(get_package_share_directory("auras_ros"), "msg")
        if installed.is_dir():
            return installed
    except (ImportError, LookupError, PackageNotFoundError):  # type: ignore[misc]
        pass
    return Path(__file__).resolve().parents[2] / "msg"


def typestore() -> Any:
    """The Jazzy typestore with every auras_ros message registered from its .msg text."""
    store = get_typestore(Stores.ROS2_JAZZY)
    types: dict = {}
    for path in sorted(msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"auras_ros/msg/{path.stem}"))
    store.register(types)
    return store


def record(out: Path, episodes: int, seed: int = 0, config: TaskConfig = TaskConfig()) -> list[dict]:
    """Record ``episodes`` expert-driven episodes (seeds ``seed ...``) into a new mcap bag at ``out``;
    returns their scores."""
    store = typestore()
    make = lambda type_name, **fields: store.types[type_name](**fields)  # noqa: E731
    world = SimWorld(config, seed, episodes, control="expert")
    try:
        with Writer(out, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
            connections = {topic: writer.add_connection(topic, msgtype, typestore=store)
                           for topic, msgtype in m.TYPES.items()}

            def write(topic: str, msg: Any, seconds: float) -> None:
                writer.write(connections[topic], round(seconds * 1e9), store.serialize_cdr(msg, m.TYPES[topic]))

            frame, scored = world.start(), 0
            while frame is not None:
                for topic, msg in m.frame_messages(make, frame):
                    write(topic, msg, frame.stamp)
                for score in world.scores[scored:]:
                    write(m.SCORE_TOPIC, m.score_message(make, score), frame.stamp)
                scored = len(world.scores)
                frame = world.advance()
    finally:
        world.close()
    return world.scores


def message_class(msgtype: str) -> type:
    """The rclpy class of a ROS type name such as ``sensor_msgs/msg/Image`` (ImportError if unknown)."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except AttributeError as error:
        raise ImportError(str(error)) from None


@dataclass
class BagInfo:
    path: Path
    topics: dict[str, str]  # topic -> type
    counts: dict[str, int]  # topic -> messages actually read
    start_ns: int
    end_ns: int


def check_bag(path: Path | str, required: dict[str, str] = REQUIRED) -> BagInfo:
    """Open and read the whole bag once; BagError naming what is missing (topics, types, ground truth)
    or broken (corrupt files) before anything is published or scored."""
    path = Path(path)
    if not path.exists():
        raise BagError(path, "does not exist")
    try:
        with Reader(path) as reader:
            topics = {c.topic: c.msgtype for c in reader.connections}
            counts = dict.fromkeys(topics, 0)
            start = end = None
            for connection, t_ns, _ in reader.messages():
                counts[connection.topic] += 1
                start = t_ns if start is None else min(start, t_ns)
                end = t_ns if end is None else max(end, t_ns)
    except Exception as error:  # noqa: BLE001  rosbags raises many kinds for damaged files
        raise BagError(path, f"corrupt or unreadable ({type(error).__name__}: {error})") from None
    missing = [f"{topic} ({msgtype})" for topic, msgtype in required.items() if topic not in topics]
    if missing:
        raise BagError(path, f"missing topics: {', '.join(missing)}; it has {sorted(topics) or 'none'}")
    wrong = [f"{topic} is {topics[topic]}, expected {msgtype}" for topic, msgtype in required.items()
             if topics[topic] != msgtype]
    if wrong:
        raise BagError(path, "wrong types: " + "; ".join(wrong))
    unknown = []
    for topic, msgtype in sorted(topics.items()):
        try:
            message_class(msgtype)
        except (ImportError, ValueError):
            unknown.append(f"{topic} ({msgtype})")
    if unknown:
        raise BagError(path, f"unknown message types (not importable here): {', '.join(unknown)}")
    if counts.get(m.STATE_TOPIC, 0) == 0:
        raise BagError(path, f"no ground truth: {m.STATE_TOPIC} holds no messages")
    empty = [topic for topic in required if counts[topic] == 0]
    if empty:
        raise BagError(path, f"no messages on {', '.join(empty)}")
    return BagInfo(path, topics, counts, start, end)


def raw_messages(path: Path) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, type, time ns, serialized CDR) in time order."""
    with Reader(path) as reader:
        for connection, t_ns, raw in reader.messages():
            yield connection.topic, connection.msgtype, t_ns, bytes(raw)
