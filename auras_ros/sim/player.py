"""bag_player: replays any rosbag2 bag (mcap or sqlite3) into the agent graph, with /clock from bag time.

    bag_player --ros-args -p bag:=DIR [-p topic_map:=FILE] [-p replay:=stepped|timed] [-p rate:=1.0]

The topic map (:class:`auras_ros.eval.bag.TopicMap`, a YAML file; default: the simulator's topics) says
which bag topic is the camera (``sensor_msgs/Image``, published on ``camera/image_raw``, or
``sensor_msgs/CompressedImage``, published on ``camera/image_raw/compressed``) and which is the robot
state (``sensor_msgs/JointState``, published on ``joint_states``). Only these are published; the bag's
other topics (its /clock, the reference the evaluator reads from the bag itself) are not.

The whole bag is read and checked first (:func:`auras_ros.eval.bag.check_bag`): a missing topic, a
topic of the wrong type or a damaged file makes the player refuse to start (exit 2) with one line
naming the problem, before anything is published. Camera images that do not decode are skipped and
counted, each with a warning.

Two replay modes:
- ``stepped`` (deterministic): the generation node runs with ``lockstep: true``, so each of its frames
  starts with a tick on ``auras/frame`` and waits for a new observation. The player publishes the next
  camera message (with /clock set to its bag time, and the state messages recorded before it) once the
  graph has asked for it with a tick of a new frame, i.e. after the frame that admitted the previous
  image has run and published its decisions. Every frame then admits exactly one image, so two replays
  of one bag give identical actions. A frame that ticks again without having admitted its image (the
  generation node asks again after half a second: the image or its percept was lost) gets the image
  again, counted; a frame that does not come within ``step_timeout`` wall seconds declares the image
  dropped (counted, logged) and the replay moves on.
- ``timed``: the recorded pacing, ``rate`` bag seconds per wall second, with /clock published at
  ``clock_rate`` Hz while waiting.
Publishing starts once ``readers`` nodes subscribe to the camera topic, ``evaluators`` evaluator nodes
announced on ``eval/ready`` that they see the action publisher, and (stepped) the frame ticks are there.
The player exits 0 at the bag's end.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Callable

import rclpy
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import UInt64

from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import LATEST_RELIABLE, SENSOR_LATEST
from auras_ros.nodes.process import run_node
from auras_ros.eval import messages as m
from auras_ros.eval.bag import COMPRESSED, IMAGE, JOINT_STATE, SIM_TOPIC_MAP, TopicMap, check_bag, raw_messages
from auras_ros.sim.ready import ReadyEvaluators
from auras_ros.sim.sim_node import TICKS

# The only classes the player publishes with: the graph's inputs. A bag's type names are never imported.
GRAPH_TYPES = {IMAGE: Image, COMPRESSED: CompressedImage, JOINT_STATE: JointState}

PARAMS = (
    Param("bag", "", "rosbag2 directory to replay (required)"),
    Param("topic_map", "", "YAML topic map: camera, state, reference, reference_fields ('': the simulator's)"),
    Param("replay", "stepped", "stepped: one image per generation frame (deterministic, needs lockstep); "
          "timed: the recorded pacing", choices=("stepped", "timed")),
    Param("rate", 1.0, "timed: bag seconds per wall second", low=0.01, high=100.0),
    Param("clock_rate", 100.0, "timed: /clock messages per wall second while waiting for the next message",
          low=1.0, high=10000.0),
    Param("step_timeout", 10.0, "stepped: wall seconds to wait for the next frame before declaring the "
          "image dropped", low=0.1, high=3600.0),
    Param("readers", 1, "start once this many nodes subscribe to the camera topic", low=0, high=1000),
    Param("evaluators", 0, "and once this many evaluator nodes announced on eval/ready that they see the "
          "action publisher, so none misses the first decisions", low=0, high=1000),
    Param("start_timeout", 60.0, "wall seconds to wait for those readers", low=0.0, high=3600.0),
)


class BagPlayer(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("bag_player", **kwargs)
        self.params = p = declare(self, PARAMS)
        topic_map = TopicMap.load(p["topic_map"]) if p["topic_map"] else SIM_TOPIC_MAP
        # BagError (an InputError): refuses to start with one line, before anything is published.
        self.info = check_bag(p["bag"], topic_map, need_reference=False)
        self.clock_pub = self.create_publisher(Clock, m.CLOCK_TOPIC, LATEST_RELIABLE)
        self.camera_topic = self.info.graph_topic(self.info.camera)
        self.publishers_ = {self.info.camera: self.create_publisher(
            GRAPH_TYPES[self.info.camera_type], self.camera_topic, SENSOR_LATEST)}
        if self.info.state:
            self.publishers_[self.info.state] = self.create_publisher(JointState, self.info.graph_topic(self.info.state), TICKS)
        self.stepped = p["replay"] == "stepped"
        self._asked = -1  # the newest frame the generation node has ticked
        self._taken = -1  # the frame that asked for the last published image
        self._asked_again = False
        self._last_image: tuple[int, Any] | None = None  # (bag time, raw message) of the last image
        if self.stepped:
            self.create_subscription(UInt64, m.TICK_TOPIC, self._on_tick, LATEST_RELIABLE)
        self._evaluators = ReadyEvaluators(self)
        self.published = 0
        self.images = 0
        self.dropped = 0
        self.resent = 0
        for index, reason in self.info.bad_images.items():
            self.get_logger().warning(f"camera message {index} does not decode, skipped: {reason}")

    def _on_tick(self, msg: UInt64) -> None:
        if msg.data == self._taken:
            # The frame that took the last image ticked again: it never admitted that image (the image
            # or its percept was lost on the way), and asks for it once more.
            self._asked_again = True
        self._asked = max(self._asked, msg.data)

    def _publish_clock(self, t_ns: int) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(t_ns), 1_000_000_000)
        self.clock_pub.publish(msg)

    def _spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.01)  # graph changes wake no callback: poll
        return done()

    def _ready(self) -> bool:
        return self.count_subscribers(self.camera_topic) >= self.params["readers"] and (
            len(self._evaluators) >= self.params["evaluators"]) and (
            not self.stepped or self.count_publishers(m.TICK_TOPIC) > 0)

    def play(self) -> int:
        p = self.params
        if not self._spin_until(self._ready, p["start_timeout"]):
            ticks = " and a generation node's frame ticks on auras/frame (lockstep: true)" if self.stepped else ""
            evaluators = f", {p['evaluators']} evaluators ready" if p["evaluators"] else ""
            self.get_logger().error(f"no {p['readers']} readers of {self.camera_topic}{evaluators}{ticks} "
                                    f"within {p['start_timeout']:g} s")
            return 3
        self._publish_clock(self.info.start_ns)
        if self.stepped:
            self._spin_until(lambda: self._asked >= 0, p["start_timeout"])  # the first frame asks
        camera_index = -1
        awaiting = False  # stepped: an image is out and its frame has not answered yet
        wall0, bag0 = time.monotonic(), self.info.start_ns
        for topic, _, t_ns, raw in raw_messages(self.info.path):
            publisher = self.publishers_.get(topic)
            if publisher is None:
                continue
            if topic == self.info.camera:
                camera_index += 1
                if camera_index in self.info.bad_images:
                    continue
            if awaiting:
                # Nothing recorded after an image (its state included) reaches the graph before the
                # frame that took the image has run: what that frame sees depends on the bag alone.
                self._await_frame()
                awaiting = False
            if not self.stepped:
                self._pace(t_ns, wall0, bag0)
            self._publish_clock(t_ns)
            publisher.publish(raw)
            self.published += 1
            if topic == self.info.camera:
                self.images += 1
                self._taken, awaiting, self._asked_again = self._asked, self.stepped, False
                self._last_image = (t_ns, raw)
        if awaiting:
            self._await_frame()  # the last image's frame has run and published its decisions
        self._publish_clock(self.info.end_ns)
        self.get_logger().info(
            f"replayed {self.images} images ({self.published} messages) of {self.info.path}, "
            f"{(self.info.end_ns - bag0) * 1e-9:.2f} s of bag time, {p['replay']}; "
            f"{len(self.info.bad_images)} undecodable images skipped, {self.resent} sent again, "
            f"{self.dropped} declared dropped")
        return 0

    def _await_frame(self) -> None:
        """Stepped: wait until the generation node ticks a frame newer than the one that asked for the
        last image, i.e. that frame has run; the image is sent again each time that frame asks again;
        without a newer frame within step_timeout the image counts as dropped."""
        taken = self._taken
        deadline = time.monotonic() + self.params["step_timeout"]
        while self._spin_until(lambda: self._asked > taken or self._asked_again, deadline - time.monotonic()):
            if self._asked > taken:
                return
            self._asked_again = False
            self.resent += 1
            t_ns, raw = self._last_image
            self._publish_clock(t_ns)
            self.publishers_[self.info.camera].publish(raw)
        self.dropped += 1
        self.get_logger().warning(f"no frame after frame {taken} within {self.params['step_timeout']:g} s: "
                                  f"image {self.images - 1} declared dropped")

    def _pace(self, t_ns: int, wall0: float, bag0: int) -> None:
        """Timed: sleep until the message's recorded time, the clock running meanwhile."""
        rate, period = self.params["rate"], 1.0 / self.params["clock_rate"]
        due = wall0 + (t_ns - bag0) * 1e-9 / rate
        while (left := due - time.monotonic()) > 0:
            time.sleep(min(left, period))
            self._publish_clock(min(t_ns, bag0 + int((time.monotonic() - wall0) * rate * 1e9)))


def main(args: list[str] | None = None) -> int:
    return run_node(BagPlayer, work=lambda node: node.play(), args=args)


if __name__ == "__main__":
    sys.exit(main())
