"""bag_player: replays a recorded simulator bag into the ROS graph at its recorded timing, with /clock.

    bag_player --ros-args -p bag:=DIR [-p rate:=1.0] [-p clock_rate:=100.0] [-p readers:=1]

The whole bag is read and checked first (:func:`auras_ros.sim.bag.check_bag`): a bag with missing
topics, unknown types, no ground truth or a damaged file makes the player refuse to start (exit 2)
with one line naming the problem, before anything is published. Messages are published as the
serialized CDR they were recorded as; ``/clock`` is generated from bag time at ``clock_rate`` Hz (a
recorded /clock topic is not replayed, so there is one clock source), so nodes on ``use_sim_time`` run
on the bag's time. Publishing starts once ``readers`` nodes subscribe to camera/image_raw.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import rclpy
from rclpy.node import Node
from rosgraph_msgs.msg import Clock

from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.runner import run_node
from auras_ros.sim import messages as m
from auras_ros.sim.bag import check_bag, message_class, raw_messages
from auras_ros.sim.sim_node import SCORES, TICKS

PARAMS = (
    Param("bag", "", "rosbag2 directory to replay (required)"),
    Param("rate", 1.0, "replay speed: bag seconds per wall second", low=0.01, high=100.0),
    Param("clock_rate", 100.0, "/clock messages per wall second while waiting for the next message",
          low=1.0, high=10000.0),
    Param("readers", 1, "start once this many nodes subscribe to camera/image_raw", low=0, high=1000),
    Param("start_timeout", 60.0, "wall seconds to wait for those readers", low=0.0, high=3600.0),
)

QOS = {m.IMAGE_TOPIC: SENSOR_LATEST, m.STATE_TOPIC: TICKS, m.SCORE_TOPIC: SCORES}


class BagPlayer(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bag_player", **kwargs)
        self.params = declare(self, PARAMS)
        self.info = check_bag(self.params["bag"])  # BagError: refuses to start, naming the problem
        self.clock_pub = self.create_publisher(Clock, m.CLOCK_TOPIC, LATEST_RELIABLE)
        self.publishers_ = {topic: self.create_publisher(message_class(msgtype), topic, QOS.get(topic, ORDERED))
                            for topic, msgtype in self.info.topics.items() if topic != m.CLOCK_TOPIC}
        self.published = 0

    def _publish_clock(self, t_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
        self.clock_pub.publish(msg)

    def play(self) -> int:
        p = self.params
        deadline = time.monotonic() + p["start_timeout"]
        while self.count_subscribers(m.IMAGE_TOPIC) < p["readers"] and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)  # graph changes wake no callback: poll the count
        if self.count_subscribers(m.IMAGE_TOPIC) < p["readers"]:
            self.get_logger().error(f"no {p['readers']} readers of {m.IMAGE_TOPIC} within {p['start_timeout']:g} s")
            return 3
        rate, period = p["rate"], 1.0 / p["clock_rate"]
        wall0, bag0 = time.monotonic(), self.info.start_ns
        self._publish_clock(bag0)
        for topic, _, t_ns, raw in raw_messages(self.info.path):
            if topic == m.CLOCK_TOPIC:
                continue
            due = wall0 + (t_ns - bag0) * 1e-9 / rate
            while (left := due - time.monotonic()) > 0:  # pacing at recorded timing, clock running
                time.sleep(min(left, period))
                self._publish_clock(min(t_ns, bag0 + int((time.monotonic() - wall0) * rate * 1e9)))
            self._publish_clock(t_ns)
            self.publishers_[topic].publish(raw)
            self.published += 1
        self._publish_clock(self.info.end_ns)
        self.get_logger().info(f"replayed {self.published} messages of {self.info.path} "
                               f"({(self.info.end_ns - bag0) * 1e-9:.2f} s of bag time)")
        return 0


def main(args: list[str] | None = None) -> int:
    return run_node(BagPlayer, work=lambda node: node.play(), args=args)


if __name__ == "__main__":
    sys.exit(main())
