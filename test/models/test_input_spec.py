"""Each agent declares its input form (core.inputs.InputSpec) and one function puts any decoded camera
image into it (models.inputs.observation_data): camera sizes and encodings the model was not trained
on reach a percept, the trained size passes through untouched, and a robot state is assembled by
joint name or refused naming the joints expected and the ones the message had."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inputs import InputSpec, StateSpec, input_spec
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.models.diffusion import DiffusionPolicyAgent, DiffusionPolicyConfig, tiny
from auras_ros.models.factory import build_agent
from auras_ros.models.inputs import observation_data, prepare_image
from auras_ros.transport.images import to_rgb

CHECKPOINTS = Path(__file__).resolve().parents[2] / "auras_ros" / "eval" / "checkpoints"
MAX_PIXELS = 4096 * 4096


def _rgb(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 3) % 256, (y * 5) % 256, ((x + y) * 7) % 256], -1).astype(np.uint8)


def _raw(rgb: np.ndarray, encoding: str) -> SimpleNamespace:
    """A sensor_msgs/Image of ``rgb`` in ``encoding``, rows padded by 4 bytes as some drivers do."""
    pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1],
              "rgba8": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
              "bgra8": np.dstack([rgb[:, :, ::-1], np.full(rgb.shape[:2], 7, np.uint8)])}[encoding]
    height, width, channels = pixels.shape
    rows = np.zeros((height, width * channels + 4), np.uint8)
    rows[:, : width * channels] = pixels.reshape(height, -1)
    return SimpleNamespace(encoding=encoding, height=height, width=width, step=width * channels + 4,
                           data=rows.tobytes())


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8"])
def test_colour_encodings_decode_to_the_same_rgb(encoding):
    rgb = _rgb(6, 10)
    assert np.array_equal(to_rgb(_raw(rgb, encoding), MAX_PIXELS, "test"), rgb)


def test_mono_repeats_its_channel_and_depth_is_refused_naming_why():
    rgb = _rgb(6, 10)
    assert np.array_equal(to_rgb(_raw(rgb, "mono8"), MAX_PIXELS, "test"), np.repeat(rgb[:, :, :1], 3, axis=2))
    for encoding in ("16UC1", "mono16"):
        depth = SimpleNamespace(encoding=encoding, height=6, width=10, step=20, data=bytes(120))
        with pytest.raises(InputError, match=f"image encoding is '{encoding}', expected an 8-bit colour or mono "
                                             "camera image .*a depth or 16-bit image"):
            to_rgb(depth, MAX_PIXELS, "test")
    compressed_depth = SimpleNamespace(format="16UC1; compressedDepth png", data=b"\x00" * 20)
    with pytest.raises(InputError, match="compressed image format .*depth or 16-bit"):
        to_rgb(compressed_depth, MAX_PIXELS, "test")


@pytest.mark.parametrize("rule", ["resize", "pad", "crop"])
@pytest.mark.parametrize("height, width", [(960, 1280), (1080, 1920), (48, 64), (30, 20)])
def test_any_camera_size_becomes_the_trained_size(rule, height, width):
    spec = InputSpec(size=(32, 48), resize=rule)
    image = prepare_image(spec, _rgb(height, width), "test")
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8 and image.flags.c_contiguous


def test_pad_keeps_the_whole_view_and_crop_the_centre():
    wide = np.full((40, 80, 3), 200, np.uint8)  # 2:1 into 32x32
    padded = prepare_image(InputSpec(size=(32, 32), resize="pad"), wide, "test")
    assert (padded[:8] == 0).all() and (padded[24:] == 0).all() and (padded[8:24] == 200).all()
    marked = np.zeros((40, 80, 3), np.uint8)
    marked[:, 20:60] = 255  # the centre square is white, the sides black
    assert (prepare_image(InputSpec(size=(32, 32), resize="crop"), marked, "test") == 255).all()


def test_the_trained_size_passes_through_untouched_and_bgr_models_get_bgr():
    rgb = _rgb(64, 64)
    assert prepare_image(InputSpec(size=(64, 64)), rgb, "test") is rgb
    assert np.array_equal(prepare_image(InputSpec(size=(64, 64), channels="bgr"), rgb, "test"), rgb[:, :, ::-1])
    with pytest.raises(InputError, match="camera array is 'uint16 \\(4, 4, 3\\)', expected an HxWx3 uint8 RGB array"):
        prepare_image(InputSpec(size=(64, 64)), np.zeros((4, 4, 3), np.uint16), "test")


def test_a_state_is_assembled_by_joint_name_or_refused_naming_both_lists():
    spec = StateSpec(2, ("elbow", "shoulder"))
    state = spec.assemble(["shoulder", "wrist", "elbow"], [0.1, 0.2, 0.3], "joint_states")
    assert state.tolist() == pytest.approx([0.3, 0.1])
    with pytest.raises(InputError) as error:
        spec.assemble([], [0.5, 0.6, 0.7], "joint_states message 0")
    assert "joint_states message 0: state joints" in str(error.value)
    assert "['elbow', 'shoulder']" in str(error.value) and "missing ['elbow', 'shoulder']" in str(error.value)
    assert StateSpec(2).assemble(["a", "b"], [1.0, 2.0], "x").tolist() == [1.0, 2.0]  # no names: message order
    with pytest.raises(InputError, match="state size is .3 positions, joints \\['a', 'b', 'c'\\]., expected 2 joint"):
        StateSpec(2).assemble(["a", "b", "c"], [1.0, 2.0, 3.0], "x")
    with pytest.raises(ConfigError, match="state joints"):
        StateSpec(2, ("only_one",))


def test_every_agent_declares_its_inputs_and_checkpoints_keep_them(tmp_path):
    assert input_spec(build_agent("synthetic")).size is None  # any size: it reads the mean brightness
    ar = input_spec(build_agent("ar-tiny"))
    assert ar.size == (32, 32) and ar.resize == "resize" and ar.std != (1.0, 1.0, 1.0)  # CLIP's normalisation
    shipped = input_spec(build_agent(str(CHECKPOINTS / "diffusion")))
    assert shipped.size == (64, 64) and shipped.state == StateSpec(2)
    config = tiny(n_steps=2, train_timesteps=2, image_size=(24, 32), state_joints=("elbow", "shoulder"), resize="pad")
    DiffusionPolicyAgent(config).save(tmp_path / "policy")
    loaded = input_spec(build_agent(str(tmp_path / "policy")))
    assert loaded == InputSpec(size=(24, 32), resize="pad", state=StateSpec(2, ("elbow", "shoulder")))
    with pytest.raises(ConfigError, match="resize"):
        DiffusionPolicyConfig(resize="stretch").validate()
    with pytest.raises(ConfigError, match="state_joints"):
        tiny(state_dim=0, state_joints=("a",)).validate()


@pytest.mark.parametrize("model", ["synthetic", "ar-tiny", "diffusion-tiny"])
def test_frames_of_any_size_and_encoding_reach_a_percept(model):
    agent = build_agent(model)
    spec = input_spec(agent)
    ok, jpeg = cv2.imencode(".jpg", _rgb(960, 1280)[:, :, ::-1])
    messages = [_raw(_rgb(480, 640), "bgr8"), _raw(_rgb(1080, 1920), "rgba8"), _raw(_rgb(20, 30), "mono8"),
                SimpleNamespace(format="jpeg", data=jpeg.tobytes())]
    for seq, msg in enumerate(messages):
        data = observation_data(spec, to_rgb(msg, MAX_PIXELS, "test"), None, "test")
        percept = agent.percept_to_tensor(perceive_all(agent, Observation(seq, float(seq), data)))
        assert torch.isfinite(percept).all()


def test_an_image_at_the_trained_size_gives_the_models_own_percept():
    """The shipped policy's own preprocessing is none at 64x64: through the spec the percept is bit for
    bit the one of the bare image handed to the model."""
    agent = build_agent(str(CHECKPOINTS / "diffusion"))
    rgb, state = _rgb(64, 64), np.array([0.25, -0.5], np.float32)
    direct = perceive_all(agent, Observation(0, 0.0, {"image": rgb, "state": state}))
    through = perceive_all(agent, Observation(0, 0.0, observation_data(input_spec(agent), rgb, state, "test")))
    assert torch.equal(agent.percept_to_tensor(direct), agent.percept_to_tensor(through))
    with pytest.raises(InputError, match="robot state is 'none received yet', expected 2 joint positions"):
        observation_data(input_spec(agent), rgb, None, "test")
