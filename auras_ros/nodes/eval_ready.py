"""Evaluators' readiness: a source of observations (the simulator, the bag player) starts only once every
evaluator it waits for will receive the first decisions.

A decision reaches an evaluator only when BOTH ends of the action topic have matched each other: the
evaluator's reader the action writer, and the writer the reader (a volatile writer does not keep what it
published for a reader it matches later, and a LocalPublisher does not even publish to DDS while no
reader outside its process has matched it). The two matches happen in two processes, independently:
each participant pairs the other's endpoints when that participant's discovery data arrives, so either
side can lag the other (measured: tens of ms either way on an idle host). And each side sees only its
own: a reader knows which writers it matched (``Subscription.get_publisher_count``), only the writer's
process knows which readers the writer matched (``Publisher.get_subscription_count``, its graph). So
readiness takes two announcements, each made by the side that can see its match:

1. an evaluator announces its name on ``eval/ready`` once its subscription to the actions has matched a
   publisher (:class:`auras_ros.sim.evaluator_node.EvaluatorNode`, reader side);
2. the node that publishes the actions confirms on ``eval/matched`` each announced evaluator whose
   subscription its writer has matched (:class:`MatchedEvaluators`, in the generation node: writer side);

and a source counts an evaluator ready once confirmed (:class:`auras_ros.sim.ready.ReadyEvaluators`).
Both topics are latched: an announcement made before its reader came is still heard.
"""

from __future__ import annotations

from collections.abc import Sequence

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSCompatibility, QoSProfile, ReliabilityPolicy, \
    qos_check_compatible
from rclpy.topic_endpoint_info import TopicEndpointInfo
from std_msgs.msg import String

from auras_ros.core import topics

READY_TOPIC = topics.EVAL_READY  # evaluators: "my reader matched an action publisher"
MATCHED_TOPIC = topics.EVAL_MATCHED  # the action publisher's node: "my writer matched this evaluator"
# Latched: a source that starts after the announcement still hears it.
READY = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.TRANSIENT_LOCAL)
POLL_S = 0.05  # graph changes wake no callback: the writer's matches are polled while one is awaited


def node_name(info: TopicEndpointInfo) -> str:
    """The fully qualified name of the node of a graph endpoint (as ``Node.get_fully_qualified_name``)."""
    return f"{info.node_namespace.rstrip('/')}/{info.node_name}"


def writer_matched(evaluator: str, subscriptions: Sequence[TopicEndpointInfo], matched: int,
                   writer_qos: QoSProfile) -> bool:
    """Whether a writer with ``matched`` matched subscriptions has matched the one of node ``evaluator``,
    given the topic's ``subscriptions`` in the writer's own graph, read AFTER ``matched``, and the writer's
    QoS as its graph lists it (a profile as created leaves deadline and lease "unspecified", which
    ``qos_check_compatible`` does not take for the infinite ones every graph entry carries).

    No API names the readers a writer matched, only their number; but the writer's participant lists a
    subscription in its graph just before it pairs it with its writers (the same discovery event, measured
    about 1 ms apart). So: the evaluator's subscription is listed, and every listed subscription that can
    match the writer has (one whose QoS never will, e.g. transient-local, is left out). With the count read
    first, a subscription listed and paired between the two reads only makes the list longer, so a count
    that covers the list never stands for a subscription the list does not hold."""
    compatible = [info for info in subscriptions
                  if qos_check_compatible(writer_qos, info.qos_profile)[0] != QoSCompatibility.ERROR]
    return any(node_name(info) == evaluator for info in compatible) and matched >= len(compatible)


class MatchedEvaluators:
    """In the node that publishes the actions: confirms on ``eval/matched`` each evaluator announced on
    ``eval/ready`` once ``publisher`` has matched that evaluator's subscription."""

    def __init__(self, node: Node, publisher: Publisher) -> None:
        self.node = node
        self.publisher = publisher
        self.pending: set[str] = set()  # announced, not confirmed yet
        group = MutuallyExclusiveCallbackGroup()  # the announcements and the polls never run at once
        self._confirm_pub = node.create_publisher(String, MATCHED_TOPIC, READY)
        node.create_subscription(String, READY_TOPIC, self._on_ready, READY, callback_group=group)
        # On the steady clock: under use_sim_time the /clock only starts once the source does. Polls only
        # while an announced evaluator awaits its match (a generation process keeps its CPU).
        self._timer = node.create_timer(POLL_S, self.poll, callback_group=group,
                                        clock=Clock(clock_type=ClockType.STEADY_TIME))
        self._timer.cancel()

    def _on_ready(self, msg: String) -> None:
        self.pending.add(msg.data)
        self.poll()
        if self.pending:
            self._timer.reset()

    def poll(self) -> None:
        topic, me = self.publisher.topic_name, self.node.get_fully_qualified_name()
        matched = self.publisher.get_subscription_count()  # first: see writer_matched
        subscriptions = self.node.get_subscriptions_info_by_topic(topic)
        own = [info for info in self.node.get_publishers_info_by_topic(topic) if node_name(info) == me]
        for name in sorted(self.pending):
            if own and writer_matched(name, subscriptions, matched, own[0].qos_profile):
                self.pending.discard(name)
                self._confirm_pub.publish(String(data=name))
        if not self.pending:
            self._timer.cancel()
