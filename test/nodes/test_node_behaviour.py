"""The nodes in one process: perception and generation overlap in time under the multi-threaded
executor; bad input on any topic is rejected, counted, and the nodes keep running; bad parameters stop
a node at startup with one clear line."""

from __future__ import annotations

import subprocess
import threading
import time
from typing import Any

import numpy as np
import pytest
import torch
from rcl_interfaces.msg import Log
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import UInt64

from auras_ros.core.workload import SyntheticAgent, SyntheticConfig
from auras_ros.launching import node_command
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.msg import AgentAction, ContextEntry, ContextState, Percept, PipelineStats
from auras_ros.nodes.camera_node import CameraNode
from auras_ros.nodes.context_node import ContextNode
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.qos import LATCHED, LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import rgb_to_image, to_time
from auras_ros.transport import HandleRegistry
from node_graph import DEMO_FRAMES, Graph


class TimedAgent(SyntheticAgent):
    """Records when its perception and generation run, so the test sees the overlap through the agent
    it hands the nodes rather than through state kept in the nodes."""

    def __init__(self, config: SyntheticConfig) -> None:
        super().__init__(config)
        self.perceptions: list[tuple[float, float]] = []
        self.generations: list[tuple[float, float]] = []

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        started = time.perf_counter()
        out = super().perceive(carry, stage, num_stages)
        self.perceptions.append((started, time.perf_counter()))
        return out

    def generate(self, context: Any, steps: Any) -> Any:
        started = time.perf_counter()
        out = super().generate(context, steps)
        self.generations.append((started, time.perf_counter()))
        return out


def test_perception_and_generation_callbacks_overlap(graph: Graph) -> None:
    registry, delivery = HandleRegistry(), LocalDelivery()
    shared = {"transport": "in_process", "stats_period": 3600.0}
    # Generation slower than the camera (each request about 3 camera periods), so requests are always
    # in flight and every perception happens while some generation frame runs.
    agent = TimedAgent(SyntheticConfig(iterations=256))
    graph.add(GenerationNode, {**shared, "executor": "auras:1+2:f0:a0"}, agent=agent, registry=registry, delivery=delivery)
    graph.add(PerceptionNode, shared, agent=agent, registry=registry, delivery=delivery)
    graph.add(ContextNode, {"transport": "in_process"}, registry=registry, delivery=delivery)
    graph.add(CameraNode, {"source": str(DEMO_FRAMES), "rate_hz": 60.0}, delivery=delivery)
    assert graph.spin_until(lambda: len(agent.perceptions) >= 30 and len(agent.generations) >= 30)
    overlapping = [(p, g) for p in list(agent.perceptions) for g in list(agent.generations)
                   if p[0] < g[1] and g[0] < p[1]]
    assert overlapping, "perception never ran while a generation frame was running"


@pytest.mark.parametrize("executor", ["seq", "auras:1+2:f0"])
def test_a_frame_triggered_perception_perceives_once_per_frame_and_never_stalls_the_graph(graph: Graph,
                                                                                         executor: str) -> None:
    registry, delivery = HandleRegistry(), LocalDelivery()
    shared = {"transport": "in_process", "stats_period": 3600.0}
    agent = TimedAgent(SyntheticConfig(iterations=512))  # frames several 60 Hz camera periods long
    generation = graph.add(GenerationNode, {**shared, "executor": executor}, agent=agent, registry=registry,
                           delivery=delivery)
    graph.add(PerceptionNode, {**shared, "trigger": "frame"}, agent=agent, registry=registry, delivery=delivery)
    graph.add(ContextNode, {"transport": "in_process"}, registry=registry, delivery=delivery)
    camera = graph.add(CameraNode, {"source": str(DEMO_FRAMES), "rate_hz": 60.0}, delivery=delivery)
    # The first frame waits for a percept before it ticks: perception answers the first image unasked.
    assert graph.spin_until(lambda: generation.recorder.decisions_recorded >= 10, timeout_s=30.0)
    # Read in this order while the graph runs: perceptions so far <= ticks so far + 1 <= frames + 2 (a
    # frame ticks as it starts, and counts once it ends).
    perceptions = len(agent.perceptions)
    frames, images = generation.runner.frame, camera.published
    assert images > frames + 2  # the camera outpaced the frames, so perceiving per image would be more often
    assert perceptions <= frames + 2  # one per frame tick, and the first one unasked


def _image(encoding: str = "rgb8", height: int = 8, width: int = 8, data: bytes | None = None) -> Image:
    msg = rgb_to_image(np.zeros((height, width, 3), np.uint8), to_time(0.0), "camera")
    msg.encoding = encoding
    if data is not None:
        msg.data = data
    return msg


def test_images_before_the_first_robot_state_are_held_with_one_info_line(graph: Graph) -> None:
    agent = DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2))  # takes a robot state of 2 values
    perception = graph.add(PerceptionNode, {"state_topic": "joint_states", "stats_period": 3600.0}, agent=agent)
    robot = graph.probe("robot")
    images = robot.create_publisher(Image, "camera/image_raw", SENSOR_LATEST)
    states = robot.create_publisher(JointState, "joint_states", ORDERED)
    percepts: list[Percept] = []
    robot.create_subscription(Percept, "auras/percept", percepts.append, LATEST_RELIABLE)
    logs: list[Log] = []
    robot.create_subscription(Log, "/rosout", logs.append, QoSProfile(depth=1000))
    assert graph.spin_until(lambda: images.get_subscription_count() > 0 and states.get_subscription_count() > 0)

    def said(text: str) -> bool:
        return any(text in log.msg for log in logs if log.name == "perception_node")

    pixels = np.zeros((32, 32, 3), dtype=np.uint8)
    images.publish(rgb_to_image(pixels, to_time(1.0), "camera"))
    assert graph.spin_until(lambda: said("waiting for the first robot state on joint_states"))
    for k in (1, 2):  # each newer image replaces the held one: that one is dropped, counted
        images.publish(rgb_to_image(pixels, to_time(1.0 + 0.1 * k), "camera"))
        assert graph.spin_until(lambda: perception.recorder.summary().drops.get("waiting_for_state", 0) == k)
    assert percepts == []
    state = JointState(position=[0.1, -0.2])
    state.header.stamp = to_time(1.2)
    states.publish(state)
    assert graph.spin_until(lambda: len(percepts) == 1 and said("first robot state on joint_states"))
    assert percepts[0].header.stamp == to_time(1.2)  # the held image, the newest one
    mine = [log for log in logs if log.name == "perception_node"]
    assert {log.level for log in mine} == {Log.INFO}, [(log.level, log.msg) for log in mine]
    assert sum("waiting for the first robot state" in log.msg for log in mine) == 1
    assert "bad_input:robot state" not in perception.recorder.summary().drops


class HeldPerception(SyntheticAgent):
    """Perceives only once the test lets it: a perception slower than the camera, on demand."""

    def __init__(self) -> None:
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def perceive(self, carry: Any, stage: int, num_stages: int) -> Any:
        self.started.set()
        self.release.wait(timeout=60.0)
        return super().perceive(carry, stage, num_stages)


def test_images_replaced_before_they_were_perceived_are_counted(graph: Graph) -> None:
    agent = HeldPerception()
    perception = graph.add(PerceptionNode, {"stats_period": 3600.0}, agent=agent)
    camera = graph.probe("fast_camera")
    images = camera.create_publisher(Image, "camera/image_raw", SENSOR_LATEST)
    percepts: list[Percept] = []
    camera.create_subscription(Percept, "auras/percept", percepts.append, LATEST_RELIABLE)
    # The percepts' subscription matched too: a percept sent before the match would be lost.
    assert graph.spin_until(lambda: images.get_subscription_count() > 0
                            and perception.count_subscribers("auras/percept") > 0)

    def overwritten() -> int:
        return perception.recorder.summary().drops.get("overwritten", 0)

    images.publish(_image(height=8))  # perceived: its perception now holds
    assert graph.spin_until(agent.started.is_set)
    # While it holds, the callback still takes each new image: the second is replaced by the third
    # before anyone perceived it, and that is counted.
    images.publish(_image(height=9))
    assert graph.spin_until(lambda: perception._seq == 2)
    images.publish(_image(height=10))
    assert graph.spin_until(lambda: overwritten() == 1)
    agent.release.set()
    assert graph.spin_until(lambda: [p.observation_seq for p in percepts] == [1, 3])
    assert overwritten() == 1


def test_images_replaced_in_the_local_queue_are_counted_once_beside_the_nodes_own(graph: Graph) -> None:
    """A camera in the same process hands its images over by local delivery: one replaced in the
    subscription's queue of one while the node's executor was busy never reached the image callback,
    and is counted as overwritten all the same, once; one the callback replaced is counted by it."""
    delivery, agent = LocalDelivery(), HeldPerception()
    perception = graph.add(PerceptionNode, {"stats_period": 3600.0}, agent=agent, delivery=delivery)
    camera = graph.probe("local_camera")
    images = delivery.publisher(camera, Image, "camera/image_raw", SENSOR_LATEST)
    percepts: list[Percept] = []
    delivery.subscription(camera, Percept, "auras/percept", percepts.append, ORDERED)
    busy, free = threading.Event(), threading.Event()

    def hold_the_executor() -> None:
        busy.set()
        free.wait(timeout=60.0)

    def send(name: str) -> None:
        image = _image()
        image.header.frame_id = name
        images.publish(image)

    def overwritten() -> int:
        return perception.recorder.summary().drops.get("overwritten", 0)

    assert graph.spin_until(lambda: perception.executor is not None)  # local delivery reaches a spinning node
    send("first")  # perceived: its perception now holds
    assert graph.spin_until(agent.started.is_set)
    send("second")  # taken by the image callback, waiting for perception
    assert graph.spin_until(lambda: perception.images_received == 2)
    perception.executor.create_task(hold_the_executor)
    assert graph.spin_until(busy.is_set)  # the node's executor is busy: a local image waits in its queue
    send("third")
    send("fourth")  # replaces the third in the queue of one
    assert overwritten() == 1  # the third, counted as it was replaced
    free.set()
    assert graph.spin_until(lambda: perception.images_received == 3)  # the fourth, replacing the second
    assert overwritten() == 2
    agent.release.set()
    assert graph.spin_until(lambda: len(percepts) == 2)
    assert [p.header.frame_id for p in percepts] == ["first", "fourth"]
    assert overwritten() == 2  # four images: two perceived, two overwritten, none counted twice


def test_a_frame_tick_during_a_perception_asks_for_the_next_image(graph: Graph) -> None:
    agent = HeldPerception()
    perception = graph.add(PerceptionNode, {"stats_period": 3600.0, "trigger": "frame"}, agent=agent)
    probe = graph.probe("generation_clock")
    images = probe.create_publisher(Image, "camera/image_raw", SENSOR_LATEST)
    ticks = probe.create_publisher(UInt64, "auras/frame", LATEST_RELIABLE)
    percepts: list[Percept] = []
    probe.create_subscription(Percept, "auras/percept", percepts.append, LATEST_RELIABLE)
    assert graph.spin_until(lambda: images.get_subscription_count() > 0 and ticks.get_subscription_count() > 0
                            and perception.count_subscribers("auras/percept") > 0)
    images.publish(_image(height=8))  # the first image is perceived unasked; its perception holds
    assert graph.spin_until(agent.started.is_set)
    ticks.publish(UInt64(data=1))  # a tick while it holds: it asks for the next perception
    assert graph.spin_until(lambda: perception._ticks == 1)
    agent.release.set()
    assert graph.spin_until(lambda: len(percepts) == 1)
    images.publish(_image(height=9))  # perceived on that tick's ask, with no tick after it
    assert graph.spin_until(lambda: [p.observation_seq for p in percepts] == [1, 2])


def test_bad_images_are_rejected_counted_and_perception_goes_on(graph: Graph) -> None:
    perception = graph.add(PerceptionNode, {"max_image_pixels": 64 * 64, "stats_period": 3600.0})
    publisher_node = graph.probe("bad_image_source")
    images = publisher_node.create_publisher(Image, "camera/image_raw", SENSOR_LATEST)
    percepts: list[Percept] = []
    publisher_node.create_subscription(Percept, "auras/percept", percepts.append, LATEST_RELIABLE)
    assert graph.spin_until(lambda: images.get_subscription_count() > 0)
    bad = {
        "image encoding": _image(encoding="yuv422"),
        "image size": _image(height=0, width=0, data=b""),
        "image data length": _image(data=b"\x00" * 10),
    }
    for reason, msg in bad.items():
        images.publish(msg)
        key = f"bad_input:{reason}"
        assert graph.spin_until(lambda: perception.recorder.summary().drops.get(key, 0) >= 1), key
    images.publish(_image(height=100, width=100))  # over max_image_pixels
    assert graph.spin_until(lambda: perception.recorder.summary().drops.get("bad_input:image size", 0) >= 2)
    assert percepts == []
    images.publish(_image())  # a good one still gets through
    assert graph.spin_until(lambda: len(percepts) == 1)
    # Its stats window counts the one percept published, and the refusals by reason.
    stats: list[PipelineStats] = []
    publisher_node.create_subscription(PipelineStats, "auras/perception_stats", stats.append, ORDERED)
    assert graph.spin_until(lambda: perception.count_subscribers("auras/perception_stats") > 0)
    perception._publish_stats()
    assert graph.spin_until(lambda: len(stats) == 1)
    assert (stats[0].mode, stats[0].frames, stats[0].requests_in_flight) == ("perception", 1, 0)
    assert dict(zip(stats[0].drop_reasons, stats[0].drop_counts, strict=True))["bad_input:image size"] == 2


def _percept(stamp: float, key: str = "percept", seq: int = 0) -> Percept:
    msg = Percept()
    msg.header.stamp = to_time(stamp)
    msg.key = key
    msg.observation_seq = seq
    msg.tensor.dtype = "float32"
    return msg


def test_context_rejects_future_and_backward_stamps_and_unknown_keys(graph: Graph) -> None:
    context = graph.add(ContextNode, {"future_tolerance": 1.0})
    source = graph.probe("percept_source")
    percepts = source.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
    snapshots: list[ContextState] = []
    source.create_subscription(ContextState, "auras/context", snapshots.append, LATCHED)
    assert graph.spin_until(lambda: percepts.get_subscription_count() > 0)
    now = context.get_clock().now().nanoseconds * 1e-9
    cases = [(_percept(now + 3600.0), "percept:stamp"), (_percept(now, key="vision"), "percept:percept key")]
    for msg, reason in cases:
        percepts.publish(msg)
        assert graph.spin_until(lambda: context.rejected[reason] >= 1), reason
    percepts.publish(_percept(now, seq=1))
    assert graph.spin_until(lambda: context.writes["percept"] == 1)
    percepts.publish(_percept(now - 10.0, seq=2))  # older than the previous one for the same key
    assert graph.spin_until(lambda: context.rejected["percept:stamp"] >= 2)
    assert context.writes["percept"] == 1 and len(snapshots) >= 1
    assert snapshots[-1].entries[0].observation_seq == 1


def test_under_sim_time_a_percept_a_clock_step_ahead_is_admitted(graph: Graph) -> None:
    """A percept stamped at a /clock step the context node has not taken yet (it travels beside the
    clock, not after it) is an observation, not an absurd stamp; one an hour ahead still is."""
    context = graph.add(ContextNode, {"use_sim_time": True})
    source = graph.probe("percept_source")
    percepts = source.create_publisher(Percept, "auras/percept", LATEST_RELIABLE)
    clock = source.create_publisher(Clock, "/clock", LATEST_RELIABLE)
    assert graph.spin_until(lambda: percepts.get_subscription_count() > 0 and clock.get_subscription_count() > 0)
    assert graph.spin_until(lambda: context.get_clock().now().nanoseconds == 1_000_000_000,
                            each=lambda: clock.publish(Clock(clock=to_time(1.0))))
    percepts.publish(_percept(1.1, seq=1))  # two 50 ms sim frames ahead of the node's clock
    assert graph.spin_until(lambda: context.writes["percept"] == 1)
    percepts.publish(_percept(3601.0, seq=2))
    assert graph.spin_until(lambda: context.rejected["percept:stamp"] == 1)
    assert context.writes["percept"] == 1

def test_generation_rejects_nan_and_malformed_payloads_and_keeps_running(graph: Graph) -> None:
    generation = graph.add(GenerationNode, {"stats_period": 3600.0, "frame_period": 0.01})
    source = graph.probe("context_source")
    states = source.create_publisher(ContextState, "auras/context", LATCHED)
    actions: list[AgentAction] = []
    source.create_subscription(AgentAction, "auras/action", actions.append, ORDERED)
    assert graph.spin_until(lambda: states.get_subscription_count() > 0)

    def state(seq: int, tensor: torch.Tensor | None, dtype: str | None = None) -> ContextState:
        msg = ContextState()
        entry = ContextEntry(key="percept", observation_seq=seq, verdict=ContextEntry.VERDICT_FRESH)
        entry.stamp = generation.get_clock().now().to_msg()
        if tensor is not None:
            generation.codec.encode(tensor, entry.value)
        if dtype is not None:
            entry.value.dtype = dtype
        msg.entries.append(entry)
        return msg

    width = generation.agent.config.generation_width
    states.publish(state(1, torch.full((width,), float("nan"))))
    assert graph.spin_until(lambda: generation.recorder.summary().drops.get("bad_payload:percept", 0) == 1)
    states.publish(state(2, torch.zeros(width), dtype="complex999"))
    assert graph.spin_until(lambda: generation.recorder.summary().drops.get("bad_payload:percept", 0) == 2)
    unknown = state(3, torch.zeros(width))
    unknown.entries[0].key = "no_such_key"
    states.publish(unknown)
    assert graph.spin_until(lambda: generation.recorder.summary().drops.get("unknown_context_key", 0) == 1)
    assert actions == []
    states.publish(state(4, torch.zeros(width)))
    assert graph.spin_until(lambda: len(actions) >= 1)  # the node kept running and decides on good input
    assert actions[0].observation_seq == 4


@pytest.mark.parametrize("parameter, shown", [
    ("executor:=auras:1+0", "pp_generation"),
    ("executor:=fastest", "seq, dec[:G], par:K, auras:P+G"),
    ("executor:=auras:1+2:f1", "fetch_offset"),
    ("executor:=auras:0+2", "executor"),
    ("percept.policy:=sometimes", "percept.policy"),
])
def test_a_bad_parameter_stops_the_node_with_one_clear_line(parameter: str, shown: str, ros_env) -> None:
    command = node_command("auras_ros", "generation_node", arguments=[]) + ["-p", parameter]
    result = subprocess.run(command, env=ros_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert shown in result.stderr and "refusing to start" in result.stderr
    assert "Traceback" not in result.stderr
