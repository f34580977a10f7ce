"""A robot's bag (sqlite3, JPEG CompressedImage on the robot's topic names, a Twist reference) replayed
through the real nodes (launch/replay.launch.py, config/topic_map_mobile_base.yaml): the perception node
takes CompressedImage directly, the evaluator scores against the bag's /cmd_vel, and two stepped replays
give byte-identical actions, for SEQ and for Auras."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import UInt64

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.workload import SyntheticAgent
from auras_ros.eval import bag_eval
from auras_ros.eval.bag import TopicMap
from auras_ros.launching import node_command
from auras_ros.nodes.qos import LATEST_RELIABLE, SENSOR_LATEST
from foreign_bags import CAMERA, CMD_VEL, JOINTS, RobotBag, write_robot_bag
from node_graph import Processes
from sim_helpers import start_launch_file

CONFIG = Path(__file__).resolve().parents[2] / "config"
FRAMES = 8


def replay(bag: Path, overrides: dict[str, str], monkeypatch, ros_env, listener, tmp_path: Path) -> tuple[dict, str]:
    """One replay through the composed graph; the evaluator's evaluation.json and every node's output."""
    tmp_path.mkdir(parents=True)
    report = tmp_path / "report"
    arguments = {"bag": str(bag), "topic_map": str(CONFIG / "topic_map_mobile_base.yaml"), "composed": "true",
                 "report_dir": str(report), **overrides}
    with start_launch_file("replay.launch.py", arguments, monkeypatch, ros_env, tmp_path) as run:
        # The player exits 0 at the bag's end, once the last image's frame has run; that ends the launch,
        # and the evaluator writes its report.
        listener.spin_until(lambda: run.ended, 120.0, each=run.step)
        output = run.output()
    assert run.ended and "process[bag_player-1] was required: shutting down launched system" in output, output
    codes = [p.popen.returncode for p in run.processes]
    assert codes == [0] * len(codes) and "Traceback" not in output, output
    return json.loads((report / "evaluation.json").read_text()), output


@pytest.mark.parametrize("executor", ["seq", "auras:1+2:f0:a0"])
def test_two_stepped_replays_give_identical_actions(executor, monkeypatch, ros_env, listener, tmp_path):
    spec = ExecutorSpec.parse(executor)
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=FRAMES, storage="sqlite3", image="jpeg"))
    runs = [replay(bag, {"executor": executor}, monkeypatch, ros_env, listener, tmp_path / f"run{k}") for k in range(2)]
    (first, output), (second, _) = runs
    assert f"replayed {FRAMES} images" in output and "0 declared dropped" in output, output
    # One frame per image: SEQ decides every image; Auras' last pp_generation requests are still in flight
    # when the bag ends (no later image starts another frame).
    assert first["actions_received"] == FRAMES - (spec.pp_generation if spec.kind == "auras" else 0), output
    assert first["actions_digest"] == second["actions_digest"] and first["actions_missed"] == 0
    assert first["ok"] and first["reference"]["topic"] == CMD_VEL
    run = first["runs"][executor]
    assert [d["field"] for d in run["per_dimension"]] == ["linear.x", "angular.z"]
    assert all(s["reference_stamp"] <= s["observation_stamp"] for s in run["scored"])


def test_undecodable_images_are_skipped_counted_and_logged(monkeypatch, ros_env, listener, tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=FRAMES, undecodable=(2, 5)))
    result, output = replay(bag, {"executor": "seq"}, monkeypatch, ros_env, listener, tmp_path / "run")
    assert "camera message 2 does not decode, skipped: " in output and "camera message 5 does not decode" in output
    assert f"replayed {FRAMES - 2} images" in output and "2 undecodable images skipped" in output
    assert "0 declared dropped" in output
    assert result["actions_received"] == FRAMES - 2 and result["actions_missed"] == 0, output


def test_a_frame_that_asks_again_gets_its_image_again(monkeypatch, ros_env, listener, tmp_path):
    """Stepped replay against a stand-in generation node (this test's listener): the frame that took the
    first image ticks again, as a generation node does when the image never became a percept; the player
    sends the same image again instead of waiting step_timeout and declaring it dropped."""
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=3))
    images = listener.record(CompressedImage, "camera/image_raw/compressed", SENSOR_LATEST)
    ticks = listener.node.create_publisher(UInt64, "auras/frame", LATEST_RELIABLE)
    command = node_command("auras_ros", "bag_player", params_files=[]) + [
        "-p", f"bag:={bag}", "-p", f"topic_map:={CONFIG / 'topic_map_mobile_base.yaml'}",
        "-p", "replay:=stepped", "-p", "step_timeout:=60.0",  # a drop would take a minute: the test's guard
        "-p", "require_decision:=false"]  # the stand-in generation node decides nothing
    processes = Processes([command], ros_env, tmp_path)
    try:
        player = processes.procs[0]
        # Sent once matched: a reliable tick that crosses the match is repaired, not lost.
        assert listener.spin_until(lambda: ticks.get_subscription_count() > 0, 60.0, processes.procs), processes.output()
        ticks.publish(UInt64(data=0))
        assert listener.spin_until(lambda: len(images) == 1, 60.0, processes.procs), processes.output()
        ticks.publish(UInt64(data=0))  # frame 0 asks again
        assert listener.spin_until(lambda: len(images) == 2, 60.0, processes.procs), processes.output()
        for frame in (1, 2):  # each later frame takes the next image
            ticks.publish(UInt64(data=frame))
            assert listener.spin_until(lambda: len(images) == frame + 2, 60.0, processes.procs), processes.output()
        ticks.publish(UInt64(data=3))  # the last image's frame has run: the replay ends
        assert listener.spin_until(lambda: player.poll() is not None, 60.0), processes.output()
        codes, output = processes.stop()
    finally:
        processes.stop()
    assert codes == [0], output
    assert images[1].data == images[0].data and images[1].header.stamp == images[0].header.stamp
    assert len({bytes(m.data) for m in images}) == 3  # each of the bag's images, none skipped
    assert "replayed 3 images" in output and "1 sent again, 0 declared dropped" in output, output


@pytest.mark.parametrize("executor", ["seq", "auras:1+2:f0:a0"])
def test_header_stamps_lagging_log_time_give_the_same_ages_through_the_nodes_and_bag_eval(
        executor, monkeypatch, ros_env, listener, tmp_path):
    """One definition of age: the action's time on the graph's clock (the bag's log time on replay) minus
    its observation's header stamp. A recorder 1.24 s behind its camera makes every age 1.24 s longer,
    through the nodes and in bag_eval alike."""
    lag = 1.24
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=FRAMES, stamp_lag=lag))
    # Scored against the joint states, whose header stamps lag as the camera's do (the Twist has none).
    topic_map = tmp_path / "map.yaml"
    topic_map.write_text(f"camera: {CAMERA}\nreference: {JOINTS}\nreference_fields: ['position[shoulder]']\n")
    result, output = replay(bag, {"executor": executor, "topic_map": str(topic_map)}, monkeypatch, ros_env, listener,
                            tmp_path / "run")
    through_nodes = {s["request_id"]: (s["observation_stamp"], s["age"]) for s in result["runs"][executor]["scored"]}
    _, _, runs = bag_eval.evaluate(bag, TopicMap.load(topic_map), SyntheticAgent(), [ExecutorSpec.parse(executor)])
    in_bag_eval = {r.request_id: (r.observation_stamp, r.age) for r in runs[executor].records}
    assert len(through_nodes) >= FRAMES - 2, output  # Auras' last 2 requests are in flight at the bag's end
    for request, (stamp, age) in through_nodes.items():
        assert (stamp, age) == pytest.approx(in_bag_eval[request], abs=1e-6), (request, stamp, age, in_bag_eval[request])
        assert age >= lag


def test_a_bag_without_reference_replays_and_reports_rate_and_ages(monkeypatch, ros_env, listener, tmp_path):
    """A camera alone (no command or state topic): the evaluator counts the actions and reports their
    rate and ages, the score columns empty, and says why nothing was scored."""
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=FRAMES, reference="none", stamp_lag=0.5))
    topic_map = tmp_path / "map.yaml"
    topic_map.write_text(f"camera: {CAMERA}\n")
    result, output = replay(bag, {"executor": "seq", "topic_map": str(topic_map)}, monkeypatch, ros_env, listener,
                            tmp_path / "run")
    assert "no reference topic in the topic map: auras/action is counted" in output, output
    assert result["actions_received"] == FRAMES and not result["ok"]
    assert result["reason"] == "no reference topic in the topic map: the actions were not scored"
    run = result["runs"]["seq"]
    assert run["scored"] == [] and run["age_p50_s"] == pytest.approx(0.504) and run["decisions_per_s"] > 0
