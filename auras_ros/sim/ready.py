"""Evaluators' readiness: an evaluator node announces itself on ``eval/ready`` once it sees a publisher
of the actions it scores, so a source of observations (the simulator, the bag player) starts only when
no decision will be lost to a reader that has not matched its writer yet."""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from auras_ros.core import topics

READY_TOPIC = topics.EVAL_READY
# Latched: a source that starts after the announcement still hears it.
READY = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ReadyEvaluators:
    """The evaluator nodes (by fully qualified name) that announced they are ready."""

    def __init__(self, node: Node) -> None:
        self.names: set[str] = set()
        node.create_subscription(String, READY_TOPIC, lambda msg: self.names.add(msg.data), READY)

    def __len__(self) -> int:
        return len(self.names)
