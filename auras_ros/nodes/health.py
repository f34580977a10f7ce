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
from auras_ros.transport.dds_limits import FASTDDS_DEFAULT_SEGMENT, PROFILES_ENV, message_bytes, segment_limit

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


LOSS_REPORT_PERIOD_S = 2.0  # seconds between two warnings about one topic's losses or oversized messages


class PeriodicWarning:
    """Messages of one kind (lost, oversized) on one topic: counted as they happen and said in one WARN
    per ``period`` at most that names how many, the largest size seen and the transport's limit: the
    first at once, later ones at the end of their period, so a stream of them neither floods the log nor
    passes quietly. ``flush`` says what is still unsaid (a node about to exit)."""

    def __init__(self, node: Node, period: float, say: Callable[[int, int, int], str]) -> None:
        self._node = node
        self._say = say  # (new since the last warning, total, largest size) -> the warning
        self._period = period
        self._lock = threading.Lock()
        self.total = 0
        self.largest = 0
        self._unsaid = 0
        self._said_at = -float("inf")
        node.create_timer(period, self._on_timer)

    def add(self, count: int, nbytes: int = 0) -> None:
        with self._lock:
            self.total += count
            self._unsaid += count
            self.largest = max(self.largest, nbytes)
            quiet = time.monotonic() - self._said_at >= self._period
        if count and quiet:
            self.flush()

    def _on_timer(self) -> None:
        with self._lock:
            due = time.monotonic() - self._said_at >= self._period
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            unsaid, self._unsaid = self._unsaid, 0
            if unsaid:
                self._said_at = time.monotonic()
        if unsaid:
            self._node.get_logger().warning(self._say(unsaid, self.total, self.largest))


class TransportLosses:
    """The messages DDS lost on their way to a subscription to ``topic`` (``message_lost`` events: e.g. an
    image larger than its publisher's shared-memory segment), counted through ``count`` and warned about
    once per period with the size of the largest message that did arrive and the limit in effect here.
    Pass it as ``losses`` to :meth:`LocalDelivery.subscription`, which shows it every message received."""

    def __init__(self, node: Node, topic: str, count: Callable[[int], None],
                 period: float = LOSS_REPORT_PERIOD_S) -> None:
        self._count = count
        self.limit = segment_limit()
        self.warning = PeriodicWarning(node, period, lambda new, total, largest: (
            f"{new} messages on {topic} lost in transport ({total} so far); the largest that arrived was "
            + (f"{largest:,} B" if largest else "none yet: no message arrived")
            + "; a message larger than its publisher's shared-memory segment is mostly lost (Fast DDS's default: "
            f"{FASTDDS_DEFAULT_SEGMENT:,} B; this process: {self.limit.describe()}): start the publishing "
            f"process with {PROFILES_ENV} set as here (README: Large camera frames)"))
        self.callbacks = SubscriptionEventCallbacks(message_lost=self._lost)

    def _lost(self, info: Any) -> None:
        self._count(info.total_count_change)
        self.warning.add(info.total_count_change)

    def received(self, msg: Any) -> None:
        nbytes = message_bytes(msg)
        if nbytes > self.warning.largest:
            self.warning.add(0, nbytes)


class OversizeMessages:
    """A publisher's messages that cannot reach another process on this host: larger than this process's
    shared-memory segment (transport/dds_limits.py). Counted and warned about once per period with their
    size and the limit; they are still published (a subscriber in this process gets them, and one in
    another process sometimes does)."""

    def __init__(self, node: Node, topic: str, period: float = LOSS_REPORT_PERIOD_S) -> None:
        self.limit = segment_limit()
        self.warning = PeriodicWarning(node, period, lambda new, total, largest: (
            f"{new} messages on {topic} ({total} so far, up to {largest:,} B) are larger than the limit "
            f"{self.limit.describe()}: subscribers in other processes lose them. Use a larger segment_size "
            f"(README: Large camera frames)"))

    def check(self, msg: Any) -> bool:
        """True if ``msg`` fits; else it is counted and warned about (at once, or at the period's end)."""
        nbytes = message_bytes(msg)
        if nbytes <= self.limit.nbytes:
            return True
        self.warning.add(1, nbytes)
        return False


def end_node(node: Node, reason: str, error: BaseException) -> None:
    """A node's executor thread met an exception no callback caught: the node's health ends it (ERROR,
    exit FATAL_EXIT) when it has one; otherwise the exception goes on, as in a process of its own."""
    health = getattr(node, "health", None)
    if not isinstance(health, Health):
        raise error
    node.get_logger().error("".join(traceback.format_exception(error)))
    health.fatal(reason)
