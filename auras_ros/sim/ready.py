"""The sources' side of evaluators' readiness (the protocol and why: :mod:`auras_ros.nodes.eval_ready`)."""

from __future__ import annotations

from rclpy.node import Node
from std_msgs.msg import String

from auras_ros.nodes.eval_ready import MATCHED_TOPIC, READY


class ReadyEvaluators:
    """The evaluator nodes (by fully qualified name) ready to score the first decision: announced by the
    evaluator and confirmed by the action publisher's node (the module doc says why both)."""

    def __init__(self, node: Node) -> None:
        self.names: set[str] = set()
        node.create_subscription(String, MATCHED_TOPIC, lambda msg: self.names.add(msg.data), READY)

    def __len__(self) -> int:
        return len(self.names)
