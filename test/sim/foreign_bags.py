"""Bags that look like a real robot's, written with rosbags: other topic names than the simulator's,
CompressedImage (JPEG/PNG) or raw images, JointState, a Twist or JointTrajectory reference, mcap or
sqlite3 storage, and, on request, a foreign custom type or an image that does not decode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from auras_ros.eval.bag import TopicMap, typestore

CAMERA = "/camera/color/image_raw/compressed"
JOINTS = "/joint_states"
CMD_VEL = "/cmd_vel"
TRAJECTORY = "/arm_controller/joint_trajectory"
JOINT_NAMES = ["shoulder", "elbow"]
START_S = 100.0
PERIOD_S = 0.05

MOBILE_MAP = TopicMap(camera=CAMERA, state=JOINTS, reference=CMD_VEL, reference_fields=("linear.x", "angular.z"),
                      reference_scale=(0.5, 1.0))


@dataclass
class RobotBag:
    frames: int = 8
    storage: str = "sqlite3"
    image: str = "jpeg"  # jpeg | png | rgb8 (a raw sensor_msgs/Image)
    camera: str = CAMERA
    reference: str = "twist"  # twist | trajectory | none
    undecodable: tuple[int, ...] = ()  # camera messages whose bytes are not an image
    extra: dict[str, str] = field(default_factory=dict)  # topic -> (msgtype) with a definition in the bag only
    size: int = 32
    stamp_lag: float = 0.0  # s the sensors' header stamps lag the log time (a recorder behind its camera)
    joint_names: tuple[str, ...] = tuple(JOINT_NAMES)  # of the JointState messages


def _pixels(i: int, size: int) -> np.ndarray:
    """A frame whose brightness and layout change with i, so every decision differs."""
    y, x = np.mgrid[0:size, 0:size]
    return np.stack([(x * 7 + i * 29) % 256, (y * 5 + i * 13) % 256, ((x + y) * 3 + i * 41) % 256], -1).astype(np.uint8)


def write_robot_bag(path: Path, spec: RobotBag | None = None) -> Path:
    spec = spec if spec is not None else RobotBag()
    store = typestore()
    T = store.types
    stamp = lambda s: T["builtin_interfaces/msg/Time"](sec=int(s), nanosec=round((s % 1) * 1e9))  # noqa: E731
    header = lambda s, frame: T["std_msgs/msg/Header"](stamp=stamp(s), frame_id=frame)  # noqa: E731
    plugin = StoragePlugin.SQLITE3 if spec.storage == "sqlite3" else StoragePlugin.MCAP
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        camera_type = "sensor_msgs/msg/Image" if spec.image == "rgb8" else "sensor_msgs/msg/CompressedImage"
        conn = {"camera": writer.add_connection(spec.camera, camera_type, typestore=store),
                "joints": writer.add_connection(JOINTS, "sensor_msgs/msg/JointState", typestore=store)}
        if spec.reference == "twist":
            conn["reference"] = writer.add_connection(CMD_VEL, "geometry_msgs/msg/Twist", typestore=store)
        elif spec.reference == "trajectory":
            conn["reference"] = writer.add_connection(TRAJECTORY, "trajectory_msgs/msg/JointTrajectory", typestore=store)
        for topic, msgtype in spec.extra.items():
            conn[topic] = writer.add_connection(topic, msgtype, msgdef="int32 x\nfloat64 y", rihs01="RIHS01_" + "0" * 64)

        def write(name: str, msg: object, msgtype: str, seconds: float) -> None:
            writer.write(conn[name], round(seconds * 1e9), store.serialize_cdr(msg, msgtype))

        for i in range(spec.frames):
            t = START_S + i * PERIOD_S
            sensed = t - spec.stamp_lag
            write("joints", T["sensor_msgs/msg/JointState"](
                header=header(sensed, "base"), name=list(spec.joint_names),
                position=np.array([0.1 * i, -0.05 * i, 0.3, 0.02 * i][:len(spec.joint_names)]),
                velocity=np.zeros(len(spec.joint_names)), effort=np.zeros(0)), "sensor_msgs/msg/JointState", t)
            pixels = _pixels(i, spec.size)
            if spec.image == "rgb8":
                image = T["sensor_msgs/msg/Image"](header=header(sensed, "camera"), height=spec.size, width=spec.size,
                                                   encoding="rgb8", is_bigendian=0, step=spec.size * 3,
                                                   data=pixels.reshape(-1))
            else:
                ok, encoded = cv2.imencode("." + ("jpg" if spec.image == "jpeg" else "png"), pixels[:, :, ::-1])
                data = np.frombuffer(b"\xff\xd8 not an image" * 3 if i in spec.undecodable else encoded.tobytes(),
                                     np.uint8)
                image = T["sensor_msgs/msg/CompressedImage"](header=header(sensed, "camera"), format=spec.image, data=data)
            write("camera", image, camera_type, t + 0.004)  # logged a little after capture, as a driver does
            if spec.reference == "twist":
                write("reference", T["geometry_msgs/msg/Twist"](
                    linear=T["geometry_msgs/msg/Vector3"](x=0.2 + 0.01 * i, y=0.0, z=0.0),
                    angular=T["geometry_msgs/msg/Vector3"](x=0.0, y=0.0, z=-0.3)), "geometry_msgs/msg/Twist", t + 0.01)
            elif spec.reference == "trajectory":
                point = T["trajectory_msgs/msg/JointTrajectoryPoint"](
                    positions=np.array([-0.05 * i, 0.1 * i]), velocities=np.zeros(0), accelerations=np.zeros(0),
                    effort=np.zeros(0), time_from_start=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=0))
                write("reference", T["trajectory_msgs/msg/JointTrajectory"](
                    header=header(0.0, ""), joint_names=list(reversed(JOINT_NAMES)), points=[point]),
                    "trajectory_msgs/msg/JointTrajectory", t + 0.01)
            for topic in spec.extra:
                writer.write(conn[topic], round((t + 0.02) * 1e9), b"\x00\x01\x00\x00" + np.int32(i).tobytes()
                             + b"\x00" * 4 + np.float64(0.5).tobytes())
    return path


def write_ros1_converted_camera_bag(path: Path, tmp: Path, height: int = 960, width: int = 1280,
                                   stamp_lag: float = 1.237) -> tuple[Path, int]:
    """The traits of a Raspberry Pi camera's ROS 1 test bag (../shared/real_bags/ubiquity_fiducials_raspicam):
    one big JPEG CompressedImage (1280x960) whose header stamp lags its log time by 1.237 s, camera_info,
    no command or state topic, written as a ROS 1 bag and converted to rosbag2 mcap with rosbags'
    converter, as that bag was. Returns the rosbag2 directory and the JPEG's size in bytes."""
    from rosbags.convert import convert
    from rosbags.rosbag1 import Writer as Writer1
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC)
    T = store.types
    log = 1491682361.55
    sensed = log - stamp_lag
    y, x = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(0).integers(0, 48, (height, width, 3))  # texture, so the JPEG is big
    bgr = np.stack([(x // 3) % 256, (y // 2) % 256, ((x + y) // 5) % 256], -1) + noise
    ok, encoded = cv2.imencode(".jpg", np.clip(bgr, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    header = T["std_msgs/msg/Header"](seq=0, stamp=T["builtin_interfaces/msg/Time"](
        sec=int(sensed), nanosec=round((sensed % 1) * 1e9)), frame_id="camera")
    ros1 = tmp / "camera_ros1.bag"
    with Writer1(ros1) as writer:
        image = writer.add_connection("/raspicam_node/image/compressed", "sensor_msgs/msg/CompressedImage",
                                      typestore=store)
        info = writer.add_connection("/raspicam_node/camera_info", "sensor_msgs/msg/CameraInfo", typestore=store)
        msg = T["sensor_msgs/msg/CompressedImage"](header=header, format="jpeg", data=encoded.ravel())
        writer.write(image, round(log * 1e9), store.serialize_ros1(msg, "sensor_msgs/msg/CompressedImage"))
        for k in range(3):
            camera_info = T["sensor_msgs/msg/CameraInfo"](
                header=header, height=height, width=width, distortion_model="plumb_bob", D=np.zeros(5),
                K=np.zeros(9), R=np.zeros(9), P=np.zeros(12), binning_x=0, binning_y=0,
                roi=T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))
            writer.write(info, round((log - 0.5 + 0.1 * k) * 1e9),
                         store.serialize_ros1(camera_info, "sensor_msgs/msg/CameraInfo"))
    convert([ros1], path, "mcap", 9, None, "file", None, None, [], [], [], [])
    return path, encoded.size
