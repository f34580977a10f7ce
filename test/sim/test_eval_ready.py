"""Evaluators' readiness (nodes/eval_ready.py): a source starts only once the action WRITER has matched the
evaluator's reader, which only the writer's process can see; the evaluator's own announcement says only
that its reader matched the writer."""

from __future__ import annotations

import rclpy
from rclpy.duration import Infinite
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.topic_endpoint_info import TopicEndpointInfo
from std_msgs.msg import String

from auras_ros.msg import AgentAction
from auras_ros.nodes.eval_ready import READY, READY_TOPIC, MatchedEvaluators, writer_matched
from auras_ros.nodes.qos import ORDERED
from auras_ros.sim.ready import ReadyEvaluators
from auras_ros.core import topics

EVALUATOR = "/evaluator_node"


def listed(durability: DurabilityPolicy = DurabilityPolicy.VOLATILE) -> QoSProfile:
    """A QoS as the graph lists it: deadline and lease infinite, not unspecified."""
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, durability=durability, deadline=Infinite,
                      liveliness_lease_duration=Infinite)


WRITER = listed()


def subscription(node: str, qos: QoSProfile = WRITER, namespace: str = "/") -> TopicEndpointInfo:
    return TopicEndpointInfo(node_name=node, node_namespace=namespace, qos_profile=qos)


def test_the_writer_side_match_is_confirmed_only_when_every_listed_subscription_has_matched() -> None:
    evaluator, player = subscription("evaluator_node"), subscription("bag_player")
    assert not writer_matched(EVALUATOR, [], 0, WRITER)  # not discovered by the writer's process yet
    assert not writer_matched(EVALUATOR, [player], 1, WRITER)  # another reader matched, not the evaluator
    # Listed but not yet paired (the graph lists a subscription just before the writer pairs it): the
    # count cannot tell which one is missing, so none is confirmed.
    assert not writer_matched(EVALUATOR, [player, evaluator], 1, WRITER)
    assert writer_matched(EVALUATOR, [player, evaluator], 2, WRITER)
    assert writer_matched("/ns/evaluator_node", [subscription("evaluator_node", namespace="/ns")], 1, WRITER)
    assert not writer_matched(EVALUATOR, [subscription("evaluator_node", namespace="/ns")], 1, WRITER)
    # A subscription that can never match this writer (transient-local asks what a volatile writer does
    # not offer) does not hold the confirmation back for ever.
    latched = subscription("recorder", listed(DurabilityPolicy.TRANSIENT_LOCAL))
    assert writer_matched(EVALUATOR, [latched, evaluator], 1, WRITER)


def test_an_announced_evaluator_is_confirmed_once_the_action_writer_matched_its_subscription(listener) -> None:
    """Over DDS, in the test process: the agent's side confirms an announcement only once its writer has
    matched the announcing node's subscription, and a source hears the confirmation."""
    context = listener.context
    agent = rclpy.create_node("agent", context=context)
    evaluator = rclpy.create_node("evaluator_node", context=context)
    for node in (agent, evaluator):
        listener.executor.add_node(node)
    actions = agent.create_publisher(AgentAction, topics.ACTION, ORDERED)
    matched = MatchedEvaluators(agent, actions)
    source = ReadyEvaluators(listener.node)
    announce = evaluator.create_publisher(String, READY_TOPIC, READY)
    announce.publish(String(data=EVALUATOR))  # before it subscribes: only the writer's match may confirm it
    assert listener.spin_until(lambda: EVALUATOR in matched.pending, 60.0)
    matched.poll()
    assert matched.pending == {EVALUATOR} and len(source) == 0  # no subscription of it to match
    evaluator.create_subscription(AgentAction, topics.ACTION, lambda msg: None, ORDERED)
    assert listener.spin_until(lambda: len(source) == 1, 60.0)
    assert source.names == {EVALUATOR} and not matched.pending and actions.get_subscription_count() == 1
