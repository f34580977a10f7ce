"""Local delivery: nodes that share a process hand each other message objects directly.

What rclcpp calls intra-process communication, for rclpy. A publisher made through
:class:`LocalDelivery` gives each message object to the same-process subscribers of its topic (made
through the same LocalDelivery) without serializing it, and publishes to DDS only when the topic has
subscribers outside this process (the publisher's matched DDS subscriptions minus the local ones), so
rosbag, RViz or another process still see every topic. Local subscribers keep their DDS subscription,
so they also hear outside publishers, and drop the DDS copy of a message they already got locally.

A local message runs as a task of the subscribing node's executor, so it never runs beside that
node's other callbacks as long as each executor is single-threaded (nodes/spinners.py). Like a
KEEP_LAST subscription, a subscriber that falls behind keeps only the newest ``depth`` messages;
unlike DDS, it counts each one a newer one replaced (``replaced``, and ``on_replaced`` for a node that
reports them), so a loss in the queue is never silent.
An *inline* subscription instead runs the callback in the publisher's thread before ``publish``
returns (no executor wake-up: the cheapest hop), one message at a time; for short callbacks only,
whose node guards the state they share with its other callbacks by a lock of its own.
Receivers must treat a message as read-only: the publisher and every local subscriber share it.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable

from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from auras_ros.nodes.health import OversizeMessages, TransportLosses, end_node


class LocalSubscription:
    """One same-process subscriber of a topic: its DDS subscription plus a queue of local messages."""

    def __init__(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None], qos: QoSProfile,
                 callback_group: Any, event_callbacks: Any = None, inline: bool = False,
                 losses: TransportLosses | None = None,
                 on_replaced: Callable[[int], None] | None = None) -> None:
        self.node = node
        self.msg_type = msg_type
        self.callback = callback
        self.inline = inline
        self.best_effort = qos.reliability == ReliabilityPolicy.BEST_EFFORT
        self._lock = threading.Lock()
        self._inline_lock = threading.Lock()  # inline: one message at a time, whichever thread delivers it
        self._queue: deque[Any] = deque(maxlen=max(qos.depth, 1))
        self._scheduled = False
        # Local messages a newer one replaced in the queue before the callback took them (never inline).
        self.replaced = 0
        self._on_replaced = on_replaced
        self._dds_copies: deque[Any] = deque(maxlen=16)  # sent locally AND to DDS: ignore when it comes back
        self._losses = losses
        if losses is not None:
            event_callbacks = losses.callbacks
        self.subscription = node.create_subscription(msg_type, topic, self._from_dds, qos,
                                                     callback_group=callback_group, event_callbacks=event_callbacks)

    def deliver(self, msg: Any, also_on_dds: bool) -> None:
        executor = self.node.executor
        if executor is None:
            return  # not spinning yet: as over DDS, a message before the subscriber is up is not received
        replaced, schedule = False, False
        with self._lock:
            if also_on_dds:
                self._dds_copies.append(msg)
            if not self.inline:
                replaced = len(self._queue) == self._queue.maxlen  # the oldest goes: KEEP_LAST's loss, counted
                if replaced:
                    self.replaced += 1
                self._queue.append(msg)
                schedule, self._scheduled = not self._scheduled, True
        if replaced and self._on_replaced is not None:
            self._on_replaced(1)
        if self.inline:
            self._run_inline(msg)
        elif schedule:
            executor.create_task(self._drain)

    def _run_inline(self, msg: Any) -> None:
        """The callback in the calling thread. An exception ends the subscriber's node, as its executor
        would, never the publisher's (nodes/health.py)."""
        with self._inline_lock:
            try:
                self.callback(msg)
            except Exception as error:  # noqa: BLE001 - the subscriber's fault, reported as its own
                end_node(self.node, f"a callback raised {error!r}", error)

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._scheduled = False
                    return
                msg = self._queue.popleft()
            self.callback(msg)

    def _from_dds(self, msg: Any) -> None:
        if self._losses is not None:
            self._losses.received(msg)
        with self._lock:
            for index, sent in enumerate(self._dds_copies):
                if sent == msg:
                    del self._dds_copies[index]
                    return
        if self.inline:
            self._run_inline(msg)
        else:
            self.callback(msg)


def carries_bytes(msg_type: type) -> bool:
    """A message type with a ``uint8[] data`` field (Image, CompressedImage): the ones that grow large."""
    fields: dict[str, str] = getattr(msg_type, "get_fields_and_field_types", dict)()
    return fields.get("data") == "sequence<uint8>"


class LocalPublisher:
    """A publisher whose message objects reach same-process subscribers directly (see module doc)."""

    def __init__(self, delivery: "LocalDelivery", node: Node, msg_type: type, topic: str, qos: QoSProfile) -> None:
        self._delivery = delivery
        self.publisher = node.create_publisher(msg_type, topic, qos)
        self.topic_name = self.publisher.topic_name
        self.msg_type = msg_type
        self.best_effort = qos.reliability == ReliabilityPolicy.BEST_EFFORT
        # Images and other byte blobs: one too large for the DDS path between processes is said, not lost
        # quietly (local subscribers get the object itself, whatever its size).
        self.oversize = OversizeMessages(node, self.topic_name) if carries_bytes(msg_type) else None

    def publish(self, msg: Any) -> None:
        local = [s for s in self._delivery.subscribers(self.topic_name)
                 if s.msg_type is self.msg_type and (s.best_effort or not self.best_effort)]
        outside = self.publisher.get_subscription_count() > len(local)
        for subscriber in local:
            subscriber.deliver(msg, outside)
        if outside:
            if self.oversize is not None:
                self.oversize.check(msg)
            self.publisher.publish(msg)

    def get_subscription_count(self) -> int:
        return self.publisher.get_subscription_count()

    def destroy(self) -> None:
        self.publisher.destroy()


class LocalDelivery:
    """The same-process subscribers of each topic, for the nodes of one process. Create one per
    process (or per graph in a test) and hand it to every node; no global state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[LocalSubscription]] = {}

    def publisher(self, node: Node, msg_type: type, topic: str, qos: QoSProfile) -> LocalPublisher:
        return LocalPublisher(self, node, msg_type, topic, qos)

    def subscription(self, node: Node, msg_type: type, topic: str, callback: Callable[[Any], None],
                     qos: QoSProfile, callback_group: Any = None, event_callbacks: Any = None,
                     inline: bool = False, losses: TransportLosses | None = None,
                     on_replaced: Callable[[int], None] | None = None) -> LocalSubscription:
        """``inline``: local messages run the callback in the publisher's thread, one at a time (see
        the module doc); for short callbacks whose node guards the state they share with its others.
        ``losses``: counts and reports what DDS lost on the way here (its event callbacks replace
        ``event_callbacks``) and sees the size of every message that came over DDS. ``on_replaced``:
        called with 1 for each local message a newer one replaced in the queue before the callback took
        it (also counted in the subscription's ``replaced``); it runs in the publisher's thread, so it
        must be short and thread-safe."""
        subscriber = LocalSubscription(node, msg_type, topic, callback, qos, callback_group, event_callbacks, inline,
                                       losses, on_replaced)
        with self._lock:
            self._subscribers.setdefault(subscriber.subscription.topic_name, []).append(subscriber)
        return subscriber

    def subscribers(self, topic_name: str) -> list[LocalSubscription]:
        with self._lock:
            return list(self._subscribers.get(topic_name, ()))
