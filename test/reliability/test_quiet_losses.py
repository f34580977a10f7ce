"""Quiet losses are counted: an image too large for the transport, lost by DDS on its way to the
perception node, shows as ``lost:image`` in the perception stats instead of disappearing, and both
ends warn with its size and the limit."""

from __future__ import annotations

import cv2
import numpy as np

from auras_ros.msg import PipelineStats
from auras_ros.nodes.qos import ORDERED
from reliability_graph import NodeProcesses, Probe, drops


def test_a_48_mb_image_lost_in_transport_is_counted(ros_env, tmp_path) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "big.png"), np.zeros((4000, 4000, 3), np.uint8))  # 48 MB as rgb8
    # A small frame between the big ones: DDS reports a loss as a gap in the sequence numbers it
    # receives, so a reader that never receives anything never hears of what it lost.
    cv2.imwrite(str(frames / "a_small.png"), np.zeros((64, 64, 3), np.uint8))
    with NodeProcesses(ros_env, tmp_path) as graph, Probe(int(ros_env["ROS_DOMAIN_ID"])) as probe:
        stats: list[PipelineStats] = probe.record(PipelineStats, "auras/perception_stats", ORDERED)
        procs = [graph.start("perception_node", stats_period=0.5)]
        # Stats come in windows, each sent once (volatile): the probe must hear perception before the
        # first loss, or a window that counts it may go out before discovery and never reach the probe.
        assert probe.spin_until(lambda: len(stats) >= 1, procs), graph.output()
        procs.append(graph.start("camera_node", source=str(frames), rate_hz=2.0))
        assert probe.spin_until(lambda: drops(stats)["lost:image"] >= 1, procs), graph.output()
        output = graph.output()
    # Said, not only counted: by the camera as it publishes (the size and the limit of the profile that
    # the process runner gives) and by perception as DDS reports the loss.
    assert "(1 so far, up to 48,000,000 B) are larger than the limit 33,554,432 B" in output, output
    assert "lost in transport" in output and "this process: 33,554,432 B" in output, output
