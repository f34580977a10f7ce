"""What the shipped launch files (launch/*.launch.py) share: the agent's launch arguments, and how they
declare an auras_ros node.

Every node ends the launch when it exits (``on_exit`` → ``Shutdown``): a node that refuses to start
(exit 2) or can no longer work (exit 3) takes the graph down with it, the robot's gate deactivating
with a stop command, instead of leaving the rest waiting; a simulator or bag player that finished its
episodes ends the run the same way, and the evaluator writes its report at that shutdown.

``launch`` and ``launch_ros`` are imported where they are used: only a launch file calls these
functions, under `ros2 launch` (or the test suite's stand-in for it).
"""

from __future__ import annotations

import os
from typing import Any

from ament_index_python.packages import get_package_share_directory

from auras_ros.core.spec import DEFAULT_EXECUTOR, TEXT_FORMS
from auras_ros.transport.dds_limits import PROFILES_ENV

PACKAGE = "auras_ros"

# name -> (default, description) of the arguments every agent graph takes.
AGENT_ARGUMENTS: dict[str, tuple[str, str]] = {
    "model": ("synthetic", "agent preset (synthetic, diffusion-tiny, ar-tiny) or local checkpoint directory"),
    "device": ("cpu", "torch device of the model: cpu or cuda"),
    "executor": (DEFAULT_EXECUTOR, f"executor in the core.spec text form: {TEXT_FORMS}"),
    "transport": ("inline", "tensor transport between the agent's processes: inline or shm (composed: in-process)"),
    "composed": ("false", "run every agent stage in one process"),
    "state_topic": ("", "sensor_msgs/JointState topic of the robot state, for a model that takes one beside the "
                        "image ('': image only)"),
    # launch reads an argument as YAML: an instruction with a colon needs quotes (instruction:="'a: b'").
    "instruction": ("", "an OpenVLA checkpoint's task in words ('': another model)"),
    "unnorm_key": ("", "an OpenVLA checkpoint's dataset whose statistics unnormalise its actions ('': its only one)"),
    # Measured (tools/shutdown_times.py, README "Run it on your robot"): SIGINT to exit up to 1.7 s for five
    # processes exiting at once on 2 cores, up to 2.4 s beside two busy processes (up to 2.8 s in other
    # runs); launch's own default (5 s) leaves a loaded robot computer little margin.
    "sigterm_timeout": ("15", "seconds launch waits after SIGINT before it escalates to SIGTERM"),
}


def config_file(name: str) -> str:
    """A file of the installed package's config/ folder."""
    return os.path.join(get_package_share_directory(PACKAGE), "config", name)


def declare(arguments: dict[str, tuple[str | None, str]]) -> list[Any]:
    """One DeclareLaunchArgument per entry (a None default: a required argument)."""
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(name, default_value=default, description=text)
            for name, (default, text) in arguments.items()]


def configurations(arguments: dict[str, Any]) -> dict[str, Any]:
    """A LaunchConfiguration substitution per argument name."""
    from launch.substitutions import LaunchConfiguration

    return {name: LaunchConfiguration(name) for name in arguments}


def fastdds_env() -> dict[str, str]:
    """A launched process's Fast DDS profile (``additional_env``): camera frames between processes need a
    shared-memory segment larger than Fast DDS's default 512 KB, in the *publishing* process
    (transport/dds_limits.py); a profile of the user's own (in the launch's environment) wins."""
    return {PROFILES_ENV: os.environ.get(PROFILES_ENV) or config_file("fastdds_shm_profile.xml")}


def node(executable: str, parameters: list[Any], named: bool = True, **kwargs: Any) -> Any:
    """An auras_ros node whose exit ends the launch. ``named``: the process holds one node of that name
    (the composed process holds several, which a ``__node`` remap would all rename)."""
    from launch.actions import Shutdown
    from launch_ros.actions import Node

    return Node(package=PACKAGE, executable=executable, name=executable if named else None,
                parameters=parameters, output="screen", additional_env=fastdds_env(),
                on_exit=Shutdown(reason=f"{executable} exited"), **kwargs)
