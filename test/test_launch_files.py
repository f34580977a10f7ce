"""The shipped launch files name executables the package installs, and the demo one runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import executable_path
from package_files import console_scripts
from launch_stub import LaunchError, LaunchRun, configure, load_launch_file, nodes_of, show_args

LAUNCH_DIR = Path(get_package_share_directory("auras_ros"), "launch")
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))


def test_launch_files_are_installed():
    assert LAUNCH_FILES, f"no launch files in {LAUNCH_DIR}"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_node_names_an_installed_executable(path, monkeypatch):
    nodes = nodes_of(load_launch_file(path, monkeypatch))
    assert nodes, f"{path.name} declares no Node"
    # Other packages' nodes (ros_gz_sim, ros_gz_bridge in gazebo.launch.py) are package.xml exec
    # dependencies that cannot be installed here.
    ours = [n for n in nodes if n["package"] == "auras_ros"]
    assert ours, f"{path.name} starts none of this package's nodes"
    for node in ours:
        assert node["executable"] in console_scripts(), f"{node['executable']} is not in setup.cfg console_scripts"
        exe = executable_path(node["package"], node["executable"])
        assert os.access(exe, os.X_OK), f"{exe} is not installed as an executable"
        for params in node.get("parameters", []):
            if isinstance(params, str):
                assert Path(params).is_file(), f"{path.name}: parameter file {params} is missing"


def test_roundtrip_launch_file_runs(monkeypatch, ros_env, tmp_path):
    """roundtrip.launch.py run as `ros2 launch` runs it: the pair completes the roundtrip and both exit 0,
    which ends the launch (idle)."""
    with LaunchRun(load_launch_file(LAUNCH_DIR / "roundtrip.launch.py", monkeypatch), {}, ros_env, tmp_path) as run:
        run.wait(60.0)  # a hang guard: the pair ends by itself
        output = run.output()
    assert [p.popen.returncode for p in run.processes] == [0, 0], output
    assert "all 4 interfaces arrived intact" in output


README = Path(__file__).resolve().parents[1] / "README.md"
ARGUMENT = re.compile(r'\s+([A-Za-z_][A-Za-z0-9_]*):=("[^"]*"|[^\s`]+)')


def readme_launch_lines() -> list[tuple[str, dict[str, str]]]:
    """Every `ros2 launch auras_ros <file> name:=value ...` of the README (continuation lines and
    markdown line wraps joined), as (file, arguments)."""
    text = README.read_text().replace("\\\n", " ")
    found = []
    for match in re.finditer(r"ros2\s+launch\s+auras_ros\s+([a-z_]+\.launch\.py)", text):
        arguments, rest = {}, text[match.end():]
        while (arg := ARGUMENT.match(rest)) is not None:
            arguments[arg.group(1)] = arg.group(2).strip('"')
            rest = rest[arg.end():]
        found.append((match.group(1), arguments))
    return found


def test_the_readme_names_only_declared_launch_arguments(monkeypatch):
    """Each README example of `ros2 launch` names arguments its launch file declares (what `--show-args`
    lists), with values its choices allow, and every required one."""
    lines = readme_launch_lines()
    assert {name for name, _ in lines} >= {"auras.launch.py", "sim.launch.py", "replay.launch.py", "gazebo.launch.py"}
    for name, arguments in lines:
        description = load_launch_file(LAUNCH_DIR / name, monkeypatch)
        try:
            configure(description, arguments)
        except LaunchError as error:
            pytest.fail(f"README: ros2 launch auras_ros {name} {arguments}: {error}\n{show_args(description)}")


def test_every_launch_argument_is_described(monkeypatch):
    for path in LAUNCH_FILES:
        shown = show_args(load_launch_file(path, monkeypatch))
        assert "no description given" not in shown, f"{path.name}:\n{shown}"
