"""The safety gate against the real nodes (launch/auras.launch.py, distributed): when a node upstream of
the gate is SIGKILLed, a stop command reaches cmd_vel; the gate itself keeps running and exits cleanly.

The first test runs the launch file's command lines without launch's event handling (which would shut
the whole graph down on the death, deactivating the gate: test_launch_graph covers that), so that it
sees the gate's own watchdog, the defence left when an upstream node freezes or a supervisor respawns it."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import TwistStamped

from auras_ros.nodes.qos import ORDERED
from launch_stub import LaunchRun, launch_commands, load_launch_file
import node_graph

# The graph fixtures of test/nodes (a listener, launch command lines, node processes), by path: a
# second module named conftest would shadow the first.

listener = node_graph.listener  # the fixture

LAUNCH_FILE = Path(get_package_share_directory("auras_ros"), "launch", "auras.launch.py")


def _moving(twist: TwistStamped) -> bool:
    t = twist.twist
    return any(v != 0.0 for v in (t.linear.x, t.linear.y, t.linear.z, t.angular.x, t.angular.y, t.angular.z))


@pytest.mark.parametrize("victim", ["generation_node", "perception_node", "context_node"])
def test_sigkill_upstream_of_the_gate_ends_in_a_stop_command(victim, monkeypatch, ros_env, listener, tmp_path):
    description = load_launch_file(LAUNCH_FILE, monkeypatch)
    commands = launch_commands(description, {"source": str(node_graph.DEMO_FRAMES), "composed": "false",
                                             "outputs": "[twist_stamped]"}, tmp_path)
    names = [Path(c[0]).name for c in commands]
    twists = listener.record(TwistStamped, "cmd_vel", ORDERED)
    with node_graph.Processes(commands, ros_env, tmp_path) as processes:
        moving = lambda: sum(map(_moving, twists)) >= 3  # noqa: E731
        assert listener.spin_until(moving, 90.0, processes.procs), processes.output()
        processes.procs[names.index(victim)].send_signal(signal.SIGKILL)
        killed_at, seen = time.monotonic(), len(twists)
        stopped = lambda: any(not _moving(t) for t in twists[seen:])  # noqa: E731
        # The hang guard is generous; the README reports the measured times.
        assert listener.spin_until(stopped, 30.0), f"no stop on cmd_vel after SIGKILL of {victim}\n{processes.output()}"
        print(f"SIGKILL {victim}: stop received {time.monotonic() - killed_at:.3f} s later")
        stop_index = next(i for i in range(seen, len(twists)) if not _moving(twists[i]))
        assert not any(_moving(t) for t in twists[stop_index:])  # nothing moves the robot after the stop
        gate = names.index("action_node")
        assert processes.procs[gate].poll() is None  # the gate survived its upstream's death
        codes, output = processes.stop()
    assert codes[gate] == 0, output
    assert "watchdog stops so far: 1" in output


def test_sigint_of_the_composed_process_ends_with_a_stop_command(monkeypatch, ros_env, listener, tmp_path):
    """The composed process drives the gate's lifecycle: its shutdown deactivates the gate, which means
    a stop command, delivered before the process exits."""
    description = load_launch_file(LAUNCH_FILE, monkeypatch)
    twists = listener.record(TwistStamped, "cmd_vel", ORDERED)
    with LaunchRun(description, {"source": str(node_graph.DEMO_FRAMES), "composed": "true",
                                 "outputs": "[twist_stamped]"}, ros_env, tmp_path) as processes:
        assert listener.spin_until(lambda: sum(map(_moving, twists)) >= 3, 90.0, processes.procs), processes.output()
        codes, output = processes.stop()
    assert codes == [0], output
    # Delivered before the exit (the gate waits for the acknowledgement), read here afterwards.
    assert listener.spin_until(lambda: not _moving(twists[-1]), 10.0)
