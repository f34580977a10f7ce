"""Replay any robot's rosbag2 bag through the Auras agent graph, scored by the evaluator.

    ros2 launch auras_ros replay.launch.py bag:=/path/to/bag \
        topic_map:=$(ros2 pkg prefix auras_ros)/share/auras_ros/config/topic_map_mobile_base.yaml \
        model:=<checkpoint dir> executor:=auras:1+2:f0:a0 report_dir:=/tmp/auras_replay

bag_player publishes the bag's camera (and robot state, on joint_states) as the topic map says, with
/clock from bag time; every other node runs on use_sim_time, so decision stamps and observation ages are
in bag time. ``replay:=stepped`` (default) hands the graph one image per generation frame (the
generation node runs in lockstep), so two replays give identical actions; ``replay:=timed`` keeps the
recorded pacing at ``rate``. The evaluator scores every AgentAction against the bag's reference topic at
the action's observation stamp. At the bag's end the player exits and the launch shuts down; the
evaluator writes its report then. Without a topic map the simulator's own topics are used (record such a
bag with `python -m auras_ros.eval.record --episodes N --out DIR`).
Parameters come from config/auras.yaml; the launch arguments override the most used ones.
"""

from launch import LaunchDescription
from launch.conditions import IfCondition, UnlessCondition

from auras_ros.launch_files import AGENT_ARGUMENTS, config_file, configurations, declare, node
from auras_ros.core import topics

ARGUMENTS = {
    "bag": (None, "rosbag2 directory, mcap or sqlite3 (required: no default)"),
    "topic_map": (config_file("topic_map_sim.yaml"), "YAML topic map (default: the simulator's topics; "
                  "config/ has a mobile base's and an arm's)"),
    "replay": ("stepped", "stepped: one image per generation frame, deterministic; timed: recorded pacing"),
    "rate": ("1.0", "timed replay speed"),
    **AGENT_ARGUMENTS,
    # The player publishes the bag's state topic (topic map 'state') there; a model without a state ignores it.
    "state_topic": (topics.JOINT_STATES, AGENT_ARGUMENTS["state_topic"][1]),
    "readers": ("1", "the player starts once this many nodes read the camera topic (and the evaluator "
                     "is ready)"),
    "report_dir": ("auras_replay_report", "evaluator: write report.md, errors.png, evaluation.json here at shutdown"),
}


def generate_launch_description() -> LaunchDescription:
    params = config_file("auras.yaml")
    arg = configurations(ARGUMENTS)
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "device": arg["device"], "transport": arg["transport"],
              "state_topic": arg["state_topic"], "instruction": arg["instruction"],
              "unnorm_key": arg["unnorm_key"], **sim_time}
    # lockstep: every frame waits for a new image (what stepped replay answers to; harmless when timed).
    generation = {**shared, "executor": arg["executor"], "frame_period": 0.0, "lockstep": True}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *declare(ARGUMENTS),
        node("bag_player", [{"bag": arg["bag"], "topic_map": arg["topic_map"], "replay": arg["replay"],
                             "rate": arg["rate"], "readers": arg["readers"], "evaluators": 1}]),
        node("evaluator_node", [{"bag": arg["bag"], "topic_map": arg["topic_map"], "report_dir": arg["report_dir"],
                                 "label": arg["executor"], **sim_time}]),
        node("perception_node", [params, shared], condition=distributed),
        node("context_node", [params, shared], condition=distributed),
        node("generation_node", [params, generation], condition=distributed),
        node("auras_composed", [params, {**generation, "transport": "in_process"}], named=False,
             arguments=["--no-camera", "--no-action"], condition=IfCondition(arg["composed"])),
    ])
