"""The roundtrip demo pair: a listener and a talker exchanging one sample of each interface."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "roundtrip.yaml")
    return LaunchDescription([
        Node(package="auras_ros", executable="roundtrip_listener", name="roundtrip_listener",
             parameters=[params], output="screen"),
        Node(package="auras_ros", executable="roundtrip_talker", name="roundtrip_talker",
             parameters=[params], output="screen"),
    ])
