"""The camera node says when its source stops: a looping source that stops delivering (a device
unplugged, a file gone) ends the node (ERROR, exit code 3, so respawn or a supervisor acts); a source
the user asked to play once ends with a warning and the node stays up. A frame that does not decode (a
corrupt image in the folder, a damaged frame in a video) is skipped and counted, and the camera goes on;
a folder in which no image decodes ends the node saying so."""

from __future__ import annotations

import shutil

import cv2
import numpy as np

from auras_ros.nodes.camera_node import CameraNode
from auras_ros.nodes.frame_reader import FrameReader
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


def test_a_corrupt_image_in_the_folder_is_skipped_counted_and_the_camera_goes_on(graph: Graph, tmp_path) -> None:
    frames = _frames(tmp_path / "frames", 3)
    (frames / "frame_1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))  # a PNG cut short
    camera = graph.add(CameraNode, {"source": str(frames), "rate_hz": 100.0})
    # Past two passes over the folder: the good frames come again and again, the bad one is skipped each time.
    assert graph.spin_until(lambda: camera.published >= 6)
    assert not camera.health.failed.is_set()
    status = camera._health()
    assert camera.reader.skipped >= 2 and status.values["skipped"] == camera.reader.skipped
    assert status.level == WARN and "frame_1.png: not a decodable image" in status.message


def test_a_folder_where_no_image_decodes_ends_the_node_saying_so(graph: Graph, tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("a.png", "b.jpg"):
        (frames / name).write_bytes(b"not an image")
    camera = graph.add(CameraNode, {"source": str(frames), "rate_hz": 100.0})
    assert graph.spin_until(camera.health.failed.is_set)
    assert camera.published == 0
    assert "none of 2 files decodes (last: " in camera.health.reason and "b.jpg: not a decodable image" in camera.health.reason


def _video(path, count: int, damaged: int):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (32, 24))
    for index in range(count):
        writer.write(np.full((24, 32, 3), 40 * index, np.uint8))
    writer.release()
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xd8"]  # each frame is one JPEG
    assert len(starts) == count
    end = starts[damaged + 1] - 16  # the JPEG, not the next frame's chunk header before it
    data[starts[damaged]:end] = bytes(end - starts[damaged])
    path.write_bytes(data)
    return path


def test_a_damaged_frame_in_a_video_is_skipped_and_counted(tmp_path) -> None:
    reader = FrameReader(str(_video(tmp_path / "clip.avi", 6, damaged=2)), loop=True)
    frames = [round(reader.read().mean() / 40) for _ in range(7)]  # frame i is grey 40*i
    reader.close()
    assert frames == [0, 1, 3, 4, 5, 0, 1]  # frame 2 left out, then the loop restarts
    assert reader.skipped == 1 and "1 frames of" in reader.last_skipped
