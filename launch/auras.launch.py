"""The Auras agent graph on a robot: camera, perception, context, generation and action nodes.

    ros2 launch auras_ros auras.launch.py source:=/dev/video0 model:=synthetic executor:=auras:1+2:f0:a0 \
        policy:=hold transport:=shm composed:=false outputs:="[twist_stamped]"

Parameters come from config/auras.yaml; the launch arguments override the most used ones.
composed:=true runs all stages in one process (auras_composed) with in-process tensor handles.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration

from launch_ros.actions import Node

ARGUMENTS = {
    "source": ("", "camera: V4L2 device, video file or image folder"),
    "model": ("synthetic", "agent preset or local checkpoint directory"),
    "executor": ("auras:1+2:f0:a0", "executor in the core.spec text form: seq, dec, par:K or auras:P+G:fO:aA"),
    "policy": ("hold", "staleness policy of the percept key: hold, drop, wait or error"),
    "transport": ("inline", "tensor transport: inline, shm (or in_process when composed)"),
    "composed": ("false", "run every stage in one process"),
    "outputs": ("[twist]", "robot command types through the safety gate, a YAML list of: twist, twist_stamped "
                "(diff_drive_controller since Jazzy), joint_trajectory (joint_trajectory_controller), agent_action"),
}


def generate_launch_description() -> LaunchDescription:
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    shared = {"model": arg["model"], "transport": arg["transport"], "percept.policy": arg["policy"]}
    generation = {**shared, "executor": arg["executor"]}
    camera = {"source": arg["source"]}
    action = {"outputs": arg["outputs"]}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        Node(package="auras_ros", executable="camera_node", name="camera_node",
             parameters=[params, camera], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="perception_node", name="perception_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="context_node", name="context_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="generation_node", name="generation_node",
             parameters=[params, generation], condition=distributed, output="screen"),
        # A lifecycle node: autostart (config/auras.yaml) configures and activates it, since launch_ros
        # lifecycle events are not available everywhere; a lifecycle manager sets autostart false.
        Node(package="auras_ros", executable="action_node", name="action_node",
             parameters=[params, action], condition=distributed, output="screen"),
        # No name: a __node remap would rename every node in the process.
        Node(package="auras_ros", executable="auras_composed",
             parameters=[params, {**generation, **camera, **action, "transport": "in_process"}],
             condition=IfCondition(arg["composed"]), output="screen"),
    ])
