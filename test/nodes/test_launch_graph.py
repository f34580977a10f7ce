"""launch/auras.launch.py brings the agent graph up as launch_ros would: camera → perception → context →
generation → action, in separate processes (distributed) or one (composed), and it stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import Twist

from auras_ros.core.spec import ExecutorSpec
from auras_ros.msg import AgentAction, PipelineStats
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from node_graph import DEMO_FRAMES, Processes, launch_commands
from launch_stub import launch_arguments, load_launch_file

LAUNCH_FILE = Path(get_package_share_directory("auras_ros"), "launch", "auras.launch.py")


def _shm_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("auras_*")}


@pytest.mark.parametrize("overrides", [
    {"composed": "false", "transport": "shm"},
    {"composed": "false", "transport": "inline", "executor": "seq"},
    {"composed": "true"},
], ids=["distributed-shm", "distributed-inline-seq", "composed"])
def test_graph_decides_and_stops_cleanly(overrides, monkeypatch, ros_env, listener, tmp_path):
    description = load_launch_file(LAUNCH_FILE, monkeypatch)
    arguments = launch_arguments(description, {"source": str(DEMO_FRAMES), **overrides})
    commands = launch_commands(description, arguments, tmp_path)
    assert len(commands) == (1 if overrides["composed"] == "true" else 5)
    segments_before = _shm_segments()
    actions = listener.record(AgentAction, "auras/action", ORDERED)
    stats = listener.record(PipelineStats, "auras/pipeline_stats", ORDERED)
    twists = listener.record(Twist, "cmd_vel", ORDERED)
    with Processes(commands, ros_env, tmp_path) as processes:
        arrived = listener.spin_until(lambda: len(actions) >= 10 and stats and twists, 90.0, processes.procs)
        assert arrived, f"actions {len(actions)}, stats {len(stats)}, twists {len(twists)}\n{processes.output()}"
        codes, output = processes.stop()
    assert codes == [0] * len(codes), output
    assert "Destroyable" not in output and "Traceback" not in output, output
    assert _shm_segments() <= segments_before  # every segment a node made is gone
    mode = ExecutorSpec.parse(arguments["executor"]).kind
    assert {s.mode for s in stats} == {mode}
    for action in actions:
        assert to_seconds(action.observation_age) >= 0
        assert action.context_stamps and len(action.action) == 7
        assert to_seconds(action.header.stamp) >= to_seconds(action.observation_stamp)
    ids = [a.request_id for a in actions]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    if mode == "auras":
        assert all(s.max_requests_in_flight == 3 and s.requests_in_flight <= 3 for s in stats)
