"""The life cycle every auras_ros node executable shares: init, work, clean shutdown."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from typing import Callable, Iterator, Optional, Sequence

import rclpy
from rclpy.executors import Executor, ExternalShutdownException, SingleThreadedExecutor
from rclpy.signals import SignalHandlerOptions
from rclpy.node import Node

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.nodes.health import exit_code, failed_nodes


def spin_until(node: Node, done: Callable[[], bool], timeout_s: float) -> bool:
    """Handle the node's callbacks until done() holds or timeout_s passes; return done()."""
    deadline = time.monotonic() + timeout_s
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        rclpy.spin_once(node, timeout_sec=left)
    return done()


@contextlib.contextmanager
def stop_requested() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, in place of rclpy's handlers, which shut the context down
    under callbacks still running and make them fail; stopping on our own terms lets the nodes end
    their threads and in-flight callbacks first."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def spin_until_stopped(executor: Executor, stop: threading.Event, deadline: Optional[float] = None,
                       nodes: Sequence[Node] = ()) -> None:
    """Spin until a signal, the deadline, or one of ``nodes`` can no longer work (nodes/health.py)."""
    while not stop.is_set() and (deadline is None or time.monotonic() < deadline) and not failed_nodes(nodes):
        executor.spin_once(timeout_sec=0.1)


def run_node(make_node: Callable[[], Node], work: Optional[Callable[[Node], int]] = None,
             args: Optional[list[str]] = None) -> int:
    """Create the node, run work(node) (default: spin until SIGINT/SIGTERM), return an exit code.

    SIGINT and SIGTERM end a plain spin with code 0. A node with finite work that gets
    interrupted returns 1, because its work did not finish.
    """
    if work is None:
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    else:
        rclpy.init(args=args)
    node = None
    try:
        try:
            node = make_node()
        except (ConfigError, InputError) as error:
            # A bad parameter or model: one clear line, and the node refuses to start.
            print(f"{getattr(make_node, '__name__', 'node')}: refusing to start: {error}", file=sys.stderr, flush=True)
            return 2
        if work is None:
            executor = SingleThreadedExecutor()
            executor.add_node(node)
            with stop_requested() as stop:
                spin_until_stopped(executor, stop, nodes=[node])
            executor.shutdown()
            return exit_code([node])  # non-zero when the node ended because it could no longer work
        return work(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        print(f"{node.get_name() if node else 'node'}: interrupted before its work finished", flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
