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
are ready to score the first decision (confirmed on ``eval/matched`` by the action publisher's node:
:mod:`auras_ros.nodes.eval_ready`), and (stepped) the frame ticks are there.
The player exits 0 at the bag's end, once a decision (``AgentAction`` on auras/action) has come; a replay
that made none exits 3 with the reason: what the perception and generation nodes counted as dropped
(images lost in transport, refused), how many percepts came, requests still in flight, and camera
messages too large for the Fast DDS transport (transport/dds_limits.py: each such message is counted
and warned about as it is published, with its size and the limit).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from typing import Any, Callable

from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import UInt64

from auras_ros.msg import AgentAction, Percept, PipelineStats
from auras_ros.nodes.eval_ready import MATCHED_TOPIC
from auras_ros.nodes.health import FATAL_EXIT
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import add_drops
from auras_ros.nodes.process import run_node, spin_until
from auras_ros.core import topics
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
    Param("evaluators", 0, "and once this many evaluator nodes are matched with the action publisher, both "
          "ways (confirmed on eval/matched), so none misses the first decisions", low=0, high=1000),
    Param("start_timeout", 60.0, "wall seconds to wait for those readers", low=0.0, high=3600.0),
    Param("require_decision", True, "exit 3, naming why, when the replay ends without a decision on "
          "auras/action (false: no agent graph listens, e.g. a recording)"),
    Param("decision_timeout", 5.0, "wall seconds to wait after the bag's end for a first decision",
          low=0.0, high=3600.0),
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
        # A LocalPublisher: it counts and warns about camera messages too large for the Fast DDS transport.
        self.camera_publisher = LocalDelivery().publisher(self, GRAPH_TYPES[self.info.camera_type],
                                                          self.camera_topic, SENSOR_LATEST)
        self.publishers_: dict[str, Any] = {self.info.camera: self.camera_publisher}
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
        # What the graph made of the replay, to name the reason when no decision comes.
        self.decisions = 0
        self.percepts = 0
        self.drops: Counter[str] = Counter()  # by node and reason, summed over the stats windows
        self.in_flight = 0  # requests in the generation node's pipeline, at its last stats
        self.create_subscription(AgentAction, m.ACTION_TOPIC, self._on_action, ORDERED)
        self.create_subscription(Percept, topics.PERCEPT, self._on_percept, ORDERED)
        self.create_subscription(PipelineStats, topics.PERCEPTION_STATS,
                                 lambda msg: self._on_stats("perception", msg), ORDERED)
        self.create_subscription(PipelineStats, topics.PIPELINE_STATS,
                                 lambda msg: self._on_stats("generation", msg), ORDERED)
        self.published = 0
        self.images = 0
        self.dropped = 0
        self.resent = 0
        for index, reason in self.info.bad_images.items():
            self.get_logger().warning(f"camera message {index} does not decode, skipped: {reason}")

    def _on_action(self, msg: AgentAction) -> None:
        self.decisions += 1

    def _on_percept(self, msg: Percept) -> None:
        self.percepts += 1

    def _on_stats(self, node: str, msg: PipelineStats) -> None:
        add_drops(self.drops, msg, prefix=f"{node} ")
        if node == "generation":
            self.in_flight = msg.requests_in_flight

    def no_decision_reason(self) -> str:
        """Why the replay decided nothing, from what the graph reported while it ran."""
        parts = [f"{self.percepts} percepts on {topics.PERCEPT}"]
        oversize = self.camera_publisher.oversize
        if oversize is not None and oversize.warning.total:
            parts.append(f"{oversize.warning.total} camera messages (up to {oversize.warning.largest:,} B) larger "
                         f"than the Fast DDS limit {oversize.limit.describe()}")
        parts += [f"{reason}: {count}" for reason, count in sorted(self.drops.items()) if count]
        if self.in_flight:
            parts.append(f"{self.in_flight} requests still in flight at the bag's end (a pipelined executor "
                         "decides only once its pipeline has filled)")
        if not self.drops and not self.in_flight:
            parts.append("no stats from a perception or generation node")
        return "; ".join(parts)

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
        return spin_until(self, done, timeout, poll_s=0.01)  # graph changes wake no callback: poll

    def _unmet(self) -> list[str]:
        """Each start condition not met yet, saying what it waits for and what there is."""
        p, unmet = self.params, []
        readers = self.count_subscribers(self.camera_topic)
        if readers < p["readers"]:
            unmet.append(f"{readers} of {p['readers']} readers subscribe to {self.camera_topic} (is a perception "
                         "node running, on this ROS_DOMAIN_ID?)")
        if len(self._evaluators) < p["evaluators"]:
            unmet.append(f"{len(self._evaluators)} of {p['evaluators']} evaluator nodes confirmed on "
                         f"{MATCHED_TOPIC} as matched with the action publisher (is an evaluator running, and a "
                         f"generation node publishing {m.ACTION_TOPIC}?)")
        if self.stepped and self.count_publishers(m.TICK_TOPIC) == 0:
            unmet.append(f"no generation node publishes frame ticks on {m.TICK_TOPIC} (stepped replay needs "
                         "one with lockstep: true)")
        return unmet

    def _ready(self) -> bool:
        return not self._unmet()

    def play(self) -> int:
        p = self.params
        if not self._spin_until(self._ready, p["start_timeout"]):
            unmet = self._unmet()
            self.get_logger().error(f"not ready to replay within {p['start_timeout']:g} s, {len(unmet)} "
                                    f"condition(s) unmet: " + "; ".join(f"({k + 1}) {u}" for k, u in enumerate(unmet)))
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
        if self.camera_publisher.oversize is not None:
            self.camera_publisher.oversize.warning.flush()  # the period's last ones, before the player ends
        self.get_logger().info(
            f"replayed {self.images} images ({self.published} messages) of {self.info.path}, "
            f"{(self.info.end_ns - bag0) * 1e-9:.2f} s of bag time, {p['replay']}; "
            f"{len(self.info.bad_images)} undecodable images skipped, {self.resent} sent again, "
            f"{self.dropped} declared dropped")
        if p["require_decision"] and not self._spin_until(lambda: self.decisions > 0, p["decision_timeout"]):
            self.get_logger().error(f"no decision on {m.ACTION_TOPIC} from {self.images} images within "
                                    f"{p['decision_timeout']:g} s of the bag's end: {self.no_decision_reason()}")
            return FATAL_EXIT
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
