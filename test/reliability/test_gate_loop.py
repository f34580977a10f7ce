"""The safety gate in the simulator's closed loop (launch/sim.launch.py): without a fault it changes
nothing the world executes, so make run's results stay what they were without it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from std_msgs.msg import String

from auras_ros.sim.sim_node import SCORES

_spec = importlib.util.spec_from_file_location("sim_helpers", Path(__file__).parents[1] / "sim" / "sim_helpers.py")
sim_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sim_helpers)


def _episode(action_topic: str, monkeypatch, ros_env, tmp_path: Path) -> dict:
    tmp_path.mkdir(parents=True)
    listener = sim_helpers.Listener(int(ros_env["ROS_DOMAIN_ID"]))
    try:
        scores = listener.record(String, "sim/score", SCORES)
        # SEQ in strict lockstep: a seeded run repeats exactly, so any difference is the gate's.
        overrides = {"mode": "seq", "seed": "5", "episodes": "1", "max_frames": "30", "wait_for_action": "true", "composed": "true",
                     "action_readers": "1", "action_topic": action_topic}
        with sim_helpers.start_launch_file("sim.launch.py", overrides, monkeypatch, ros_env, tmp_path) as processes:
            done = lambda: sim_helpers.scores_of(scores)[1] is not None  # noqa: E731
            assert listener.spin_until(done, 120.0, processes.procs), processes.output()
            codes, output = processes.stop(grace_s=5.0)
        assert codes == [0] * len(codes), output
        (episode,), _ = sim_helpers.scores_of(scores)
        return episode
    finally:
        listener.close()


def test_without_a_fault_the_world_executes_the_same_commands_through_the_gate(monkeypatch, ros_env, tmp_path):
    raw = _episode("auras/action", monkeypatch, ros_env, tmp_path / "raw")
    gated = _episode("auras/gated_action", monkeypatch, ros_env, tmp_path / "gated")
    assert raw["frames"] == 30 and raw["actions"] >= 25
    # applied_digest hashes every command the world applied, in order.
    assert gated == raw
