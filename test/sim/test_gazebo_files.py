"""The Gazebo files (worlds/catch.sdf, config/gz_bridge.yaml, launch/gazebo.launch.py) agree with each
other and with the nodes. Gazebo itself can not run here: these are static checks only."""

from __future__ import annotations

import importlib
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import rclpy
import yaml
from ament_index_python.packages import get_package_share_directory

from auras_ros.eval.task_config import TaskConfig
from auras_ros.nodes import action_node, perception_node
from auras_ros.eval import messages as m
from launch_stub import load_launch_file, nodes_of

SHARE = Path(get_package_share_directory("auras_ros"))
WORLD = SHARE / "worlds" / "catch.sdf"
BRIDGE = SHARE / "config" / "gz_bridge.yaml"


def _bridge() -> dict[str, dict]:
    return {entry["ros_topic_name"]: entry for entry in yaml.safe_load(BRIDGE.read_text())}


def test_world_parses_and_has_the_task():
    world = ET.parse(WORLD).getroot().find("world")
    assert world.get("name") == "catch"
    models = {model.get("name"): model for model in world.findall("model")}
    assert {"arena", "target", "agent", "top_camera"} <= set(models)
    assert models["target"].find("plugin[@name='gz::sim::systems::TrajectoryFollower']") is not None
    camera = models["top_camera"].find(".//sensor[@type='camera']")
    config = TaskConfig()
    assert int(camera.findtext("camera/image/width")) == int(camera.findtext("camera/image/height")) == config.image_size
    assert math.isclose(float(camera.findtext("update_rate")), 1.0 / config.frame_period)
    assert {p.get("name") for p in world.findall("plugin")} >= {"gz::sim::systems::Physics", "gz::sim::systems::Sensors"}


def _node_topics(node_class: type, ros_env: dict[str, str]) -> dict[str, dict[str, str]]:
    """The topics a node really subscribes and publishes (built in this process on a private domain),
    each with its type as ``pkg/msg/Name``."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        node = node_class(context=context)
        try:
            def type_name(t: type) -> str:
                return f"{t.__module__.split('.')[0]}/msg/{t.__name__}"

            return {"subscriptions": {s.topic_name: type_name(s.msg_type) for s in node.subscriptions},
                    "publishers": {p.topic_name: type_name(p.msg_type) for p in node.publishers}}
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_bridge_maps_what_the_world_publishes_onto_what_the_nodes_use(ros_env):
    world = ET.parse(WORLD).getroot().find("world")
    bridge = _bridge()
    assert set(bridge) == {m.IMAGE_TOPIC, m.CLOCK_TOPIC, "cmd_vel"}
    camera_topic = world.find("model[@name='top_camera']//sensor[@type='camera']").findtext("topic")
    command_topic = world.find("model[@name='agent']/plugin[@name='gz::sim::systems::VelocityControl']").findtext("topic")
    assert bridge[m.IMAGE_TOPIC]["gz_topic_name"] == camera_topic
    assert bridge["cmd_vel"]["gz_topic_name"] == command_topic
    assert bridge[m.CLOCK_TOPIC]["gz_topic_name"] == "/clock"
    # Types and directions agree with the nodes' topics.
    assert bridge[m.IMAGE_TOPIC]["ros_type_name"] == m.TYPES[m.IMAGE_TOPIC] and bridge[m.IMAGE_TOPIC]["direction"] == "GZ_TO_ROS"
    assert bridge[m.CLOCK_TOPIC]["ros_type_name"] == m.TYPES[m.CLOCK_TOPIC] and bridge[m.CLOCK_TOPIC]["direction"] == "GZ_TO_ROS"
    assert bridge["cmd_vel"]["ros_type_name"] == "geometry_msgs/msg/Twist" and bridge["cmd_vel"]["direction"] == "ROS_TO_GZ"
    perception, action = _node_topics(perception_node.PerceptionNode, ros_env), _node_topics(action_node.ActionNode, ros_env)
    assert perception["subscriptions"]["/" + m.IMAGE_TOPIC] == m.TYPES[m.IMAGE_TOPIC]
    assert action["publishers"]["/cmd_vel"] == bridge["cmd_vel"]["ros_type_name"]
    for entry in bridge.values():
        package, _, name = entry["ros_type_name"].split("/")
        assert getattr(importlib.import_module(f"{package}.msg"), name)
        assert entry["gz_type_name"] == {"Image": "gz.msgs.Image", "Clock": "gz.msgs.Clock", "Twist": "gz.msgs.Twist"}[name]


def test_gazebo_launch_file_points_at_installed_files(monkeypatch):
    nodes = nodes_of(load_launch_file(SHARE / "launch" / "gazebo.launch.py", monkeypatch))
    by_exe = {n["executable"]: n for n in nodes}
    assert by_exe["gzserver"]["parameters"][0]["world_sdf_file"] == str(WORLD)
    assert by_exe["parameter_bridge"]["parameters"][0]["config_file"] == str(BRIDGE)
    assert {n["package"] for n in nodes} == {"auras_ros", "ros_gz_sim", "ros_gz_bridge"}
    for node in nodes:
        params = [p for p in node.get("parameters", []) if isinstance(p, dict)]
        if node["package"] == "auras_ros":
            assert any(p.get("use_sim_time") is True for p in params), node["executable"]
    action = next(p for n in nodes if n["executable"] == "action_node" for p in n["parameters"] if isinstance(p, dict))
    assert action["outputs"] == ["twist"]  # what the bridge's cmd_vel entry carries
