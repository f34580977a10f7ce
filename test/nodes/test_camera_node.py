"""The camera node says when its source stops: a looping source that stops delivering (a device
unplugged, a file gone) ends the node (ERROR, exit code 3, so respawn or a supervisor acts); a source
the user asked to play once ends with a warning and the node stays up."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from auras_ros.nodes.camera_node import CameraNode
from auras_ros.nodes.health import WARN
from node_graph import Graph


def _frames(folder, count: int = 2):
    folder.mkdir()
    for index in range(count):
        cv2.imwrite(str(folder / f"frame_{index}.png"), np.full((8, 8, 3), index, np.uint8))
    return folder


def test_a_looping_source_that_stops_delivering_ends_the_node(graph: Graph, tmp_path) -> None:
    frames = _frames(tmp_path / "frames")
    camera = graph.add(CameraNode, {"source": str(frames), "rate_hz": 100.0})
    assert graph.spin_until(lambda: camera.published >= 1)
    shutil.rmtree(frames)  # the images it loops over are gone
    assert graph.spin_until(camera.health.failed.is_set)
    assert "stopped delivering frames" in camera.health.reason


def test_a_source_played_once_ends_with_a_warning_and_the_node_stays_up(graph: Graph, tmp_path) -> None:
    camera = graph.add(CameraNode, {"source": str(_frames(tmp_path / "frames")), "rate_hz": 100.0, "loop": False})
    assert graph.spin_until(lambda: camera.ended)
    assert camera.published == 2
    assert not camera.health.failed.is_set()
    assert camera._health().level == WARN
