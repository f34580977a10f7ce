"""The launch stand-in (test/launch_stub.py) does at the boundary what launch / launch_ros (Jazzy) do:
the parameter files it writes, their keys, the command line's order, argument and condition rules,
`--show-args`. Each expectation below is what the jazzy sources produce (cited in the stub)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from auras_ros.launching import executable_path
from auras_ros.nodes.process import ParamsFileLoader, check_params_files
from launch_stub import (
    DeclareLaunchArgument, IfCondition, LaunchConfiguration, LaunchContext, LaunchDescription, LaunchError, Node,
    PythonExpression, UnlessCondition, configure, prepare, show_args)


def _params_files(cmd: list[str]) -> list[str]:
    return [value for flag, value in zip(cmd, cmd[1:], strict=False) if flag == "--params-file"]


def _command(node: Node, tmp_path: Path, **arguments: str) -> list[str]:
    description = LaunchDescription([DeclareLaunchArgument(name, default_value=value) for name, value in arguments.items()]
                                    + [node])
    return prepare(description, {}, tmp_path).processes[0].cmd


def test_a_dict_is_written_as_launch_ros_writes_it(tmp_path):
    """yaml.dump, not safe_dump: lists become !!python/tuple; a name without a namespace keys it /**."""
    node = Node(package="auras_ros", executable="action_node", name="action_node",
                parameters=[{"outputs": LaunchConfiguration("outputs"), "joint_names": ["a", "b"], "rate": 2,
                             "scale": {"linear": {"x": 1.5}}, "mode": "frame", "count": LaunchConfiguration("n"),
                             "empty": LaunchConfiguration("e")}])
    cmd = _command(node, tmp_path, outputs="[twist_stamped]", n="3", e="")
    [path] = _params_files(cmd)
    text = Path(path).read_text()
    assert Path(path).name.startswith("launch_params_")
    assert text.startswith("/**:\n  ros__parameters:\n")
    assert "outputs: !!python/tuple\n    - twist_stamped" in text and "joint_names: !!python/tuple" in text
    values = yaml.load(text, Loader=ParamsFileLoader)["/**"]["ros__parameters"]
    assert values == {"outputs": ["twist_stamped"], "joint_names": ["a", "b"], "rate": 2, "scale.linear.x": 1.5,
                      "mode": "frame", "count": 3, "empty": ""}
    check_params_files(["--params-file", path])  # what the nodes' start-up check reads too


def test_a_namespaced_node_is_keyed_by_its_full_name(tmp_path):
    node = Node(package="auras_ros", executable="action_node", name="gate", namespace="robot1",
                parameters=[{"rate": 1.0}])
    cmd = _command(node, tmp_path)
    assert yaml.load(Path(_params_files(cmd)[0]).read_text(), Loader=ParamsFileLoader) == {
        "/robot1/gate": {"ros__parameters": {"rate": 1.0}}}
    assert cmd[cmd.index("--ros-args"):cmd.index("--params-file")] == [
        "--ros-args", "-r", "__node:=gate", "-r", "__ns:=/robot1"]


def test_command_line_order(tmp_path):
    """exe, arguments, --ros-args, name, one --params-file per entry in order, remappings."""
    shared = tmp_path / "shared.yaml"
    shared.write_text("/**:\n  ros__parameters:\n    rate: 1.0\n")
    node = Node(package="auras_ros", executable="camera_node", name="cam", arguments=["--flag"],
                parameters=[str(shared), {"rate": 2.0}, str(tmp_path / "missing.yaml")],
                remappings=[("camera/image_raw", "/front/image")])
    description = LaunchDescription([node])
    prepared = prepare(description, {}, tmp_path)
    cmd = prepared.processes[0].cmd
    files = _params_files(cmd)
    assert cmd[:5] == [executable_path("auras_ros", "camera_node"), "--flag", "--ros-args", "-r", "__node:=cam"]
    assert files[0] == str(shared) and len(files) == 2  # the missing file is skipped, as launch_ros does
    assert cmd[-2:] == ["-r", "camera/image_raw:=/front/image"]
    assert any("Parameter file path is not a file" in line for line in prepared.lines)


def test_mixed_lists_and_bad_values_are_refused_as_launch_ros_refuses_them(tmp_path):
    node = Node(package="auras_ros", executable="action_node", parameters=[{"x": LaunchConfiguration("v")}])
    with pytest.raises(LaunchError, match="uniform type"):
        _command(node, tmp_path, v="[1, a]")
    with pytest.raises(LaunchError, match="Allowed value types"):
        _command(node, tmp_path, v="{a: 1}")


def test_arguments_and_conditions():
    description = LaunchDescription([DeclareLaunchArgument("bag"), DeclareLaunchArgument("mode", default_value="a",
                                                                                          choices=["a", "b"])])
    with pytest.raises(LaunchError, match='Required launch argument "bag"'):
        configure(description, {})
    with pytest.raises(LaunchError, match='provided value "c" is not valid'):
        configure(description, {"bag": "x", "mode": "c"})
    with pytest.raises(LaunchError, match="undeclared launch arguments"):
        configure(description, {"bag": "x", "typo": "1"})
    context = LaunchContext({"on": "True", "off": "0", "bad": "yes"})
    assert IfCondition(LaunchConfiguration("on")).evaluate(context)
    assert UnlessCondition(LaunchConfiguration("off")).evaluate(context)
    with pytest.raises(LaunchError, match="Unexpected condition expression"):
        IfCondition(LaunchConfiguration("bad")).evaluate(context)
    assert PythonExpression(["'", LaunchConfiguration("on"), "' == 'True' and floor(2.5) == 2"]).perform(context) == "True"


def test_show_args_prints_what_ros2_launch_prints():
    description = LaunchDescription([DeclareLaunchArgument("model", default_value="synthetic", description="agent"),
                                     DeclareLaunchArgument("bag", description="required")])
    assert show_args(description) == (
        "Arguments (pass arguments as '<name>:=<value>'):\n\n    'model':\n        agent\n"
        "        (default: 'synthetic')\n\n    'bag':\n        required")


def test_rclpy_reads_a_launch_ros_file_as_the_stub_writes_it(tmp_path, ros_env):
    """The node process reads the tuple-tagged list and the /** key as rcl does (the real boundary)."""
    node = Node(package="auras_ros", executable="action_node", name="action_node",
                parameters=[{"outputs": ["twist_stamped", "joint_trajectory"], "joint_names": ["j1", "j2"]}])
    [path] = _params_files(_command(node, tmp_path))
    script = ("import rclpy, sys; from rclpy.node import Node; rclpy.init(args=sys.argv);"
              "n = Node('action_node', automatically_declare_parameters_from_overrides=True);"
              "print(n.get_parameter('outputs').value, n.get_parameter('joint_names').value)")
    out = subprocess.run(["python", "-c", script, "--ros-args", "--params-file", path], env=ros_env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.search(r"\['twist_stamped', 'joint_trajectory'\] \['j1', 'j2'\]", out.stdout), out.stdout
