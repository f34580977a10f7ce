"""The shipped launch files name executables the package installs, and the demo one runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ament_index_python.packages import get_package_share_directory

from auras_ros.launching import executable_path, node_command, run_processes
from package_files import console_scripts
from launch_stub import load_launch_file, nodes_of

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
    """Start the nodes of roundtrip.launch.py as launch_ros would; the pair completes the roundtrip."""
    nodes = nodes_of(load_launch_file(LAUNCH_DIR / "roundtrip.launch.py", monkeypatch))
    cmds = [node_command(n["package"], n["executable"], name=n.get("name"),
                         params_files=[p for p in n.get("parameters", []) if isinstance(p, str)],
                         remappings=n.get("remappings", []), arguments=n.get("arguments", []))
            for n in nodes]
    results = run_processes(cmds, ros_env, timeout_s=60.0, log_dir=tmp_path)
    output = "".join(r.output() for r in results)
    assert [r.returncode for r in results] == [0] * len(results), output
    assert "all 4 interfaces arrived intact" in output
