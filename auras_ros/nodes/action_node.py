"""action_node: turns AgentAction into a robot command (geometry_msgs/Twist) through a configurable
mapping, and holds the robot still when an action's observation is too old to act on."""

from __future__ import annotations

import sys
from typing import Any

from geometry_msgs.msg import Twist
from rclpy.node import Node

from auras_ros.msg import AgentAction
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import ORDERED
from auras_ros.nodes.ros_convert import to_seconds
from auras_ros.nodes.runner import run_node

TWIST_FIELDS = ("linear.x", "linear.y", "linear.z", "angular.x", "angular.y", "angular.z")

PARAMS = (
    *(Param(f"index.{f}", -1, f"action element mapped to Twist {f} (-1: always 0)", low=-1, high=1023)
      for f in TWIST_FIELDS),
    *(Param(f"scale.{f}", 1.0, f"factor applied to Twist {f}", low=-1e6, high=1e6) for f in TWIST_FIELDS),
    Param("max_observation_age", 0.0, "seconds; an older action commands a stop instead (0: no limit)",
          low=0.0, high=60.0),
)


def action_to_twist(action: list[float], index: dict[str, int], scale: dict[str, float]) -> Twist:
    twist = Twist()
    for field in TWIST_FIELDS:
        i = index[field]
        value = scale[field] * action[i] if 0 <= i < len(action) else 0.0
        group, axis = field.split(".")
        setattr(getattr(twist, group), axis, float(value))
    return twist


class ActionNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("action_node", **kwargs)
        params = declare(self, PARAMS)
        self.index = {f: params[f"index.{f}"] for f in TWIST_FIELDS}
        self.scale = {f: params[f"scale.{f}"] for f in TWIST_FIELDS}
        self.max_age = params["max_observation_age"]
        self.stale_stops = 0
        self.publisher = self.create_publisher(Twist, "cmd_vel", ORDERED)
        self.create_subscription(AgentAction, "auras/action", self._on_action, ORDERED)

    def _on_action(self, msg: AgentAction) -> None:
        age = to_seconds(msg.observation_age)
        if self.max_age and age > self.max_age:
            # Safety tied to staleness: never act on a world that old.
            self.stale_stops += 1
            self.get_logger().warning(f"action {msg.request_id}: observation age {age:.3f} s > "
                                      f"{self.max_age:.3f} s, commanding a stop", throttle_duration_sec=2.0)
            self.publisher.publish(Twist())
            return
        self.publisher.publish(action_to_twist(list(msg.action), self.index, self.scale))


def main(args: list[str] | None = None) -> int:
    return run_node(ActionNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
