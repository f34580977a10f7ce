"""The Auras agent graph on the catch task in Gazebo Harmonic (ROS 2 Jazzy + ros_gz), for robot computers.

    ros2 launch auras_ros gazebo.launch.py model:=<checkpoint dir> mode:=auras pp_generation:=2

ros_gz_sim's gzserver runs share/auras_ros/worlds/catch.sdf; ros_gz_bridge maps its top camera onto
camera/image_raw, its clock onto /clock and cmd_vel (from the action node) onto the agent's velocity
command (config/gz_bridge.yaml). The agent nodes run on use_sim_time. The action node maps action row 0
(vx, vy) onto Twist linear.x / linear.y. NOT RUN on the development machine (no Gazebo there).
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration

from launch_ros.actions import Node

ARGUMENTS = {
    "model": ("synthetic", "agent preset or local checkpoint directory"),
    "mode": ("auras", "executor: auras, seq, dec or par"),
    "pp_generation": ("2", "pipeline degree of generation (L = 1 + pp_generation)"),
    "transport": ("inline", "tensor transport: inline or shm"),
    "max_speed": ("1.5", "m/s of the agent at |action| = 1 (the task's max_speed)"),
}


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("auras_ros")
    params = os.path.join(share, "config", "auras.yaml")
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "transport": arg["transport"], **sim_time}
    # Gazebo's velocity plugin takes plain Twist (config/gz_bridge.yaml); every command passes the gate.
    action = {**sim_time, "outputs": ["twist"], "index.linear.x": 0, "index.linear.y": 1, "index.angular.z": -1,
              "scale.linear.x": arg["max_speed"], "scale.linear.y": arg["max_speed"]}
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        Node(package="ros_gz_sim", executable="gzserver", name="gzserver",
             parameters=[{"world_sdf_file": os.path.join(share, "worlds", "catch.sdf")}], output="screen"),
        Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge",
             parameters=[{"config_file": os.path.join(share, "config", "gz_bridge.yaml"), **sim_time}],
             output="screen"),
        Node(package="auras_ros", executable="perception_node", name="perception_node",
             parameters=[params, shared], output="screen"),
        Node(package="auras_ros", executable="context_node", name="context_node",
             parameters=[params, shared], output="screen"),
        Node(package="auras_ros", executable="generation_node", name="generation_node",
             parameters=[params, {**shared, "mode": arg["mode"], "pp_generation": arg["pp_generation"]}],
             output="screen"),
        Node(package="auras_ros", executable="action_node", name="action_node",
             parameters=[params, action], output="screen"),
    ])
