"""The simulator's topics and their messages, built through a factory so the same code makes rclpy
messages (``sim_node``) and rosbags typestore messages (``record``, ROS-free).

A factory is ``make(type_name, **fields)`` with ROS type names such as ``"sensor_msgs/msg/Image"``.
"""

from __future__ import annotations

import importlib
import json
from typing import Any, Callable

import numpy as np

from auras_ros.eval.world import SimFrame
from auras_ros.core import topics

Factory = Callable[..., Any]

IMAGE_TOPIC = topics.IMAGE
STATE_TOPIC = topics.SIM_STATE
CLOCK_TOPIC = topics.CLOCK
JOINTS_TOPIC = topics.JOINT_STATES  # the agent's own position (proprioception), what a robot's joints report
SCORE_TOPIC = topics.SIM_SCORE
ACTION_TOPIC = topics.ACTION
TICK_TOPIC = topics.FRAME

TYPES = {
    IMAGE_TOPIC: "sensor_msgs/msg/Image",
    STATE_TOPIC: "auras_ros/msg/SimState",
    JOINTS_TOPIC: "sensor_msgs/msg/JointState",
    CLOCK_TOPIC: "rosgraph_msgs/msg/Clock",
    SCORE_TOPIC: "std_msgs/msg/String",
}


def rclpy_factory(type_name: str, **fields: Any) -> Any:
    """rclpy (rosidl-generated) message classes."""
    package, _, name = type_name.split("/")
    cls = getattr(importlib.import_module(f"{package}.msg"), name)
    return cls(**{k: v.tobytes() if isinstance(v, np.ndarray) and v.dtype == np.uint8 else v
                  for k, v in fields.items()})


def stamp(make: Factory, seconds: float) -> Any:
    total = round(seconds * 1e9)
    return make("builtin_interfaces/msg/Time", sec=total // 1_000_000_000, nanosec=total % 1_000_000_000)


def header(make: Factory, seconds: float, frame_id: str) -> Any:
    return make("std_msgs/msg/Header", stamp=stamp(make, seconds), frame_id=frame_id)


def image_message(make: Factory, frame: SimFrame, frame_id: str = "camera") -> Any:
    pixels = np.ascontiguousarray(frame.image, dtype=np.uint8)
    height, width = pixels.shape[:2]
    return make("sensor_msgs/msg/Image", header=header(make, frame.stamp, frame_id), height=height, width=width,
                encoding="rgb8", is_bigendian=0, step=width * 3, data=pixels.reshape(-1))


def state_message(make: Factory, frame: SimFrame, frame_id: str = "world") -> Any:
    s = frame.state
    vec = lambda v: np.asarray(v, dtype=np.float64)[:2].copy()  # noqa: E731
    return make("auras_ros/msg/SimState", header=header(make, frame.stamp, frame_id), seed=frame.seed,
                episode=frame.episode, frame=s.frame, agent=vec(s.agent), target=vec(s.target),
                target_velocity=vec(s.target_velocity), distance=float(s.distance),
                expert_action=vec(frame.expert_action), applied_action=vec(frame.applied_action),
                success=bool(frame.success), done=bool(frame.done))


def joint_state_message(make: Factory, frame: SimFrame) -> Any:
    """The agent's position as a robot reports its joints: policies with a state input read it."""
    return make("sensor_msgs/msg/JointState", header=header(make, frame.stamp, "world"), name=["agent_x", "agent_y"],
                position=np.asarray(frame.state.agent, dtype=np.float64)[:2].copy(),
                velocity=np.zeros(0), effort=np.zeros(0))


def clock_message(make: Factory, seconds: float) -> Any:
    return make("rosgraph_msgs/msg/Clock", clock=stamp(make, seconds))


def score_message(make: Factory, score: dict) -> Any:
    return make("std_msgs/msg/String", data=json.dumps(score, sort_keys=True))


def frame_messages(make: Factory, frame: SimFrame, camera_frame_id: str = "camera") -> list[tuple[str, Any]]:
    """Everything one world frame publishes, in publishing order: the clock first, so a sim-time node
    never sees a message stamped ahead of its clock."""
    return [(CLOCK_TOPIC, clock_message(make, frame.stamp)),
            (STATE_TOPIC, state_message(make, frame)),
            (JOINTS_TOPIC, joint_state_message(make, frame)),
            (IMAGE_TOPIC, image_message(make, frame, camera_frame_id))]
