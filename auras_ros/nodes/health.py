"""Node health on /diagnostics: a periodic OK/WARN status per node, and the end of a node that can no
longer work: ERROR on /diagnostics, then a non-zero exit, so that launch's respawn or a supervisor acts
(never a live process that silently does nothing)."""

from __future__ import annotations

import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.node import Node

from auras_ros.nodes.qos import ORDERED

FATAL_EXIT = 3  # exit code of a node that stopped because it could no longer work
OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


@dataclass(frozen=True)
class Status:
    """What a node says about itself: a level (OK, WARN, ERROR), one line, and its counters."""

    level: bytes
    message: str
    values: dict[str, Any] = field(default_factory=dict)


def with_graph_captures(status: Status, agent: Any) -> Status:
    """``status`` with the agent's CUDA-graph captures counted; a call path that fell back to eager
    (slower, still correct) turns OK into WARN and is named."""
    log = getattr(agent, "graph_log", None)
    if log is None or not (log.captured or log.fallbacks):
        return status
    values = dict(status.values, **{"cuda graphs captured": log.captured, "cuda graph fallbacks": len(log.fallbacks)})
    if log.fallbacks and status.level == OK:
        return Status(WARN, f"{status.message}; CUDA graphs: {log.summary()}", values)
    return Status(status.level, status.message, values)


class Health:
    """Publishes ``check()`` on /diagnostics every ``period`` seconds, as ``auras_ros/<node name>``."""

    def __init__(self, node: Node, check: Callable[[], Status], period: float, callback_group: Any = None) -> None:
        self._node = node
        self._check = check
        self._publisher = node.create_publisher(DiagnosticArray, "/diagnostics", ORDERED)
        self.failed = threading.Event()
        self.reason = ""
        node.create_timer(period, self.report, callback_group=callback_group)

    def report(self) -> None:
        status = Status(ERROR, self.reason) if self.failed.is_set() else self._check()
        array = DiagnosticArray()
        array.header.stamp = self._node.get_clock().now().to_msg()
        array.status.append(DiagnosticStatus(
            level=status.level, name=f"auras_ros/{self._node.get_name()}", message=status.message,
            hardware_id=self._node.get_name(),
            values=[KeyValue(key=str(k), value=str(v)) for k, v in status.values.items()]))
        self._publisher.publish(array)

    def fatal(self, reason: str) -> None:
        """The node can no longer work: say so now (ERROR, logged once) and ask its process to exit
        with FATAL_EXIT (``run_node`` and the composed process watch ``failed``). Thread-safe."""
        if self.failed.is_set():
            return
        self.reason = reason
        self.failed.set()
        self._node.get_logger().error(f"cannot work any more, exiting with code {FATAL_EXIT}: {reason}")
        self.report()


def failed_nodes(nodes: Iterable[Node]) -> list[str]:
    """'name: reason' of each node whose health ended it."""
    return [f"{node.get_name()}: {node.health.reason}" for node in nodes
            if isinstance(getattr(node, "health", None), Health) and node.health.failed.is_set()]


def exit_code(nodes: Iterable[Node]) -> int:
    return FATAL_EXIT if failed_nodes(nodes) else 0


def wait_stopped_or_failed(stop: threading.Event, nodes: list[Node], timeout: float | None = None) -> None:
    """Block until ``stop`` is set (a signal), a node's health ends it, or ``timeout`` seconds pass."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not failed_nodes(nodes):
        left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
        if left <= 0 or stop.wait(left):
            return


def counting_losses(node: Node, topic: str, count: Callable[[int], None]) -> SubscriptionEventCallbacks:
    """Event callbacks for a subscription to ``topic`` that count the messages DDS lost before they
    reached it (e.g. a 48 MB image over best effort, lost in fragments), instead of losing them quietly."""

    def lost(info: Any) -> None:
        count(info.total_count_change)
        node.get_logger().warning(f"{info.total_count} messages on {topic} lost in transport so far "
                                  "(too large for the transport, or the link dropped them)", throttle_duration_sec=2.0)

    return SubscriptionEventCallbacks(message_lost=lost)


def end_node(node: Node, reason: str, error: BaseException) -> None:
    """A node's executor thread met an exception no callback caught: the node's health ends it (ERROR,
    exit FATAL_EXIT) when it has one; otherwise the exception goes on, as in a process of its own."""
    health = getattr(node, "health", None)
    if not isinstance(health, Health):
        raise error
    node.get_logger().error("".join(traceback.format_exception(error)))
    health.fatal(reason)
