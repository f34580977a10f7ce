"""Large camera frames through perception at a camera's rate, in the composed and the distributed graph.

    python -m auras_ros.bench.large_frames [--count 90] [--rate 30] [--model synthetic]
        [--kinds rgb jpeg] [--graphs composed distributed] [--json]

Frames: a 1920x1080 rgb8 ``sensor_msgs/Image`` (6.2 MB) and a ~2 MB JPEG ``CompressedImage`` (1920x1080
noise, which compresses badly), ``count`` of each at ``rate`` Hz on camera/image_raw(/compressed).
- composed: publisher, perception node and a plain counting subscriber in this process, through local
  delivery (nodes/local_delivery.py), each node on its own executor thread (nodes/spinners.py);
- distributed: the publisher in this process, the perception node and a plain counting subscriber
  (this module with ``--reader``) each a process of its own, over Fast DDS with the environment the
  launch files give (config/fastdds_shm_profile.xml unless FASTRTPS_DEFAULT_PROFILES_FILE is set).

Per run: frames sent; *delivered*, what the counting subscriber received (the transport alone: best
effort like the camera QoS, with a queue of 30 so a busy machine's scheduling does not count as loss);
*lost in transport*, what the perception node counted as lost (``lost:image``); *perceived*, the
percepts published. perceived < delivered means perception was slower than the camera: its
subscription keeps the newest frame only (a late frame is worth less than the next one).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from auras_ros.core import topics

KINDS = ("rgb", "jpeg")
GRAPHS = ("composed", "distributed")
WIDTH, HEIGHT = 1920, 1080
JPEG_QUALITY = 93  # 1920x1080 noise at this quality is about 2 MB
READER_DEPTH = 30  # the counting subscriber's queue
DRAIN_S = 3.0  # after the last frame, time for what is still on its way (a bound, not a measurement)


def frame_message(kind: str) -> Any:
    """The frame every run sends: deterministic pixels, stamped at publication."""
    from sensor_msgs.msg import CompressedImage, Image

    pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    if kind == "rgb":
        return Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3, data=pixels.tobytes())
    ok, jpeg = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    assert ok
    return CompressedImage(format="jpeg", data=jpeg.tobytes())


def topic_of(kind: str) -> str:
    return topics.IMAGE if kind == "rgb" else topics.COMPRESSED_IMAGE


def _publish_at_rate(publisher: Any, msg: Any, clock: Any, count: int, rate: float) -> float:
    """``count`` publications ``1/rate`` apart (each stamped); returns the achieved rate."""
    start = time.monotonic()
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        msg.header.stamp = clock.now().to_msg()
        publisher.publish(msg)
    elapsed = time.monotonic() - start
    return (count - 1) / elapsed if elapsed > 0 and count > 1 else float("nan")


def run_composed(kind: str, count: int, rate: float, model: str) -> dict[str, Any]:
    import rclpy
    from rclpy.parameter import Parameter

    from auras_ros.msg import Percept, PipelineStats
    from auras_ros.nodes.local_delivery import LocalDelivery
    from auras_ros.nodes.perception_node import PerceptionNode
    from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
    from auras_ros.nodes.spinners import NodeSpinners

    msg = frame_message(kind)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=_domain())
    delivery = LocalDelivery()
    perception = PerceptionNode(delivery=delivery, context=context, parameter_overrides=[
        Parameter("model", value=model), Parameter("stats_period", value=0.5)])
    counter = rclpy.create_node("frame_counter", context=context)
    delivered, percepts, drops = [0], [0], dict[str, int]()

    def on_stats(stats: PipelineStats) -> None:
        for reason, n in zip(stats.drop_reasons, stats.drop_counts, strict=False):
            drops[reason] = drops.get(reason, 0) + n

    delivery.subscription(counter, type(msg), topic_of(kind), lambda _: delivered.__setitem__(0, delivered[0] + 1),
                          counting_qos())
    delivery.subscription(counter, Percept, topics.PERCEPT, lambda _: percepts.__setitem__(0, percepts[0] + 1), ORDERED)
    delivery.subscription(counter, PipelineStats, topics.PERCEPTION_STATS, on_stats, ORDERED)
    source = rclpy.create_node("frame_source", context=context)
    publisher = delivery.publisher(source, type(msg), topic_of(kind), SENSOR_LATEST)
    spinners = NodeSpinners([perception, counter, source], context=context).start()
    try:
        time.sleep(0.5)  # the executors start spinning; a local message before that is not received
        achieved = _publish_at_rate(publisher, msg, source.get_clock(), count, rate)
        time.sleep(DRAIN_S)
    finally:
        spinners.shutdown()
        for node in (source, counter, perception):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return _row("composed", kind, msg, count, achieved, delivered[0], drops.get("lost:image", 0), percepts[0])


def _domain() -> int:
    return int(os.environ.get("ROS_DOMAIN_ID", "0"))


def run_distributed(kind: str, count: int, rate: float, model: str, env: dict[str, str]) -> dict[str, Any]:
    import rclpy
    from ament_index_python.packages import get_package_share_directory
    from rclpy.executors import SingleThreadedExecutor

    from auras_ros.launching import node_command, stop_process
    from auras_ros.msg import Percept, PipelineStats
    from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST

    msg = frame_message(kind)
    params = os.path.join(get_package_share_directory("auras_ros"), "config", "auras.yaml")
    logs = Path(tempfile.mkdtemp(prefix="auras_large_frames_"))
    with open(logs / "perception.log", "w") as log:
        perception = subprocess.Popen(node_command("auras_ros", "perception_node", params_files=[params]) + [
            "-p", f"model:={model}", "-p", "stats_period:=0.5"], env=env, stdout=log, stderr=subprocess.STDOUT)
    reader = subprocess.Popen([sys.executable, "-m", "auras_ros.bench.large_frames", "--reader", kind], env=env,
                              stdout=subprocess.PIPE, text=True)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=int(env["ROS_DOMAIN_ID"]))
    node = rclpy.create_node("frame_source", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    percepts, drops = [0], dict[str, int]()

    def on_stats(stats: PipelineStats) -> None:
        for reason, n in zip(stats.drop_reasons, stats.drop_counts, strict=False):
            drops[reason] = drops.get(reason, 0) + n

    node.create_subscription(Percept, topics.PERCEPT, lambda _: percepts.__setitem__(0, percepts[0] + 1), ORDERED)
    node.create_subscription(PipelineStats, topics.PERCEPTION_STATS, on_stats, ORDERED)
    publisher = node.create_publisher(type(msg), topic_of(kind), SENSOR_LATEST)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.05)

    spinner = threading.Thread(target=spin)
    try:
        deadline = time.monotonic() + 60.0  # a hang guard for discovery
        while (publisher.get_subscription_count() < 2 or node.count_publishers(topics.PERCEPT) < 1) \
                and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        spinner.start()
        achieved = _publish_at_rate(publisher, msg, node.get_clock(), count, rate)
        time.sleep(DRAIN_S)
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join()
        reader.send_signal(signal.SIGINT)
        out, _ = reader.communicate(timeout=30)
        stop_process(perception)
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    delivered = json.loads(out.strip().splitlines()[-1])["received"] if out.strip() else 0
    return _row("distributed", kind, msg, count, achieved, delivered, drops.get("lost:image", 0), percepts[0])


def _row(graph: str, kind: str, msg: Any, sent: int, rate: float, delivered: int, lost: int,
         perceived: int) -> dict[str, Any]:
    return {"graph": graph, "kind": kind, "bytes": len(msg.data), "sent": sent, "rate_hz": round(rate, 1),
            "delivered": delivered, "lost_in_transport": lost, "perceived": perceived}


def counting_qos() -> Any:
    """The counting subscriber's: best effort like the camera QoS, but a queue of READER_DEPTH, so it
    measures what the transport delivers, not how fast its process takes frames."""
    from rclpy.qos import QoSProfile

    from auras_ros.nodes.qos import SENSOR_LATEST

    return QoSProfile(depth=READER_DEPTH, history=SENSOR_LATEST.history, reliability=SENSOR_LATEST.reliability)


def reader(kind: str) -> None:
    """A plain subscriber that counts the frames it receives; prints them as JSON at SIGINT."""
    import rclpy
    from rclpy.executors import ExternalShutdownException

    rclpy.init()
    node = rclpy.create_node("frame_reader_count")
    received = [0]
    node.create_subscription(type(frame_message(kind)), topic_of(kind),
                             lambda _: received.__setitem__(0, received[0] + 1), counting_qos())
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps({"received": received[0]}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=90, help="frames of each kind")
    parser.add_argument("--rate", type=float, default=30.0, help="frames per second")
    parser.add_argument("--model", default="synthetic", help="the perception node's model")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--reader", choices=KINDS, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.reader:
        reader(options.reader)
        return 0
    from auras_ros.launching import private_ros_env, with_fastdds_profile

    # This process publishes the frames, so it takes the profile too, before its first participant.
    os.environ.update(with_fastdds_profile(dict(os.environ)))
    rows = []
    with private_ros_env() as env:
        os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
        for graph in options.graphs:
            for kind in options.kinds:
                if graph == "composed":
                    rows.append(run_composed(kind, options.count, options.rate, options.model))
                else:
                    rows.append(run_distributed(kind, options.count, options.rate, options.model, env))
    if options.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"large frames at {options.rate:g} Hz, model {options.model}, "
          f"FASTRTPS_DEFAULT_PROFILES_FILE={os.environ.get('FASTRTPS_DEFAULT_PROFILES_FILE')}")
    print("| graph       | frame | bytes     | sent | rate (Hz) | delivered | lost in transport | perceived |")
    print("|-------------|-------|-----------|------|-----------|-----------|-------------------|-----------|")
    for r in rows:
        print(f"| {r['graph']:<11} | {r['kind']:<5} | {r['bytes']:>9,} | {r['sent']:>4} | {r['rate_hz']:>9} | "
              f"{r['delivered']:>9} | {r['lost_in_transport']:>17} | {r['perceived']:>9} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
