"""The composed graph runs the core's schedule: the same seeded frame-stepped episode through the core
executors and through the nodes (perception, context and generation in one process, in lockstep with a
frame-stepped world) gives the same actions, from the same observations read at every generation
step, leaving in the same frames, for SEQ and for every Auras degree and knob.

This is what the real-time loss of issue 9 lacked: the graph's default read the percept admitted a
frame earlier (fetch_offset -1) although its perception had already run beside generation, in the
perception node, so every decision acted on an observation one frame older than the core's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from sensor_msgs.msg import Image
from std_msgs.msg import UInt64

from auras_ros.core.clock import SimClock
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig
from auras_ros.msg import AgentAction
from auras_ros.nodes.context_node import ContextNode
from auras_ros.nodes.generation_node import PARAMS, GenerationNode
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.qos import LATEST_RELIABLE, ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import rgb_to_image, to_seconds, to_time
from auras_ros.transport import HandleRegistry
from node_graph import Graph

FRAME = 0.05
DECISIONS = 10
AGENT = SyntheticAgent(SyntheticConfig(width=32, perception_tokens=8, perception_layers=4, generation_width=64,
                                       iterations=6))


def render(frame: int) -> np.ndarray:
    """The world's camera image of a frame: each frame looks different, so each percept differs."""
    return np.full((8, 8, 3), (37 * frame + 11) % 256, np.uint8)


@dataclass(frozen=True)
class Step:
    """One decision as the robot sees it: the action, the frame it left in, and the frame of the
    observation each of its generation steps read."""

    request_id: int
    frame: int
    read_frames: tuple[int, ...]
    action: tuple[float, ...]


def core_decisions(spec: ExecutorSpec) -> list[Step]:
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: render(seq))
    steps: list[Step] = []
    runner = make_runner(spec, AGENT, camera, SimClock(), frame_period=FRAME, on_decision=lambda d: steps.append(
        Step(d.request_id, d.frame, tuple(round(s / FRAME) for s in d.context_stamps),
             tuple(np.asarray(d.output.action, float).ravel()))))
    while len(steps) < DECISIONS:
        runner.step()
    runner.close()
    return steps[:DECISIONS]


def graph_decisions(graph: Graph, overrides: dict) -> list[Step]:
    """The nodes in lockstep with a frame-stepped world: each frame tick renders that frame's image."""
    registry, delivery = HandleRegistry(), LocalDelivery()
    shared = {"transport": "in_process", "stats_period": 3600.0}
    generation = graph.add(GenerationNode, {**shared, "lockstep": True, **overrides}, agent=AGENT,
                           registry=registry, delivery=delivery)
    graph.add(PerceptionNode, shared, agent=AGENT, registry=registry, delivery=delivery)
    graph.add(ContextNode, shared, registry=registry, delivery=delivery)
    world = graph.probe("frame_stepped_world")
    images = delivery.publisher(world, Image, "camera/image_raw", SENSOR_LATEST)
    shown: set[int] = set()

    def on_tick(msg: UInt64) -> None:
        if msg.data not in shown:  # a repeated tick (lost before the world listened) shows nothing new
            shown.add(msg.data)
            images.publish(rgb_to_image(render(msg.data), to_time(msg.data * FRAME), "camera"))

    delivery.subscription(world, UInt64, "auras/frame", on_tick, LATEST_RELIABLE)
    actions: list[AgentAction] = []
    delivery.subscription(world, AgentAction, "auras/action", actions.append, ORDERED)
    assert graph.spin_until(lambda: len(actions) >= DECISIONS), f"{len(actions)} decisions arrived"
    generation.stop()
    return [Step(a.request_id, a.frame, tuple(round(to_seconds(s) / FRAME) for s in a.context_stamps),
                 tuple(a.action)) for a in actions[:DECISIONS]]


@pytest.mark.parametrize("executor", ["seq", "auras:2+3:f0:a0", "auras:2+3:f-1:a0.5", "auras:1+4:f0:a0:private"])
def test_the_graph_decides_as_the_core_does(graph: Graph, executor: str) -> None:
    expected = core_decisions(ExecutorSpec.parse(executor))
    got = graph_decisions(graph, {"executor": executor})
    assert [(s.request_id, s.frame, s.read_frames) for s in got] == \
        [(s.request_id, s.frame, s.read_frames) for s in expected]
    for ours, core in zip(got, expected, strict=False):
        np.testing.assert_allclose(ours.action, core.action, rtol=1e-6, atol=1e-9)


def test_by_default_a_frame_reads_the_percept_it_admitted(graph: Graph) -> None:
    """The node's default executor (Auras, pp_perception 1, fetch offset 0): every generation step reads
    the observation of its own frame, as the core's Auras(1+G, f0) does; nothing fresher exists here."""
    got = graph_decisions(graph, {})
    default = ExecutorSpec.parse(next(p.default for p in PARAMS if p.name == "executor"))
    assert (default.pp_perception, default.fetch_offset) == (1, 0)
    pp_generation = default.pp_generation
    for step in got:
        first = step.frame - len(step.read_frames) + 1
        assert step.read_frames == tuple(range(first, step.frame + 1)), step
    assert all(len(s.read_frames) == pp_generation for s in got)
