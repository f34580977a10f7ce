"""Replay any robot's rosbag2 bag through the Auras agent graph, scored by the evaluator.

    ros2 launch auras_ros replay.launch.py bag:=/path/to/bag \
        topic_map:=$(ros2 pkg prefix auras_ros)/share/auras_ros/config/topic_map_mobile_base.yaml \
        model:=<checkpoint dir> executor:=auras:1+2:f0:a0 report_dir:=/tmp/auras_replay

bag_player publishes the bag's camera (and robot state) as the topic map says, with /clock from bag
time; every other node runs on use_sim_time, so decision stamps and observation ages are in bag time.
``replay:=stepped`` (default) hands the graph one image per generation frame (the generation node runs in
lockstep), so two replays give identical actions; ``replay:=timed`` keeps the recorded pacing at
``rate``. The evaluator scores every AgentAction against the bag's reference topic at the action's
observation stamp. Without a topic map the simulator's own topics are used (record such a bag with
`python -m auras_ros.sim.record --episodes N --out DIR`).
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
    "bag": (None, "rosbag2 directory, mcap or sqlite3 (required: no default)"),
    "topic_map": (None, "YAML topic map (default: config/topic_map_sim.yaml, the simulator's topics; "
                        "config/ has a mobile base's and an arm's)"),
    "replay": ("stepped", "stepped: one image per generation frame, deterministic; timed: recorded pacing"),
    "rate": ("1.0", "timed replay speed"),
    "model": ("synthetic", "agent preset or local checkpoint directory"),
    "executor": ("auras:1+2:f0:a0", "executor in the core.spec text form: seq, dec, par:K or auras:P+G:fO:aA"),
    "transport": ("inline", "tensor transport: inline, shm (or in_process when composed)"),
    "composed": ("false", "run every agent stage in one process"),
    "readers": ("1", "the player starts once this many nodes read the camera topic (and the evaluator "
                     "is ready)"),
    # Not empty: launch_ros reads an empty substitution as YAML null, which no parameter takes.
    "report_dir": ("auras_replay_report", "evaluator: write report.md, errors.png, evaluation.json here at shutdown"),
}


def generate_launch_description() -> LaunchDescription:
    config = os.path.join(get_package_share_directory("auras_ros"), "config")
    params = os.path.join(config, "auras.yaml")
    defaults = {"topic_map": os.path.join(config, "topic_map_sim.yaml")}
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    sim_time = {"use_sim_time": True}
    # A policy that takes the robot state: set perception_node's state_topic to joint_states (auras.yaml).
    shared = {"model": arg["model"], "transport": arg["transport"], **sim_time}
    # lockstep: every frame waits for a new image (what stepped replay answers to; harmless when timed).
    generation = {**shared, "executor": arg["executor"], "frame_period": 0.0,
                  "lockstep": True}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=defaults.get(name, default), description=text)
          for name, (default, text) in ARGUMENTS.items()),
        Node(package="auras_ros", executable="bag_player", name="bag_player",
             parameters=[{"bag": arg["bag"], "topic_map": arg["topic_map"], "replay": arg["replay"],
                          "rate": arg["rate"], "readers": arg["readers"], "evaluators": 1}], output="screen"),
        Node(package="auras_ros", executable="evaluator_node", name="evaluator_node",
             parameters=[{"bag": arg["bag"], "topic_map": arg["topic_map"], "report_dir": arg["report_dir"],
                          "label": arg["executor"], **sim_time}], output="screen"),
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
