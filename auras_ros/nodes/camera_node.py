"""camera_node: publishes frames from a device, a video file or an image folder as sensor_msgs/Image.

A frame that does not decode is skipped, counted (``skipped`` on /diagnostics, WARN) and logged with a
throttled WARN; the node ends (exit 3) only when its source gives no frame at all: a whole pass over a
folder without one image that decodes, a looping video or device that stops delivering."""

from __future__ import annotations

import sys

from rclpy.node import Node
from sensor_msgs.msg import Image

from auras_ros.nodes.frame_reader import FrameReader
from auras_ros.nodes.health import OK, WARN, Health, Status
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.params import Param, declare
from auras_ros.nodes.qos import SENSOR_LATEST
from auras_ros.nodes.ros_convert import rgb_to_image
from auras_ros.nodes.process import run_node
from auras_ros.core import topics
from auras_ros.core.errors import InputError

DIAGNOSTICS_PERIOD_S = 1.0  # seconds between the camera's reports on /diagnostics
SKIP_WARN_PERIOD_S = 5.0  # at most one WARN per this many seconds for frames that do not decode

PARAMS = (
    Param("source", "", "V4L2 device index or path, video file, or folder of images (required)"),
    Param("rate_hz", 30.0, "frames published per second", low=0.1, high=1000.0),
    Param("frame_id", "camera", "frame_id of the published images"),
    Param("width", 0, "resize to this width (0 keeps the source's)", low=0, high=8192),
    Param("height", 0, "resize to this height (0 keeps the source's)", low=0, high=8192),
    Param("loop", True, "restart files and folders at their end"),
)


class CameraNode(Node):
    def __init__(self, delivery: LocalDelivery | None = None, **kwargs) -> None:
        super().__init__("camera_node", **kwargs)
        self.params = declare(self, PARAMS)
        size = (self.params["width"], self.params["height"]) if self.params["width"] and self.params["height"] else None
        self.reader = FrameReader(self.params["source"], self.params["loop"], size)
        delivery = delivery if delivery is not None else LocalDelivery()
        self.publisher = delivery.publisher(self, Image, topics.IMAGE, SENSOR_LATEST)
        self.timer = self.create_timer(1.0 / self.params["rate_hz"], self._publish)
        self.published = 0
        self.ended = False
        # A camera that stops is a fault the graph must hear of: perception would otherwise wait for ever.
        self.health = Health(self, self._health, DIAGNOSTICS_PERIOD_S)

    def _publish(self) -> None:
        skipped = self.reader.skipped
        try:
            pixels = self.reader.read()
        except InputError as error:  # a whole pass over a folder and no image decodes
            self._stop_failed(str(error))
            return
        if self.reader.skipped > skipped:
            self.get_logger().warning(f"skipped a frame that does not decode ({self.reader.last_skipped}); "
                                      f"{self.reader.skipped} skipped so far", throttle_duration_sec=SKIP_WARN_PERIOD_S)
        if pixels is None:
            if self.params["loop"]:
                # A looping source never ends: a device unplugged, a file that cannot be read again.
                self._stop_failed("no frame")
                return
            self.timer.cancel()
            self.ended = True
            self.get_logger().info(f"source {self.params['source']!r} ended after {self.published} frames")
            return
        # The stamp is the capture time, every later age judged against it: the moment the frame is in
        # hand (a device's read returns once the frame is captured; a file's once it is decoded).
        stamp = self.get_clock().now().to_msg()
        self.publisher.publish(rgb_to_image(pixels, stamp, self.params["frame_id"]))
        self.published += 1

    def _stop_failed(self, why: str) -> None:
        self.timer.cancel()
        self.health.fatal(f"source {self.params['source']!r} stopped delivering frames after {self.published}: {why}")

    def _health(self) -> Status:
        counts = {"published": self.published, "skipped": self.reader.skipped}
        if self.ended:
            return Status(WARN, "source ended: publishing no more images", counts)
        if self.reader.skipped:
            return Status(WARN, f"publishing images; skipping frames that do not decode ({self.reader.last_skipped})",
                          counts)
        return Status(OK, "publishing images", counts)

    def destroy_node(self) -> None:
        self.reader.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(CameraNode, args=args)


if __name__ == "__main__":
    sys.exit(main())
