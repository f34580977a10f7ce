"""Simulator bags: recording (ROS-free, mcap), the checks that refuse bad bags with a clear error, and
record → timed replay → evaluate through the real nodes (launch/replay.launch.py). Robots' bags and
stepped replay: test_bag_foreign.py and test_bag_replay.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from rclpy.serialization import deserialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from std_msgs.msg import String

from auras_ros.eval.task_config import TaskConfig
from auras_ros.launching import node_command
from auras_ros.msg import SimState
from auras_ros.eval import messages as m
from auras_ros.eval.bag import BagError, check_bag, record, typestore
from auras_ros.sim.sim_node import SCORES
from sim_helpers import start_launch_file

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "catch_small"
SMALL = TaskConfig(max_frames=15)
# The simulator's bags before topics were recorded fully qualified: both spellings are read.
REQUIRED = {m.IMAGE_TOPIC: m.TYPES[m.IMAGE_TOPIC], m.STATE_TOPIC: m.TYPES[m.STATE_TOPIC]}


def test_shipped_bag_is_complete_and_small():
    info = check_bag(SHIPPED)
    assert info.camera == m.IMAGE_TOPIC and info.reference.topic == m.STATE_TOPIC  # the old relative names
    assert info.counts[m.IMAGE_TOPIC] == info.counts[m.STATE_TOPIC] == info.counts[m.CLOCK_TOPIC] > 30
    assert info.reference.samples == info.counts[m.STATE_TOPIC] and not info.bad_images
    assert info.counts[m.SCORE_TOPIC] == 2
    assert sum(p.stat().st_size for p in SHIPPED.iterdir()) < 2_000_000


def test_recorded_ground_truth_reads_back_into_rclpy(tmp_path):
    scores = record(tmp_path / "bag", episodes=1, seed=2, config=SMALL)
    assert list((tmp_path / "bag").glob("*.mcap"))
    assert check_bag(tmp_path / "bag").camera == "/" + m.IMAGE_TOPIC  # as `ros2 bag record` names topics
    states = []
    with Reader(tmp_path / "bag") as reader:
        for connection, t_ns, raw in reader.messages():
            if connection.topic == "/" + m.STATE_TOPIC:
                msg = deserialize_message(bytes(raw), SimState)
                assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == t_ns
                states.append(msg)
    assert [s.frame for s in states] == list(range(scores[0]["frames"] + 1))
    assert states[-1].done and all(s.seed == 2 for s in states)


def _write(path: Path, topics: dict[str, str], messages: int = 1, msgdef: str | None = None) -> Path:
    """A bag with these topics (type names) holding ``messages`` copies of a valid frame's messages."""
    store = typestore()
    make = lambda type_name, **fields: store.types[type_name](**fields)  # noqa: E731
    from auras_ros.eval.world import SimWorld
    world = SimWorld(SMALL)
    frame = dict(m.frame_messages(make, world.start()))
    world.close()
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        for topic, msgtype in topics.items():
            if topic in frame and m.TYPES[topic] == msgtype:
                conn = writer.add_connection(topic, msgtype, typestore=store)
                for i in range(messages):
                    writer.write(conn, (i + 1) * 10**9, store.serialize_cdr(frame[topic], msgtype))
            else:
                conn = writer.add_connection(topic, msgtype, msgdef=msgdef or "int32 x", rihs01="RIHS01_" + "0" * 64)
                writer.write(conn, 10**9, b"\x00\x01\x00\x00\x07\x00\x00\x00")
    return path


@pytest.mark.parametrize("topics, messages, expected", [
    ({m.IMAGE_TOPIC: REQUIRED[m.IMAGE_TOPIC]}, 1,
     "missing reference topic /sim/state; it has camera/image_raw (sensor_msgs/msg/Image)"),
    ({m.IMAGE_TOPIC: REQUIRED[m.IMAGE_TOPIC], m.STATE_TOPIC: "std_msgs/msg/String"}, 1,
     "reference topic sim/state is std_msgs/msg/String, expected"),
    (REQUIRED, 0, "no messages on the camera topic camera/image_raw"),
], ids=["missing-reference", "wrong-type", "no-messages"])
def test_bad_bags_are_refused_naming_what_is_missing(topics, messages, expected, tmp_path):
    bag = _write(tmp_path / "bag", topics, messages)
    with pytest.raises(BagError) as error:
        check_bag(bag)
    assert expected in str(error.value)


def test_corrupt_bag_is_refused_and_no_report_claims_success(ros_env, listener, tmp_path):
    bag = _write(tmp_path / "bag", REQUIRED, messages=3)
    mcap = next(bag.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2] + b"\xde\xad" * 64)  # a file cut off mid-record
    with pytest.raises(BagError, match="corrupt"):
        check_bag(bag)
    # The player refuses before publishing; the evaluator, fed nothing, writes no report.
    player = subprocess.run(node_command("auras_ros", "bag_player", params_files=[]) + ["-p", f"bag:={bag}"],
                            env=ros_env, capture_output=True, text=True, timeout=60)
    assert player.returncode == 2 and "corrupt" in player.stderr, player.stderr + player.stdout
    assert len(player.stderr.strip().splitlines()) == 1 and "Traceback" not in player.stderr, player.stderr
    report = tmp_path / "report"
    evaluator = subprocess.Popen(node_command("auras_ros", "evaluator_node") + ["-p", f"report_dir:={report}"],
                                 env=ros_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Once its node is on the graph, stop it as a launch shutdown would.
        assert listener.spin_until(lambda: listener.node.count_publishers("eval/summary") > 0, 30.0, [evaluator])
        evaluator.send_signal(2)
        out, _ = evaluator.communicate(timeout=30)
    finally:
        evaluator.kill() if evaluator.poll() is None else None
    result = json.loads((report / "evaluation.json").read_text())
    assert result["ok"] is False and "no reference on sim/state" in result["reason"], out
    assert not (report / "report.md").exists() and not (report / "errors.png").exists()


def test_record_replay_evaluate_round_trip(monkeypatch, ros_env, listener, tmp_path):
    bag = tmp_path / "bag"
    record(bag, episodes=2, seed=0, config=TaskConfig(max_frames=40))
    report = tmp_path / "report"
    summaries = listener.record(String, "eval/summary", SCORES)
    with start_launch_file("replay.launch.py", {"bag": str(bag), "report_dir": str(report), "composed": "true",
                                                "executor": "seq", "replay": "timed", "rate": "0.5"},
                           monkeypatch, ros_env, tmp_path) as processes:
        player = processes.procs[0]
        # The player exits 0 at the bag's end; then the evaluator has seen everything it will see.
        listener.spin_until(lambda: player.poll() is not None, 60.0)
        assert player.returncode == 0, processes.output()
        codes, output = processes.stop()
    assert codes[1:] == [0] * (len(codes) - 1), output
    result = json.loads((report / "evaluation.json").read_text())
    run = result["runs"]["seq"]
    assert result["ok"] and run["actions"] >= 5, output
    assert (report / "report.md").read_text().count("\n|") >= 3 and (report / "errors.png").stat().st_size > 1000
    for scored in run["scored"]:
        assert scored["reference_stamp"] <= scored["observation_stamp"] and scored["age"] >= 0
    assert [d["field"] for d in run["per_dimension"]] == ["expert_action[0]", "expert_action[1]"]
    if run["actions"] >= 10:  # one running summary per 10 scored actions
        assert listener.spin_until(lambda: summaries, 10.0), "the evaluator publishes its running summary"
