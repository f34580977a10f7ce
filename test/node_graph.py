"""Helpers and fixtures for tests of the ROS 2 graph: a listener in the test process on the graph's
private domain, the agent's nodes in the test process, and the node processes a launch file declares."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import rclpy
from rcl_interfaces.srv import GetParameters, ListParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter, parameter_value_to_python

from auras_ros.launching import stop_process
from auras_ros.nodes.composed import stop_producers
from auras_ros.nodes.spinners import NodeSpinners

REPO = Path(__file__).resolve().parents[1]
CALL_RETRY_S = 5.0  # a service call not answered within this is sent again
DRAIN_CALLBACKS = 1000  # at most this many messages already received are taken after a node ended
DEMO_FRAMES = REPO / "data" / "demo_frames"


class Listener:
    """An rclpy node in the test process that records what the graph publishes."""

    def __init__(self, domain_id: int, name: str = "test_listener") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list[Any]] = {}

    def record(self, msg_type: type, topic: str, qos: Any, arrivals: list[float] | None = None) -> list[Any]:
        """Every message on ``topic``; ``arrivals`` gets each one's receipt time (monotonic s)."""
        messages = self.received.setdefault(topic, [])

        def receive(msg: Any) -> None:
            messages.append(msg)
            if arrivals is not None:
                arrivals.append(time.monotonic())

        self.node.create_subscription(msg_type, topic, receive, qos)
        return messages

    def spin_until(self, done: Callable[[], bool], timeout_s: float, processes: list["subprocess.Popen"] = (),
                   each: Callable[[], None] | None = None) -> bool:
        """Handle callbacks (calling ``each`` once per turn) until done() holds; the timeout only guards
        against a hang."""
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            if any(p.poll() is not None for p in processes):
                # A node ended (it may have finished its work): take what it sent before, then stop waiting.
                for _ in range(DRAIN_CALLBACKS):
                    if done():
                        break
                    self.executor.spin_once(timeout_sec=0)
                break
            if each is not None:
                each()
            self.executor.spin_once(timeout_sec=0.1)
        return done()

    def parameters(self, node_name: str, names: list[str], timeout_s: float = 60.0) -> dict[str, Any]:
        """The values a running node holds, asked through its ~/list_parameters and ~/get_parameters
        services (None: the node does not declare that name)."""
        declared = self._call(node_name, ListParameters, "list_parameters", ListParameters.Request(depth=0),
                              timeout_s).result.names
        asked = [name for name in names if name in declared]
        values = self._call(node_name, GetParameters, "get_parameters", GetParameters.Request(names=asked),
                            timeout_s).values
        held = dict(zip(asked, (parameter_value_to_python(v) for v in values), strict=False))
        return {name: held.get(name) for name in names}

    def _call(self, node_name: str, srv_type: type, service: str, request: Any, timeout_s: float) -> Any:
        client = self.node.create_client(srv_type, f"/{node_name}/{service}")
        try:
            deadline = time.monotonic() + timeout_s  # a hang guard
            assert self.spin_until(client.service_is_ready, timeout_s), f"{node_name} offers no {service}"
            # Asked again until answered: a request or response sent as the match forms can be lost.
            while time.monotonic() < deadline:
                future = client.call_async(request)
                if self.spin_until(future.done, CALL_RETRY_S):
                    return future.result()
                client.remove_pending_request(future)
            raise AssertionError(f"{node_name} did not answer {service} within {timeout_s:g} s")
        finally:
            self.node.destroy_client(client)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> "Listener":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def on_private_domain(cls: type, ros_env: dict[str, str]) -> Iterator[Any]:
    """A Listener or Graph on the test's own ROS domain (localhost only: ros_env), closed after the test."""
    item = cls(int(ros_env["ROS_DOMAIN_ID"]))
    yield item
    item.close()


@pytest.fixture
def listener(ros_env: dict[str, str]) -> Iterator[Listener]:
    yield from on_private_domain(Listener, ros_env)


class Processes:
    def __init__(self, commands: list[list[str]], env: dict[str, str], log_dir: Path) -> None:
        self.logs = [log_dir / f"{i}_{Path(c[0]).name}.log" for i, c in enumerate(commands)]
        self.files = [open(log, "w") for log in self.logs]
        self.procs = [subprocess.Popen(c, env=env, stdout=f, stderr=subprocess.STDOUT)
                      for c, f in zip(commands, self.files, strict=False)]

    def output(self) -> str:
        for f in self.files:
            f.flush()
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)

    def interrupt(self, grace_s: float) -> list[int | None]:
        """SIGINT every process; the exit codes of those that ended within grace_s (None: hung)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(2)
        codes = []
        for proc in self.procs:
            try:
                codes.append(proc.wait(timeout=grace_s))
            except subprocess.TimeoutExpired:
                codes.append(None)
        return codes

    def stop(self, grace_s: float = 15.0) -> tuple[list[int | None], str]:
        """SIGINT every process; their exit codes (None: hung) and everything they printed. The grace
        is a hang guard, generous for a loaded machine: a clean exit returns at once."""
        codes = self.interrupt(grace_s)
        return codes, self.output()

    def close(self) -> None:
        for proc in self.procs:
            stop_process(proc, grace_s=2.0)
        for f in self.files:
            f.close()

    def __enter__(self) -> "Processes":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Graph:
    """Nodes of the agent graph in this process, on a private domain, spun by a multi-threaded executor."""

    def __init__(self, domain_id: int) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.nodes: list[Any] = []
        self.spinners: NodeSpinners | None = None

    def add(self, node_class: type, overrides: dict[str, Any], **kwargs: Any) -> Any:
        assert self.spinners is None, "add every node before the graph starts spinning"
        node = node_class(context=self.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()],
                          **kwargs)
        self.nodes.append(node)
        return node

    def probe(self, name: str) -> rclpy.node.Node:
        """A plain node of the test's own, to publish bad input and read what the graph says."""
        node = rclpy.create_node(name, context=self.context)
        self.nodes.append(node)
        return node

    def spin_until(self, done, timeout_s: float = 60.0, each: Callable[[], None] | None = None) -> bool:
        """Spin every node in its own thread (as the composed process does) until done() holds, calling
        ``each`` once per turn (e.g. a best-effort message sent until it shows)."""
        if self.spinners is None:
            self.spinners = NodeSpinners(self.nodes, context=self.context).start()
        deadline = time.monotonic() + timeout_s  # a hang guard, not a measurement
        while not done() and time.monotonic() < deadline:
            if each is not None:
                each()
            time.sleep(0.01)  # polls a condition the node threads change; no event to await across them
        return done()

    def close(self) -> None:
        stop_producers(self.nodes)
        if self.spinners is not None:
            self.spinners.shutdown()
        for node in reversed(self.nodes):
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def graph(ros_env: dict[str, str]) -> Iterator[Graph]:
    yield from on_private_domain(Graph, ros_env)
