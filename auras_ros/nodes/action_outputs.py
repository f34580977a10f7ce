"""The action node's output adapters: the gate's commands in the robot's own message types.

- ``twist``: ``geometry_msgs/Twist`` on ``cmd_vel`` (older bases);
- ``twist_stamped``: ``geometry_msgs/TwistStamped`` on ``cmd_vel``, stamped with the gate's clock at
  publication (since Jazzy, ros2_controllers' ``diff_drive_controller`` takes only this type on
  ``~/cmd_vel``, and drops a command older than its ``cmd_vel_timeout`` by that stamp);
- ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` on ``joint_trajectory`` for
  ``joint_trajectory_controller``: the action chunk's rows (``len(joint_names)`` wide) as points
  ``control_period`` apart, in ``positions`` or ``velocities``. Never empty (that controller discards
  an empty trajectory): a stop is one point, zero velocities, or for positions the first point of
  the last accepted chunk (one control period ahead: the robot holds there);
- ``agent_action``: the accepted ``AgentAction`` unchanged on ``auras/gated_action``, and for a ramp,
  a repeat or a stop a copy of the last accepted one carrying the command, stamped now (what the
  simulator executes; it takes a repeat, same request and action, as the command renewed, not a new
  chunk).

A repeat (the command in force again, once per control period without a new action: see
:class:`auras_ros.core.safety.SafetyGate`) goes out on ``twist``, ``twist_stamped`` and ``agent_action``,
whose receivers time commands out; not on ``joint_trajectory``, where it would restart the trajectory.

Twist fields map from action elements through ``index.<field>`` (-1: always 0) and ``scale.<field>``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist, TwistStamped
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from auras_ros.core.safety import ACCEPTED, REPEAT, STOP, Command
from auras_ros.msg import AgentAction
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_duration
from auras_ros.core import topics

TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")
OUTPUTS = ("twist", "twist_stamped", "joint_trajectory", "agent_action")
TRAJECTORY_FIELDS = ("positions", "velocities")
GATED_ACTION_TOPIC = topics.GATED_ACTION


@dataclass(frozen=True)
class TwistMapping:
    index: dict[str, int]  # action element per Twist field, -1: always 0
    scale: dict[str, float]

    @property
    def min_length(self) -> int:
        """Elements an action needs for every mapped field to be there."""
        return max(max(self.index.values()) + 1, 1)

    def twist(self, action: np.ndarray) -> Twist:
        twist = Twist()
        for field in TWIST_FIELDS:
            i = self.index[field]
            group, axis = field.split(".")
            setattr(getattr(twist, group), axis, float(self.scale[field] * action[i]) if i >= 0 else 0.0)
        return twist


class Output(Protocol):
    publisher: Any  # a lifecycle publisher: it publishes only while the node is active

    def send(self, command: Command, source: AgentAction, now: Time) -> None: ...


class TwistOutput:
    def __init__(self, node: Any, mapping: TwistMapping, stamped: bool) -> None:
        self.mapping = mapping
        self.stamped = stamped
        self.publisher = node.create_lifecycle_publisher(TwistStamped if stamped else Twist, "cmd_vel", ORDERED)

    def send(self, command: Command, source: AgentAction, now: Time) -> None:
        twist = self.mapping.twist(command.action)
        if not self.stamped:
            self.publisher.publish(twist)
            return
        msg = TwistStamped(twist=twist)
        msg.header.stamp = now
        msg.header.frame_id = source.header.frame_id
        self.publisher.publish(msg)


class TrajectoryOutput:
    def __init__(self, node: Any, joint_names: list[str], field: str, control_period: float) -> None:
        self.joint_names = joint_names
        self.field = field
        self.control_period = control_period
        self.publisher = node.create_lifecycle_publisher(JointTrajectory, "joint_trajectory", ORDERED)
        self._hold: np.ndarray | None = None  # positions: the first point of the last accepted chunk

    def rows(self, command: Command) -> np.ndarray:
        rows = command.action.reshape(-1, len(self.joint_names))
        if command.kind == REPEAT:
            return rows[:0]  # the controller keeps executing the trajectory it has; no timeout to feed
        if self.field == "velocities":
            return rows[:1] if command.kind == STOP else rows
        if command.kind == ACCEPTED:
            self._hold = rows[0].copy()
            return rows
        # Positions do not ramp to zero (zero is a place, not a stop): hold.
        return self._hold[None] if self._hold is not None else rows[:0]

    def send(self, command: Command, source: AgentAction, now: Time) -> None:
        rows = self.rows(command)
        if not len(rows):
            return  # nothing was ever commanded: there is no position to hold
        msg = JointTrajectory(joint_names=list(self.joint_names))
        # A zero stamp: the controller starts the trajectory on receipt, whatever its clock.
        msg.header.stamp = Time()
        msg.header.frame_id = source.header.frame_id
        for k, row in enumerate(rows):
            point = JointTrajectoryPoint(time_from_start=to_duration(self.control_period * (k + 1)))
            setattr(point, self.field, [float(v) for v in row])
            msg.points.append(point)
        self.publisher.publish(msg)


class GatedActionOutput:
    def __init__(self, node: Any) -> None:
        self.publisher = node.create_lifecycle_publisher(AgentAction, GATED_ACTION_TOPIC, ORDERED)

    def send(self, command: Command, source: AgentAction, now: Time) -> None:
        if command.kind == ACCEPTED:
            self.publisher.publish(source)
            return
        msg = copy.deepcopy(source)
        msg.action = [float(v) for v in command.action]
        msg.action_tokens = []
        msg.header.stamp = now
        self.publisher.publish(msg)
