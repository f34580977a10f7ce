"""The Auras agent graph on a robot: camera, perception, context, generation and action nodes.

    ros2 launch auras_ros auras.launch.py source:=/dev/video0 model:=synthetic executor:=auras:1+2:f0:a0 \
        policy:=hold transport:=shm composed:=false outputs:="[twist_stamped]"
    ros2 launch auras_ros auras.launch.py camera_topic:=/camera/color/image_raw outputs:="[twist_stamped]"

With a ``source`` the camera node reads it; without one (a robot's own camera driver) the agent reads
``camera_topic`` (and ``<camera_topic>/compressed``, image_transport's name for the same stream).
Parameters come from config/auras.yaml; the launch arguments override the most used ones.
composed:=true runs all stages in one process (auras_composed) with in-process tensor handles. Any node
that exits ends the launch (the gate deactivates with a stop command).
"""

from launch import LaunchDescription
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import PythonExpression

from auras_ros.launch_files import AGENT_ARGUMENTS, config_file, configurations, declare, node
from auras_ros.core import topics

ARGUMENTS = {
    **AGENT_ARGUMENTS,
    "source": ("", "camera node: V4L2 device, video file or image folder ('': no camera node, the robot's "
               "camera driver publishes camera_topic)"),
    "camera_topic": (topics.IMAGE, "sensor_msgs/Image topic the agent perceives (and <topic>/compressed)"),
    "policy": ("hold", "staleness policy of the percept key: hold, drop, wait or error"),
    "outputs": ("[twist]", "robot command types through the safety gate, a YAML list of: twist or twist_stamped "
                "(diff_drive_controller since Jazzy; both publish on cmd_vel), joint_trajectory "
                "(joint_trajectory_controller), agent_action"),
    "cmd_vel_topic": ("cmd_vel", "where twist / twist_stamped commands go (Jazzy's diff_drive_controller reads "
                      "/<controller name>/cmd_vel)"),
    "joint_names": ("[joint_0, joint_1]", "joint_trajectory: the joints, one action chunk column each (a YAML list)"),
    # How the safety gate plays action chunks (action_node's parameters of the same names).
    "row_width": ("0", "elements per action chunk row the gate plays one per chunk_period (0: the whole action "
                  "is one row; joint_trajectory: len(joint_names))"),
    "chunk_period": ("0.0", "seconds between chunk rows, the policy's control period (0: control_period)"),
    "chunk_timing": ("arrival", "row 0 of a chunk is due at its arrival, or at its observation stamp "
                     "(observation: time-aligned, late rows skipped)"),
    "overlap": ("replace", "what plays while chunks overlap: replace, ensemble (or ensemble:M, ACT's weight "
                "exponent M; negative weighs newer chunks more), blend, inpaint or a LeRobot aggregate function"),
}


def generate_launch_description() -> LaunchDescription:
    params = config_file("auras.yaml")
    arg = configurations(ARGUMENTS)
    shared = {"model": arg["model"], "device": arg["device"], "transport": arg["transport"],
              "percept.policy": arg["policy"], "state_topic": arg["state_topic"], "instruction": arg["instruction"],
              "unnorm_key": arg["unnorm_key"]}
    # The chunk period and overlap reach generation too: async paces by the one, inpaint guides by both.
    generation = {**shared, "executor": arg["executor"], "chunk_period": arg["chunk_period"], "overlap": arg["overlap"]}
    camera = {"source": arg["source"]}
    action = {name: arg[name] for name in ("outputs", "joint_names", "row_width", "chunk_period", "chunk_timing",
                                           "overlap")}
    distributed = UnlessCondition(arg["composed"])
    with_camera = ["'", arg["source"], "' != ''"]
    camera_node = IfCondition(PythonExpression(
        [*with_camera, " and '", arg["composed"], "'.lower() not in ('true', '1')"]))
    # What the camera node publishes and perception reads: the robot's camera topic.
    images = [(topics.IMAGE, arg["camera_topic"]),
              (topics.COMPRESSED_IMAGE, [arg["camera_topic"], "/compressed"])]
    commands = [("cmd_vel", arg["cmd_vel_topic"])]
    return LaunchDescription([
        *declare(ARGUMENTS),
        node("camera_node", [params, camera], condition=camera_node, remappings=images),
        node("perception_node", [params, shared], condition=distributed, remappings=images),
        node("context_node", [params, shared], condition=distributed),
        node("generation_node", [params, generation], condition=distributed),
        # A lifecycle node: autostart (its default) configures and activates it; a lifecycle manager
        # sets autostart false and drives ~/change_state.
        node("action_node", [params, action], condition=distributed, remappings=commands),
        node("auras_composed", [params, {**generation, **camera, **action, "transport": "in_process"}],
             named=False, remappings=images + commands, condition=IfCondition(arg["composed"]),
             arguments=[PythonExpression(["'--camera' if ", *with_camera, " else '--no-camera'"])]),
    ])
