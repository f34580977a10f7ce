"""What the two model families share: random weights isolated from the global RNG, the same error
type for a perception slice that does not exist, and the chunk geometry as model metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch

from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import Observation, chunk_rows
from auras_ros.core.workload import SyntheticAgent
from auras_ros.models.ar_checkpoint import load_checkpoint, save_checkpoint
from auras_ros.models.ar_config import openvla_7b_shaped, tiny_config
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.models.seeding import seeded_rng
from gpu import cuda_test

BUILDERS: dict[str, Callable[[int], Any]] = {
    "ar": lambda seed: ARVLAAgent.from_config(tiny_config(), seed=seed),
    "diffusion": lambda seed: DiffusionPolicyAgent(tiny(seed=seed)),
}


def weights(agent: Any) -> dict[str, torch.Tensor]:
    if isinstance(agent, ARVLAAgent):
        parts = {"vision": agent.vision_tower, "projector": agent.projector, "lm": agent.lm}
    else:
        parts = {"model": agent.model}
    return {f"{part}.{name}": t.detach().clone() for part, m in parts.items() for name, t in m.state_dict().items()}


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def agent(family: str) -> Any:
    return BUILDERS[family](0)


def observation(agent: Any) -> Observation:
    size = agent.config.image_size
    height, width = size if isinstance(size, tuple) else (size, size)
    image = np.zeros((height, width, 3), dtype=np.uint8)
    return Observation(0, 0.0, {"image": image, "state": np.zeros(2)})


def test_random_weights_neither_read_nor_change_the_global_rng(family: str, agent: Any) -> None:
    torch.manual_seed(1234)
    expected_next = torch.rand(4)
    torch.manual_seed(1234)
    built = BUILDERS[family](0)
    assert torch.equal(torch.rand(4), expected_next)  # nothing drawn from, nor seeded into, the global RNG
    torch.rand(100)  # whatever was drawn before does not change the weights
    reference, built, again = weights(agent), weights(built), weights(BUILDERS[family](0))
    for name, tensor in reference.items():
        assert torch.equal(built[name], tensor) and torch.equal(again[name], tensor), name
    other = weights(BUILDERS[family](1))
    assert any(not torch.equal(other[name], t) for name, t in reference.items())


def test_seeded_rng_draws_what_manual_seed_draws() -> None:
    state = torch.random.get_rng_state()
    with seeded_rng(7):
        inside = torch.rand(5)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(7)
    assert torch.equal(inside, torch.rand(5))


@cuda_test
def test_seeded_rng_on_cuda_restores_the_device_generator() -> None:
    state = torch.cuda.get_rng_state()
    with seeded_rng(7, "cuda"):
        inside = torch.rand(5, device="cuda")
    assert torch.equal(torch.cuda.get_rng_state(), state)
    torch.cuda.manual_seed(7)
    assert torch.equal(inside, torch.rand(5, device="cuda"))


@pytest.mark.parametrize("stage,num_stages,field", [(0, 0, "num_stages"), (0, 7, "num_stages"), (0, 2.0, "num_stages"),
                                                    (2, 2, "stage"), (-1, 2, "stage"), (True, 2, "stage")])
def test_a_missing_perception_slice_is_a_config_error(agent: Any, stage: Any, num_stages: Any, field: str) -> None:
    """The same ConfigError in both families: the pipeline counts it as a frame fault; an InputError
    would drop the observation as if the sensor had sent a bad one."""
    with pytest.raises(ConfigError) as error:
        agent.perceive(observation(agent), stage, num_stages)
    assert error.value.field == field
    assert error.value.value == (stage if field == "stage" else num_stages)


def test_chunk_rows_is_model_metadata(family: str, agent: Any) -> None:
    stored = agent.config.chunk_rows if family == "ar" else agent.config.n_action_steps
    assert chunk_rows(agent) == agent.chunk_rows == stored == {"ar": 2, "diffusion": 4}[family]


def test_chunk_rows_defaults_to_one_row() -> None:
    assert chunk_rows(SyntheticAgent()) == 1
    assert openvla_7b_shaped(device="cpu", dtype="float32").chunk_rows == 1  # its 7 tokens are one 7-DoF action


@pytest.mark.parametrize("rows", [0, 6, 2.0, True])
def test_ar_chunk_rows_must_fit_the_action_tokens(rows: Any) -> None:
    with pytest.raises(ConfigError, match="chunk_rows"):
        tiny_config(chunk_rows=rows)


def test_ar_checkpoint_stores_chunk_rows(tmp_path: Path) -> None:
    agent = ARVLAAgent.from_config(tiny_config(chunk_rows=3))
    directory = save_checkpoint(agent, tmp_path / "ar")
    assert json.loads((directory / "ar_config.json").read_text())["chunk_rows"] == 3
    assert load_checkpoint(directory).chunk_rows == 3


@pytest.mark.parametrize("action_dims,rows", [(8, 4), (5, 2), (1, 1)])
def test_ar_checkpoint_without_chunk_rows_plays_its_tokens_as_pairs(tmp_path: Path, action_dims: int, rows: int) -> None:
    """Checkpoints written before chunk_rows was stored (the shipped one among them) keep the rows
    they were played with: l_a // 2 (at least one)."""
    agent = ARVLAAgent.from_config(tiny_config(action_dims=action_dims, chunk_rows=1))
    directory = save_checkpoint(agent, tmp_path / "ar")
    fields = json.loads((directory / "ar_config.json").read_text())
    del fields["chunk_rows"]
    (directory / "ar_config.json").write_text(json.dumps(fields))
    assert load_checkpoint(directory).chunk_rows == rows
