"""A stand-in for ROS 2 `launch` 3.4 and `launch_ros` 0.26 (Jazzy), for tests only (never installed).

The real packages are not installable from the package index, so tests import the shipped launch files
against this module and run what they declare as `ros2 launch` would. It is our own code, written from
reading the jazzy sources of ros2/launch and ros2/launch_ros; at the boundary (command lines, parameter
files, signals, log lines) it does what they do:

- launch arguments: ``DeclareLaunchArgument.execute`` (a required argument without a value is an error,
  ``choices`` are checked), ``LaunchConfiguration.perform`` (the configuration, else its default, else
  an error); undeclared ``name:=value`` arguments, which the real launch accepts silently, are refused
  here so that a test (or a README line) cannot name an argument no launch file declares;
- substitutions: ``launch.utilities.normalize_to_list_of_substitutions`` / ``perform_substitutions``,
  ``PythonExpression.perform`` (``eval`` with ``math``'s names), ``IfCondition`` / ``UnlessCondition``
  through ``evaluate_condition_expression`` ('true'/'1', 'false'/'0', anything else an error);
- parameters: ``launch_ros.utilities.normalize_parameter_dict`` (nested dicts flattened with '.', a
  string kept as ``yaml.dump(value)``, a list made uniform: ints, floats, bools, or else strings) and
  ``evaluate_parameter_dict`` (a substituted value read as YAML, '' for an empty one, a list made a
  tuple), then ``Node._create_params_file_from_dict``: ``yaml.dump(..., default_flow_style=False)`` of
  ``{'/**' or the full node name: {'ros__parameters': params}}`` into a ``launch_params_*`` file, so
  lists arrive as ``!!python/tuple``; keyed by the full node name only when the node has both a name
  and a namespace (``is_node_name_fully_specified``), else ``/**``; a parameter file path that is not a
  file is skipped with launch_ros's warning;
- the command line: ``Node.__init__`` and ``Node._perform_substitutions``: ``<prefix>/lib/<pkg>/<exe>``,
  ``arguments``, ``--ros-args``, ``-r __node:=<name>``, ``-r __ns:=<ns>``, one ``--params-file`` per
  ``parameters`` entry in their order, ``-r from:=to`` per remapping;
- processes: ``launch.descriptions.Executable.prepare`` names each ``<exec_name>-<n>`` (one counter over
  the launch), ``ExecuteLocal`` logs 'process started with pid', 'process has finished cleanly' or
  'process has died [pid, exit code, cmd]', runs ``on_exit`` (``Shutdown.execute`` then logs 'process[..]
  was required: shutting down launched system'), and on shutdown (``ExecuteLocal._shutdown_process``)
  sends SIGINT, then SIGTERM after ``sigterm_timeout`` and SIGKILL ``sigkill_timeout`` later (both launch
  configurations, default 5 s, read per process), logging 'process[..] failed to terminate ..'. A
  Ctrl-C (``stop``) is SIGINT from the terminal to every process, with the same escalation;
- ``ros2 launch --show-args``: ``ros2launch.api.print_arguments_of_launch_description``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

import pytest
import yaml

from auras_ros.launching import executable_path

DEFAULT_SIGNAL_TIMEOUT_S = "5"  # ExecuteLocal: LaunchConfiguration('sigterm_timeout'/'sigkill_timeout', default=5)


class LaunchError(RuntimeError):
    """What the real launch raises (and `ros2 launch` prints) for a launch file it cannot run."""


# -- substitutions ---------------------------------------------------------------------------------
class Substitution:
    def perform(self, context: "LaunchContext") -> str:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


@dataclass
class TextSubstitution(Substitution):
    text: str

    def perform(self, context: "LaunchContext") -> str:
        return self.text

    def describe(self) -> str:
        return f"'{self.text}'"


class LaunchConfiguration(Substitution):
    def __init__(self, variable_name: Any, default: Any = None) -> None:
        self.variable_name = normalize(variable_name)
        self.default = None if default is None else normalize(default)

    def perform(self, context: "LaunchContext") -> str:
        name = perform(context, self.variable_name)
        if name in context.launch_configurations:
            return context.launch_configurations[name]
        if self.default is None:
            raise LaunchError(f"launch configuration '{name}' does not exist")
        return perform(context, self.default)

    def describe(self) -> str:
        return f"LaunchConfig('{' + '.join(s.describe() for s in self.variable_name)}')"


class PythonExpression(Substitution):
    def __init__(self, expression: Any, python_modules: Any = ("math",)) -> None:
        self.expression = normalize(expression)
        self.python_modules = normalize(list(python_modules)) if not isinstance(python_modules, str) else normalize(
            python_modules)

    def perform(self, context: "LaunchContext") -> str:
        names: dict[str, Any] = {}
        for sub in self.python_modules:
            module = importlib.import_module(sub.perform(context))
            if module.__name__ == "math":
                names.update(vars(math))  # launch keeps math's names usable without the prefix
            names[module.__name__] = module
        return str(eval(perform(context, self.expression), {}, names))  # noqa: S307 - as launch does

    def describe(self) -> str:
        return f"PythonExpr({' + '.join(s.describe() for s in self.expression)})"


def normalize(value: Any) -> list[Substitution]:
    """launch.utilities.normalize_to_list_of_substitutions."""
    if isinstance(value, str):
        return [TextSubstitution(value)]
    if isinstance(value, Substitution):
        return [value]
    if isinstance(value, Sequence):
        return [TextSubstitution(v) if isinstance(v, str) else v for v in value]
    raise TypeError(f"expected a string, a Substitution or a list of them, got {value!r}")


def perform(context: "LaunchContext", subs: list[Substitution]) -> str:
    return "".join(s.perform(context) for s in subs)


# -- context, arguments, conditions -----------------------------------------------------------------
@dataclass
class LaunchContext:
    launch_configurations: dict[str, str] = field(default_factory=dict)


@dataclass
class LaunchDescription:
    entities: list[Any] = field(default_factory=list)

    def get_launch_arguments(self) -> list["DeclareLaunchArgument"]:
        return [e for e in self.entities if isinstance(e, DeclareLaunchArgument)]


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None, description: str | None = None,
                 choices: list[str] | None = None) -> None:
        self.name = name
        self.default_value = None if default_value is None else normalize(default_value)
        self.description = "no description given" if description is None else description
        if choices is not None and not description:
            self.description = f"One of: {choices}"
        self.choices = choices

    def execute(self, context: LaunchContext) -> None:
        if self.name not in context.launch_configurations:
            if self.default_value is None:
                raise LaunchError(f'Required launch argument "{self.name}" was not provided.')
            context.launch_configurations[self.name] = perform(context, self.default_value)
        value = context.launch_configurations[self.name]
        if self.choices is not None and value not in self.choices:
            raise LaunchError(f'Argument "{self.name}" provided value "{value}" is not valid. '
                              f"Valid options are: {self.choices}")


class IfCondition:
    def __init__(self, predicate_expression: Any) -> None:
        self.expression = normalize(predicate_expression)

    def evaluate(self, context: LaunchContext) -> bool:
        text = perform(context, self.expression).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise LaunchError(f"Unexpected condition expression '{text}': expected one of ['true', '1', 'false', '0']")


class UnlessCondition(IfCondition):
    def evaluate(self, context: LaunchContext) -> bool:
        return not super().evaluate(context)


@dataclass
class Shutdown:
    reason: str = "reason not given"


# -- launch_ros: parameters -----------------------------------------------------------------------
@dataclass
class OneString:
    """A normalized value that substitutes to one string, read as YAML at evaluation."""

    subs: list[Substitution]


@dataclass
class StringList:
    """A normalized list whose items each substitute to a string, read as YAML at evaluation."""

    items: list[list[Substitution]]


def _normalize_list(values: Sequence[Any]) -> tuple | OneString | StringList:
    kinds = {Substitution if isinstance(v, Substitution) else type(v) for v in values}
    if kinds == {int}:
        return tuple(int(v) for v in values)
    if kinds in ({float}, {int, float}):
        return tuple(float(v) for v in values)
    if Substitution in kinds and kinds <= {str, Substitution}:
        return OneString(normalize(list(values)))
    if kinds == {bool}:
        return tuple(bool(v) for v in values)
    # Otherwise a list of strings, each element its own substitution list.
    return StringList([normalize(yaml.dump(v)) if isinstance(v, (bool, int, float, str)) else normalize(v)
                       for v in values])


def normalize_parameter_dict(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened with '.'; a string as the YAML launch_ros writes of it; a substitution
    kept to evaluate later; a list made uniform."""
    normalized: dict[str, Any] = {}
    for name, value in params.items():
        name = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping):
            normalized.update(normalize_parameter_dict(value, name))
        elif isinstance(value, str):
            normalized[name] = OneString(normalize(yaml.dump(value)))
        elif isinstance(value, Substitution):
            normalized[name] = OneString(normalize(value))
        elif isinstance(value, (bool, int, float, bytes)):
            normalized[name] = value
        elif isinstance(value, Sequence):
            normalized[name] = _normalize_list(value)
        else:
            raise TypeError(f"Unexpected type for parameter value {value!r}")
    return normalized


def _uniform(values: list[Any], name: str) -> tuple:
    if not values or type(values[0]) not in (bool, int, float, str) or not all(
            isinstance(v, type(values[0])) for v in values):
        raise LaunchError("Expected a non-empty sequence, with items of uniform type. Allowed sequence item "
                          f'types are bool, int, float, str. Got inconsistent input for "{name}"')
    return tuple(values)


def evaluate_parameter_dict(context: LaunchContext, params: dict[str, Any]) -> dict[str, Any]:
    """Substitutions performed and read as YAML, as launch_ros does before writing the file."""
    evaluated: dict[str, Any] = {}
    for name, value in params.items():
        if isinstance(value, OneString):
            text = perform(context, value.subs) or "''"
            try:
                loaded = yaml.safe_load(text)
            except yaml.YAMLError:
                raise LaunchError(f"Unable to parse the value of parameter {name} as yaml") from None
            if type(loaded) in (bool, int, float, str, bytes):
                evaluated[name] = loaded
            elif isinstance(loaded, Sequence):
                evaluated[name] = _uniform(list(loaded), name)
            else:
                raise LaunchError(f'Allowed value types are bytes, bool, int, float, str and uniform sequences '
                                  f'of them. Got {type(loaded)} for "{name}"')
        elif isinstance(value, StringList):
            evaluated[name] = _uniform([yaml.safe_load(perform(context, sub)) for sub in value.items], name)
        else:
            evaluated[name] = value
    return evaluated


# -- launch_ros: Node -----------------------------------------------------------------------------
class Node:
    UNSPECIFIED_NODE_NAME = "<node_name_unspecified>"
    UNSPECIFIED_NODE_NAMESPACE = "<node_namespace_unspecified>"

    def __init__(self, *, executable: str, package: str | None = None, name: str | None = None,
                 namespace: str | None = None, exec_name: str | None = None, parameters: list[Any] | None = None,
                 remappings: list[tuple[str, str]] | None = None, ros_arguments: list[str] | None = None,
                 arguments: list[str] | None = None, **kwargs: Any) -> None:
        self.kwargs = dict(executable=executable, package=package, name=name, namespace=namespace,
                           exec_name=exec_name, parameters=parameters or [], remappings=remappings or [],
                           ros_arguments=ros_arguments, arguments=arguments or [], **kwargs)
        self.condition = kwargs.get("condition")
        # Files stay paths; dicts are normalized now, as launch_ros's Node.__init__ does.
        self.parameters = [p if isinstance(p, (str, Path, Substitution)) else normalize_parameter_dict(p)
                           for p in parameters or []]

    def node_name(self, context: LaunchContext) -> str:
        name = self.kwargs["name"]
        ns = self.kwargs["namespace"]
        name = self.UNSPECIFIED_NODE_NAME if name is None else perform(context, normalize(name))
        if ns is None:
            return f"{self.UNSPECIFIED_NODE_NAMESPACE}/{name}"
        ns = perform(context, normalize(ns))
        ns = ns if ns.startswith("/") else "/" + ns
        return f"{ns.rstrip('/')}/{name}"

    def command(self, context: LaunchContext, params_dir: Path, warn: Callable[[str], None]) -> list[str]:
        k = self.kwargs
        sub = lambda value: perform(context, normalize(value))  # noqa: E731
        cmd = [executable_path(k["package"], k["executable"]) if k["package"] else k["executable"]]
        cmd += [sub(a) for a in k["arguments"]]
        if k["ros_arguments"] is not None:
            cmd += ["--ros-args", *(sub(a) for a in k["ros_arguments"])]
        cmd.append("--ros-args")
        if k["name"] is not None:
            cmd += ["-r", f"__node:={sub(k['name'])}"]
        node_name = self.node_name(context)
        if k["namespace"] is not None:
            cmd += ["-r", f"__ns:={node_name.rsplit('/', 1)[0] or '/'}"]
        fully_specified = self.UNSPECIFIED_NODE_NAME not in node_name and self.UNSPECIFIED_NODE_NAMESPACE not in node_name
        for params in self.parameters:
            if isinstance(params, dict):
                values = evaluate_parameter_dict(context, params)
                with tempfile.NamedTemporaryFile(mode="w", prefix="launch_params_", dir=params_dir,
                                                 delete=False) as f:
                    yaml.dump({node_name if fully_specified else "/**": {"ros__parameters": values}}, f,
                              default_flow_style=False)
                path = f.name
            else:
                path = sub(str(params) if isinstance(params, Path) else params)
                if not os.path.isfile(path):
                    warn(f"Parameter file path is not a file: {path}")
                    continue
            cmd += ["--params-file", path]
        for src, dst in k["remappings"]:
            cmd += ["-r", f"{sub(src)}:={sub(dst)}"]
        return cmd


# -- loading a launch file ------------------------------------------------------------------------
def _module(name: str, **attrs: Any) -> ModuleType:
    module = ModuleType(name)
    module.__dict__.update(attrs)
    return module


def load_launch_file(path: Path, monkeypatch: pytest.MonkeyPatch) -> LaunchDescription:
    """Import a .launch.py against this stand-in and return what generate_launch_description() built.
    A name the stand-in does not model fails the import: a launch file cannot use what tests cannot run."""
    actions = _module("launch.actions", DeclareLaunchArgument=DeclareLaunchArgument, Shutdown=Shutdown)
    substitutions = _module("launch.substitutions", LaunchConfiguration=LaunchConfiguration,
                            PythonExpression=PythonExpression, TextSubstitution=TextSubstitution)
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


def configure(description: LaunchDescription, overrides: dict[str, str] | None = None) -> LaunchContext:
    """The launch context after `ros2 launch <file> name:=value ...`: every declared argument executed."""
    declared = {a.name for a in description.get_launch_arguments()}
    unknown = set(overrides or {}) - declared
    if unknown:
        raise LaunchError(f"undeclared launch arguments {sorted(unknown)} (declared: {sorted(declared)})")
    context = LaunchContext(dict(overrides or {}))
    for argument in description.get_launch_arguments():
        argument.execute(context)
    return context


def launch_arguments(description: LaunchDescription, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Every declared argument's value under ``overrides``."""
    return dict(configure(description, overrides).launch_configurations)


def nodes_of(description: LaunchDescription, arguments: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The declared nodes' keyword arguments; with ``arguments``, only those whose condition holds."""
    nodes = [e for e in description.entities if isinstance(e, Node)]
    if arguments is None:
        return [n.kwargs for n in nodes]
    context = LaunchContext(dict(arguments))
    return [n.kwargs for n in nodes if n.condition is None or n.condition.evaluate(context)]


def show_args(description: LaunchDescription) -> str:
    """What `ros2 launch <package> <file> --show-args` prints."""
    lines = ["Arguments (pass arguments as '<name>:=<value>'):"]
    arguments = description.get_launch_arguments()
    for argument in arguments:
        text = f"\n    '{argument.name}':\n        {argument.description}"
        if argument.default_value is not None:
            text += f"\n        (default: {' + '.join(s.describe() for s in argument.default_value)})"
        lines.append(text)
    if not arguments:
        lines.append("\n  No arguments.")
    return "\n".join(lines)


# -- running it -----------------------------------------------------------------------------------
@dataclass
class Process:
    name: str  # <exec_name>-<n>, as launch names it in its log
    node: Node
    cmd: list[str]
    sigterm_timeout: float
    sigkill_timeout: float
    popen: subprocess.Popen | None = None
    log: Path | None = None
    exited: bool = False
    signals: list[tuple[float, int]] = field(default_factory=list)  # escalation deadlines after a SIGINT


@dataclass
class Prepared:
    """A launch file's processes under some arguments, before they start."""

    context: LaunchContext
    processes: list[Process]
    lines: list[str]  # launch's own log, so far


def prepare(description: LaunchDescription, overrides: dict[str, str], params_dir: Path,
            packages: set[str] | None = None) -> Prepared:
    """Arguments executed, conditions evaluated, parameter files written and command lines built, as
    launch does before it starts the processes. ``packages`` limits the nodes to those packages
    (gazebo.launch.py's ros_gz nodes cannot be installed here)."""
    context = configure(description, overrides)
    lines: list[str] = []
    params_dir.mkdir(parents=True, exist_ok=True)
    timeouts = {key: context.launch_configurations.get(key, DEFAULT_SIGNAL_TIMEOUT_S)
                for key in ("sigterm_timeout", "sigkill_timeout")}
    nodes = [e for e in description.entities if isinstance(e, Node)
             and (e.condition is None or e.condition.evaluate(context))
             and (packages is None or e.kwargs["package"] in packages)]
    processes = []
    for n, node in enumerate(nodes, start=1):
        k = node.kwargs
        own = {key: float(perform(context, normalize(k.get(key, default)))) for key, default in timeouts.items()}
        cmd = node.command(context, params_dir, lambda text: lines.append(f"[WARNING] [launch_ros]: {text}"))
        processes.append(Process(f"{k['exec_name'] or Path(k['executable']).name}-{n}", node, cmd,
                                 own["sigterm_timeout"], own["sigkill_timeout"]))
    return Prepared(context, processes, lines)


def launch_commands(description: LaunchDescription, overrides: dict[str, str], params_dir: Path) -> list[list[str]]:
    """The command lines `ros2 launch` would run (for tests that run them without launch's event handling)."""
    return [p.cmd for p in prepare(description, overrides, params_dir).processes]


class LaunchRun:
    """The processes of a launch file under some arguments, run as `ros2 launch` runs them."""

    def __init__(self, description: LaunchDescription, overrides: dict[str, str], env: dict[str, str],
                 log_dir: Path, packages: set[str] | None = None) -> None:
        prepared = prepare(description, overrides, log_dir, packages)
        self.context, self.processes, self.lines = prepared.context, prepared.processes, prepared.lines
        self.shutdown_reason: str | None = None
        for process in self.processes:
            process.log = log_dir / f"{process.name}.log"
            with open(process.log, "w") as out:
                # ros2 launch runs its processes in its own working directory: here the test's folder, so
                # that relative defaults (sim.launch.py's report_dir) land there and not in the checkout.
                # ExecuteProcess's additional_env: added to (and overriding) the launch's environment.
                extra = {perform(self.context, normalize(key)): perform(self.context, normalize(value))
                         for key, value in (process.node.kwargs.get("additional_env") or {}).items()}
                process.popen = subprocess.Popen(process.cmd, env={**env, **extra}, stdout=out,
                                                 stderr=subprocess.STDOUT, cwd=log_dir)
            self._log("INFO", process.name, f"process started with pid [{process.popen.pid}]")

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [p.popen for p in self.processes]

    def _log(self, level: str, who: str, text: str) -> None:
        self.lines.append(f"[{level}] [{who}]: {text}")

    def step(self) -> None:
        """What launch's event loop does between two looks: exits noticed (and their on_exit actions
        run), escalation timers fired."""
        now = time.monotonic()
        for process in self.processes:
            code = process.popen.poll()
            if code is not None and not process.exited:
                process.exited = True
                if code == 0:
                    self._log("INFO", process.name, f"process has finished cleanly [pid {process.popen.pid}]")
                else:
                    self._log("ERROR", process.name, f"process has died [pid {process.popen.pid}, exit code {code}, "
                                                     f"cmd '{' '.join(process.cmd)}'].")
                on_exit = process.node.kwargs.get("on_exit")
                if isinstance(on_exit, Shutdown) and self.shutdown_reason is None:
                    self._log("INFO", "launch", f"process[{process.name}] was required: shutting down launched system")
                    self.shutdown(on_exit.reason, send_sigint=True)
            while code is None and process.signals and process.signals[0][0] <= now:
                _, sig = process.signals.pop(0)
                before, after = ("SIGINT", "SIGTERM") if sig == signal.SIGTERM else ("SIGTERM", "SIGKILL")
                timeout = process.sigterm_timeout if sig == signal.SIGTERM else process.sigkill_timeout
                self._log("ERROR", process.name, f"process[{process.name}] failed to terminate '{timeout:g}' seconds "
                                                 f"after receiving '{before}', escalating to '{after}'")
                process.popen.send_signal(sig)

    def shutdown(self, reason: str, send_sigint: bool = True) -> None:
        """A Shutdown event: every live process gets SIGINT (by launch, or by the terminal on Ctrl-C), and
        SIGTERM / SIGKILL timers."""
        if self.shutdown_reason is not None:
            return
        self.shutdown_reason = reason
        now = time.monotonic()
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.send_signal(signal.SIGINT)
                process.signals = [(now + process.sigterm_timeout, signal.SIGTERM),
                                   (now + process.sigterm_timeout + process.sigkill_timeout, signal.SIGKILL)]

    @property
    def ended(self) -> bool:
        return all(p.exited for p in self.processes)

    def wait(self, timeout_s: float, each: Callable[[], None] | None = None) -> bool:
        """Run launch's loop until every process has ended (True) or ``timeout_s`` passes (a hang guard)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.step()
            if self.ended or time.monotonic() > deadline:
                return self.ended
            if each is not None:
                each()
            else:
                time.sleep(0.05)  # polls child processes; launch's asyncio loop waits on them the same way

    def stop(self, timeout_s: float = 60.0) -> tuple[list[int | None], str]:
        """Ctrl-C: SIGINT to every process, escalated as launch does; the exit codes (None: still running
        at the hang guard) and everything said."""
        self.shutdown("ctrl-c (SIGINT)")
        self.wait(timeout_s)
        return [p.popen.poll() for p in self.processes], self.output()

    def output(self) -> str:
        parts = [f"--- {p.name}\n{p.log.read_text()}" for p in self.processes if p.log is not None]
        return "\n".join(parts + ["--- launch", *self.lines])

    def close(self) -> None:
        for process in self.processes:
            if process.popen.poll() is None:
                process.popen.kill()
                process.popen.wait()

    def __enter__(self) -> "LaunchRun":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
