"""The node path does no more work per decision than it should (issue #22 item 4): a short real-time run
of the simulator node and the composed agent nodes in one process, counting the work where it is done:
the world's camera renders and the frames it publishes (sim_node), the images perception receives, decodes
and perceives (perception_node), and the decisions that leave generation. Counts, not times: the
assertions hold on a fast machine and a slow one alike.

- every render is published (no render a frame did not need; a frame's render is reused);
- perception decodes only the images it perceives (never one a newer image replaced), each once;
- SEQ with ``trigger: frame`` perceives (so decodes) at most once per decision, as the core's SEQ does;
  with ``trigger: image`` perception keeps pace with the camera, not with generation (a percept per
  image received, at most), and no executor decides twice on one percept.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from rclpy.parameter import Parameter

from auras_ros.core import topics
from auras_ros.msg import AgentAction
from auras_ros.nodes.composed import compose, stop_producers
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.qos import ORDERED
from auras_ros.sim.sim_node import SimNode
from auras_ros.transport import HandleRegistry
from node_graph import Graph

FRAMES = 60  # world frames of the episode: 1 s of wall time at speed 3 (a 60 Hz camera), as in issue #22
HANG_GUARD_S = 120.0  # how long the run may take before the test calls it a hang; never a measurement


def run(graph: Graph, executor: str, trigger: str) -> dict[str, Any]:
    """One episode of FRAMES frames in real time through the nodes; the work counted on each side."""
    sim = graph.add(SimNode, {"mode": "realtime", "episodes": 1, "max_frames": FRAMES, "hold_frames": FRAMES + 1,
                              "speed": 3.0})
    delivery = LocalDelivery()
    overrides = {"model": "synthetic", "executor": executor, "trigger": trigger, "transport": "in_process",
                 "use_sim_time": True, "frame_period": 0.0, "stats_period": 3600.0}
    nodes = compose(HandleRegistry(), camera=False, action=False, delivery=delivery, context=graph.context,
                    parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    graph.nodes.extend(nodes)
    generation = next(n for n in nodes if isinstance(n, GenerationNode))
    perception = next(n for n in nodes if isinstance(n, PerceptionNode))
    probe = graph.probe("decisions")
    actions: list[AgentAction] = []
    delivery.subscription(probe, AgentAction, topics.ACTION, actions.append, ORDERED)
    assert graph.spin_until(sim.finished.is_set, HANG_GUARD_S), f"the episode did not end: {sim.frames_published} frames"
    stop_producers(graph.nodes)  # no perception or decision after this: the counts are final
    decided = generation.recorder.decisions_recorded
    assert graph.spin_until(lambda: len(actions) == decided, HANG_GUARD_S)  # every decision that left has arrived
    work = {"renders": sim.world.task.renders, "published": sim.frames_published,
            "received": perception.images_received, "decodes": perception.decodes,
            "percepts": perception.percepts_published, "decisions": len(actions)}
    close_renderer(graph, sim)
    return work


def close_renderer(graph: Graph, sim: SimNode) -> None:
    """The world's renderer closed in the sim node's own executor thread, the one its EGL context is current
    in (the graph destroys nodes from this thread, where EGL refuses it); destroying the node then has
    nothing left to close. In its own process the node renders and is destroyed in one thread."""
    closed = threading.Event()

    def close() -> None:
        timer.cancel()
        sim.world.close()
        closed.set()

    timer = sim.create_timer(0.01, close)
    assert graph.spin_until(closed.is_set, HANG_GUARD_S)


def check_common(work: dict[str, Any]) -> None:
    assert work["published"] >= FRAMES and work["decisions"] > 0, work  # the run happened
    assert work["renders"] <= work["published"], work  # no render that no published frame needed
    assert work["received"] <= work["published"], work
    assert work["decodes"] <= work["received"], work  # never an image a newer one replaced
    assert work["percepts"] == work["decodes"], work  # every decode became a percept (none refused here)
    # A decision reads one percept, and no percept twice (frame_per_percept).
    assert work["decisions"] <= work["percepts"], work


def test_seq_with_frame_trigger_decodes_and_perceives_at_most_once_per_decision(graph: Graph) -> None:
    work = run(graph, "seq", "frame")
    check_common(work)
    # Perception's first image comes without a tick (generation's first frame waits for a percept), and
    # a tick's perception may finish after the last decision left: two percepts beyond one per decision.
    assert work["decodes"] <= work["decisions"] + 2, work


@pytest.mark.parametrize("executor", ["seq", "auras:1+2:f0:a0"])
def test_with_image_trigger_perception_keeps_to_the_images_not_more(graph: Graph, executor: str) -> None:
    check_common(run(graph, executor, "image"))
