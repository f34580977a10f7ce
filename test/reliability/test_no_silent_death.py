"""In one process (the composed graph), an exception no callback caught must not end a node's executor
thread silently: the node's health ends it, which the composed process turns into a non-zero exit."""

from __future__ import annotations

import rclpy
from rclpy.node import Node

from auras_ros.nodes.health import FATAL_EXIT, OK, Health, Status, exit_code, failed_nodes
from auras_ros.nodes.spinners import NodeSpinners


class Faulty(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("faulty_node", **kwargs)
        self.health = Health(self, lambda: Status(OK, "fine"), period=3600.0)
        self.create_timer(0.01, self._tick)

    def _tick(self) -> None:
        raise KeyError("a bug in a callback")


def test_an_uncaught_callback_exception_ends_the_node_through_its_health(ros_env) -> None:
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = Faulty(context=context)
    spinners = NodeSpinners([node], context=context).start()
    try:
        assert node.health.failed.wait(timeout=60.0)  # a hang guard: the first tick raises
        assert failed_nodes([node]) == ["faulty_node: a callback raised KeyError('a bug in a callback')"]
        assert exit_code([node]) == FATAL_EXIT
    finally:
        spinners.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
