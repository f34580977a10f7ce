"""The Auras agent graph closing the loop with the embedded MuJoCo simulator, scored by the evaluator.

    ros2 launch auras_ros sim.launch.py model:=<checkpoint dir> executor:=auras:1+2:f0:a0 \
        sim_mode:=frame seed:=0 episodes:=10 report_dir:=/tmp/auras_sim

sim_node is the camera (camera/image_raw), the robot state (joint_states) and the world clock (/clock):
every agent node runs on use_sim_time, so stamps and observation ages are in world time (in frame mode:
whole frames). In sim_mode:=frame the world steps once per generation frame tick (auras/frame); in
sim_mode:=realtime it steps in wall time. The world executes the safety gate's output (action_node,
auras/gated_action), so the gate's stops act in the loop. The evaluator scores every AgentAction against
the expert at its actuation time. When the last episode ends, sim_node exits and the launch shuts down;
the evaluator writes its report then.
Parameters come from config/auras.yaml; the launch arguments override the most used ones.
"""

from launch import LaunchDescription
from launch.conditions import IfCondition, UnlessCondition

from auras_ros.launch_files import AGENT_ARGUMENTS, config_file, configurations, declare, node
from auras_ros.core import topics
from auras_ros.core.safety import BASE_COMMAND_TIMEOUT
from auras_ros.eval.task_config import TaskConfig

TASK = TaskConfig()

ARGUMENTS = {
    **AGENT_ARGUMENTS,
    # The simulator publishes the agent's position on joint_states (a model without a state ignores it).
    "state_topic": (topics.JOINT_STATES, AGENT_ARGUMENTS["state_topic"][1]),
    "sim_mode": ("frame", "frame: one world step per pipeline frame; realtime: wall-time steps"),
    "speed": ("1.0", "realtime: world frames per frame period of wall time"),
    "seed": ("0", "seed of the first episode"),
    "episodes": ("10", "episodes to play"),
    "max_frames": (str(TASK.max_frames), "episode length limit in frames"),
    "hold_frames": (str(TASK.hold_frames), "success: consecutive frames within the catch radius"),
    "control": ("agent", "agent: the graph's actions drive; expert: the scripted expert (reference)"),
    "chunk_rows": ("1", "rows of each action chunk played (receding horizon)"),
    "wait_for_action": ("false", "frame mode: strict lockstep for executors deciding every frame (seq)"),
    "first_decision_frame": ("0", "wait_for_action: the executor's first deciding frame (0 for seq, P+G-1 for auras)"),
    "action_readers": ("1", "the world starts once this many nodes read auras/action (1: the evaluator)"),
    "score_readers": ("0", "and once this many nodes read sim/score (the world ends when its episodes are done)"),
    "report_dir": ("auras_sim_report", "evaluator: write report.md, errors.png, evaluation.json here at shutdown"),
    "command_timeout": (str(BASE_COMMAND_TIMEOUT), "the world's base controller brakes when its last command is older than this "
                        "(s, as diff_drive_controller's cmd_vel_timeout); 0: no timeout"),
    # Action chunks (README "Action chunks in real time"): the world plays one row per frame.
    "chunk_period": (str(TASK.frame_period), "seconds between an action chunk's rows, one world frame: the async "
                     "executor paces by it, overlap inpaint guides by it, the gate plays rows by it"),
    "overlap": ("replace", "how a new chunk joins the one playing, for the world, the gate and (inpaint) generation: "
                "replace, ensemble (or ensemble:M, ACT's weight exponent M), blend, inpaint or a LeRobot aggregate"),
    "chunk_timing": ("arrival", "the world's row 0 of a chunk is due at its arrival, or at its observation stamp"),
    "row_width": ("0", "the gate's chunk row width: 2 (the world's (vx, vy)) with chunk_rows > 1, so its watchdog "
                  "judges a chunk's end, not its first row; 0: the whole action is one row"),
    "action_topic": (topics.GATED_ACTION, "what the world executes: the safety gate's output, or auras/action "
                     "(raw, without the gate: to measure what the gate changes)"),
}
SIM = ("speed", "seed", "episodes", "max_frames", "hold_frames", "control", "chunk_rows", "wait_for_action",
       "first_decision_frame", "action_readers", "score_readers", "action_topic", "command_timeout", "overlap",
       "chunk_timing")


def generate_launch_description() -> LaunchDescription:
    params = config_file("auras.yaml")
    arg = configurations(ARGUMENTS)
    sim_time = {"use_sim_time": True}
    shared = {"model": arg["model"], "device": arg["device"], "transport": arg["transport"],
              "state_topic": arg["state_topic"], "instruction": arg["instruction"],
              "unnorm_key": arg["unnorm_key"], **sim_time}
    generation = {**shared, "executor": arg["executor"], "frame_period": 0.0, "chunk_period": arg["chunk_period"],
                  "overlap": arg["overlap"]}
    # The world starts once the evaluator and the action writer have matched each other: it scores every decision.
    sim = {"mode": arg["sim_mode"], "evaluators": 1, **{name: arg[name] for name in SIM}}
    action = {**sim_time, "outputs": ["agent_action"], "chunk_period": arg["chunk_period"], "overlap": arg["overlap"],
              "row_width": arg["row_width"]}
    distributed = UnlessCondition(arg["composed"])
    return LaunchDescription([
        *declare(ARGUMENTS),
        node("sim_node", [sim]),
        node("evaluator_node", [{"report_dir": arg["report_dir"], "label": arg["executor"], **sim_time}]),
        node("perception_node", [params, shared], condition=distributed),
        node("context_node", [params, shared], condition=distributed),
        node("generation_node", [params, generation], condition=distributed),
        node("action_node", [params, action], condition=distributed),
        node("auras_composed", [params, {**generation, **action, "transport": "in_process"}],
             named=False, arguments=["--no-camera"], condition=IfCondition(arg["composed"])),
    ])
