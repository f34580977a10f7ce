"""The safety gate in the simulator's closed loop (launch/sim.launch.py): without a fault it changes
nothing the world executes, so make run's results stay what they were without it; after a fault it is
what stops the world's agent; and when the gate itself dies or freezes, the world's base controller
(its command timeout, as diff_drive_controller's cmd_vel_timeout) stops the agent."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from std_msgs.msg import String

from auras_ros.core.safety import BASE_COMMAND_TIMEOUT

from auras_ros.msg import SimState
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.sim.sim_node import SCORES, TICKS
import sim_helpers


def _episode(action_topic: str, monkeypatch, ros_env, tmp_path: Path) -> tuple[dict, list[str]]:
    """The episode's score, and the warnings its processes logged (a lockstep broken by a late decision
    says so: "stepping without it")."""
    tmp_path.mkdir(parents=True)
    listener = sim_helpers.Listener(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        scores = listener.record(String, "sim/score", SCORES)
        # SEQ in strict lockstep: a seeded run repeats exactly, so any difference is the gate's.
        overrides = {"executor": "seq", "seed": "5", "episodes": "1", "max_frames": "30", "wait_for_action": "true",
                     "composed": "true",
                     "report_dir": str(tmp_path / "report"),
                     "action_readers": "1", "score_readers": "1", "action_topic": action_topic}
        with sim_helpers.start_launch_file("sim.launch.py", overrides, monkeypatch, ros_env, tmp_path) as processes:
            done = lambda: sim_helpers.scores_of(scores)[1] is not None  # noqa: E731
            assert listener.spin_until(done, 120.0, processes.procs), processes.output()
            codes, output = processes.stop()
        assert codes == [0] * len(codes), output
        (episode,), _ = sim_helpers.scores_of(scores)
        return episode, [line for line in output.splitlines() if "WARN" in line or "ERROR" in line]
    finally:
        listener.close()


def test_without_a_fault_the_world_executes_the_same_commands_through_the_gate(monkeypatch, ros_env, tmp_path):
    raw, raw_warnings = _episode("auras/action", monkeypatch, ros_env, tmp_path / "raw")
    gated, gated_warnings = _episode("auras/gated_action", monkeypatch, ros_env, tmp_path / "gated")
    assert raw["frames"] == 30 and raw["actions"] >= 25
    # applied_digest hashes every command the world applied, in order.
    assert gated == raw, (raw_warnings, gated_warnings)


def _commands_after_fault(victim: str, fault: signal.Signals, action_topic: str, command_timeout: float,
                          monkeypatch, ros_env, tmp_path: Path):
    """(sim time of the fault, [(sim time, applied command)] of the world frames after it), real-time world."""
    tmp_path.mkdir(parents=True)
    listener = sim_helpers.Listener(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        states = listener.record(SimState, "sim/state", TICKS)
        overrides = {"sim_mode": "realtime", "executor": "seq", "seed": "7", "episodes": "1", "max_frames": "100000",
                     # An episode that succeeds ends the world before the watched window does.
                     "hold_frames": "100000",
                     "composed": "false", "action_readers": "0", "action_topic": action_topic,
                     "command_timeout": str(command_timeout),
                     "report_dir": str(tmp_path / "report")}
        with sim_helpers.start_launch_file("sim.launch.py", overrides, monkeypatch, ros_env, tmp_path) as processes:
            moving = lambda: sum(any(s.applied_action) for s in states) >= 10  # noqa: E731
            assert listener.spin_until(moving, 120.0, processes.procs), processes.output()
            process = next(p for p in processes.procs if victim in p.args[0])
            process.send_signal(fault)
            killed_at = to_seconds(states[-1].header.stamp)  # the world's clock at the fault (within a frame)
            later = lambda: to_seconds(states[-1].header.stamp) >= killed_at + WINDOW_S  # noqa: E731
            assert listener.spin_until(later, 60.0), processes.output()
            if fault == signal.SIGSTOP:
                process.send_signal(signal.SIGCONT)  # so that it can stop when asked
            processes.stop()
        return killed_at, [(to_seconds(s.header.stamp), tuple(s.applied_action)) for s in states
                           if killed_at < to_seconds(s.header.stamp) <= killed_at + WINDOW_S]
    finally:
        listener.close()


WINDOW_S = 2.0  # sim seconds watched after the kill


def test_after_sigkill_of_generation_only_the_gated_world_stops(monkeypatch, ros_env, tmp_path):
    """The effect of the gate in the loop: without it the world holds the last command for ever after the
    generation node dies; through it the command becomes zero after action_timeout and stays zero."""
    # Without the base controller's command timeout: the gate's effect alone.
    raw_kill, raw = _commands_after_fault("generation_node", signal.SIGKILL, "auras/action", 0.0, monkeypatch,
                                          ros_env, tmp_path / "raw")
    gated_kill, gated = _commands_after_fault("generation_node", signal.SIGKILL, "auras/gated_action", 0.0,
                                              monkeypatch, ros_env, tmp_path / "gated")
    assert all(any(command) for _, command in raw), raw  # the raw world never stops
    stopped = [t for t, command in gated if not any(command)]
    assert stopped, gated
    first_stop = stopped[0]
    assert all(not any(command) for t, command in gated if t >= first_stop)  # and stays stopped
    print(f"gated world: command zero {first_stop - gated_kill:.2f} sim s after SIGKILL of generation; "
          f"raw world: still moving {raw[-1][0] - raw_kill:.2f} sim s after it")


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["kill", "freeze"])
def test_when_the_gate_dies_or_freezes_the_worlds_base_stops_the_agent(fault, monkeypatch, ros_env, tmp_path):
    """No single point of failure between the model and the wheels: the gate repeats the command in force
    every control period; the world's base controller brakes once the newest is older than its timeout."""
    fault_at, after = _commands_after_fault("action_node", fault, "auras/gated_action", BASE_COMMAND_TIMEOUT,
                                            monkeypatch, ros_env, tmp_path / "gate")
    stopped = [t for t, command in after if not any(command)]
    assert stopped, after  # the gate sent nothing more: only the base's timeout can have stopped it
    assert all(not any(command) for t, command in after if t >= stopped[0])  # and it stays stopped
    print(f"gate {fault.name}: world command zero {stopped[0] - fault_at:.2f} sim s later")
