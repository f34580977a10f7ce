"""The shipped composed process as a benchmark run: every agent node in this process
(``nodes.composed.compose`` under ``NodeSpinners``, as ``auras_composed`` runs them), camera frames from a
folder, and a listener in the same process noting when each AgentAction arrives.

``bench.ros_overhead`` (latency over the core) and ``bench.gpu_models --nodes`` (decisions/s against
the core) both measure the graph users launch through :func:`run_composed`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import rclpy
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState

from auras_ros.msg import AgentAction
from auras_ros.nodes.composed import compose, stop_composed
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.spinners import DEFAULT_SPINNER, NodeSpinners
from auras_ros.transport import HandleRegistry
from auras_ros.core import topics

STATE_TOPIC = topics.JOINT_STATES


@dataclass(frozen=True)
class Arrival:
    """An AgentAction and when it reached the listener (seconds on the graph's clock)."""

    time: float
    action: AgentAction


class ActionListener:
    """A node of the composed process taking every AgentAction inline, as an in-process subscriber may."""

    def __init__(self, context: rclpy.Context, decisions: int, delivery: LocalDelivery | None) -> None:
        self.node = rclpy.create_node("action_listener", context=context)
        self.arrivals: list[Arrival] = []
        self.done = threading.Event()
        self._decisions = decisions
        if delivery is not None:
            delivery.subscription(self.node, AgentAction, topics.ACTION, self._on_action, ORDERED, inline=True)
        else:
            self.node.create_subscription(AgentAction, topics.ACTION, self._on_action, ORDERED)

    def _on_action(self, msg: AgentAction) -> None:
        self.arrivals.append(Arrival(self.node.get_clock().now().nanoseconds * 1e-9, msg))
        if len(self.arrivals) >= self._decisions:
            self.done.set()


def state_publisher(context: rclpy.Context, state_dim: int, rate_hz: float) -> rclpy.node.Node:
    """A robot reporting a resting state (zeros) on ``STATE_TOPIC``, for agents that take one beside the image."""
    node = rclpy.create_node("state_source", context=context)
    publisher = node.create_publisher(JointState, STATE_TOPIC, ORDERED)

    def publish() -> None:
        msg = JointState()
        msg.header.stamp = node.get_clock().now().to_msg()
        msg.position = [0.0] * state_dim
        publisher.publish(msg)

    node.create_timer(1.0 / rate_hz, publish)
    return node


def write_frames(folder: Path, images: list[np.ndarray]) -> Path:
    """HxWx3 uint8 RGB ``images`` as a folder the camera node loops over (lossless PNG: the same pixels)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        cv2.imwrite(str(folder / f"frame_{index:03d}.png"), np.ascontiguousarray(image[:, :, ::-1]))
    return folder


def run_composed(agent: Any, params: dict[str, Any], decisions: int, timeout_s: float, domain_id: int, *,
                 local_delivery: bool = True, spinner: str = DEFAULT_SPINNER, state_dim: int = 0) -> list[Arrival]:
    """Camera, perception, context and generation nodes sharing ``agent``, with ``params`` for every node
    (``source`` and ``rate_hz`` for the camera; ``transport: in_process`` as in ``auras_composed``), until the
    listener has ``decisions`` actions or ``timeout_s`` passed. ``state_dim`` > 0 adds a robot state on
    ``STATE_TOPIC`` (set the perception node's ``state_topic`` to it)."""
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain_id)
    overrides = [Parameter(name, value=value) for name, value in params.items()]
    delivery = LocalDelivery()
    nodes = compose(HandleRegistry(), action=False, agent=agent, delivery=delivery, local_delivery=local_delivery,
                    context=context, parameter_overrides=overrides)
    listener = ActionListener(context, decisions, delivery if local_delivery else None)
    extra = [listener.node]
    if state_dim:
        extra.append(state_publisher(context, state_dim, params.get("rate_hz", 30.0)))
    spinners = NodeSpinners([*nodes, *extra], context=context, spinner=spinner).start()
    try:
        listener.done.wait(timeout=timeout_s)
    finally:
        stop_composed(spinners, [*nodes, *extra])
        rclpy.try_shutdown(context=context)
    return listener.arrivals
