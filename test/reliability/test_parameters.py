"""Parameters the real node executables refuse, each in one line naming the cause, exit 2, no traceback:
a wrong type in any params file (not only the one whose value won), an unknown name in the node's own
section whatever its case (with the closest declared name), over-long names and values, an executor
beyond the degrees a spec allows, a transport the standalone node cannot have."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import node_graph

from auras_ros.launching import node_command
from node_graph import Listener, Processes
from test_startup import CONFIG, _refused_in_one_line, _start

listener = node_graph.listener  # the fixture


def _params_file(tmp_path: Path, name: str, sections: dict) -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": values} for key, values in sections.items()}))
    return str(path)


def test_a_wrong_type_in_a_second_params_file_is_refused_though_a_later_file_sets_it_right(tmp_path, ros_env) -> None:
    wrong = _params_file(tmp_path, "wrong", {"/**": {"stats_period": "two"}})
    right = _params_file(tmp_path, "right", {"generation_node": {"stats_period": 1.0}})
    result = _start("generation_node", ["--params-file", CONFIG, "--params-file", wrong, "--params-file", right],
                    ros_env)
    _refused_in_one_line(result, "generation_node.stats_period='two'", "a float", wrong)


@pytest.mark.parametrize("name, hint", [("actionTimeout", "action_timeout"), ("Action_Timeout", "action_timeout"),
                                        ("max_obs_age", "max_observation_age")])
def test_an_unknown_name_in_the_nodes_own_section_is_refused_with_the_closest_match(name, hint, tmp_path,
                                                                                   ros_env) -> None:
    own = _params_file(tmp_path, "own", {"/action_node": {name: 0.5}})
    result = _start("action_node", ["--params-file", CONFIG, "--params-file", own], ros_env)
    _refused_in_one_line(result, f"action_node.{name}", f"did you mean {hint}?", own)


def test_an_unknown_name_for_every_node_passes(tmp_path, listener: Listener, ros_env) -> None:
    """``/**`` serves every node of the graph: a name no node here declares is not refused, and a right
    value in it is taken."""
    shared = _params_file(tmp_path, "shared", {"/**": {"some_other_nodes_parameter": 1, "stats_period": 2.0}})
    command = node_command("auras_ros", "generation_node") + ["--params-file", shared]
    with Processes([command], ros_env, tmp_path) as process:
        assert listener.parameters("generation_node", ["stats_period"]) == {"stats_period": 2.0}, process.output()
        codes, output = process.stop()
        assert codes == [0], output


@pytest.mark.parametrize("args, shown", [
    (["-p", "action_frame_id:=" + "f" * 10_000], ["generation_node.action_frame_id", "(10000 characters)",
                                                  "at most 256 characters"]),
    (["-p", "executor:=auras:1+100"], ["pp_generation=100", "[1, 64]"]),
    (["-p", "transport:=in_process"], ["registry", "composed nodes"]),
    (["-r", "auras/action:=" + "b" * 10_000], ["--ros-args", "characters)", "topic length"]),
    (["-r", "__node:=" + "n" * 10_000], ["--ros-args", "characters)", "node name length"]),
], ids=["long-frame-id", "executor-degree", "in-process-standalone", "long-topic-remap", "long-node-name"])
def test_refusals_name_their_cause_in_one_line(args, shown, ros_env) -> None:
    _refused_in_one_line(_start("generation_node", args, ros_env), *shown)


def test_a_ten_megabyte_model_string_is_refused_in_one_line(tmp_path, ros_env) -> None:
    huge = _params_file(tmp_path, "huge", {"/**": {"model": "m" * 10_000_000}})
    result = _start("generation_node", ["--params-file", huge], ros_env)
    _refused_in_one_line(result, "generation_node.model", "at most 4096 characters")
    assert len(result.stderr) < 10_000
