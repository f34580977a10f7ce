"""launch/auras.launch.py brings the agent graph up as `ros2 launch` would: camera → perception → context →
generation → action, in separate processes (distributed) or one (composed); the robot's command types
come out of the gate, and Ctrl-C stops every process cleanly within launch's SIGINT grace."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest
from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import Twist, TwistStamped
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from auras_ros.core.spec import ExecutorSpec
from auras_ros.msg import AgentAction, PipelineStats
from auras_ros.nodes.qos import ORDERED, SENSOR_LATEST
from auras_ros.nodes.ros_convert import to_seconds
from launch_stub import LaunchRun, launch_arguments, load_launch_file
from node_graph import DEMO_FRAMES

LAUNCH_FILE = Path(get_package_share_directory("auras_ros"), "launch", "auras.launch.py")


def _shm_segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").glob("auras_*")}


JOINTS = "[j1, j2, j3, j4, j5, j6, j7]"  # the synthetic agent's 7-element action: one trajectory point


@pytest.mark.parametrize("overrides", [
    {"composed": "false", "transport": "shm", "outputs": "[twist_stamped, joint_trajectory]", "joint_names": JOINTS},
    {"composed": "false", "transport": "inline", "executor": "seq"},
    {"composed": "true", "outputs": "[twist_stamped, joint_trajectory]", "joint_names": JOINTS},
], ids=["distributed-shm", "distributed-inline-seq", "composed"])
def test_graph_decides_and_stops_cleanly(overrides, monkeypatch, ros_env, listener, tmp_path):
    description = load_launch_file(LAUNCH_FILE, monkeypatch)
    arguments = launch_arguments(description, {"source": str(DEMO_FRAMES), **overrides})
    segments_before = _shm_segments()
    actions = listener.record(AgentAction, "auras/action", ORDERED)
    stats = listener.record(PipelineStats, "auras/pipeline_stats", ORDERED)
    stamped = "twist_stamped" in arguments["outputs"]
    twists = listener.record(TwistStamped if stamped else Twist, "cmd_vel", ORDERED)
    trajectories = listener.record(JointTrajectory, "joint_trajectory", ORDERED)
    with LaunchRun(description, arguments, ros_env, tmp_path) as processes:
        assert len(processes.procs) == (1 if overrides["composed"] == "true" else 5)
        done = lambda: len(actions) >= 10 and stats and twists and (trajectories or not stamped)  # noqa: E731
        arrived = listener.spin_until(done, 90.0, processes.procs)
        assert arrived, (f"actions {len(actions)}, stats {len(stats)}, twists {len(twists)}, trajectories "
                         f"{len(trajectories)}\n{processes.output()}")
        codes, output = processes.stop()
    assert "escalating to 'SIGTERM'" not in output, output
    assert codes == [0] * len(codes), output
    assert "Destroyable" not in output and "Traceback" not in output, output
    assert _shm_segments() <= segments_before  # every segment a node made is gone
    mode = ExecutorSpec.parse(arguments["executor"]).kind
    assert {s.mode for s in stats} == {mode}
    for action in actions:
        assert to_seconds(action.observation_age) >= 0
        assert action.context_stamps and len(action.action) == 7
        assert to_seconds(action.header.stamp) >= to_seconds(action.observation_stamp)
    ids = [a.request_id for a in actions]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    if mode == "auras":
        assert all(s.max_requests_in_flight == 3 and s.requests_in_flight <= 3 for s in stats)
    if stamped:
        assert all(t.header.stamp.sec > 0 for t in twists)
        assert all(t.joint_names == [f"j{i}" for i in range(1, 8)] and len(t.points[0].positions) == 7
                   for t in trajectories)


@pytest.mark.parametrize("composed", ["false", "true"])
def test_without_a_source_the_graph_perceives_the_robots_camera_topic(composed, monkeypatch, ros_env, listener,
                                                                        tmp_path):
    """A robot's own camera driver: no camera node runs, and perception reads camera_topic."""
    description = load_launch_file(LAUNCH_FILE, monkeypatch)
    actions = listener.record(AgentAction, "auras/action", ORDERED)
    camera = listener.node.create_publisher(Image, "/front/color/image_raw", SENSOR_LATEST)
    frame = cv2.cvtColor(cv2.imread(str(sorted(DEMO_FRAMES.glob("*.png"))[0])), cv2.COLOR_BGR2RGB)

    def publish_frame() -> None:
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="rgb8", step=frame.shape[1] * 3,
                    data=frame.tobytes())
        msg.header.stamp = listener.node.get_clock().now().to_msg()
        camera.publish(msg)

    with LaunchRun(description, {"camera_topic": "/front/color/image_raw", "composed": composed}, ros_env,
                   tmp_path) as run:
        names = [p.name.rsplit("-", 1)[0] for p in run.processes]
        assert "camera_node" not in names
        assert all("--camera" not in p.cmd for p in run.processes)
        # Sent until decisions come back (the camera topic is best effort, as a camera driver's is).
        assert listener.spin_until(lambda: len(actions) >= 3, 90.0, run.procs, each=publish_frame), run.output()
        codes, output = run.stop()
    assert codes == [0] * len(codes), output
