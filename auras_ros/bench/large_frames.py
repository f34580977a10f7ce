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

    python -m auras_ros.bench.large_frames --camera-4k [--seconds 10] [--rate 60] [--model diffusion-tiny]
        [--kinds rgb jpeg]

A 3840x2160 camera at ``rate`` Hz for ``seconds`` through the composed agent graph (generation, context and
perception nodes in this process as ``auras_composed`` runs them, ``transport: in_process``, local
delivery), with the perception node's ``reduced_decoding`` off (before: every frame decoded at 4K) and on
(after: decoded at the smallest 1/2^n that is still at least the model's input), alternated. Per run:
frames sent; perceptions/s; frames *overwritten* (replaced before perception took them, counted by the
perception node); actions/s; and the age of each action when it reaches a listener in the process (its
arrival minus its camera stamp: what the safety gate compares with ``max_obs_age``), p50 and p99.
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
from collections import Counter
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
# After the last frame, time for what is still on its way (a bound, not a measurement): no event ends this
# wait, since a frame lost on a best-effort topic never arrives and the counts are what this run measures.
DRAIN_S = 3.0
HANG_GUARD_S = 60.0  # how long a wait for an event may take before the run is called hung; never a measurement


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


def executor_turn(node: Any) -> int:
    """Waits until ``node``'s executor has run a task posted to it now: it spins, and every callback
    queued there before (a local message's delivery included) has run, since a node's callbacks run one
    at a time, in order (nodes/spinners.py). Returns the node's clock (ns) as the task ran."""
    ran, at = threading.Event(), []

    def mark() -> None:
        at.append(node.get_clock().now().nanoseconds)
        ran.set()

    node.executor.create_task(mark)
    if not ran.wait(HANG_GUARD_S):
        raise RuntimeError(f"large_frames: the executor of {node.get_name()} ran nothing for {HANG_GUARD_S:g} s")
    return at[0]


def run_composed(kind: str, count: int, rate: float, model: str) -> dict[str, Any]:
    import rclpy
    from rclpy.parameter import Parameter

    from auras_ros.msg import Percept, PipelineStats
    from auras_ros.nodes.local_delivery import LocalDelivery
    from auras_ros.nodes.perception_node import PerceptionNode
    from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
    from auras_ros.nodes.ros_convert import add_drops
    from auras_ros.nodes.spinners import NodeSpinners

    msg = frame_message(kind)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=_domain())
    delivery = LocalDelivery()
    perception = PerceptionNode(delivery=delivery, context=context, parameter_overrides=[
        Parameter("model", value=model), Parameter("stats_period", value=0.5)])
    counter = rclpy.create_node("frame_counter", context=context)
    delivered, percepts, drops = [0], [0], Counter[str]()
    delivery.subscription(counter, type(msg), topic_of(kind), lambda _: delivered.__setitem__(0, delivered[0] + 1),
                          counting_qos())
    delivery.subscription(counter, Percept, topics.PERCEPT, lambda _: percepts.__setitem__(0, percepts[0] + 1), ORDERED)
    delivery.subscription(counter, PipelineStats, topics.PERCEPTION_STATS, lambda s: add_drops(drops, s), ORDERED)
    source = rclpy.create_node("frame_source", context=context)
    publisher = delivery.publisher(source, type(msg), topic_of(kind), SENSOR_LATEST)
    spinners = NodeSpinners([perception, counter, source], context=context).start()
    try:
        # Frames go once every executor spins: sent earlier they would wait in the queues (a local message
        # waits for its subscriber's executor) and count as overwritten without perception being slow.
        for node in (perception, counter, source):
            executor_turn(node)
        achieved = _publish_at_rate(publisher, msg, source.get_clock(), count, rate)
        time.sleep(DRAIN_S)
    finally:
        spinners.shutdown()
        for node in (source, counter, perception):
            node.destroy_node()
        rclpy.try_shutdown(context=context)
    return _row("composed", kind, msg, count, achieved, delivered[0], drops["lost:image"], percepts[0])


WIDTH_4K, HEIGHT_4K = 3840, 2160


def camera_4k_message(kind: str) -> Any:
    """A camera-like 4K frame (gradients, shapes, sensor noise: a JPEG of it has a camera's size)."""
    from sensor_msgs.msg import CompressedImage, Image

    y, x = np.mgrid[0:HEIGHT_4K, 0:WIDTH_4K]
    pixels = np.stack([x * 255 // WIDTH_4K, y * 255 // HEIGHT_4K, (x // 7 + y // 5) % 256], axis=-1).astype(np.uint8)
    cv2.circle(pixels, (WIDTH_4K // 2, HEIGHT_4K // 2), HEIGHT_4K // 3, (200, 30, 90), -1)
    noise = np.random.default_rng(0).integers(-12, 13, pixels.shape)
    pixels = np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8)
    if kind == "rgb":
        return Image(height=HEIGHT_4K, width=WIDTH_4K, encoding="rgb8", step=WIDTH_4K * 3, data=pixels.tobytes())
    ok, jpeg = cv2.imencode(".jpg", pixels[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return CompressedImage(format="jpeg", data=jpeg.tobytes())


def run_camera_4k(kind: str, seconds: float, rate: float, model: str, reduced: bool) -> dict[str, Any]:
    """One run of the composed graph fed a 4K camera (the module's docstring)."""
    import copy

    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.time import Time

    from auras_ros.msg import AgentAction, Percept, PipelineStats
    from auras_ros.nodes.composed import compose, stop_composed
    from auras_ros.nodes.local_delivery import LocalDelivery
    from auras_ros.nodes.perception_node import PerceptionNode
    from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
    from auras_ros.nodes.ros_convert import add_drops, to_seconds
    from auras_ros.nodes.spinners import NodeSpinners
    from auras_ros.transport import HandleRegistry

    template = camera_4k_message(kind)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=_domain())
    delivery = LocalDelivery()
    params = {"model": model, "transport": "in_process", "stats_period": 0.5, "reduced_decoding": reduced}
    nodes = compose(HandleRegistry(), camera=False, action=False, delivery=delivery, context=context,
                    parameter_overrides=[Parameter(name, value=value) for name, value in params.items()])
    perception = next(node for node in nodes if isinstance(node, PerceptionNode))
    listener = rclpy.create_node("action_listener", context=context)
    ages: list[float] = []
    percepts, drops = [0], Counter[str]()
    windows = threading.Condition()  # the perception stats windows: their drops, and when each closed
    closed: list[int] = []  # each window's stamp (ns, the nodes' clock)

    def on_action(msg: AgentAction) -> None:
        ages.append(listener.get_clock().now().nanoseconds * 1e-9 - to_seconds(msg.observation_stamp))

    def on_stats(stats: PipelineStats) -> None:
        with windows:
            add_drops(drops, stats)
            closed.append(Time.from_msg(stats.header.stamp).nanoseconds)
            windows.notify_all()

    delivery.subscription(listener, AgentAction, topics.ACTION, on_action, ORDERED, inline=True)
    delivery.subscription(listener, Percept, topics.PERCEPT, lambda _: percepts.__setitem__(0, percepts[0] + 1),
                          ORDERED)
    delivery.subscription(listener, PipelineStats, topics.PERCEPTION_STATS, on_stats, ORDERED)
    source = rclpy.create_node("camera_4k", context=context)
    publisher = delivery.publisher(source, type(template), topic_of(kind), SENSOR_LATEST)
    spinners = NodeSpinners([*nodes, listener, source], context=context).start()
    count = max(2, round(seconds * rate))
    try:
        # Frames go once every executor spins: sent earlier they would wait in the queues (a local message
        # waits for its subscriber's executor) and count as overwritten without perception being slow.
        for node in (*nodes, listener, source):
            executor_turn(node)
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            # Local delivery hands the object itself on: a frame of its own (its pixels shared, not copied),
            # so that stamping the next one does not restamp one perception still holds.
            msg = copy.copy(template)
            msg.header = type(template.header)(stamp=source.get_clock().now().to_msg(), frame_id="camera")
            publisher.publish(msg)
        elapsed = time.monotonic() - start
        actions, perceived = len(ages), percepts[0]
        # Every frame's overwrite is counted once perception's executor has taken the last frame in; a stats
        # window that closed after that (its callback ran later on the same executor) holds the last count.
        taken = executor_turn(perception)
        with windows:
            if not windows.wait_for(lambda: any(stamp > taken for stamp in closed), HANG_GUARD_S):
                raise RuntimeError(f"large_frames: no perception stats window within {HANG_GUARD_S:g} s after the "
                                   "last frame")
    finally:
        stop_composed(spinners, [*nodes, listener, source])
        rclpy.try_shutdown(context=context)
    in_run = np.asarray(ages[:actions]) * 1e3
    return {"kind": kind, "reduced_decoding": reduced, "bytes": len(template.data), "sent": count,
            "rate_hz": round((count - 1) / elapsed, 1), "perceptions_per_s": round(perceived / elapsed, 1),
            "overwritten": drops["overwritten"], "actions_per_s": round(actions / elapsed, 1),
            "age_p50_ms": round(float(np.percentile(in_run, 50)), 1) if actions else float("nan"),
            "age_p99_ms": round(float(np.percentile(in_run, 99)), 1) if actions else float("nan")}


def _domain() -> int:
    return int(os.environ.get("ROS_DOMAIN_ID", "0"))


def run_distributed(kind: str, count: int, rate: float, model: str, env: dict[str, str]) -> dict[str, Any]:
    import rclpy
    from ament_index_python.packages import get_package_share_directory
    from rclpy.executors import SingleThreadedExecutor

    from auras_ros.launching import node_command, stop_process
    from auras_ros.msg import Percept, PipelineStats
    from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
    from auras_ros.nodes.ros_convert import add_drops

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
    percepts, drops = [0], Counter[str]()
    node.create_subscription(Percept, topics.PERCEPT, lambda _: percepts.__setitem__(0, percepts[0] + 1), ORDERED)
    node.create_subscription(PipelineStats, topics.PERCEPTION_STATS, lambda s: add_drops(drops, s), ORDERED)
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
    return _row("distributed", kind, msg, count, achieved, delivered, drops["lost:image"], percepts[0])


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
    parser.add_argument("--rate", type=float, help="frames per second (default 30; --camera-4k: 60)")
    parser.add_argument("--model", help="the perception node's model (default synthetic; --camera-4k: diffusion-tiny, "
                        "whose 96x96 input a 4K frame is reduced for: the synthetic model takes any size)")
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--graphs", nargs="+", choices=GRAPHS, default=list(GRAPHS))
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--reader", choices=KINDS, help=argparse.SUPPRESS)
    parser.add_argument("--camera-4k", action="store_true",
                        help="a 4K camera through the composed graph, reduced_decoding off and on (rate 60 by default)")
    parser.add_argument("--seconds", type=float, default=10.0, help="--camera-4k: seconds of frames per run")
    options = parser.parse_args(argv)
    if options.reader:
        reader(options.reader)
        return 0
    if options.camera_4k:
        return camera_4k_table(options)
    options.rate = options.rate or 30.0
    options.model = options.model or "synthetic"
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


def camera_4k_table(options: argparse.Namespace) -> int:
    from auras_ros.launching import private_ros_env

    rate, model = options.rate or 60.0, options.model or "diffusion-tiny"
    rows = []
    with private_ros_env() as env:
        os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
        for kind in options.kinds:
            for reduced in (False, True):
                rows.append(run_camera_4k(kind, options.seconds, rate, model, reduced))
    if options.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"a {WIDTH_4K}x{HEIGHT_4K} camera at {rate:g} Hz for {options.seconds:g} s through the composed graph, "
          f"model {model}, {os.cpu_count()} CPUs")
    print("| frame | reduced decoding | bytes      | sent | rate (Hz) | perceptions/s | overwritten | actions/s "
          "| age p50 (ms) | age p99 (ms) |")
    print("|-------|------------------|------------|------|-----------|---------------|-------------|-----------"
          "|--------------|--------------|")
    for r in rows:
        print(f"| {r['kind']:<5} | {'on' if r['reduced_decoding'] else 'off':<16} | {r['bytes']:>10,} | {r['sent']:>4} "
              f"| {r['rate_hz']:>9} | {r['perceptions_per_s']:>13} | {r['overwritten']:>11} | {r['actions_per_s']:>9} "
              f"| {r['age_p50_ms']:>12} | {r['age_p99_ms']:>12} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
