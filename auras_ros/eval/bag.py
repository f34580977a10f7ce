"""rosbag2 bags, ROS-free: recording the simulator's episodes, and opening any robot's bag for replay
and evaluation through a topic map.

    python -m auras_ros.eval.record --episodes N --out DIR [--seed S] [--max-frames F]

**Any bag in.** A :class:`TopicMap` names the bag's camera topic (``sensor_msgs/Image`` or
``sensor_msgs/CompressedImage``), optionally its robot state (``sensor_msgs/JointState``) and its
reference: what the robot did (``geometry_msgs/Twist`` or ``TwistStamped``, ``sensor_msgs/JointState``,
``trajectory_msgs/JointTrajectory``, or the simulator's ``auras_ros/SimState`` with the expert's action),
with one field path per action index. Topic names match with or without the leading ``/`` (``ros2 bag
record`` writes ``/camera/image_raw``, older project bags ``camera/image_raw``).

**Types come from the reader, never from imports.** Message types resolve only among the rosbags
Jazzy typestore, this package's messages and the definitions the bag itself carries; a type name in a
bag is never imported as a Python module.

**Checked before use.** :func:`check_bag` reads the whole bag once: every message whose type is known is
decoded (random bytes in a message fail the CDR decode), mcap CRCs (chunks, data section, summary) are
checked where the writer stored them, every camera image is decoded (those that do not decode are listed, to be skipped and
counted), and the reference fields are resolved. Anything missing or broken raises one BagError line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import yaml
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from auras_ros.core.errors import InputError
from auras_ros.core.inputs import InputSpec
from auras_ros.eval.task_config import TaskConfig
from auras_ros.transport.images import to_rgb
from auras_ros.eval import messages as m
from auras_ros.eval.bag_writer import mcap_bag, section_crcs
from auras_ros.eval.scoring import ReferenceSeries
from auras_ros.eval.world import SimWorld

IMAGE, COMPRESSED = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage"
JOINT_STATE, SIM_STATE = "sensor_msgs/msg/JointState", "auras_ros/msg/SimState"
CAMERA_TYPES = (IMAGE, COMPRESSED)
STATE_TYPES = (JOINT_STATE,)
REFERENCE_TYPES = ("geometry_msgs/msg/Twist", "geometry_msgs/msg/TwistStamped", JOINT_STATE,
                   "trajectory_msgs/msg/JointTrajectory", SIM_STATE)
# Where the graph reads each input: image_transport's names for the raw and the compressed stream.
GRAPH_CAMERA = {IMAGE: m.IMAGE_TOPIC, COMPRESSED: m.IMAGE_TOPIC + "/compressed"}
GRAPH_STATE = m.JOINTS_TOPIC
MAX_IMAGE_PIXELS = 4096 * 4096
DEFAULT_FRAME_PERIOD = 0.05  # s, for a bag with a single image
# Fast CDR pads a message's end to the alignment of its widest member: up to 8 bytes after the data.
CDR_TRAILING_BYTES = 8

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_]\w*)|\[([^\]]+)\]")


class BagError(InputError):
    """A bag that can not be replayed or evaluated; the message names what is missing or broken."""

    def __init__(self, path: Path | str, problem: str) -> None:
        ValueError.__init__(self, f"bag {path}: {problem}")
        self.what, self.where, self.expected, self.got = "bag", str(path), "a replayable bag", problem


# ---- the topic map ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class TopicMap:
    """Which bag topics feed the graph's inputs, and how actions compare with what the robot did.

    ``reference_fields[i]`` is the reference field that action index ``i`` is compared with ("" skips
    that index), e.g. ``linear.x``, ``position[elbow_joint]`` (a joint by name), ``position[2]``,
    ``points[0].positions[elbow_joint]`` (a trajectory's first point). ``reference_scale[i]`` converts
    the action into the field's unit (reference ≈ scale × action; default 1).
    """

    camera: str
    state: str = ""
    reference: str = ""
    reference_fields: tuple[str, ...] = ()
    reference_scale: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.camera:
            raise InputError("topic map camera", "topic map", "the bag's camera topic", self.camera)
        if self.reference_fields and not self.reference:
            raise InputError("topic map reference", "topic map", "a reference topic for reference_fields", "''")
        if self.reference and not any(self.reference_fields):
            raise InputError("topic map reference_fields", "topic map",
                             f"one field of {self.reference} per action index (e.g. [linear.x, angular.z])",
                             list(self.reference_fields))
        if self.reference_scale and len(self.reference_scale) != len(self.reference_fields):
            raise InputError("topic map reference_scale", "topic map",
                             f"{len(self.reference_fields)} factors, one per reference field", list(self.reference_scale))
        for path in self.reference_fields:
            if path:
                parse_field(path)

    @property
    def scale(self) -> tuple[float, ...]:
        return self.reference_scale or (1.0,) * len(self.reference_fields)

    @classmethod
    def from_dict(cls, values: dict, where: str = "topic map") -> "TopicMap":
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError("topic map keys", where, f"keys among {sorted(known)}", unknown)
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
        if "reference_scale" in fields:
            fields["reference_scale"] = tuple(float(v) for v in fields["reference_scale"])
        if "reference_fields" in fields:
            fields["reference_fields"] = tuple("" if v is None else str(v) for v in fields["reference_fields"])
        return cls(**fields)

    @classmethod
    def load(cls, path: Path | str) -> "TopicMap":
        """A topic map YAML file (keys: camera, state, reference, reference_fields, reference_scale)."""
        try:
            values = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as error:
            raise InputError("topic map file", str(path), "a readable YAML mapping (write field paths with "
                             "brackets as block list items or quoted)", " ".join(str(error).split())) from None
        if not isinstance(values, dict):
            raise InputError("topic map file", str(path), "a YAML mapping", type(values).__name__)
        return cls.from_dict(values, str(path))


@dataclass(frozen=True)
class JointName:
    """An index written as a joint's name: its position in the message's ``name`` or ``joint_names``."""

    name: str


def parse_field(path: str) -> list[str | int | JointName]:
    """``points[0].positions[elbow]`` → ["points", 0, "positions", JointName("elbow")]."""
    tokens: list[str | int | JointName] = []
    position = 0
    for match in _PATH_TOKEN.finditer(path):
        if match.start() != position:
            break
        name, index = match.groups()
        if name is not None:
            tokens.append(name)
        else:
            index = index.strip()
            tokens.append(int(index) if index.lstrip("-").isdigit() else JointName(index))
        position = match.end()
    if position != len(path) or not tokens or not isinstance(tokens[0], str):
        raise InputError("reference field", "topic map", "a field path like linear.x, position[2], "
                         "position[joint_name] or points[0].positions[joint_name]", path)
    return tokens


def field_value(msg: Any, path: str) -> float:
    """The float at ``path`` in ``msg``; NaN when this message lacks it (a joint not in this message, an
    empty trajectory); AttributeError when the type has no such field."""
    value: Any = msg
    for token in parse_field(path):
        if isinstance(token, str):
            value = getattr(value, token)
            continue
        if isinstance(token, JointName):
            names = list(getattr(msg, "name", None) or getattr(msg, "joint_names", None) or [])
            if token.name not in names:
                return float("nan")
            token = names.index(token.name)
        if not -len(value) <= token < len(value):
            return float("nan")
        value = value[token]
    return float(value)


# The simulator's own bags: the camera, and the expert's (vx, vy) as the reference of action row 0.
SIM_TOPIC_MAP = TopicMap(camera="/" + m.IMAGE_TOPIC, reference="/" + m.STATE_TOPIC,
                         reference_fields=("expert_action[0]", "expert_action[1]"))


# ---- types and decoding ------------------------------------------------------------------------------

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


def register_bag_types(store: Any, connections: Any) -> list[str]:
    """Register the definitions a bag carries for types the store lacks; the types left unknown."""
    unknown = []
    for connection in connections:
        if connection.msgtype in store.types:
            continue
        try:
            store.register(get_types_from_msg(connection.msgdef.data, connection.msgtype))
        except Exception:  # noqa: BLE001  a missing or unparsable definition: the type stays unknown
            unknown.append(connection.msgtype)
    return unknown


def decode(store: Any, raw: bytes | memoryview, msgtype: str) -> Any:
    """A CDR message as a rosbags object; ValueError for bytes that are not one message of this type."""
    if len(raw) < 4 or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError("not a CDR encapsulation header")
    msgdef = store.get_msgdef(msgtype)
    decoder = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    try:
        message, consumed = decoder(raw[4:], 0, msgdef.cls, store)
    except Exception as error:  # noqa: BLE001  struct, unicode, index errors: all mean damaged bytes
        raise ValueError(f"{type(error).__name__}: {error}") from None
    if not 0 <= len(raw) - 4 - consumed <= CDR_TRAILING_BYTES:
        raise ValueError(f"{len(raw) - 4 - consumed} bytes left after the message")
    return message


def stamp_of(msg: Any, log_ns: int) -> float:
    """A message's sensor stamp (header, when it has a non-zero one) else its log time, in seconds."""
    header = getattr(msg, "header", None)
    if header is not None and (header.stamp.sec or header.stamp.nanosec):
        return header.stamp.sec + header.stamp.nanosec * 1e-9
    return log_ns * 1e-9


def _check_mcap_crcs(path: Path) -> None:
    """Every CRC of every mcap file where the writer stored one (0: not stored): each chunk's and the data
    section's (rosbag2's writer and our recorder store them), and the summary's (our recorder does)."""
    from mcap.stream_reader import StreamReader
    for file in sorted(path.glob("*.mcap")):
        with open(file, "rb") as stream:
            for _ in StreamReader(stream, skip_magic=False, validate_crcs=True).records:
                pass
            crcs = section_crcs(stream)
            if crcs is None:  # no summary section: the stream reader checked everything there is
                continue
            stream.seek(crcs.summary_crc_at)
            stored = int.from_bytes(stream.read(4), "little")
            if stored and stored != crcs.summary_crc:
                raise ValueError(f"{file.name}: summary CRC {stored:#010x}, computed {crcs.summary_crc:#010x}")


# ---- checking a bag ------------------------------------------------------------------------------

@dataclass
class BagInfo:
    path: Path
    topic_map: TopicMap
    topics: dict[str, str]  # topic -> type, as in the bag
    counts: dict[str, int]  # topic -> messages actually read
    start_ns: int
    end_ns: int
    camera: str  # the bag's camera topic as spelled in the bag
    camera_type: str
    state: str = ""
    reference: ReferenceSeries | None = None
    bad_images: dict[int, str] = field(default_factory=dict)  # camera message index -> why it does not decode
    unknown_types: list[str] = field(default_factory=list)  # not in the typestore, no usable definition
    camera_stamps: list[float] = field(default_factory=list)  # sensor stamps of every camera message
    camera_log_times: list[float] = field(default_factory=list)  # and their log times (s), the replay's clock

    @property
    def frame_period(self) -> float:
        """The camera's median interval: one frame of the replayed pipeline."""
        intervals = np.diff(sorted(self.camera_stamps))
        intervals = intervals[intervals > 0]
        return float(np.median(intervals)) if len(intervals) else DEFAULT_FRAME_PERIOD

    @property
    def stamp_lag(self) -> float:
        """Median of log time minus header stamp over the camera messages (s): how far the sensor stamps
        lag the replay's clock (ages include it)."""
        return float(np.median(np.subtract(self.camera_log_times, self.camera_stamps))) if self.camera_stamps else 0.0

    @property
    def images(self) -> int:
        return self.counts[self.camera]

    def graph_topic(self, topic: str) -> str | None:
        """The graph input a bag topic feeds (None: not replayed)."""
        if topic == self.camera:
            return GRAPH_CAMERA[self.camera_type]
        if topic == self.state and self.state:
            return GRAPH_STATE
        return None


def find_topic(topics: dict[str, str], name: str) -> str | None:
    """The bag's spelling of ``name``: ``/camera/image_raw`` and ``camera/image_raw`` are one topic."""
    if name in topics:
        return name
    return next((t for t in topics if t.lstrip("/") == name.lstrip("/")), None)


def check_bag(path: Path | str, topic_map: TopicMap = SIM_TOPIC_MAP, need_reference: bool = True) -> BagInfo:
    """Open and read the whole bag once; BagError naming what is missing (topics, types, reference) or
    broken (damaged files, undecodable messages) before anything is published or scored."""
    if not str(path):
        raise BagError("''", "no bag given: expected a rosbag2 directory")
    path = Path(path)
    if not path.exists():
        raise BagError(path, "does not exist")
    if path.is_file() and path.suffix == ".bag":
        raise BagError(path, f"a ROS 1 bag, which rosbag2 readers do not open: convert it first, e.g. rosbags-convert "
                             f"--src {path} --dst {path.with_suffix('')}_rosbag2 --dst-storage mcap")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as error:  # noqa: BLE001  rosbags raises many kinds for damaged files
        raise BagError(path, f"corrupt or unreadable ({type(error).__name__}: {error})") from None
    try:
        topics = {c.topic: c.msgtype for c in reader.connections}
        info = _resolve_topics(path, topics, topic_map, need_reference)
        store = typestore()
        info.unknown_types = register_bag_types(store, reader.connections)
        _read_all(reader, store, info)
    finally:
        reader.close()
    if path.is_dir() and any(path.glob("*.mcap")):
        try:
            _check_mcap_crcs(path)
        except Exception as error:  # noqa: BLE001
            raise BagError(path, f"corrupt ({type(error).__name__}: {error})") from None
    _check_contents(info, need_reference)
    return info


def _resolve_topics(path: Path, topics: dict[str, str], topic_map: TopicMap, need_reference: bool) -> BagInfo:
    has = f"it has {', '.join(f'{t} ({k})' for t, k in sorted(topics.items())) or 'no topics'}"
    wanted = [("camera", topic_map.camera, CAMERA_TYPES), ("state", topic_map.state, STATE_TYPES)]
    if need_reference:
        if not topic_map.reference:
            raise BagError(path, "the topic map names no reference topic, which evaluation needs")
        wanted.append(("reference", topic_map.reference, REFERENCE_TYPES))
    found: dict[str, str] = {}
    for role, name, types in wanted:
        if not name:
            continue
        topic = find_topic(topics, name)
        if topic is None:
            raise BagError(path, f"missing {role} topic {name}; {has}")
        if topics[topic] not in types:
            raise BagError(path, f"{role} topic {topic} is {topics[topic]}, expected {' or '.join(types)}")
        found[role] = topic
    camera = found["camera"]
    return BagInfo(path, topic_map, topics, dict.fromkeys(topics, 0), 0, 0, camera, topics[camera],
                   found.get("state", ""),
                   ReferenceSeries(found["reference"], topics[found["reference"]], topic_map.reference_fields,
                                   topic_map.scale) if "reference" in found else None)


def _read_all(reader: Reader, store: Any, info: BagInfo) -> None:
    start = end = None
    try:
        for connection, t_ns, raw in reader.messages():
            topic = connection.topic
            index = info.counts[topic]
            info.counts[topic] += 1
            start = t_ns if start is None else min(start, t_ns)
            end = t_ns if end is None else max(end, t_ns)
            if connection.msgtype in info.unknown_types:
                continue
            try:
                msg = decode(store, raw, connection.msgtype)
            except ValueError as error:
                raise BagError(info.path, f"corrupt message {index} on {topic} ({connection.msgtype}) at "
                                          f"{t_ns} ns: {error}") from None
            if topic == info.camera:
                info.camera_stamps.append(stamp_of(msg, t_ns))
                info.camera_log_times.append(t_ns * 1e-9)
                try:
                    to_rgb(msg, MAX_IMAGE_PIXELS, f"{topic} message {index}")
                except InputError as error:
                    info.bad_images[index] = str(error)
            elif info.reference is not None and topic == info.reference.topic:
                _add_reference(info, msg, t_ns)
    except BagError:
        raise
    except Exception as error:  # noqa: BLE001
        raise BagError(info.path, f"corrupt or unreadable ({type(error).__name__}: {error})") from None
    info.start_ns, info.end_ns = start or 0, end or 0


def _add_reference(info: BagInfo, msg: Any, t_ns: int) -> None:
    try:
        values = [field_value(msg, path) if path else float("nan") for path in info.reference.fields]
    except (AttributeError, TypeError) as error:
        raise BagError(info.path, f"reference field not in {info.reference.msgtype}: {error}") from None
    info.reference.add(stamp_of(msg, t_ns), values)


def _check_contents(info: BagInfo, need_reference: bool) -> None:
    if info.images == 0:
        raise BagError(info.path, f"no messages on the camera topic {info.camera}")
    if len(info.bad_images) == info.images:
        raise BagError(info.path, f"no camera image decodes: {next(iter(info.bad_images.values()))}")
    if need_reference:
        reference = info.reference
        if reference.samples == 0:
            raise BagError(info.path, f"no messages on the reference topic {reference.topic}")
        empty = [path for i, path in enumerate(reference.fields) if path and not reference.count(i)]
        if empty:
            raise BagError(info.path, f"reference fields {empty} hold no value in any {reference.topic} message")


# ---- reading for replay and evaluation --------------------------------------------------------------

def raw_messages(path: Path) -> Iterator[tuple[str, str, int, bytes]]:
    """(topic, type, time ns, serialized CDR) in time order."""
    with Reader(path) as reader:
        for connection, t_ns, raw in reader.messages():
            yield connection.topic, connection.msgtype, t_ns, bytes(raw)


@dataclass(frozen=True)
class BagFrame:
    """One camera message: its index among the camera messages, sensor stamp and RGB pixels."""

    index: int
    stamp: float
    log_ns: int
    pixels: np.ndarray


def camera_frames(info: BagInfo, fit: InputSpec | None = None) -> Iterator[BagFrame]:
    """The decodable camera images in bag order (the others are in ``info.bad_images``), each reduced for
    ``fit`` (the model's input form) as the perception node reduces it (:func:`to_rgb`)."""
    store = typestore()
    with Reader(info.path) as reader:
        register_bag_types(store, reader.connections)
        connections = [c for c in reader.connections if c.topic == info.camera]
        for index, (connection, t_ns, raw) in enumerate(reader.messages(connections=connections)):
            if index in info.bad_images:
                continue
            msg = decode(store, raw, connection.msgtype)
            yield BagFrame(index, stamp_of(msg, t_ns), t_ns, to_rgb(msg, MAX_IMAGE_PIXELS, info.camera, fit))


def state_samples(info: BagInfo) -> list[tuple[float, list[str], np.ndarray]]:
    """(stamp, joint names, joint positions) of the state topic, in bag order."""
    if not info.state:
        return []
    store = typestore()
    with Reader(info.path) as reader:
        connections = [c for c in reader.connections if c.topic == info.state]
        return [(stamp_of(msg, t_ns), list(msg.name), np.asarray(msg.position, dtype=np.float32))
                for connection, t_ns, raw in reader.messages(connections=connections)
                for msg in [decode(store, raw, connection.msgtype)]]


# ---- recording the simulator ------------------------------------------------------------------------

def record(out: Path, episodes: int, seed: int = 0, config: TaskConfig = TaskConfig()) -> list[dict]:
    """Record ``episodes`` expert-driven episodes (seeds ``seed ...``) into a new mcap bag at ``out``,
    with fully qualified topic names as ``ros2 bag record`` writes them and chunk CRCs; returns their scores.
    A write that fails (a full disk) raises :class:`~auras_ros.eval.bag_writer.RecordingCut`, the bag finished
    with what was written before."""
    store = typestore()
    make = lambda type_name, **fields: store.types[type_name](**fields)  # noqa: E731
    world = SimWorld(config, seed, episodes, control="expert")
    try:
        with mcap_bag(out) as writer:
            connections = {topic: writer.add_connection("/" + topic.lstrip("/"), msgtype, typestore=store)
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
