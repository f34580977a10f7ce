"""A recorder stub of ROS 2 `launch` / `launch_ros.actions`, for tests only (never installed).

The real packages are not installable from PyPI, so tests load launch files against this stub:
it only records what the file declares (LaunchDescription entities, Node(**kwargs), launch
arguments), which is enough to check the declared executables and to start the nodes with the
command lines launch_ros would build.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest


@dataclass
class LaunchDescription:
    entities: list[Any] = field(default_factory=list)


@dataclass
class Node:
    kwargs: dict[str, Any]

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


@dataclass
class DeclareLaunchArgument:
    name: str
    default_value: Any = None
    description: str = ""


@dataclass
class LaunchConfiguration:
    variable_name: str
    default: Any = None


def _module(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attrs)
    return module


def load_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> LaunchDescription:
    """Import a .launch.py against the stub and return what generate_launch_description() built."""
    actions = _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument)
    substitutions = _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration)
    ros_actions = _module("launch_ros.actions", Node=Node)
    stubs = {
        "launch": _module("launch", LaunchDescription=LaunchDescription, actions=actions,
                          substitutions=substitutions),
        "launch.actions": actions,
        "launch.substitutions": substitutions,
        "launch_ros": _module("launch_ros", actions=ros_actions),
        "launch_ros.actions": ros_actions,
    }
    for name, module in stubs.items():
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location(f"_launch_file_{path.name.split('.')[0]}", path)
    launch_file = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch_file)
    return launch_file.generate_launch_description()


def nodes_of(description: LaunchDescription) -> list[dict[str, Any]]:
    return [e.kwargs for e in description.entities if isinstance(e, Node)]
