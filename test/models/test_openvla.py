"""OpenVLA checkpoints (the ``openvla/openvla-7b`` layout) load with build_agent and act as OpenVLA does.

``test/data/openvla_tiny/`` was written by ``tools/openvla_golden.py`` with OpenVLA's reference code
and pins (its docstring has the versions): a tiny ``OpenVLAForActionPrediction`` saved by its own
``save_pretrained`` (bf16 shards, the index, the image processor, a word-level tokenizer), an image, the
instruction, and the tokens, logits and actions its ``predict_action`` produced (fp32, greedy).
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.stages import PERCEPT_KEY, Agent, GenerationStep, Observation, chunk_rows, perceive_all
from auras_ros.eval import bag_eval
from auras_ros.models.ar_vla import ACTION_TOKENS_KEY
from auras_ros.models.factory import build_agent
from auras_ros.models.inputs import observation_data, prepare_image
from auras_ros.models.openvla import OpenVLAAgent, load_agent
from executor_runs import decisions_over
from gpu import cuda_test

DATA = Path(__file__).resolve().parents[1] / "data" / "openvla_tiny"
CHECKPOINT = DATA / "checkpoint"
GOLDEN = json.loads((DATA / "golden.json").read_text())
IMAGE = np.asarray(Image.open(DATA / "image.png").convert("RGB"))
FRAME = 0.1
L_A = 7


def load(unnorm_key: str) -> OpenVLAAgent:
    agent = build_agent(str(CHECKPOINT), instruction=GOLDEN["instruction"], unnorm_key=unnorm_key)
    assert isinstance(agent, OpenVLAAgent)
    return agent


@pytest.fixture(scope="module")
def agent() -> OpenVLAAgent:
    return load("tiny_a")


def run_executor(agent: Agent, executor: str, frames: int) -> list:
    return decisions_over(agent, executor, frames, FRAME, lambda seq: IMAGE)


def test_the_checkpoint_loads_as_an_ar_agent(agent: OpenVLAAgent) -> None:
    assert isinstance(agent, Agent)
    assert agent.input_spec.size == (224, 224) and agent.input_spec.resize == "resize"  # resize-naive
    assert agent.generation_iterations == L_A and chunk_rows(agent) == 1
    assert agent.config.seq_cache == "static"
    assert agent.max_perception_stages == 2  # 3 blocks per featurizer, the last one unused
    # predict_action's input: the tokenizer's ids and the appended 29871
    assert list(agent.config.prompt_ids) == GOLDEN["input_ids"]


@pytest.mark.parametrize("unnorm_key", ["tiny_a", "tiny_b"])
def test_seq_equals_predict_action(unnorm_key: str) -> None:
    """SEQ (prefill + static-cache decode) gives the reference's tokens, and its actions unnormalised with
    the chosen dataset's q01/q99 (tiny_a masks its last dimension) to 1e-4."""
    decisions = run_executor(load(unnorm_key), "seq", frames=2)
    assert len(decisions) == 2
    for d in decisions:
        assert list(d.output.tokens) == GOLDEN["tokens"][unnorm_key]
        np.testing.assert_allclose(d.output.action, GOLDEN["actions"][unnorm_key], rtol=0, atol=1e-4)


def test_action_logits_equal_the_reference(agent: OpenVLAAgent) -> None:
    """The logits behind the greedy tokens, teacher-forced in one merged forward: a continuous check of
    the whole path (featurizers, projector, prompt order, LM). Ours are in bin order, the golden in id order."""
    percept = perceive_all(agent, Observation(0, 0.0, IMAGE))
    tokens = torch.tensor(GOLDEN["tokens"]["tiny_a"])
    with torch.inference_mode():
        logits = agent.action_logits(agent.merged_hidden(percept, tokens, L_A))[0]
    expected = torch.tensor(GOLDEN["action_logits"]).flip(1)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("num_stages", [2])
def test_split_perception_equals_one_stage(agent: OpenVLAAgent, num_stages: int) -> None:
    whole = agent.perceive(IMAGE, 0, 1)
    carry = IMAGE
    for stage in range(num_stages):
        carry = agent.perceive(carry, stage, num_stages)
    torch.testing.assert_close(carry, whole, rtol=0, atol=1e-5)
    with pytest.raises(InputError, match="perception carry"):
        agent.perceive(torch.zeros(1, 3), 1, num_stages)


def test_merged_generation_equals_seq(agent: OpenVLAAgent) -> None:
    """l_a in-flight requests, request r at iteration r, one merged forward per frame over the shared X_A:
    after l_a frames X_A is SEQ's greedy decode, and after frame k its first k + 1 tokens already are."""
    percept = perceive_all(agent, Observation(0, 0.0, IMAGE))
    greedy = torch.tensor(agent.generate_request(percept, 0).tokens)
    context: dict = {PERCEPT_KEY: percept}
    steps = [GenerationStep(r, agent.init_request(r), r, r + 1) for r in range(L_A)]
    for frame in range(L_A):
        result = agent.generate(context, steps)
        context.update(result.context_writes)
        assert torch.equal(context[ACTION_TOKENS_KEY][: frame + 1], greedy[: frame + 1])
    assert all(agent.finish(s).tokens == tuple(greedy.tolist()) for s in result.states)


def test_auras_decisions_on_a_still_image_equal_seq(agent: OpenVLAAgent) -> None:
    """Through the Auras executor: once the shared X_A has converged on the unchanging percept, every
    decision is SEQ's (the reference's) action."""
    decisions = run_executor(agent, "auras:2+3:f0:a0", frames=16)
    assert len(decisions) >= 8
    for d in decisions[-4:]:
        np.testing.assert_allclose(d.output.action, GOLDEN["actions"]["tiny_a"], rtol=0, atol=1e-4)


def test_an_unknown_unnorm_key_is_refused_in_one_line_listing_the_keys() -> None:
    with pytest.raises(ConfigError) as error:
        load("bridge_orig")
    message = str(error.value)
    assert "\n" not in message and "'bridge_orig'" in message and "'tiny_a', 'tiny_b'" in message
    with pytest.raises(ConfigError, match="several datasets"):  # the reference refuses a missing key too
        build_agent(str(CHECKPOINT), instruction=GOLDEN["instruction"])


def test_a_640x480_frame_is_resized_and_decided_as_the_reference_does(agent: OpenVLAAgent) -> None:
    """preprocessor_config.json's bicubic resize (torchvision's on a PIL image, antialiased) of a camera
    frame of another size: the 224x224 image is the reference processor's pixel for pixel (OpenCV's area
    averaging was up to 18 levels off at edges), and SEQ on the frame gives predict_action's tokens and
    actions on it (tools/openvla_resize_golden.py)."""
    frame = np.asarray(Image.open(DATA / "camera_640x480.png").convert("RGB"))
    assert frame.shape == (480, 640, 3) and agent.input_spec.interpolation == "bicubic"
    resized = prepare_image(agent.input_spec, frame, "test")
    np.testing.assert_array_equal(resized, np.asarray(Image.open(DATA / "camera_640x480_224.png").convert("RGB")))
    golden = json.loads((DATA / "golden_640x480.json").read_text())
    decisions = decisions_over(agent, "seq", 2, FRAME, lambda seq: observation_data(agent.input_spec, frame, None, "test"))
    for d in decisions:
        assert list(d.output.tokens) == golden["tokens"]["tiny_a"]
        np.testing.assert_allclose(d.output.action, golden["actions"]["tiny_a"], rtol=0, atol=1e-4)


def test_bag_eval_runs_the_checkpoint_on_a_bag(capsys: pytest.CaptureFixture) -> None:
    """bag_eval --model <OpenVLA dir> --instruction --unnorm-key: every camera frame of the bag (resized to
    224x224) decided, scored against the recorded expert; an unknown key refused in one line."""
    bag = DATA.parent / "catch_small"
    args = [str(bag), "--model", str(CHECKPOINT), "--instruction", GOLDEN["instruction"], "--executors", "seq"]
    assert bag_eval.main([*args, "--unnorm-key", "tiny_a"]) == 0
    out = capsys.readouterr().out
    assert "[seq] 44 actions, 44 scored" in out
    assert bag_eval.main([*args, "--unnorm-key", "bridge_orig"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'bridge_orig'" in err and "one of 'tiny_a', 'tiny_b'" in err


def copy_checkpoint(tmp_path: Path) -> Path:
    return Path(shutil.copytree(CHECKPOINT, tmp_path / "openvla"))


def test_a_missing_shard_is_refused_naming_it(tmp_path: Path) -> None:
    path = copy_checkpoint(tmp_path)
    (path / "model-00003-of-00006.safetensors").unlink()
    with pytest.raises(InputError) as error:
        load_from(path)
    assert error.value.what == "shard model-00003-of-00006.safetensors" and error.value.got == "missing"
    assert "model.safetensors.index.json" in error.value.expected


def test_an_index_that_disagrees_with_the_shards_is_refused_naming_the_tensor(tmp_path: Path) -> None:
    path = copy_checkpoint(tmp_path)
    index_path = path / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    del index["weight_map"]["vision_backbone.featurizer.reg_token"]
    index_path.write_text(json.dumps(index))
    with pytest.raises(InputError, match="reg_token"):
        load_from(path)


def test_a_tensor_of_the_wrong_shape_is_refused_naming_it(tmp_path: Path) -> None:
    path = copy_checkpoint(tmp_path)
    key = "projector.fc2.bias"
    shard = path / json.loads((path / "model.safetensors.index.json").read_text())["weight_map"][key]
    tensors = load_file(str(shard))
    tensors[key] = tensors[key][:5]  # the LM is 12 wide
    save_file(tensors, str(shard))
    with pytest.raises(ConfigError, match="projector.fc2.bias") as error:
        load_from(path)
    assert "(5,)" in str(error.value) and "(12,)" in str(error.value)


def load_from(path: Path) -> Agent:
    return build_agent(str(path), instruction=GOLDEN["instruction"], unnorm_key="tiny_a")


def test_openvla_options_are_refused_for_other_models() -> None:
    with pytest.raises(ConfigError, match="only with an OpenVLA checkpoint"):
        build_agent("ar-tiny", unnorm_key="tiny_a")
    with pytest.raises(ConfigError, match="instruction"):
        build_agent(str(CHECKPOINT), unnorm_key="tiny_a")


def test_a_bf16_load_holds_every_parameter_in_bf16() -> None:
    """The dtype a 7B checkpoint is loaded in: built and filled in bf16, no fp32 parameter left behind."""
    agent = load_agent(CHECKPOINT, dtype="bfloat16", instruction=GOLDEN["instruction"], unnorm_key="tiny_a")
    dtypes = {p.dtype for m in (agent.vision_tower, agent.projector, agent.lm) for p in m.parameters()}
    assert dtypes == {torch.bfloat16}
    out = agent.generate_request(perceive_all(agent, Observation(0, 0.0, IMAGE)), 0)
    assert len(out.tokens) == L_A and np.isfinite(out.action).all()


@cuda_test
@pytest.mark.parametrize("executor", ["seq", "auras:2+3:f0:a0"])
def test_on_cuda_with_graphs_the_decisions_equal_predict_action(executor: str) -> None:
    """fp32 on the GPU, CUDA graphs on (perception, merged forward, static-cache decode)."""
    agent = load_agent(CHECKPOINT, device="cuda", dtype="float32", instruction=GOLDEN["instruction"], unnorm_key="tiny_a")
    assert agent.graphs
    decisions = run_executor(agent, executor, frames=16)
    for d in decisions[-4:]:
        assert list(d.output.tokens) == GOLDEN["tokens"]["tiny_a"]
        np.testing.assert_allclose(d.output.action, GOLDEN["actions"]["tiny_a"], rtol=0, atol=1e-4)


def test_the_shaped_checkpoint_writer_writes_what_the_loader_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/openvla_shaped.py (the GPU check's OpenVLA-7B-shaped checkpoint), at small widths here: every
    tensor the loader maps, sharded with its index, the shape read back from the tensors."""
    monkeypatch.syspath_prepend(str(CHECKPOINT.parents[3] / "tools"))
    shaped = importlib.import_module("openvla_shaped")
    small = shaped.Shape(dino=(128, 256, 3), siglip=(144, 288, 2), lm=(64, 128, 2, 4))
    monkeypatch.setattr(shaped, "SHARD_BYTES", 2**20)  # several shards
    total = shaped.write(tmp_path / "shaped", small)
    agent = load_from(tmp_path / "shaped")
    built = sum(p.numel() for m in (agent.vision_tower, agent.projector, agent.lm) for p in m.parameters())
    assert built < total  # the towers' last blocks are read, not built (their output is not a feature)
    assert len(list((tmp_path / "shaped").glob("model-*.safetensors"))) > 1
    assert agent.max_perception_stages == 2 and agent.lm.config.num_attention_heads == 4
    decisions = run_executor(agent, "seq", frames=1)
    assert len(decisions) == 1 and len(decisions[0].output.tokens) == L_A
