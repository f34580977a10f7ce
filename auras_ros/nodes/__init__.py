"""Thin ROS 2 nodes: parameters become core objects, callbacks become core calls."""
