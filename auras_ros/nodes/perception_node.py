"""perception_node: runs an agent's perception on the latest camera image and publishes its percept.

Triggered by every new image (``trigger: image``) or by the generation node's frame clock
(``trigger: frame``: one perception per frame tick, of the newest image not perceived yet or else the
next to arrive, as in the paper's pipeline; the first image is perceived without a tick, since the
generation node's first frame waits for a percept). The image callback only takes the newest image;
perception runs in a thread of the node's own, so an image that a newer one replaces before it was
perceived is counted (``overwritten``) instead of vanishing from the subscription's queue of one.
In a composed process an image can also be replaced in local delivery's queue of one before the
callback takes it (the node's executor busy): that queue reports it here and it is counted the same
way, once (the callback never saw it). An image DDS's own reader queue replaced, between processes,
is not seen by this process (no DDS event reports it) and is not counted.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import UInt64

from auras_ros.core.cpu_costs import CpuLedger
from auras_ros.core.errors import InputError
from auras_ros.core.inputs import RobotInputs, check_robot_inputs, input_spec
from auras_ros.core.metrics import MetricsRecorder
from auras_ros.core.runner import FrameFaults
from auras_ros.core.sources import StampedHistory, new_source_id
from auras_ros.core.stages import PERCEPT_KEY, Observation, perceive_all
from auras_ros.models.inputs import observation_data
from auras_ros.msg import Percept, PipelineStats
from auras_ros.nodes.agent_params import AGENT_PARAMS, agent_from_params
from auras_ros.nodes.health import OK, WARN, Health, Status, TransportLosses, with_graph_captures
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.payload import PayloadCodec, transport_params
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import metrics_to_stats, to_duration, to_seconds
from auras_ros.nodes.process import run_node
from auras_ros.transport.images import to_rgb
from auras_ros.core import topics

STATE_HISTORY = 16  # robot states kept to pair with images by stamp
OVERWRITTEN = "overwritten"  # drop reason: an image a newer one replaced before it was perceived

PARAMS = (
    *AGENT_PARAMS,
    Param("trigger", "image", "perceive on every new image, or once per frame tick", choices=("image", "frame")),
    Param("max_image_pixels", 4096 * 4096, "larger images are rejected", low=1),
    Param("reduced_decoding", True, "decode a camera image much larger than the model's input at 1/2, 1/4 or 1/8 "
          "of its size, still at least the model's (transport/images.py); false: always at full size"),
    Param("stats_period", 1.0, "seconds between perception stats reports", low=0.1, high=3600.0),
    Param("state_topic", "", "sensor_msgs/JointState topic whose positions join the image as the agent's "
          "robot state (empty: image only)"),
    Param("state_joints", [""], "the state's joints by name, in the model's order (['']: the model's own, "
          "else the message's positions in message order)"),
    Param("camera_key", "", "which of the checkpoint's cameras the image topic shows, e.g. "
          "observation.images.wrist (a checkpoint naming another is refused; '': the checkpoint's one camera)"),
    *transport_params(),
)


class PerceptionNode(Node):
    def __init__(self, agent: Any = None, registry: Any = None, delivery: LocalDelivery | None = None,
                 cpu: CpuLedger | None = None, **kwargs: Any) -> None:
        """``cpu``: the ledger of CPU per hop (core/cpu_costs.py) this node adds to; the composed process's
        nodes share one."""
        super().__init__("perception_node", **kwargs)
        self.cpu = cpu if cpu is not None else CpuLedger()
        self.params = declare(self, PARAMS)
        self.agent = agent if agent is not None else agent_from_params(self.params)
        # The agent's input form, with the state's joints a parameter names; a robot that cannot feed it
        # (another camera, no state, a state of another size) is refused here (ConfigError: refuses to start).
        joints = [j for j in self.params["state_joints"] if j]
        check_robot_inputs(input_spec(self.agent), RobotInputs(
            self.resolve_topic_name(topics.IMAGE), self.params["camera_key"],
            self.resolve_topic_name(self.params["state_topic"]) if self.params["state_topic"] else "",
            len(joints) if joints else None), self.params["model"])
        self.input_spec = input_spec(self.agent).with_joints(joints)
        self.codec = PayloadCodec(self.params, registry)
        self.recorder = MetricsRecorder()
        # One group for everything perception touches: its callbacks never overlap each other, but run
        # beside generation's in a multi-threaded executor.
        self.perception_group = MutuallyExclusiveCallbackGroup()
        delivery = delivery if delivery is not None else LocalDelivery()
        self.publisher = delivery.publisher(self, Percept, topics.PERCEPT, LATEST_RELIABLE)
        self.stats_publisher = delivery.publisher(self, PipelineStats, topics.PERCEPTION_STATS, ORDERED)
        # image_transport's name for the same stream compressed: a robot's JPEG/PNG camera needs no republisher.
        for image_type, topic in ((Image, topics.IMAGE), (CompressedImage, topics.COMPRESSED_IMAGE)):
            delivery.subscription(self, image_type, topic, self._on_image, SENSOR_LATEST,
                                  callback_group=self.perception_group,
                                  losses=TransportLosses(self, topic, lambda n: self.recorder.drop("lost:image", n)),
                                  on_replaced=self._replaced_unseen)
        self._states = StampedHistory(STATE_HISTORY)  # assembled states by sensor stamp
        self._state_refused = False  # a state that cannot be assembled is logged once, and counted each time
        self.state_topic = self._state_topic()
        # The image held while no robot state has arrived yet (-1: none yet; None: not waiting).
        self._waiting_for_state_since: int | None = -1 if self.state_topic else None
        self._dropped_before_state = 0
        if self.state_topic:
            self.create_subscription(JointState, self.state_topic, self._on_state, ORDERED,
                                     callback_group=self.perception_group)
        if self.params["trigger"] == "frame":
            delivery.subscription(self, UInt64, topics.FRAME, self._on_frame, LATEST_RELIABLE,
                                  callback_group=self.perception_group)
        self.create_timer(self.params["stats_period"], self._publish_stats)
        self.source_id = new_source_id()
        self.faults = FrameFaults()
        self.health = Health(self, self._health, self.params["stats_period"])
        self._latest: Image | None = None
        self._seq = 0  # images received
        # Work done for good, never reset (the stats' windows are): a test of the work per decision reads them.
        self.decodes = 0
        self.percepts_published = 0
        self._perceived_seq = -1
        self._percepts_in_window = 0
        self._frame = 0
        # trigger frame: a tick asks for one perception, of the newest image not perceived yet, or else
        # of the next to arrive. Asked from the start: the generation node's first frame waits for a
        # percept before it ticks, and a percept lost to a bad image must not leave it waiting for ever.
        self._asked = True
        self._ticks = 0  # frame ticks so far: one that comes while an image is perceived asks again
        # Perception runs in a thread of its own and the image callback only takes the newest image: a
        # frame that a newer one replaces before it was perceived is counted (with perception in the
        # callback, a fast camera's frames were dropped unseen by the subscription's queue of one).
        self._lock = threading.Condition()  # the newest image, the states, the tick: callbacks vs the thread
        self._stopping = False
        self._worker = threading.Thread(target=self._perception_loop, name="perception", daemon=True)
        self._worker.start()

    def _state_topic(self) -> str:
        """The robot-state topic, when the model takes a state (one that does and has none was refused)."""
        topic, size = self.params["state_topic"], self.input_spec.state_size
        if topic and not size:
            self.get_logger().info(f"state_topic {topic!r} not read: model {self.params['model']!r} takes the "
                                   "image alone")
            return ""
        return topic

    def _on_image(self, msg: Image | CompressedImage) -> None:
        with self.cpu.hop("image intake"), self._lock:
            if self._latest is not None and self._seq != self._perceived_seq and self._waiting_for_state_since is None:
                self.recorder.drop(OVERWRITTEN)
            self._latest = msg
            self._seq += 1
            if not self._waiting_for_state(self._seq):
                self._lock.notify()

    def _replaced_unseen(self, count: int) -> None:
        """Images local delivery's queue replaced before :meth:`_on_image` took them (in the publisher's
        thread): dropped for the reason the callback gives an image it replaces, so each is counted once."""
        with self._lock:
            waiting = self._waiting_for_state_since is not None
            if waiting:
                self._dropped_before_state += count
        self.recorder.drop("waiting_for_state" if waiting else OVERWRITTEN, count)

    def _on_state(self, msg: JointState) -> None:
        assert self.input_spec.state is not None  # subscribed only for a model that takes a state
        try:
            state = self.input_spec.state.assemble(msg.name, msg.position, f"perception_node {self.state_topic}")
        except InputError as error:
            self.recorder.drop(f"bad_input:{error.what}")
            if not self._state_refused:
                self._state_refused = True
                self.get_logger().error(f"robot state refused (every such message is counted, this is said "
                                        f"once): {error}")
            return
        with self._lock:
            first = self._waiting_for_state_since is not None
            self._states.add(to_seconds(msg.header.stamp), state)
            if first:
                self.get_logger().info(f"first robot state on {self.state_topic}: perceiving "
                                       f"({self._dropped_before_state} earlier images dropped)")
                self._waiting_for_state_since = None
                self._lock.notify()  # the image held while waiting, with the state just received

    def _waiting_for_state(self, seq: int) -> bool:
        """Before the first robot state the newest image is held (the one it replaces is dropped,
        counted), and one INFO line says why: a robot's joint states often start after its camera."""
        if self._waiting_for_state_since is None:
            return False
        if self._waiting_for_state_since < 0:
            self.get_logger().info(f"waiting for the first robot state on {self.state_topic}: "
                                   "the newest image is held until it arrives")
        elif seq != self._waiting_for_state_since:
            self._dropped_before_state += 1
            self.recorder.drop("waiting_for_state")
        self._waiting_for_state_since = seq
        return True

    def _observation_data(self, pixels: np.ndarray, stamp: float) -> Any:
        """The image in the agent's input form, joined with the robot state sensed at the same stamp when
        the agent takes one (the code bag_eval uses: :func:`observation_data`)."""
        state = None
        with self._lock:
            found = self._states.at(stamp) if self.state_topic else None
        if found is not None:
            state, exact = found
            if not exact:
                # This frame's state has not arrived (or never will): the newest is the best estimate,
                # counted so that a systematic mismatch shows in the stats.
                self.recorder.drop("state_not_synchronized")
        return observation_data(self.input_spec, pixels, state, "perception_node image")

    def _on_frame(self, msg: UInt64) -> None:
        with self._lock:
            self._frame = msg.data
            self._asked = True
            self._ticks += 1
            self._lock.notify()

    def _due(self) -> bool:
        """An image not perceived yet, a state to join it with, and (trigger frame) a tick asking. Under the lock."""
        return (self._latest is not None and self._seq != self._perceived_seq
                and self._waiting_for_state_since is None and (self.params["trigger"] == "image" or self._asked))

    def _perception_loop(self) -> None:
        try:
            while True:
                with self._lock:
                    self._lock.wait_for(lambda: self._stopping or self._due())
                    if self._stopping:
                        return
                    msg, seq, frame, ticks = self._latest, self._seq, self._frame, self._ticks
                    self._perceived_seq = seq
                assert msg is not None  # _due
                self._perceive(msg, seq, frame, ticks)
        except Exception as error:  # noqa: BLE001 - a dead perception thread must end the node, never idle it
            self.health.fatal(f"the perception thread failed: {error!r}")

    def _perceive(self, msg: Image | CompressedImage, seq: int, frame: int, ticks: int) -> None:
        started = time.perf_counter()
        out = Percept()
        try:
            self.decodes += 1  # this thread alone writes it
            with self.cpu.hop("decode"):
                pixels = to_rgb(msg, self.params["max_image_pixels"], "perception_node image",
                                self.input_spec if self.params["reduced_decoding"] else None)
            stamp = to_seconds(msg.header.stamp)
            with self.cpu.hop("preprocess"):
                data = self._observation_data(pixels, stamp)
            with self.cpu.hop("perceive"):
                percept = perceive_all(self.agent, Observation(seq, stamp, data))
                # Inside the try: a percept larger than an shm slot is refused and counted, not a crash.
                self.codec.encode(self.agent.percept_to_tensor(percept), out.tensor)
        except InputError as error:
            self.recorder.drop(f"bad_input:{error.what}")
            self.get_logger().warning(f"rejected image {seq}: {error}", throttle_duration_sec=2.0)
            return
        except Exception as error:  # noqa: BLE001 - any fault is counted at the image boundary, the next image runs
            self._fault(error, seq)
            return
        self.faults.succeeded()
        with self._lock:
            self._asked = self._ticks != ticks  # a tick during this perception still asks for the next
        elapsed = time.perf_counter() - started
        self.recorder.stage("perception", elapsed)
        out.header = msg.header
        out.observation_seq = seq
        out.source_id = self.source_id
        out.key = PERCEPT_KEY
        out.frame = frame % 2**32
        out.perception_latency = to_duration(elapsed)
        with self.cpu.hop("percept publish"):
            self.publisher.publish(out)
        with self._lock:
            self._percepts_in_window += 1
            self.percepts_published += 1

    @property
    def images_received(self) -> int:
        with self._lock:
            return self._seq

    def _fault(self, error: Exception, seq: int) -> None:
        reason = self.faults.record(error)
        self.recorder.drop(reason)
        self.get_logger().error(f"perception of image {seq} failed ({reason}): {error!r}", throttle_duration_sec=2.0)
        if self.faults.fatal:
            self.health.fatal(f"{self.faults.consecutive} images failed with none perceived between: {error!r}")

    def _health(self) -> Status:
        if self.faults.consecutive:
            return Status(WARN, f"last perception failed: {self.faults.last_reason}", dict(self.faults.counts))
        return with_graph_captures(Status(OK, "perceiving", dict(self.faults.counts)), self.agent)

    def _publish_stats(self) -> None:
        metrics = self.recorder.take_window()
        with self._lock:
            percepts, self._percepts_in_window = self._percepts_in_window, 0
        # Perception's own view of the pipeline fields: one image at a time (degree 1), no generation, no
        # context read; "frames" counts the percepts published; in flight is not tracked (0).
        self.stats_publisher.publish(metrics_to_stats(
            metrics, stamp=self.get_clock().now().to_msg(), mode="perception", pp_perception=1, pp_generation=0,
            fetch_offset=0, frames=percepts, in_flight=0))

    def stop_perceiving(self) -> None:
        """End the perception thread, after the perception under way (its percept still goes out): before
        the nodes its percepts reach in this process are destroyed. Idempotent."""
        with self._lock:
            self._stopping = True
            self._lock.notify()
        self._worker.join()

    def destroy_node(self) -> None:
        self.stop_perceiving()
        self.codec.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(PerceptionNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
