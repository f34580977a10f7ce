"""The core's Clock protocol over a node's ROS clock, so ages follow /clock under use_sim_time."""

from __future__ import annotations

import time

from rclpy.clock import ROSClock
from rclpy.node import Node


def clock_started(node: Node) -> bool:
    """False while the node runs on use_sim_time and no /clock message has arrived yet: its clock then
    reads 0, and no stamp can be judged against it."""
    clock = node.get_clock()
    return not (isinstance(clock, ROSClock) and clock.ros_time_is_active and clock.now().nanoseconds == 0)


class RosClock:
    simulated = False  # the ROS graph's frame timer paces frames; the core never waits on this clock

    def __init__(self, node: Node) -> None:
        self._clock = node.get_clock()

    def now(self) -> float:
        return self._clock.now().nanoseconds * 1e-9

    def wait_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            time.sleep(delay)

    def wall_until(self, t: float) -> float:
        return t - self.now()  # sim time taken to run at the wall's rate (only the unpaced core waits on it)
