"""Every shipped launch file reaches its purpose when run as `ros2 launch` runs it (test/launch_stub.py):
the simulator scores episodes with each shipped model and then ends the launch, the evaluator writing its
report; a node that refuses to start ends the launch with the reason; parameters reach the nodes exactly
as the launch file says (read back from the running nodes); nothing waits for launch's SIGTERM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from std_msgs.msg import String

from auras_ros.nodes.process import ParamsFileLoader
from auras_ros.sim.sim_node import SCORES
from launch_stub import LaunchRun
from node_graph import DEMO_FRAMES
from sim_helpers import scores_of, start_launch_file

CHECKPOINTS = Path(__file__).resolve().parents[2] / "auras_ros" / "eval" / "checkpoints"
MODELS = {"synthetic": "synthetic", "diffusion": str(CHECKPOINTS / "diffusion"), "ar": str(CHECKPOINTS / "ar")}
ESCALATED = "escalating to 'SIGTERM'"


def launch_parameters(run: LaunchRun) -> dict[str, dict[str, Any]]:
    """What each auras_ros node's parameter dicts in the launch file say, by node name: the files
    launch_ros wrote for them (launch_params_*), merged in command-line order."""
    said = {}
    for process in run.processes:
        name = process.node.kwargs["name"]
        if name is None:
            continue
        values: dict[str, Any] = {}
        for flag, path in zip(process.cmd, process.cmd[1:], strict=False):
            if flag == "--params-file" and Path(path).name.startswith("launch_params_"):
                values.update(yaml.load(Path(path).read_text(), Loader=ParamsFileLoader)["/**"]["ros__parameters"])
        said[name] = values
    return said


def assert_parameters_arrived(run: LaunchRun, listener) -> None:
    """Every parameter a launch file gives a node holds that value in the running node; and every such
    name is declared by some node of the launch (a misspelt one would be dropped silently)."""
    said = launch_parameters(run)
    declared: set[str] = set()
    for name, values in said.items():
        held = listener.parameters(name, sorted(values))
        declared |= {k for k, v in held.items() if v is not None}
        wrong = {k: (v, held[k]) for k, v in values.items() if held[k] is not None and held[k] != (
            list(v) if isinstance(v, tuple) else v)}
        assert wrong == {}, f"{name}: launch file's value, node's value: {wrong}\n{run.output()}"
    unknown = {k for values in said.values() for k in values} - declared
    assert unknown == set(), f"parameters no node of the launch declares: {unknown}"


def ended_by_itself(run: LaunchRun, listener, timeout_s: float = 180.0) -> str:
    """Spin the listener until the launch has ended on its own (the timeout is a hang guard); its output."""
    listener.spin_until(lambda: run.ended, timeout_s, each=run.step)
    output = run.output()
    assert run.ended, f"the launch did not end by itself\n{output}"
    return output


@pytest.mark.parametrize("model,sim_mode,composed", [
    ("synthetic", "frame", "false"), ("synthetic", "realtime", "true"),
    ("diffusion", "frame", "true"), ("diffusion", "realtime", "false"),
    ("ar", "frame", "true"), ("ar", "realtime", "true"),
])
def test_sim_launch_scores_episodes_and_ends(model, sim_mode, composed, monkeypatch, ros_env, listener, tmp_path):
    scores = listener.record(String, "sim/score", SCORES)
    report = tmp_path / "report"
    arguments = {"model": MODELS[model], "sim_mode": sim_mode, "composed": composed, "episodes": "1",
                 "max_frames": "30", "report_dir": str(report), "score_readers": "1"}
    with start_launch_file("sim.launch.py", arguments, monkeypatch, ros_env, tmp_path) as run:
        output = ended_by_itself(run, listener)
    episodes, summary = scores_of(scores)
    assert len(episodes) == 1 and summary is not None and summary["episodes"] == 1, output
    assert [p.popen.returncode for p in run.processes] == [0] * len(run.processes), output
    assert "process[sim_node-1] was required: shutting down launched system" in output
    assert ESCALATED not in output and "Traceback" not in output, output
    evaluation = json.loads((report / "evaluation.json").read_text())
    assert evaluation["ok"] and evaluation["actions_received"] > 0, output


@pytest.mark.parametrize("name,arguments,packages", [
    ("auras.launch.py", {"source": str(DEMO_FRAMES), "executor": "seq", "policy": "drop", "transport": "shm",
                         "outputs": "[twist_stamped, joint_trajectory]", "joint_names": "[a, b, c, d, e, f, g]",
                         "overlap": "ensemble:-0.5"}, None),
    ("sim.launch.py", {"model": MODELS["diffusion"], "episodes": "0", "executor": "auras:1+3:f0:a0"}, None),
    # The peers' baseline and RTC's overlap need the chunk period: the launch file gives one (they were refused).
    ("sim.launch.py", {"model": MODELS["diffusion"], "episodes": "0", "executor": "async", "overlap": "inpaint",
                       "chunk_rows": "4", "row_width": "2"}, None),
    # The player waits for five camera readers (it sees three): the graph stays up to be asked.
    ("replay.launch.py", {"bag": str(Path(__file__).resolve().parents[1] / "data" / "catch_small"), "readers": "5"},
     None),
    # Gazebo and its bridge cannot be installed here: the agent's nodes run, on a world that never starts.
    ("gazebo.launch.py", {"max_speed": "2.5"}, {"auras_ros"}),
], ids=["auras", "sim", "sim-async-inpaint", "replay", "gazebo"])
def test_parameters_reach_the_nodes_as_the_launch_file_says(name, arguments, packages, monkeypatch, ros_env,
                                                          listener, tmp_path):
    with start_launch_file(name, arguments, monkeypatch, ros_env, tmp_path, packages) as run:
        assert_parameters_arrived(run, listener)
        if name == "auras.launch.py":
            # An overlap's text form with a colon stays a string through the launch file's YAML evaluation.
            assert listener.parameters("action_node", ["overlap"]) == {"overlap": "ensemble:-0.5"}
            assert listener.parameters("generation_node", ["overlap"]) == {"overlap": "ensemble:-0.5"}
        if name == "gazebo.launch.py":
            # config/auras.yaml maps the gate's Twist for a differential base; the launch file's mapping wins.
            held = listener.parameters("action_node", ["index.linear.y", "index.angular.z", "scale.linear.x"])
            assert held == {"index.linear.y": 1, "index.angular.z": -1, "scale.linear.x": 2.5}
        assert all(p.popen.poll() is None for p in run.processes), run.output()
        codes, output = run.stop()
    # A player stopped before the bag's end says its work did not finish (exit 1); the rest exit 0.
    assert codes == [1 if p.name == "bag_player-1" else 0 for p in run.processes], output
    assert ESCALATED not in output, output


def test_a_node_that_refuses_to_start_ends_the_launch(monkeypatch, ros_env, listener, tmp_path):
    """A model directory that does not exist: perception and generation refuse (exit 2), and the launch
    shuts the rest down instead of leaving a graph that waits for ever."""
    arguments = {"source": str(DEMO_FRAMES), "model": str(tmp_path / "no_such_checkpoint")}
    with start_launch_file("auras.launch.py", arguments, monkeypatch, ros_env, tmp_path) as run:
        output = ended_by_itself(run, listener)
    codes = {p.name: p.popen.returncode for p in run.processes}
    # The first refusal ends the launch; the other model loader may get its SIGINT before it refuses.
    assert 2 in (codes["perception_node-2"], codes["generation_node-4"]), output
    assert "refusing to start: invalid model=" in output and ESCALATED not in output
    assert "exit code 2" in output and "was required: shutting down launched system" in output
