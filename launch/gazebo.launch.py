"""The Auras agent graph on the catch task in Gazebo Harmonic (ROS 2 Jazzy + ros_gz), for robot computers.

    ros2 launch auras_ros gazebo.launch.py model:=<checkpoint dir> executor:=auras:1+2:f0:a0

ros_gz_sim's gzserver runs share/auras_ros/worlds/catch.sdf; ros_gz_bridge maps its top camera onto
camera/image_raw, its clock onto /clock and cmd_vel (from the action node) onto the agent's velocity
command (config/gz_bridge.yaml). The agent nodes run on use_sim_time. The action node maps action row 0
(vx, vy) onto Twist linear.x / linear.y. NOT RUN on the development machine (no Gazebo there); the
tests start this file's auras_ros nodes and read their parameters back.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node

from auras_ros.launch_files import AGENT_ARGUMENTS, config_file, configurations, declare, fastdds_env, node

ARGUMENTS = {
    **{name: AGENT_ARGUMENTS[name] for name in ("model", "device", "executor", "transport", "sigterm_timeout")},
    "max_speed": ("1.5", "m/s of the agent at |action| = 1 (the task's max_speed)"),
}


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("auras_ros")
    params = config_file("auras.yaml")
    arg = configurations(ARGUMENTS)
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "device": arg["device"], "transport": arg["transport"], **sim_time}
    # Gazebo's velocity plugin takes plain Twist (config/gz_bridge.yaml); every command passes the gate.
    action = {**sim_time, "outputs": ["twist"], "index.linear.x": 0, "index.linear.y": 1, "index.angular.z": -1,
              "scale.linear.x": arg["max_speed"], "scale.linear.y": arg["max_speed"]}
    return LaunchDescription([
        *declare(ARGUMENTS),
        Node(package="ros_gz_sim", executable="gzserver", name="gzserver",
             parameters=[{"world_sdf_file": os.path.join(share, "worlds", "catch.sdf")}], output="screen"),
        Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge",
             parameters=[{"config_file": config_file("gz_bridge.yaml"), **sim_time}], output="screen",
             additional_env=fastdds_env()),  # it publishes the camera: frames need the large segment
        node("perception_node", [params, shared]),
        node("context_node", [params, shared]),
        node("generation_node", [params, {**shared, "executor": arg["executor"]}]),
        node("action_node", [params, action]),
    ])
