"""Replay a recorded simulator bag through the Auras agent graph, scored by the evaluator.

    ros2 launch auras_ros replay.launch.py bag:=/path/to/bag model:=<checkpoint dir> mode:=auras \
        pp_generation:=2 report_dir:=/tmp/auras_replay

bag_player publishes the bag's camera/image_raw and sim/state at their recorded timing with /clock
from bag time; every other node runs on use_sim_time, so decision stamps and observation ages are in
bag time. The evaluator scores every AgentAction against the recorded expert action at its actuation
time. Record a bag with `python -m auras_ros.sim.record --episodes N --out DIR`.
Parameters come from config/auras.yaml; the launch arguments override the most used ones.
"""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration

from launch_ros.actions import Node

ARGUMENTS = {
    "bag": ("", "rosbag2 directory recorded by auras_ros.sim.record (required)"),
    "rate": ("1.0", "replay speed"),
    "model": ("synthetic", "agent preset or local checkpoint directory"),
    "mode": ("auras", "executor: auras, seq, dec or par"),
    "pp_generation": ("2", "pipeline degree of generation (L = 1 + pp_generation)"),
    "transport": ("inline", "tensor transport: inline, shm (or in_process when composed)"),
    "composed": ("false", "run every agent stage in one process"),
    "readers": ("1", "the player starts once this many nodes read camera/image_raw"),
    "report_dir": ("", "evaluator: write report.md, errors.png, evaluation.json here at shutdown"),
}


def generate_launch_description() -> LaunchDescription:
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "transport": arg["transport"], **sim_time}
    generation = {**shared, "mode": arg["mode"], "pp_generation": arg["pp_generation"], "frame_period": 0.0}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        Node(package="auras_ros", executable="bag_player", name="bag_player",
             parameters=[{"bag": arg["bag"], "rate": arg["rate"], "readers": arg["readers"]}], output="screen"),
        Node(package="auras_ros", executable="evaluator_node", name="evaluator_node",
             parameters=[{"report_dir": arg["report_dir"], **sim_time}], output="screen"),
        Node(package="auras_ros", executable="perception_node", name="perception_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="context_node", name="context_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="generation_node", name="generation_node",
             parameters=[params, generation], condition=distributed, output="screen"),
        # No name: a __node remap would rename every node in the process.
        Node(package="auras_ros", executable="auras_composed", arguments=["--no-camera", "--no-action"],
             parameters=[params, {**generation, "transport": "in_process"}],
             condition=IfCondition(arg["composed"]), output="screen"),
    ])
