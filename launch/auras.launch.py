"""The Auras agent graph on a robot: camera, perception, context, generation and action nodes.

    ros2 launch auras_ros auras.launch.py source:=/dev/video0 model:=synthetic executor:=auras:1+2:f0:a0 \
        policy:=hold transport:=shm composed:=false outputs:="[twist_stamped]"

Parameters come from config/auras.yaml; the launch arguments override the most used ones.
composed:=true runs all stages in one process (auras_composed) with in-process tensor handles. Any node
that exits ends the launch (the gate deactivates with a stop command).
"""

from launch import LaunchDescription
from launch.conditions import IfCondition, UnlessCondition

from auras_ros.launch_files import AGENT_ARGUMENTS, config_file, configurations, declare, node

ARGUMENTS = {
    **AGENT_ARGUMENTS,
    "source": ("", "camera: V4L2 device, video file or image folder"),
    "policy": ("hold", "staleness policy of the percept key: hold, drop, wait or error"),
    "outputs": ("[twist]", "robot command types through the safety gate, a YAML list of: twist or twist_stamped "
                "(diff_drive_controller since Jazzy; both publish on cmd_vel), joint_trajectory "
                "(joint_trajectory_controller), agent_action"),
    "joint_names": ("[joint_0, joint_1]", "joint_trajectory: the joints, one action chunk column each (a YAML list)"),
}


def generate_launch_description() -> LaunchDescription:
    params = config_file("auras.yaml")
    arg = configurations(ARGUMENTS)
    shared = {"model": arg["model"], "device": arg["device"], "transport": arg["transport"],
              "percept.policy": arg["policy"], "state_topic": arg["state_topic"]}
    generation = {**shared, "executor": arg["executor"]}
    camera = {"source": arg["source"]}
    action = {"outputs": arg["outputs"], "joint_names": arg["joint_names"]}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *declare(ARGUMENTS),
        node("camera_node", [params, camera], condition=distributed),
        node("perception_node", [params, shared], condition=distributed),
        node("context_node", [params, shared], condition=distributed),
        node("generation_node", [params, generation], condition=distributed),
        # A lifecycle node: autostart (its default) configures and activates it; a lifecycle manager
        # sets autostart false and drives ~/change_state.
        node("action_node", [params, action], condition=distributed),
        node("auras_composed", [params, {**generation, **camera, **action, "transport": "in_process"}],
             named=False, condition=IfCondition(arg["composed"])),
    ])
