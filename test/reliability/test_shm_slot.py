"""shm_slot_bytes too small for one percept: the perception node refuses each such percept, counts it,
and keeps running (issue 10: it used to crash on the first image)."""

from __future__ import annotations

from pathlib import Path

from auras_ros.launching import node_command
from auras_ros.msg import PipelineStats
from auras_ros.nodes.qos import ORDERED
import node_graph


listener = node_graph.listener  # the fixture


def test_percepts_larger_than_a_slot_are_counted_drops_not_a_crash(ros_env, listener, tmp_path: Path) -> None:
    commands = [node_command("auras_ros", "camera_node", name="camera_node") + [
                    "-p", f"source:={node_graph.DEMO_FRAMES}", "-p", "rate_hz:=20.0"],
                node_command("auras_ros", "perception_node", name="perception_node") + [
                    "-p", "transport:=shm", "-p", "shm_slot_bytes:=16", "-p", "stats_period:=0.2"]]
    stats = listener.record(PipelineStats, "auras/perception_stats", ORDERED)
    with node_graph.Processes(commands, ros_env, tmp_path) as processes:
        too_big = lambda: sum(  # noqa: E731
            c for s in stats for r, c in zip(s.drop_reasons, s.drop_counts, strict=False) if r == "bad_input:nbytes")
        assert listener.spin_until(lambda: too_big() >= 3, 60.0, processes.procs), processes.output()
        codes, output = processes.stop()
    assert codes == [0, 0], output
    assert "raise the slot_bytes parameter" in output and "Traceback" not in output, output
