"""The action node's output adapters: the gate's commands in the robot's own message types.

Two kinds of output, one player: the gate plays each accepted chunk's rows at its control rate
(:class:`auras_ros.core.safety.SafetyGate`, rows due at their target times). An output of one command
gets the row due now at every control tick; an output that carries a whole chunk leaves the playing to
its receiver's own player or controller, on the same target times.

- ``twist``: ``geometry_msgs/Twist`` on ``cmd_vel`` (older bases), the row due now;
- ``twist_stamped``: ``geometry_msgs/TwistStamped`` on ``cmd_vel``, the row due now, stamped with the
  gate's clock (since Jazzy, ros2_controllers' ``diff_drive_controller`` takes only this type on
  ``~/cmd_vel``, and drops a command older than its ``cmd_vel_timeout`` by that stamp);
- ``joint_trajectory``: ``trajectory_msgs/JointTrajectory`` on ``joint_trajectory`` for
  ``joint_trajectory_controller``: on an accepted chunk, the rows the gate will play from now on
  (``len(joint_names)`` wide; under ``ensemble``, ``blend`` or a LeRobot aggregate the mixed rows, not
  the chunk's own: :meth:`auras_ros.core.chunks.ChunkPlayer.plan`), each point's ``time_from_start``
  its step's target time minus the gate's clock when it was accepted, in ``positions`` or
  ``velocities``. The header stamp is that clock, or 0 ("start now") on sim time (see
  :meth:`TrajectoryOutput.send`). Never empty (that controller discards an empty trajectory): a stop is
  one point, zero velocities, or for positions the row the gate played last (one chunk period ahead:
  the robot holds there);
- ``agent_action``: the accepted ``AgentAction`` (the whole chunk) unchanged on ``auras/gated_action``,
  for a receiver that plays chunks itself (the simulator: :mod:`auras_ros.eval.world`); at every other
  tick (a row played or held) a copy of it stamped now, which renews it there (same request and action:
  not a new chunk); for a ramp or a stop a copy carrying the command.

The ticks between actions (rows and repeats, see :class:`auras_ros.core.safety.SafetyGate`) go out on
``twist``, ``twist_stamped`` and ``agent_action``, whose receivers time commands out; not on
``joint_trajectory``, whose controller already has the rows and would restart the trajectory.

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

from auras_ros.core.safety import ACCEPTED, REPEAT, ROW, STOP, Command
from auras_ros.msg import AgentAction
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_duration, to_seconds
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
    def __init__(self, node: Any, joint_names: list[str], field: str, period: float) -> None:
        self.joint_names = joint_names
        self.field = field
        self.period = period  # of the chunk rows: a stop's one point is one period ahead
        self.publisher = node.create_lifecycle_publisher(JointTrajectory, "joint_trajectory", ORDERED)
        self._clock = node.get_clock()  # on /clock while ros_time_is_active (use_sim_time)
        self._hold: np.ndarray | None = None  # positions: the row the gate played last

    def points(self, command: Command, now: float) -> list[tuple[np.ndarray, float]]:
        """The points to send for ``command`` at ``now``: (row, time from ``now``)."""
        width = len(self.joint_names)
        if command.kind in (ACCEPTED, ROW) and self.field == "positions":
            self._hold = command.action[:width].copy()
        if command.kind in (ROW, REPEAT):
            return []  # the controller keeps executing the trajectory it has; no timeout to feed
        if command.kind == ACCEPTED and command.plan:
            # What the gate will play, mixed by the overlap policy (the gate accepts no chunk with every
            # row passed, so the plan is never empty).
            return [(row, target - now) for row, target in command.plan]
        if self.field == "velocities":
            rows = command.action.reshape(-1, width)
            return [(rows[k], self.period * (k + 1)) for k in range(1 if command.kind == STOP else len(rows))]
        # Positions do not ramp to zero (zero is a place, not a stop): hold.
        return [(self._hold, self.period)] if self._hold is not None else []

    def send(self, command: Command, source: AgentAction, now: Time) -> None:
        points = self.points(command, to_seconds(now))
        if not points:
            return  # nothing was ever commanded: there is no position to hold
        msg = JointTrajectory(joint_names=list(self.joint_names))
        # joint_trajectory_controller starts a trajectory at its header stamp, and refuses one whose last
        # point's time (stamp + time_from_start) is already past on its own clock; a stamp of 0 means
        # "start now", at its first update after receipt (validate_trajectory_msg, Trajectory::sample).
        # On the system clock both read the same time: stamped with the gate's clock, the rows keep their
        # target times whatever the delivery's delay. On sim time the controller may run on another clock
        # (hardware on the system clock: every trajectory would be in the past, or far in its future):
        # stamped 0, and since time_from_start counts from the gate's send time anyway, the rows shift
        # only by the delivery's delay.
        msg.header.stamp = Time() if self._clock.ros_time_is_active else now
        msg.header.frame_id = source.header.frame_id
        for row, time_from_start in points:
            point = JointTrajectoryPoint(time_from_start=to_duration(time_from_start))
            setattr(point, self.field, [float(v) for v in row])
            msg.points.append(point)
        self.publisher.publish(msg)


class GatedActionOutput:
    def __init__(self, node: Any) -> None:
        self.publisher = node.create_lifecycle_publisher(AgentAction, GATED_ACTION_TOPIC, ORDERED)
        self._renewed = False  # an accepted chunk went out since the last tick

    def send(self, command: Command, source: AgentAction, now: Time) -> None:
        if command.kind == ACCEPTED:
            self.publisher.publish(source)
            self._renewed = True
            return
        if command.kind in (ROW, REPEAT) and self._renewed:
            # The receiver plays the chunk itself, and the accepted chunk just renewed it: a row in the same
            # control period is a message it does not need (one per tick per decision cost SEQ ~10% of its
            # decisions per second through the demo's graph on 2 cores). The next tick renews it.
            self._renewed = False
            return
        self._renewed = False
        msg = copy.deepcopy(source)
        if command.kind not in (ROW, REPEAT):  # a row or a hold renews the chunk its receiver plays
            msg.action = [float(v) for v in command.action]
        msg.action_tokens = []
        msg.header.stamp = now
        self.publisher.publish(msg)
