"""The life cycle every auras_ros node executable shares: init, work, clean shutdown."""

from __future__ import annotations

import time
from typing import Callable, Optional

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node


def spin_until(node: Node, done: Callable[[], bool], timeout_s: float) -> bool:
    """Handle the node's callbacks until done() holds or timeout_s passes; return done()."""
    deadline = time.monotonic() + timeout_s
    while not done():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        rclpy.spin_once(node, timeout_sec=left)
    return done()


def run_node(make_node: Callable[[], Node], work: Optional[Callable[[Node], int]] = None,
             args: Optional[list[str]] = None) -> int:
    """Create the node, run work(node) (default: spin until shut down), return an exit code.

    SIGINT and SIGTERM end a plain spin with code 0. A node with finite work that gets
    interrupted returns 1, because its work did not finish.
    """
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        if work is None:
            rclpy.spin(node)
            return 0
        return work(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        if work is None:
            return 0
        print(f"{node.get_name() if node else 'node'}: interrupted before its work finished", flush=True)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
