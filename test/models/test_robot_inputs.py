"""A checkpoint whose inputs the robot does not provide is refused at configure, in one line naming what
the checkpoint needs and what the robot gives (``core.inputs.check_robot_inputs``; the perception node's
use of it: test/nodes/test_checkpoints_in_nodes.py), on the LeRobot test checkpoints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from auras_ros.core.errors import ConfigError
from auras_ros.core.inputs import RobotInputs, check_robot_inputs, input_spec
from auras_ros.eval import bag_eval
from auras_ros.models.factory import build_agent

DATA = Path(__file__).resolve().parents[1] / "data"
DIFFUSION = DATA / "lerobot_diffusion" / "pretrained_model"
ACT = DATA / "lerobot_act" / "pretrained_model"
WRIST = "observation.images.wrist"


def with_camera_named(source: Path, target: Path, camera: str) -> Path:
    """A copy of a LeRobot checkpoint whose one camera is called ``camera`` in its config, its
    preprocessor and its statistics (as a checkpoint trained on a wrist camera names it)."""
    shutil.copytree(source, target)
    for name in ("config.json", "policy_preprocessor.json"):
        path = target / name
        path.write_text(path.read_text().replace('"observation.image"', json.dumps(camera)))
    for stats in target.glob("policy_preprocessor_step_*_normalizer_processor.safetensors"):
        tensors = load_file(stats)
        save_file({key.replace("observation.image.", camera + "."): value for key, value in tensors.items()}, stats)
    return target


@pytest.fixture(scope="module")
def wrist_agent(tmp_path_factory: pytest.TempPathFactory):
    return build_agent(str(with_camera_named(DIFFUSION, tmp_path_factory.mktemp("wrist") / "pretrained_model", WRIST)))


def test_a_checkpoint_declares_its_camera_by_name(wrist_agent) -> None:
    spec = input_spec(wrist_agent)
    assert (spec.camera, spec.size, spec.state.size) == (WRIST, (48, 64), 4)
    assert input_spec(build_agent(str(ACT))).camera == "observation.image"


def test_a_robot_that_feeds_the_checkpoint_passes(wrist_agent) -> None:
    spec = input_spec(wrist_agent)
    for robot in (RobotInputs("/wrist/image_raw", WRIST, "/joint_states", 4),
                  RobotInputs("/camera/image_raw", "", "/joint_states", None)):  # its one camera; size at the first message
        check_robot_inputs(spec, robot, "m")


@pytest.mark.parametrize("robot,wrong,gives", [
    (RobotInputs("/camera/image_raw", "observation.images.top", "/joint_states", 4), "camera",
     "camera 'observation.images.top' on /camera/image_raw, a robot state of 4 values on /joint_states"),
    (RobotInputs("/camera/image_raw", "", "/joint_states", 7), "state size",
     "one camera on /camera/image_raw, a robot state of 7 values on /joint_states"),
    (RobotInputs("/camera/image_raw"), "no state topic", "one camera on /camera/image_raw, no robot state"),
    (RobotInputs("/camera/image_raw", "observation.images.top", "/joint_states", 7), "camera, state size",
     "camera 'observation.images.top' on /camera/image_raw, a robot state of 7 values on /joint_states"),
])
def test_a_robot_that_cannot_feed_the_checkpoint_is_refused_in_one_line(wrist_agent, robot: RobotInputs, wrong: str,
                                                                        gives: str) -> None:
    with pytest.raises(ConfigError) as error:
        check_robot_inputs(input_spec(wrist_agent), robot, "/ckpt/pretrained_model")
    message = str(error.value)
    assert "\n" not in message
    assert f"model '/ckpt/pretrained_model' ({wrong})" in message
    assert gives in message  # what the robot gives
    assert f"camera {WRIST!r} (48x64), a robot state of 4 values" in message  # what the checkpoint needs


def test_bag_eval_refuses_before_reading_the_bag(tmp_path: Path, wrist_agent, capsys: pytest.CaptureFixture) -> None:
    """The topic map's camera and state, and --camera-key / --state-joints, are the robot bag_eval gives;
    the bag itself is not opened (it does not exist)."""
    model = str(with_camera_named(ACT, tmp_path / "pretrained_model", WRIST))
    code = bag_eval.main([str(tmp_path / "no_bag"), "--model", model, "--camera-key", "observation.images.top"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "(camera, no state topic)" in err and f"needs: camera {WRIST!r} (48x64), a robot state of 4 values" in err
