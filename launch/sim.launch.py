"""The Auras agent graph closing the loop with the embedded MuJoCo simulator, scored by the evaluator.

    ros2 launch auras_ros sim.launch.py model:=<checkpoint dir> executor:=auras:1+2:f0:a0 \
        sim_mode:=frame seed:=0 episodes:=10 report_dir:=/tmp/auras_sim

sim_node is the camera (camera/image_raw) and the world clock (/clock): every agent node runs on
use_sim_time, so stamps and observation ages are in world time (in frame mode: whole frames). In
sim_mode:=frame the world steps once per generation frame tick (auras/frame); in sim_mode:=realtime it
steps in wall time. The world executes the safety gate's output (action_node, auras/gated_action), so
the gate's stops act in the loop. The evaluator scores every AgentAction against the expert at its
actuation time.
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
    "model": ("synthetic", "agent preset or local checkpoint directory"),
    "executor": ("auras:1+2:f0:a0", "executor in the core.spec text form: seq, dec, par:K or auras:P+G:fO:aA"),
    "transport": ("inline", "tensor transport: inline, shm (or in_process when composed)"),
    "composed": ("false", "run every agent stage in one process"),
    "sim_mode": ("frame", "frame: one world step per pipeline frame; realtime: wall-time steps"),
    "seed": ("0", "seed of the first episode"),
    "episodes": ("10", "episodes to play"),
    "max_frames": ("120", "episode length limit in frames"),
    "hold_frames": ("10", "success: consecutive frames within the catch radius"),
    "control": ("agent", "agent: the graph's actions drive; expert: the scripted expert (reference)"),
    "execute_rows": ("1", "rows of each action chunk played (receding horizon)"),
    "wait_for_action": ("false", "frame mode: strict lockstep for executors deciding every frame (seq)"),
    "first_decision_frame": ("0", "wait_for_action: the executor's first deciding frame (0 for seq, P+G-1 for auras)"),
    "action_readers": ("1", "the world starts once this many nodes read auras/action (1: the evaluator)"),
    "report_dir": ("", "evaluator: write report.md, errors.png, evaluation.json here at shutdown"),
    "action_topic": ("auras/gated_action", "what the world executes: the safety gate's output, or auras/action "
                     "(raw, without the gate: to measure what the gate changes)"),
}


def generate_launch_description() -> LaunchDescription:
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    arg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "transport": arg["transport"], **sim_time}
    generation = {**shared, "executor": arg["executor"], "frame_period": 0.0}
    sim = {"mode": arg["sim_mode"], "seed": arg["seed"], "episodes": arg["episodes"],
           "max_frames": arg["max_frames"], "hold_frames": arg["hold_frames"], "control": arg["control"],
           "execute_rows": arg["execute_rows"], "wait_for_action": arg["wait_for_action"],
           "first_decision_frame": arg["first_decision_frame"],
           "action_readers": arg["action_readers"],
           # The world executes what the safety gate lets through (its stops included).
           "action_topic": arg["action_topic"]}
    action = {**sim_time, "outputs": ["agent_action"]}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in ARGUMENTS.items()),
        Node(package="auras_ros", executable="sim_node", name="sim_node", parameters=[sim], output="screen"),
        Node(package="auras_ros", executable="evaluator_node", name="evaluator_node",
             parameters=[{"report_dir": arg["report_dir"], **sim_time}], output="screen"),
        Node(package="auras_ros", executable="perception_node", name="perception_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="context_node", name="context_node",
             parameters=[params, shared], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="generation_node", name="generation_node",
             parameters=[params, generation], condition=distributed, output="screen"),
        Node(package="auras_ros", executable="action_node", name="action_node",
             parameters=[params, action], condition=distributed, output="screen"),
        # No name: a __node remap would rename every node in the process.
        Node(package="auras_ros", executable="auras_composed", arguments=["--no-camera"],
             parameters=[params, {**generation, **action, "transport": "in_process"}],
             condition=IfCondition(arg["composed"]), output="screen"),
    ])
