"""Helpers of the simulator tests (test/sim, and the gate in the simulator's loop in test/reliability):
the node-graph helpers, and starting a launch file's nodes as launch_ros would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory

import node_graph
from launch_stub import LaunchRun, load_launch_file

Listener = node_graph.Listener

LAUNCH_DIR = Path(get_package_share_directory("auras_ros"), "launch")


def start_launch_file(name: str, overrides: dict[str, str], monkeypatch, ros_env, tmp_path,
                      packages: set[str] | None = None) -> LaunchRun:
    """launch/<name> under these launch arguments, run as `ros2 launch` would."""
    return LaunchRun(load_launch_file(LAUNCH_DIR / name, monkeypatch), overrides, ros_env, tmp_path, packages)


def scores_of(messages: list[Any]) -> tuple[list[dict], dict | None]:
    """sim/score messages as (episode scores, the final summary or None)."""
    values = [json.loads(msg.data) for msg in messages]
    return [v for v in values if not v.get("summary")], next((v for v in values if v.get("summary")), None)
