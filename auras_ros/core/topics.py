"""The agent graph's topic names (plain strings: the core stays ROS-free), in one place: every node,
tool, benchmark and launch file that publishes or subscribes names its topic from here (relative
names, so a namespace or a remap moves them together)."""

from __future__ import annotations

IMAGE = "camera/image_raw"  # sensor_msgs/Image in, or remapped to a robot's own camera
COMPRESSED_IMAGE = IMAGE + "/compressed"  # image_transport's name for the same stream compressed
JOINT_STATES = "joint_states"  # a robot's joint positions (the agent's robot state)
INSTRUCTION = "auras/instruction"
PERCEPT = "auras/percept"
CONTEXT = "auras/context"
FRAME = "auras/frame"  # the generation node's frame tick
ACTION = "auras/action"  # every decision, as the generation node publishes it
GATED_ACTION = "auras/gated_action"  # what the safety gate lets through
PIPELINE_STATS = "auras/pipeline_stats"
PERCEPTION_STATS = "auras/perception_stats"
SIM_STATE = "sim/state"
SIM_SCORE = "sim/score"
EVAL_SUMMARY = "eval/summary"
EVAL_READY = "eval/ready"  # an evaluator whose reader matched the action publisher (sim/ready.py)
EVAL_MATCHED = "eval/matched"  # an evaluator the action writer matched: the sources start on these
CLOCK = "/clock"
