"""The perception node puts camera images and robot states into the agent's input form with the code
bag_eval uses (models.inputs.observation_data): the same bag message gives the same percept tensor
bit for bit both ways, and a JointState lacking the model's joints is refused once, by name, and
counted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rcl_interfaces.msg import Log
from rclpy.qos import QoSProfile
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import CompressedImage, JointState

from auras_ros.core.inputs import input_spec
from auras_ros.core.stages import perceive_all
from auras_ros.eval.bag import TopicMap, check_bag, decode, typestore
from auras_ros.eval.bag_eval import BagSource
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.msg import Percept
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import to_time
from foreign_bags import CAMERA, JOINTS, RobotBag, write_robot_bag
from node_graph import Graph

JOINTS_OF_MODEL = ("elbow", "shoulder")


def _agent() -> DiffusionPolicyAgent:
    # Trained (here: built) at 24x32 with a state by joint name; the bag's camera is 80x80.
    return DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2, image_size=(24, 32), state_dim=2,
                                     state_joints=JOINTS_OF_MODEL, resize="crop"))


def _bag_messages(bag: Path) -> dict[str, object]:
    """The first camera and JointState message of the bag, as rosbags decodes them."""
    store, first = typestore(), {}
    with Reader(bag) as reader:
        for connection, _, raw in reader.messages():
            first.setdefault(connection.topic, decode(store, raw, connection.msgtype))
    return first


def test_the_node_path_and_bag_eval_give_the_same_percept_bit_for_bit(graph: Graph, tmp_path) -> None:
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=1, size=80, joint_names=("wrist", "elbow", "shoulder"),
                                                     reference="none"))
    agent = _agent()
    topic_map = TopicMap(camera=CAMERA, state=JOINTS)
    source = BagSource(check_bag(bag, topic_map, need_reference=False), input_spec(agent), lead=1.0)
    observation = source.latest(1e9)
    assert observation is not None and not source.refusals.counts
    from_bag = agent.percept_to_tensor(perceive_all(agent, observation))

    perception = graph.add(PerceptionNode, {"state_topic": "joint_states", "stats_period": 3600.0}, agent=agent)
    robot = graph.probe("robot")
    images = robot.create_publisher(CompressedImage, "camera/image_raw/compressed", SENSOR_LATEST)
    states = robot.create_publisher(JointState, "joint_states", ORDERED)
    percepts: list[Percept] = []
    robot.create_subscription(Percept, "auras/percept", percepts.append, LATEST_RELIABLE)
    assert graph.spin_until(lambda: images.get_subscription_count() > 0 and states.get_subscription_count() > 0)
    recorded = _bag_messages(bag)
    camera, joints = recorded[CAMERA], recorded[JOINTS]
    stamp = to_time(camera.header.stamp.sec + camera.header.stamp.nanosec * 1e-9)
    state = JointState(name=list(joints.name), position=[float(v) for v in joints.position])
    state.header.stamp = stamp
    states.publish(state)
    image = CompressedImage(format=camera.format, data=bytes(camera.data))
    image.header.stamp = stamp
    images.publish(image)
    assert graph.spin_until(lambda: len(percepts) == 1)
    from_node = perception.codec.decode(percepts[0].tensor)
    assert from_node.dtype == from_bag.dtype and torch.equal(from_node, from_bag)
    # The state went in by name: elbow, shoulder, not the message's first two positions.
    assert observation.data["state"].tolist() == np.asarray(joints.position, np.float32)[[1, 2]].tolist()


def test_a_state_without_the_models_joints_is_refused_once_by_name_and_counted(graph: Graph) -> None:
    perception = graph.add(PerceptionNode, {"state_topic": "joint_states", "stats_period": 3600.0}, agent=_agent())
    robot = graph.probe("robot")
    states = robot.create_publisher(JointState, "joint_states", ORDERED)
    logs: list[Log] = []
    robot.create_subscription(Log, "/rosout", logs.append, QoSProfile(depth=1000))
    assert graph.spin_until(lambda: states.get_subscription_count() > 0)
    for k in range(3):
        states.publish(JointState(name=["q1", "q2"], position=[0.1 * k, 0.2]))
        assert graph.spin_until(
            lambda: perception.recorder.summary().drops.get("bad_input:state joints", 0) == k + 1)
    assert graph.spin_until(lambda: any("robot state refused" in log.msg for log in logs))
    mine = [log.msg for log in logs if log.name == "perception_node" and "robot state refused" in log.msg]
    assert len(mine) == 1, mine
    assert "joints ['elbow', 'shoulder'] (missing ['elbow', 'shoulder'])" in mine[0] and "['q1', 'q2']" in mine[0]
    assert not np.any([log.level == Log.FATAL for log in logs])
