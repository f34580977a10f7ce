"""The life cycle every auras_ros node executable shares: init, work, clean shutdown."""

from __future__ import annotations

import contextlib
import difflib
import faulthandler
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Optional, Sequence

import rclpy
import yaml
from rcl_interfaces.msg import ParameterType
from rclpy.exceptions import NameValidationException
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.node import Node
from rclpy.parameter import Parameter

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.nodes.health import exit_code, failed_nodes
from auras_ros.nodes.params import shorten
from auras_ros.nodes.spinners import DEFAULT_SPINNER, SPINNERS

# Parameters every rclpy node has, declared by rclpy itself.
ROS_PARAMETERS = ("use_sim_time", "start_type_description_service")
# An unknown parameter this close to a declared one (difflib ratio), and this long, is a typo.
TYPO_CUTOFF = 0.9
TYPO_MIN_LENGTH = 6
MAX_NAME_LENGTH = 256  # longer is no parameter name of ours, nor a typo of one
OWN_CUTOFF = 0.6  # an unknown name addressed to the node is refused anyway; this close, it gets a hint
REFUSAL_CHARS = 2000  # a refusal is one readable line
# A process still alive this many seconds after its stop signal prints every thread's stack: before
# launch escalates to SIGTERM (its sigterm_timeout, 15 s in launch_files.py), a hung shutdown says where.
STOP_REPORT_S = 10.0


def spin_until(node: Node, done: Callable[[], bool], timeout_s: float, poll_s: Optional[float] = None) -> bool:
    """Handle the node's callbacks until done() holds or timeout_s passes; return done(). ``poll_s``: the
    longest wait for a callback (None: until the deadline), for a ``done`` no callback wakes (graph changes).

    On an executor of its own, shut down before returning, so no wait generator of ``rclpy.spin_once``'s
    global executor outlives the call holding the node's entities in use. (Tried against a rare hang in
    ``destroy_node``, ``destroy_when_not_in_use``: it did not remove it, 3 hangs in 80 runs; cause open.)"""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            executor.spin_once(timeout_sec=left if poll_s is None else min(left, poll_s))
        return done()
    finally:
        executor.shutdown()  # drops its wait generator and with it the entities it held in use


@contextlib.contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, in place of rclpy's handlers, which shut the context down
    under callbacks still running and make them fail; stopping on our own terms lets the nodes end
    their threads and in-flight callbacks first.

    The first signal also arms a report (faulthandler, never cancelled: the process is ending): if the
    process is still alive STOP_REPORT_S later, in its loop, its teardown or the interpreter's exit,
    stderr (the launch log) gets every thread's stack."""
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        if not stop.is_set():
            faulthandler.dump_traceback_later(STOP_REPORT_S)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def finished(nodes: Sequence[Node]) -> bool:
    """Whether every one of ``nodes`` that has finite work (a ``finished`` event, e.g. sim_node's
    episodes) has done it; False when none has such work."""
    events = [node.finished for node in nodes if isinstance(getattr(node, "finished", None), threading.Event)]
    return bool(events) and all(e.is_set() for e in events)


def spin_until_stopped(executor: Executor, stop: threading.Event, deadline: Optional[float] = None,
                       nodes: Sequence[Node] = ()) -> None:
    """Spin until a signal, the deadline, one of ``nodes`` can no longer work (nodes/health.py), or
    the nodes' finite work is done."""
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline) and not failed_nodes(nodes) \
            and not finished(nodes):
        executor.spin_once(timeout_sec=0.1)


def ros_arguments(argv: Iterable[str]) -> list[str]:
    """The arguments between --ros-args and the next --, for every such section."""
    found, inside = [], False
    for arg in argv:
        if arg == "--ros-args":
            inside = True
        elif arg == "--":
            inside = False
        elif inside:
            found.append(arg)
    return found


def _options(ros_args: list[str], *flags: str) -> list[str]:
    return [value for flag, value in zip(ros_args, ros_args[1:], strict=False) if flag in flags]


class ParamsFileLoader(yaml.SafeLoader):
    """YAML as rcl's parameter parser reads it: launch_ros writes the files of a launch file's parameter
    dicts with ``yaml.dump``, so a list value arrives tagged ``!!python/tuple`` (launch_ros
    ``evaluate_parameter_dict`` makes every list a tuple); rcl ignores tags and reads a sequence."""


ParamsFileLoader.add_constructor("tag:yaml.org,2002:python/tuple",
                                 lambda loader, node: loader.construct_sequence(node))


def check_params_files(ros_args: list[str]) -> None:
    """A ConfigError naming a --params-file that is missing, unreadable or not a ROS parameters file
    (rcl would only raise an error with a traceback)."""
    for path in _options(ros_args, "--params-file"):
        expected = "a readable YAML mapping of {node name or /**: {ros__parameters: {name: value}}}"
        try:
            content = yaml.load(Path(path).read_text(), Loader=ParamsFileLoader)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise ConfigError("--params-file", path, f"{expected} ({reason})") from None
        if not isinstance(content, dict) or not all(isinstance(v, dict) for v in content.values()):
            raise ConfigError("--params-file", path, expected)  # rcl's own check names no file


def command_line_overrides(ros_args: list[str]) -> list[str]:
    """The plain `-p name:=value` overrides, as node-local arguments: given to the node itself they
    rank above its node-specific entries in a params file, so the command line wins, as users expect
    (given globally, rcl ranks them below those entries)."""
    plain = [p for p in _options(ros_args, "-p", "--param") if ":" not in p.split(":=", 1)[0]]
    return ["--ros-args", *(arg for p in plain for arg in ("-p", p))] if plain else []


def _spelling(name: str) -> str:
    """A name as a typo compares it: case and separators do not count (actionTimeout, Action_Timeout)."""
    return "".join(c for c in name.lower() if c.isalnum() or c == ".")


def closest(name: str, declared: Iterable[str], cutoff: float) -> str | None:
    """The declared name closest to ``name`` (case and separators aside) at difflib ratio >= cutoff."""
    by_spelling = {_spelling(d): d for d in sorted(declared)}
    close = difflib.get_close_matches(_spelling(name), list(by_spelling), n=1, cutoff=cutoff)
    return by_spelling[close[0]] if close else None


def typo_of(name: str, declared: Iterable[str]) -> str | None:
    """The declared name that ``name`` most likely misspells, or None. Short names are too close to
    each other (mode, model) to tell a typo from another node's parameter; a test checks that no
    parameter of one node looks like a typo of another's."""
    if len(name) < TYPO_MIN_LENGTH or len(name) > MAX_NAME_LENGTH:
        return None
    return closest(name, declared, TYPO_CUTOFF)


@dataclass(frozen=True)
class Given:
    """One value the command line gives a node's parameter: where from, and whether it was addressed
    to that node by name (its own section of a params file, or ``-p node:name:=value``) rather than
    to every node (``/**``, a plain ``-p``)."""

    name: str
    value: Any
    origin: str
    own: bool


def _section_matches(key: str, fully_qualified: str) -> bool:
    """Whether a params file section (``/**``, ``node``, ``/ns/node``, ``/**/node``, ``*``) names the
    node, with rcl's wildcards: ``**`` any number of namespace tokens, ``*`` one token."""
    key = key if key.startswith("/") else "/" + key
    pattern = "".join("(/[^/]+)*" if token == "**" else "/[^/]+" if token == "*" else "/" + re.escape(token)
                      for token in key.strip("/").split("/"))
    return re.fullmatch(pattern, fully_qualified) is not None


def _flatten(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{a: {b: 1}}`` as ``a.b: 1``, as rcl names nested parameters."""
    for name, value in values.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def given_parameters(node: Node, ros_args: list[str]) -> list[Given]:
    """Every value the command line gives ``node``, in rcl's order (params files, then ``-p``), every
    file included, not only the value that won. Read from the arguments themselves, the way rcl reads
    them (rclpy has no public view of a node's overrides)."""
    fqn = node.get_fully_qualified_name()
    given = []
    for path in _options(ros_args, "--params-file"):
        content = yaml.load(Path(path).read_text(), Loader=ParamsFileLoader)  # checked by check_params_files
        for key, section in content.items():
            if isinstance(section, dict) and isinstance(section.get("ros__parameters"), dict) \
                    and _section_matches(str(key), fqn):
                own = str(key).rstrip("/").rsplit("/", 1)[-1] == node.get_name()
                given += [Given(n, v, f"--params-file {path} ({key})", own)
                          for n, v in _flatten(section["ros__parameters"])]
    for option in _options(ros_args, "-p", "--param"):
        name, _, text = option.partition(":=")
        target, _, addressed = name.rpartition(":")
        if target and target not in (node.get_name(), fqn):
            continue
        try:
            value = yaml.safe_load(text)  # rcl reads a -p value as YAML
        except yaml.YAMLError:
            value = text
        given.append(Given(addressed, value, f"-p {shorten(name)}", bool(target)))
    return given


_TYPE_NAMES = {ParameterType.PARAMETER_BOOL: "a bool (true or false)", ParameterType.PARAMETER_INTEGER: "an integer",
               ParameterType.PARAMETER_DOUBLE: "a float", ParameterType.PARAMETER_STRING: "a string",
               ParameterType.PARAMETER_STRING_ARRAY: "a list of strings",
               ParameterType.PARAMETER_INTEGER_ARRAY: "a list of integers",
               ParameterType.PARAMETER_DOUBLE_ARRAY: "a list of floats",
               ParameterType.PARAMETER_BOOL_ARRAY: "a list of bools"}


def _check_type(node: Node, given: Given) -> None:
    """A ConfigError when ``given`` does not have its declared parameter's type (an integer passes for
    a float or a string: YAML writes 1 for 1.0 and 0 for the camera "0")."""
    expected = node.describe_parameter(given.name).type
    if isinstance(given.value, list) and not given.value:
        return  # an empty YAML list has no element type
    try:
        got = Parameter.Type.from_parameter_value(given.value).value
    except TypeError:
        got = None
    if got == expected or (got == ParameterType.PARAMETER_INTEGER
                           and expected in (ParameterType.PARAMETER_DOUBLE, ParameterType.PARAMETER_STRING)):
        return
    raise ConfigError(f"{node.get_name()}.{given.name}", shorten(given.value),
                      f"{_TYPE_NAMES.get(expected, 'its declared type')} (given by {given.origin})")


def check_given_parameters(nodes: list[Node], ros_args: list[str]) -> None:
    """A ConfigError for a value the command line gives one of ``nodes``: of the wrong type (in any
    params file, not only the one that won), unknown while addressed to that node (with the closest
    declared name, if any), or a typo of a declared name. Other undeclared entries pass: one params
    file (and launch_ros's parameter dicts, under ``/**``) serve several nodes."""
    declared = {name for node in nodes for name in node.list_parameters([], 0).names}
    for node in nodes:
        own_names = set(node.list_parameters([], 0).names)
        for given in given_parameters(node, ros_args):
            if given.name in own_names:
                _check_type(node, given)
                continue
            if given.name in declared or given.name in ROS_PARAMETERS or given.name.startswith("qos_overrides."):
                continue
            close = closest(given.name, own_names, OWN_CUTOFF) if given.own else typo_of(given.name, declared)
            if not (given.own or close):
                continue
            hint = f" (did you mean {close}?)" if close else ""
            raise ConfigError(f"{node.get_name()}.{shorten(given.name)}", shorten(given.value),
                              f"a parameter {node.get_name()} declares{hint}; this one is unknown "
                              f"(given by {given.origin})")


def start_nodes(make_nodes: Callable[[list[str]], list[Node]], argv: list[str]) -> list[Node]:
    """The process's nodes, made with the command line's plain -p overrides as node-local arguments;
    a ConfigError for a parameter no node declares. Call after init_rclpy."""
    ros_args = ros_arguments(argv)
    try:
        nodes = make_nodes(command_line_overrides(ros_args))
    except Exception as error:  # noqa: BLE001 - narrowed below: rclpy's RCLError has no public import
        if not (isinstance(error, NameValidationException) or type(error).__name__ == "RCLError"):
            raise
        # A name rcl refuses (e.g. a remap or node name past 255 characters): one line, not a traceback.
        raise ConfigError("--ros-args", shorten(" ".join(ros_args)),
                          f"names rcl accepts ({shorten(str(error).splitlines()[0] if str(error) else error)})") from None
    try:
        check_given_parameters(nodes, ros_args)
    except ConfigError:
        for node in reversed(nodes):
            node.destroy_node()
        raise
    return nodes


def init_rclpy(argv: list[str], **kwargs: Any) -> None:
    """rclpy.init, with a params file problem as a ConfigError naming it instead of rcl's traceback."""
    check_params_files(ros_arguments(argv))
    try:
        rclpy.init(args=argv, **kwargs)
    except Exception as error:  # noqa: BLE001 - rclpy raises its RCLError for any bad --ros-args
        raise ConfigError("--ros-args", shorten(" ".join(ros_arguments(argv))),
                          f"valid ROS arguments ({str(error).splitlines()[0]})") from None


def run_node(make_node: Callable[..., Node], work: Optional[Callable[[Node], int]] = None,
             args: Optional[list[str]] = None, before_exit: Optional[Callable[[Node], None]] = None) -> int:
    """Create the node, run work(node) (default: spin until SIGINT/SIGTERM), return an exit code.

    SIGINT and SIGTERM end a plain spin with code 0. A node with finite work that gets
    interrupted returns 1, because its work did not finish. A start-up error (bad parameter, params
    file, model) prints one line and returns 2. ``before_exit`` runs after the spin, while the node
    can still publish (the action node's stop command).
    """
    argv = sys.argv if args is None else args
    name = getattr(make_node, "__name__", "node")
    node = None
    try:
        try:
            init_rclpy(argv, **({"signal_handler_options": SignalHandlerOptions.NO} if work is None else {}))
            node = start_nodes(lambda cli_args: [make_node(cli_args=cli_args) if cli_args else make_node()], argv)[0]
        except (ConfigError, InputError) as error:
            # A bad parameter or model: one clear line, and the node refuses to start.
            print(f"{name}: refusing to start: {shorten(error, REFUSAL_CHARS)}", file=sys.stderr, flush=True)
            return 2
        if work is None:
            # As in the composed process (nodes/spinners.py): measured the faster per hop.
            executor = SPINNERS[DEFAULT_SPINNER]()
            executor.add_node(node)
            with stop_requested() as stop:
                spin_until_stopped(executor, stop, nodes=[node])
            executor.shutdown()
            if before_exit is not None:
                before_exit(node)
            return exit_code([node])  # non-zero when the node ended because it could no longer work
        return work(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print(f"{node.get_name() if node else 'node'}: interrupted before its work finished", flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
