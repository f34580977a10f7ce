"""Local delivery: same-process subscribers get the message object itself and nothing is published to
DDS while nobody outside listens; an outside subscriber still gets every message, and the local one
does not get it twice; a local subscriber still hears outside publishers. An inline subscriber runs in
the publisher's thread, and its fault ends its own node, never the publisher's. A message a newer one
replaced in a busy subscriber's queue is counted."""

from __future__ import annotations

import threading

from std_msgs.msg import String

from auras_ros.nodes.health import OK, Health, Status
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED
from node_graph import Graph, Listener


def test_same_process_subscribers_get_the_object_and_outsiders_a_copy(graph: Graph, ros_env) -> None:
    delivery = LocalDelivery()
    publisher_node, subscriber_node = graph.probe("local_talker"), graph.probe("local_listener")
    publisher = delivery.publisher(publisher_node, String, "chatter", ORDERED)
    local: list[String] = []
    delivery.subscription(subscriber_node, String, "chatter", local.append, ORDERED)
    first = String(data="first")
    assert graph.spin_until(lambda: publisher.get_subscription_count() == 1)  # its own DDS subscription
    publisher.publish(first)
    assert graph.spin_until(lambda: len(local) == 1)
    assert local[0] is first  # handed over, never serialized

    outside = Listener(int(ros_env["ROS_DOMAIN_ID"]))  # its own context: another participant, as another process
    try:
        received = outside.record(String, "chatter", ORDERED)
        assert graph.spin_until(lambda: publisher.get_subscription_count() == 2)
        second = String(data="second")
        publisher.publish(second)
        assert outside.spin_until(lambda: len(received) == 1, timeout_s=30.0)
        assert received[0].data == "second"
        assert graph.spin_until(lambda: len(local) == 2)
        assert local[1] is second

        talker = outside.node.create_publisher(String, "chatter", ORDERED)
        assert outside.spin_until(lambda: talker.get_subscription_count() >= 1, timeout_s=30.0)
        # And the listener's side knows the talker: a sample sent while only one side has matched can be lost.
        assert graph.spin_until(lambda: subscriber_node.count_publishers("chatter") >= 2)
        talker.publish(String(data="from outside"))
        assert graph.spin_until(lambda: len(local) == 3)
        assert local[2].data == "from outside"
        assert [m.data for m in local] == ["first", "second", "from outside"]  # the DDS copy of "second" was dropped
    finally:
        outside.close()


def test_an_inline_subscriber_runs_in_the_publishers_thread_and_its_fault_ends_only_its_node(graph: Graph) -> None:
    delivery = LocalDelivery()
    publisher_node, subscriber_node = graph.probe("inline_talker"), graph.probe("inline_listener")
    subscriber_node.health = Health(subscriber_node, lambda: Status(OK, "listening"), 3600.0)
    publisher = delivery.publisher(publisher_node, String, "chatter", ORDERED)
    received: list[tuple[String, int]] = []

    def on_message(msg: String) -> None:
        received.append((msg, threading.get_ident()))
        if msg.data == "bad":
            raise ValueError("a broken callback")

    delivery.subscription(subscriber_node, String, "chatter", on_message, ORDERED, inline=True)
    assert graph.spin_until(lambda: publisher.get_subscription_count() == 1)
    first = String(data="first")
    publisher.publish(first)
    assert received == [(first, threading.get_ident())]  # run before publish returned, in this thread
    publisher.publish(String(data="bad"))  # the fault does not reach the publisher
    assert len(received) == 2
    assert subscriber_node.health.failed.is_set()
    assert "a broken callback" in subscriber_node.health.reason


def test_a_message_replaced_in_a_busy_subscribers_queue_is_counted(graph: Graph) -> None:
    delivery = LocalDelivery()
    publisher_node, subscriber_node = graph.probe("busy_talker"), graph.probe("busy_listener")
    publisher = delivery.publisher(publisher_node, String, "chatter", LATEST_RELIABLE)
    received: list[str] = []
    reported: list[int] = []
    held, release = threading.Event(), threading.Event()

    def on_message(msg: String) -> None:
        received.append(msg.data)
        if msg.data == "first":
            held.set()
            release.wait(timeout=60.0)

    subscription = delivery.subscription(subscriber_node, String, "chatter", on_message, LATEST_RELIABLE,
                                         on_replaced=reported.append)
    assert graph.spin_until(lambda: subscriber_node.executor is not None)  # local delivery reaches a spinning node
    publisher.publish(String(data="first"))
    assert graph.spin_until(held.is_set)  # the subscriber's executor is busy with it
    for data in ("second", "third", "fourth"):
        publisher.publish(String(data=data))
    # A queue of one (depth 1): the second and third were replaced before the callback took them.
    assert subscription.replaced == 2
    assert reported == [1, 1]
    release.set()
    assert graph.spin_until(lambda: received == ["first", "fourth"])
    assert subscription.replaced == 2
