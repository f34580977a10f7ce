"""Simulator, rosbag record/replay and evaluation nodes around the embedded task (auras_ros.eval.task)."""
