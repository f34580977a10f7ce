"""Checkpoints of other formats through the nodes: an OpenVLA checkpoint decides through the composed graph
with its ``instruction`` and ``unnorm_key`` parameters as its own ``predict_action`` does; what a node
cannot give a checkpoint (another camera, a robot state of another size, an unknown dataset key) is
refused at configure in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image

from auras_ros.core.errors import ConfigError
from auras_ros.msg import AgentAction
from auras_ros.nodes.composed import compose
from auras_ros.nodes.generation_node import GenerationNode
from auras_ros.nodes.local_delivery import LocalDelivery
from auras_ros.nodes.perception_node import PerceptionNode
from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import rgb_to_image, to_time
from auras_ros.transport import HandleRegistry
from node_graph import Graph

DATA = Path(__file__).resolve().parents[1] / "data"
OPENVLA = DATA / "openvla_tiny"
GOLDEN = json.loads((OPENVLA / "golden.json").read_text())
ACT = DATA / "lerobot_act" / "pretrained_model"
DECISIONS = 3


def test_openvla_decides_through_the_composed_graph_as_predict_action(graph: Graph) -> None:
    """model:=<OpenVLA dir> with instruction and unnorm_key: the graph's actions (SEQ, one camera image
    shown over and over) are the reference's for that image and dataset. (Auras's shared action tokens
    reach SEQ's only after a few frames on a still image: test/models/test_openvla.py.)"""
    registry, delivery = HandleRegistry(), LocalDelivery()
    overrides = {"model": str(OPENVLA / "checkpoint"), "instruction": GOLDEN["instruction"], "unnorm_key": "tiny_b",
                 "executor": "seq", "transport": "in_process", "stats_period": 3600.0}
    nodes = compose(registry, camera=False, action=False, delivery=delivery, context=graph.context,
                    parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()])
    graph.nodes.extend(nodes)
    camera = graph.probe("camera")
    images = delivery.publisher(camera, Image, "camera/image_raw", SENSOR_LATEST)
    actions: list[AgentAction] = []
    delivery.subscription(camera, AgentAction, "auras/action", actions.append, ORDERED)
    pixels = np.asarray(PILImage.open(OPENVLA / "image.png").convert("RGB"))
    shown = [0]

    def show() -> None:  # a camera: a new frame each turn of the wait
        shown[0] += 1
        images.publish(rgb_to_image(pixels, to_time(0.1 * shown[0]), "camera"))

    assert graph.spin_until(lambda: len(actions) >= DECISIONS, each=show), f"{len(actions)} actions"
    for action in actions[:DECISIONS]:
        assert list(action.action_tokens) == GOLDEN["tokens"]["tiny_b"]
        np.testing.assert_allclose(action.action, GOLDEN["actions"]["tiny_b"], rtol=0, atol=1e-4)


def test_an_unknown_unnorm_key_is_refused_at_configure_listing_the_keys(graph: Graph) -> None:
    generation = graph.add(GenerationNode, {"model": str(OPENVLA / "checkpoint"), "instruction": GOLDEN["instruction"],
                                            "unnorm_key": "bridge_orig", "autostart": False})
    with pytest.raises(ConfigError) as error:
        generation.start()
    message = str(error.value)
    assert "\n" not in message and "'bridge_orig'" in message and "one of 'tiny_a', 'tiny_b'" in message
    assert generation.agent is None


def test_an_instruction_for_a_model_that_takes_none_is_refused(graph: Graph) -> None:
    generation = graph.add(GenerationNode, {"model": str(ACT), "instruction": "pick up the block", "autostart": False})
    with pytest.raises(ConfigError, match="only with an OpenVLA checkpoint"):
        generation.start()


@pytest.mark.parametrize("overrides,wrong", [
    ({"camera_key": "observation.images.wrist", "state_topic": "joint_states"}, "camera"),
    ({"state_topic": "joint_states", "state_joints": [f"joint_{i}" for i in range(7)]}, "state size"),
    ({}, "no state topic"),
])
def test_perception_refuses_a_checkpoint_the_robot_cannot_feed(graph: Graph, overrides: dict, wrong: str) -> None:
    """The ACT test checkpoint needs camera 'observation.image' (48x64) and a state of 4 values."""
    with pytest.raises(ConfigError) as error:
        graph.add(PerceptionNode, {"model": str(ACT), **overrides})
    message = str(error.value)
    assert "\n" not in message and f"({wrong})" in message
    assert "needs: camera 'observation.image' (48x64), a robot state of 4 values" in message
    assert "on /camera/image_raw" in message  # the topic the node reads, resolved


def test_perception_takes_a_checkpoint_the_robot_feeds(graph: Graph) -> None:
    node = graph.add(PerceptionNode, {"model": str(ACT), "camera_key": "observation.image", "state_topic": "joint_states",
                                      "state_joints": [f"joint_{i}" for i in range(4)], "stats_period": 3600.0})
    assert node.input_spec.state.joints == tuple(f"joint_{i}" for i in range(4))
