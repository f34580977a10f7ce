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


@dataclass
class IfCondition:
    predicate: Any

    def holds(self, arguments: dict[str, str]) -> bool:
        return resolve(self.predicate, arguments).strip().lower() in ("true", "1")


@dataclass
class UnlessCondition(IfCondition):
    def holds(self, arguments: dict[str, str]) -> bool:
        return not super().holds(arguments)


def resolve(value: Any, arguments: dict[str, str]) -> Any:
    """A LaunchConfiguration's value under ``arguments``, as launch would substitute it."""
    if isinstance(value, LaunchConfiguration):
        return arguments[value.variable_name]
    return value


def launch_arguments(description: "LaunchDescription", overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every declared argument's value: its default, or the override (like `name:=value`)."""
    values = {e.name: e.default_value for e in description.entities if isinstance(e, DeclareLaunchArgument)}
    unknown = set(overrides or {}) - set(values)
    assert not unknown, f"undeclared launch arguments {sorted(unknown)}"
    return {**values, **(overrides or {})}


def _module(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attrs)
    return module


def load_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> LaunchDescription:
    """Import a .launch.py against the stub and return what generate_launch_description() built."""
    actions = _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument)
    substitutions = _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration)
    conditions = _module("launch.conditions", IfCondition=IfCondition, UnlessCondition=UnlessCondition)
    ros_actions = _module("launch_ros.actions", Node=Node)
    stubs = {
        "launch": _module("launch", LaunchDescription=LaunchDescription, actions=actions,
                          substitutions=substitutions, conditions=conditions),
        "launch.actions": actions,
        "launch.conditions": conditions,
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


def nodes_of(description: LaunchDescription, arguments: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The declared nodes; with ``arguments``, only those whose condition holds under them."""
    nodes = [e.kwargs for e in description.entities if isinstance(e, Node)]
    if arguments is None:
        return nodes
    return [n for n in nodes if n.get("condition") is None or n["condition"].holds(arguments)]
