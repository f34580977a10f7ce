"""bag_eval on bags with the traits of the real ones in ../shared/real_bags (made here, never copied):
a ROS 1 bag converted with rosbags holding one big 1280x960 JPEG whose header stamp lags its log time
by 1.237 s and no command or state topic; and a robot whose joint states lack the model's joints. Any
camera reaches a decision in the model's input form; the ages include the recorder's lag; a bag
without a reference still reports decisions/s, ages and the actions; a run that decides nothing names
what was refused."""

from __future__ import annotations

import pytest
from foreign_bags import CAMERA, JOINTS, RobotBag, write_robot_bag, write_ros1_converted_camera_bag

from auras_ros.eval import bag_eval
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny

RASPICAM = "/raspicam_node/image/compressed"


@pytest.mark.parametrize("model", ["synthetic", "ar-tiny", "diffusion-tiny"])
def test_a_converted_ros1_camera_bag_without_reference_still_reports(model, tmp_path, capsys):
    bag, jpeg_bytes = write_ros1_converted_camera_bag(tmp_path / "bag", tmp_path)
    assert jpeg_bytes > 400_000  # a big frame, as the Raspberry Pi camera's 594 KB one
    topic_map = tmp_path / "map.yaml"
    topic_map.write_text(f"camera: {RASPICAM}\n")
    code = bag_eval.main([str(bag), "--topic-map", str(topic_map), "--model", model, "--executors", "seq",
                          "auras:1+2", "--report", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "1 images on /raspicam_node/image/compressed" in out and "header stamps lag log time by 1237.0 ms" in out
    assert "the score columns are empty" in out and "nan" not in out
    rows = [line for line in out.splitlines() if line.startswith(("| seq |", "| auras:1+2:f0:a0 |"))]
    # One decision: no rate; SEQ decides in the image's own frame, so its age is the recorder's lag alone.
    assert len(rows) == 2 and all("| 1 | n/a (1 decision) |" in row for row in rows), out
    assert "| seq | 1 | n/a (1 decision) | 1237.0 | 1237.0 |" in rows[0]
    trace = (tmp_path / "out" / "actions.csv").read_text().splitlines()
    assert len(trace) == 3 and trace[1].startswith("seq,0,")


def test_a_state_lacking_the_models_joints_is_named_as_the_cause(tmp_path, capsys):
    bag = write_robot_bag(tmp_path / "bag", RobotBag(frames=4, joint_names=("q1", "q2"), size=40))
    policy = tmp_path / "policy"
    DiffusionPolicyAgent(tiny(n_steps=2, train_timesteps=2, image_size=(24, 32), state_joints=("elbow", "shoulder"))
                         ).save(policy)
    topic_map = tmp_path / "map.yaml"
    topic_map.write_text(f"camera: {CAMERA}\nstate: {JOINTS}\n")
    code = bag_eval.main([str(bag), "--topic-map", str(topic_map), "--model", str(policy), "--executors", "seq"])
    out, err = capsys.readouterr()
    assert code == 1, out + err
    failed = [line for line in err.splitlines() if line.startswith("bag_eval: FAILED: seq made no decision: ")]
    assert len(failed) == 1, err
    assert "all 4 states refused (state joints)" in failed[0]
    assert "joints ['elbow', 'shoulder'] (missing ['elbow', 'shoulder'])" in failed[0] and "['q1', 'q2']" in failed[0]
    assert "could not be matched to the reference" not in err
    # Naming the joints the robot has makes the same bag decide, the state assembled by name.
    code = bag_eval.main([str(bag), "--topic-map", str(topic_map), "--model", str(policy), "--executors", "seq",
                          "--state-joints", "q2", "q1"])
    out, err = capsys.readouterr()
    assert code == 0 and "| seq | 4 |" in out, out + err
