"""Start-up errors of the real node executables: every bad parameter type, unknown parameter (a typo),
unreadable params file and wrong camera source gives one line naming it, exit 2, no traceback; a -p on
the command line wins over the node's entry in config/auras.yaml."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import node_command
from auras_ros.nodes.process import typo_of

CONFIG = str(Path(get_package_share_directory("auras_ros"), "config", "auras.yaml"))


def _start(executable: str, ros_args: list[str], env: dict[str, str], timeout_s: float = 60.0):
    command = node_command("auras_ros", executable) + ros_args
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout_s)


def _refused_in_one_line(result: subprocess.CompletedProcess, *shown: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output, output
    lines = [line for line in result.stderr.splitlines() if "refusing to start" in line]
    assert len(lines) == 1, output
    for text in shown:
        assert text in lines[0], output


@pytest.fixture
def bad_files(tmp_path: Path) -> dict[str, str]:
    files = {"malformed": "/**:\n  ros__parameters:\n    executor: [1,\n",
             "not a mapping": "- executor\n",
             "typo": "generation_node:\n  ros__parameters:\n    executr: seq\n"}
    paths = {}
    for name, text in files.items():
        path = tmp_path / f"{name.replace(' ', '_')}.yaml"
        path.write_text(text)
        paths[name] = str(path)
    paths["missing"] = str(tmp_path / "missing.yaml")
    return paths


@pytest.mark.parametrize("executable, args, shown", [
    ("generation_node", ["-p", "stats_period:=often"], ["generation_node.stats_period", "a float"]),
    ("generation_node", ["-p", "executr:=seq"], ["executr", "did you mean executor?"]),
    ("action_node", ["-p", "action_timeout:=soon"], ["action_node.action_timeout", "a float"]),
    ("action_node", ["-p", "outputs:=[cmd_vel]"], ["action_node.outputs", "'twist_stamped'"]),
    ("action_node", ["-p", "action_node:stop_after:=1.0"], ["action_node.stop_after", "unknown"]),
    ("camera_node", ["-p", "source:=7"], ["source='7'", "V4L2 device"]),
], ids=["type", "typo", "float-type", "choice", "addressed-unknown", "camera-index"])
def test_bad_parameters_stop_the_node_with_one_line(executable, args, shown, ros_env) -> None:
    _refused_in_one_line(_start(executable, args, ros_env), *shown)


@pytest.mark.parametrize("which", ["malformed", "not a mapping", "missing", "typo"])
def test_bad_params_files_stop_the_node_with_one_line(which, bad_files, ros_env) -> None:
    shown = ["executr", "did you mean executor?"] if which == "typo" else [bad_files[which]]
    _refused_in_one_line(_start("generation_node", ["--params-file", bad_files[which]], ros_env), *shown)


def test_composed_process_refuses_a_bad_params_file_in_one_line(bad_files, ros_env) -> None:
    result = _start("auras_composed", ["--params-file", bad_files["malformed"]], ros_env)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert bad_files["malformed"] in result.stderr


def test_camera_index_written_as_a_number_is_the_device_index(ros_env) -> None:
    # source:=0 (the documented index form) arrives as an integer; it means device 0, which this
    # machine lacks: the node names the source, instead of a type error's traceback.
    result = _start("camera_node", ["-p", "source:=0"], ros_env)
    _refused_in_one_line(result, "source='0'")


def test_a_command_line_override_wins_over_the_node_entry_of_the_params_file(ros_env) -> None:
    # config/auras.yaml sets action_node: action_timeout: 0.5; the -p must win (rcl alone ranks it lower),
    # so an out-of-range -p value is refused, naming it, where the file's 0.5 would have started.
    result = _start("action_node", ["--params-file", CONFIG, "-p", "action_timeout:=600.0"], ros_env)
    _refused_in_one_line(result, "action_node.action_timeout='600.0'")


def test_no_parameter_of_one_node_looks_like_a_typo_of_another_nodes() -> None:
    """The typo rule (close to a declared name) must never refuse a parameter that another node of the
    package declares, since one params file serves the whole graph."""
    declared = {}
    for module, attribute in [("auras_ros.nodes.action_node", "PARAMS"), ("auras_ros.nodes.camera_node", "PARAMS"),
                              ("auras_ros.nodes.perception_node", "PARAMS"), ("auras_ros.nodes.context_node", "PARAMS"),
                              ("auras_ros.nodes.generation_node", "PARAMS"), ("auras_ros.sim.sim_node", "PARAMS")]:
        declared[module] = {p.name for p in getattr(importlib.import_module(module), attribute)}
    for module, names in declared.items():
        others = set().union(*(n for m, n in declared.items() if m != module)) - names
        flagged = {name: typo_of(name, names) for name in others if typo_of(name, names)}
        assert not flagged, f"{module} would refuse other nodes' parameters as typos: {flagged}"
