"""How a stand-alone node process stops (nodes/process.py): the spin loop notices its stop signal with no
event to wake it, and a shutdown that hangs says where every thread is before launch escalates."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import rclpy
from rclpy.event_handler import PublisherEventCallbacks, SubscriptionEventCallbacks
from rclpy.experimental import EventsExecutor
from std_msgs.msg import UInt64

from auras_ros.nodes.process import spin_until, spin_until_stopped

HANG_GUARD_S = 60.0  # bounds a failing test only; a passing one returns as soon as the awaited line comes

# A node whose teardown never ends; it says when it spins (its signal handlers are in place by then).
STUCK_NODE = '''
import sys, threading
from rclpy.node import Node
from auras_ros.nodes import process

process.STOP_REPORT_S = 0.1  # the report's delay; the test waits for the report, not for a time


class StuckNode(Node):
    def __init__(self):
        super().__init__("stuck_node")
        self._said = False
        self.create_timer(0.01, self._say_spinning)

    def _say_spinning(self):
        if not self._said:
            self._said = True
            print("spinning", flush=True)

    def destroy_node(self):
        print("tearing down", flush=True)
        threading.Event().wait()  # never set: a teardown that hangs


sys.exit(process.run_node(StuckNode, args=[sys.argv[0]]))
'''


class Lines:
    """A process's output lines as they come (read in a thread of their own, so a wait has a guard)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(proc,), daemon=True).start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            self._queue.put(line)
        self._queue.put(None)  # the output ended

    def until(self, text: str) -> bool:
        """Take lines until one contains ``text`` (True), the output ends or the hang guard passes."""
        deadline = time.monotonic() + HANG_GUARD_S
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                return False
            if line is None:
                return False
            self.seen.append(line)
            if text in line:
                return True
        return False

    def __str__(self) -> str:
        return "".join(self.seen)


def test_a_hung_shutdown_prints_where_each_thread_is(ros_env, tmp_path: Path):
    script = tmp_path / "stuck_node.py"
    script.write_text(STUCK_NODE)
    proc = subprocess.Popen([sys.executable, str(script)], env=ros_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = Lines(proc)
    try:
        assert lines.until("spinning"), str(lines)
        proc.send_signal(signal.SIGINT)
        assert lines.until("tearing down"), str(lines)
        # faulthandler's report: the main thread's stack, innermost first, from the hung teardown.
        assert lines.until("in destroy_node"), str(lines)
        assert lines.until("in run_node"), str(lines)
    finally:
        proc.kill()
        proc.wait()
    assert "Timeout (0:00:00.100000)!" in str(lines), str(lines)
    assert "Traceback" not in str(lines), str(lines)  # the launch tests read "Traceback" as a failure


def test_the_events_executor_returns_to_the_loop_with_no_event(ros_env):
    """spin_until_stopped checks its stop between spin_once calls, so it relies on rclpy's EventsExecutor
    returning from spin_once on its timeout when nothing happens (a signal's Python handler runs only
    then). Here the stop is set before the one spin_once, on a node with no entities: the loop ends only
    if that spin_once returns without an event."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("idle_node", context=context)
    executor = EventsExecutor(context=context)
    executor.add_node(node)
    stop = threading.Event()
    calls = []

    class StopThenSpin:
        def spin_once(self, timeout_sec: float) -> None:
            stop.set()
            executor.spin_once(timeout_sec=timeout_sec)
            calls.append(timeout_sec)

    loop = threading.Thread(target=spin_until_stopped, args=(StopThenSpin(), stop), daemon=True)
    try:
        loop.start()
        loop.join(HANG_GUARD_S)
        assert not loop.is_alive(), "spin_once did not return without an event"
        assert len(calls) == 1
    finally:
        if not loop.is_alive():
            executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_after_spin_until_the_node_is_destroyed_with_several_callbacks_left_ready(ros_env):
    """After spin_until the node can be destroyed although more callbacks were ready than it took (a
    publisher's and a subscription's matched events, both waitables). rclpy.spin_once's global executor
    could keep its wait generator suspended holding the node's entities in use; this checks the property on
    that path (it passes on the old code too). A rare hang in destroy_when_not_in_use has another cause.
    The destroy runs in a thread so that a regression fails instead of hanging the test run."""
    rclpy.init(domain_id=int(ros_env["ROS_DOMAIN_ID"]))  # the default context, as run_node's processes use
    node = rclpy.create_node("ready_twice")
    matched = []
    node.create_publisher(UInt64, "ready_twice", 1,
                          event_callbacks=PublisherEventCallbacks(matched=lambda _: matched.append("pub")))
    node.create_subscription(UInt64, "ready_twice", lambda _: None, 1,
                             event_callbacks=SubscriptionEventCallbacks(matched=lambda _: matched.append("sub")))
    try:
        assert spin_until(node, lambda: len(matched) >= 1, timeout_s=HANG_GUARD_S)
        destroy = threading.Thread(target=node.destroy_node, daemon=True)
        destroy.start()
        destroy.join(HANG_GUARD_S)  # a bound for a hang, not a timing measurement
        assert not destroy.is_alive(), "destroy_node waited for entities a suspended wait still held"
    finally:
        rclpy.try_shutdown()
