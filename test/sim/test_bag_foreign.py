"""Robots' bags, ROS-free: a topic map opens bags with other topic names, CompressedImage, sqlite3
storage and Twist or JointTrajectory references; what is missing or broken is refused with one line;
bag_eval scores every action against the reference at its observation stamp, deterministically."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from foreign_bags import CAMERA, CMD_VEL, JOINTS, MOBILE_MAP, PERIOD_S, START_S, TRAJECTORY, RobotBag, write_robot_bag

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.workload import SyntheticAgent
from auras_ros.eval import bag_eval
from auras_ros.launching import node_command
from auras_ros.eval.bag import BagError, TopicMap, check_bag

CONFIG = Path(__file__).resolve().parents[2] / "config"
ARM_MAP = TopicMap(camera=CAMERA, state=JOINTS, reference=TRAJECTORY,
                   reference_fields=("points[0].positions[shoulder]", "", "points[0].positions[elbow]"))


@pytest.mark.parametrize("storage, image", [("sqlite3", "jpeg"), ("mcap", "png"), ("sqlite3", "rgb8")])
def test_robot_bag_opens_through_its_topic_map(storage, image, tmp_path):
    camera = "/camera/color/image_raw" if image == "rgb8" else CAMERA
    bag = write_robot_bag(tmp_path / "bag", RobotBag(storage=storage, image=image, camera=camera))
    info = check_bag(bag, TopicMap(**{**MOBILE_MAP.__dict__, "camera": camera}))
    assert info.camera == camera and info.images == 8 and not info.bad_images
    assert info.camera_type.endswith("Image" if image == "rgb8" else "CompressedImage")
    assert info.graph_topic(camera) == ("camera/image_raw" if image == "rgb8" else "camera/image_raw/compressed")
    assert info.graph_topic(JOINTS) == "joint_states" and info.graph_topic(CMD_VEL) is None
    # Camera stamps are the header stamps (capture), not the log times (4 ms later).
    assert info.camera_stamps[0] == pytest.approx(START_S) and info.frame_period == pytest.approx(PERIOD_S)
    assert info.reference.samples == 8
    assert info.reference.at(0, START_S + 0.011) == (pytest.approx(0.2), pytest.approx(START_S + 0.01))


def test_trajectory_reference_reads_the_first_point_by_joint_name(tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(reference="trajectory"))
    info = check_bag(bag, ARM_MAP)
    # joint_names are written reversed (elbow, shoulder): the names, not the order, pick the values.
    t = START_S + 3 * PERIOD_S + 0.01  # a zero header stamp: the log time stands in
    assert info.reference.at(0, t)[0] == pytest.approx(0.3) and info.reference.at(2, t)[0] == pytest.approx(-0.15)
    assert info.reference.count(1) == 0  # "" skips action index 1


@pytest.mark.parametrize("spec, topic_map, expected", [
    (RobotBag(reference="none"), MOBILE_MAP,
     f"missing reference topic {CMD_VEL}; it has {CAMERA} (sensor_msgs/msg/CompressedImage), {JOINTS}"),
    (RobotBag(), TopicMap(camera=JOINTS, reference=CMD_VEL, reference_fields=("linear.x",)),
     f"camera topic {JOINTS} is sensor_msgs/msg/JointState, expected sensor_msgs/msg/Image or sensor_msgs/msg/CompressedImage"),
    (RobotBag(), TopicMap(camera=CAMERA, reference=CMD_VEL, reference_fields=("linear.q",)),
     "reference field not in geometry_msgs/msg/Twist"),
    (RobotBag(reference="trajectory"), TopicMap(camera=CAMERA, reference=TRAJECTORY,
                                                reference_fields=("points[0].positions[wrist]",)),
     f"reference fields ['points[0].positions[wrist]'] hold no value in any {TRAJECTORY} message"),
    (RobotBag(undecodable=tuple(range(8))), MOBILE_MAP, "no camera image decodes"),
], ids=["missing-reference", "wrong-type", "unknown-field", "unknown-joint", "no-image-decodes"])
def test_bags_lacking_what_evaluation_needs_are_refused_in_one_line(spec, topic_map, expected, tmp_path):
    bag = write_robot_bag(tmp_path / "bag", spec)
    with pytest.raises(BagError) as error:
        check_bag(bag, topic_map)
    assert expected in str(error.value) and "\n" not in str(error.value)


def test_undecodable_images_are_counted_and_skipped(tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(undecodable=(2, 5)))
    info = check_bag(bag, MOBILE_MAP)
    assert sorted(info.bad_images) == [2, 5] and "compressed image data" in info.bad_images[2]
    _, _, runs = bag_eval.evaluate(bag, MOBILE_MAP, SyntheticAgent(), [ExecutorSpec.parse("seq")])
    decided = sorted(round((r.observation_stamp - START_S) / PERIOD_S) for r in runs["seq"].records)
    assert decided == [0, 1, 3, 4, 6, 7]


def test_topic_maps_load_and_bad_ones_are_named(tmp_path):
    maps = {p.stem: TopicMap.load(p) for p in sorted(CONFIG.glob("topic_map_*.yaml"))}
    assert set(maps) == {"topic_map_sim", "topic_map_sim_state", "topic_map_mobile_base", "topic_map_arm"}
    # The simulator's bags for a policy that takes the agent's position: the same map plus its state.
    assert maps["topic_map_sim_state"].state == "/joint_states"
    assert maps["topic_map_sim_state"].reference_fields == maps["topic_map_sim"].reference_fields
    assert maps["topic_map_mobile_base"].reference_fields == ("linear.x", "angular.z")
    assert maps["topic_map_arm"].reference_fields[2] == "points[0].positions[elbow_joint]"
    bad = tmp_path / "map.yaml"
    bad.write_text("camera: /cam\nreferense: /cmd_vel\n")
    with pytest.raises(ValueError, match=r"topic map keys is \['referense'\]"):
        TopicMap.load(bad)
    with pytest.raises(ValueError, match="reference field is 'linear..x'"):
        TopicMap(camera="/cam", reference="/cmd_vel", reference_fields=("linear..x",))


def test_bag_eval_scores_at_the_observation_stamp_and_repeats_exactly(tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=10))
    specs = [ExecutorSpec.parse(s) for s in ("seq", "auras:1+3")]
    info, period, first = bag_eval.evaluate(bag, MOBILE_MAP, SyntheticAgent(), specs, repeats=2)  # repeats agree
    _, _, second = bag_eval.evaluate(bag, MOBILE_MAP, SyntheticAgent(), specs)
    assert period == pytest.approx(PERIOD_S)
    for name in ("seq", "auras:1+3:f0:a0"):
        assert first[name].digest == second[name].digest and len(first[name].rates) == 2
        scored = first[name].scored
        # One decision per image, those in flight at the bag's end too. Twist i is logged 10 ms after
        # image i: at an image's stamp the newest command sensed is the previous one, and the first image
        # has none (unmatched).
        assert len(first[name].records) == 10 and len(scored) + first[name].unmatched == 10
        assert len(scored) >= 9
        for s in scored:
            i = round((s.observation_stamp - START_S) / PERIOD_S)
            assert s.reference_stamp == pytest.approx(START_S + (i - 1) * PERIOD_S + 0.01)
            action = next(r.action for r in first[name].records if r.request_id == s.request_id)
            assert s.errors[0] == pytest.approx(0.5 * action[0] - (0.2 + 0.01 * (i - 1)))
            assert s.errors[1] == pytest.approx(1.0 * action[1] + 0.3)
            # Decided at the log time of the newest image its frame admitted (the bag's clock: images are
            # logged 4 ms after their header stamp), whole frames after image i's; SEQ in image i's own frame.
            frames = (s.decision_stamp - s.observation_stamp - 0.004) / PERIOD_S
            assert frames == pytest.approx(round(frames), abs=1e-6)
            assert s.age == pytest.approx(s.decision_stamp - s.observation_stamp, abs=1e-9)
            if name == "seq":
                assert round(frames) == 0
                # Twist i is logged after image i: at the decision the previous one is still in force.
                assert s.error_at_decision == pytest.approx(s.error)
    # Auras' pipeline decides later than SEQ on the same frames: older observations at the decision.
    ages = {name: sorted(s.age for s in run.scored) for name, run in first.items()}
    assert ages["auras:1+3:f0:a0"][-1] > ages["seq"][-1]


def test_bag_eval_command_prints_both_executors_side_by_side(tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=6, storage="mcap"))
    topic_map = tmp_path / "map.yaml"
    topic_map.write_text(f"camera: {CAMERA}\nreference: {CMD_VEL}\nreference_fields: [linear.x, angular.z]\n")
    result = subprocess.run([sys.executable, "-m", "auras_ros.eval.bag_eval", str(bag), "--topic-map", str(topic_map),
                             "--executors", "seq", "auras:1+2", "--repeats", "2", "--report", str(tmp_path / "report")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| seq |") or line.startswith("| auras:1+2")]
    assert len(rows) == 2 and "| decisions/s | x seq |" in result.stdout and "| MAE [0] linear.x |" in result.stdout
    assert (tmp_path / "report" / "errors.png").stat().st_size > 1000
    assert "auras:1+2:f0:a0" in (tmp_path / "report" / "report.md").read_text()
    # A bag without the reference: one line, exit 2.
    refused = subprocess.run([sys.executable, "-m", "auras_ros.eval.bag_eval", str(bag), "--topic-map",
                              str(CONFIG / "topic_map_arm.yaml")], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1, refused.stderr
    assert f"missing reference topic {TRAJECTORY}" in refused.stderr


def test_foreign_types_resolve_from_the_bag_never_by_import(ros_env, tmp_path):
    """A bag type named this/msg/Zen must not import the module `this` (which prints the Zen of Python)."""
    bag = write_robot_bag(tmp_path / "bag", RobotBag(extra={"/zen": "this/msg/Zen"}))
    info = check_bag(bag, MOBILE_MAP)
    assert info.topics["/zen"] == "this/msg/Zen" and not info.unknown_types and info.counts["/zen"] == 8
    assert "this" not in sys.modules
    player = subprocess.run(node_command("auras_ros", "bag_player") + [
        "-p", f"bag:={bag}", "-p", f"topic_map:={CONFIG / 'topic_map_mobile_base.yaml'}", "-p", "start_timeout:=0.0",
        "-p", "evaluators:=1"], env=ros_env, capture_output=True, text=True, timeout=60)
    assert "Beautiful is better than ugly" not in player.stdout + player.stderr
    # Nothing else runs: each start condition is named on its own, with what it saw.
    assert player.returncode == 3 and "3 condition(s) unmet: (1) 0 of 1 readers subscribe to " \
        "camera/image_raw/compressed" in player.stderr, player.stderr
    assert "(2) 0 of 1 evaluator nodes confirmed on eval/matched" in player.stderr
    assert "(3) no generation node publishes frame ticks on auras/frame" in player.stderr


def test_random_bytes_inside_an_mcap_are_refused_before_replay(ros_env, tmp_path):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(storage="mcap"))
    mcap = next(bag.glob("*.mcap"))
    data = bytearray(mcap.read_bytes())
    at = data.index(b"base")  # inside a JointState message, over its frame id and the length of its names
    data[at - 2: at + 30] = bytes(range(7, 7 + 32 * 7, 7))
    mcap.write_bytes(bytes(data))
    player = subprocess.run(node_command("auras_ros", "bag_player") + [
        "-p", f"bag:={bag}", "-p", f"topic_map:={CONFIG / 'topic_map_mobile_base.yaml'}"],
        env=ros_env, capture_output=True, text=True, timeout=60)
    assert player.returncode == 2, player.stdout + player.stderr
    assert player.stderr.count("\n") == 1 and f"corrupt message 0 on {JOINTS}" in player.stderr, player.stderr
