"""After the colcon build, the package is where ROS tools look for it, with all its parts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import auras_ros
import auras_ros.msg
import auras_ros.nodes
from ament_index_python.packages import get_package_prefix, get_package_share_directory

from auras_ros.launching import executable_path
from package_files import REPO, console_scripts

SHARE = Path(get_package_share_directory("auras_ros"))
INSTALLED_PY = Path(auras_ros.msg.__file__).parent.parent  # <prefix>/lib/pythonX.Y/site-packages/auras_ros


def relative_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def test_share_dir_holds_package_xml_launch_and_config():
    assert (SHARE / "package.xml").is_file()
    for folder in ("launch", "config"):
        assert relative_files(SHARE / folder) == relative_files(REPO / folder), folder
    assert (SHARE / "launch" / "roundtrip.launch.py").is_file()
    assert (SHARE / "config" / "fastdds_shm_profile.xml").is_file()


def test_interface_definitions_are_installed():
    assert {p.name for p in (SHARE / "msg").glob("*.msg")} == {p.name for p in (REPO / "msg").glob("*.msg")}


def test_every_console_script_is_an_installed_launcher():
    for name, target in console_scripts().items():
        exe = Path(executable_path("auras_ros", name))
        assert os.access(exe, os.X_OK), f"{exe} missing or not executable"
        text = exe.read_text()
        interpreter = text.splitlines()[0].removeprefix("#!")
        assert os.access(interpreter, os.X_OK), f"{exe}: interpreter {interpreter} not found"
        module, function = target.split(":")
        assert f"from {module} import {function}" in text


def test_python_package_is_installed_next_to_the_generated_messages():
    assert INSTALLED_PY.is_relative_to(get_package_prefix("auras_ros"))
    assert (INSTALLED_PY / "msg" / "__init__.py").is_file()
    # The generated (empty) package __init__ stays; our source one only matters for development.
    assert (INSTALLED_PY / "__init__.py").read_text() == ""
    # Python edits need no rebuild (the source tree comes first during development), so the
    # installed copy may lag the source; check what the installed launchers import.
    installed = relative_files(INSTALLED_PY)
    assert {"core/__init__.py", "nodes/__init__.py", "launching.py"} <= installed
    for target in console_scripts().values():
        module = target.split(":")[0].removeprefix("auras_ros.")
        assert module.replace(".", "/") + ".py" in installed


def test_development_imports_source_code_and_installed_messages():
    """Source tree first on PYTHONPATH: Python code comes from it, auras_ros.msg from the build."""
    assert Path(auras_ros.nodes.__file__).is_relative_to(REPO / "auras_ros")
    assert Path(auras_ros.msg.__file__).is_relative_to(get_package_prefix("auras_ros"))


def test_core_imports_without_rclpy():
    code = "import sys, auras_ros.core; assert 'rclpy' not in sys.modules, 'auras_ros.core imported rclpy'"
    subprocess.run([sys.executable, "-c", code], check=True)
