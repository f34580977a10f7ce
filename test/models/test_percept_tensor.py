"""Every agent owns its percept's tensor form: a percept crosses a topic as one tensor and comes
back as the same percept, and a well-formed tensor of another dtype or shape is refused with an
InputError naming what arrived and what was expected (before it can reach generation)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auras_ros.core.errors import InputError
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.models.factory import build_agent

IMAGES = {"diffusion-tiny": 96, "ar-tiny": 32}


def _observation(model: str) -> Observation:
    if model == "synthetic":
        return Observation(0, 0.0, 0.3)
    size = IMAGES[model]
    return Observation(0, 0.0, np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8))


@pytest.fixture(scope="module", params=["synthetic", "diffusion-tiny", "ar-tiny"])
def model(request):
    torch.manual_seed(0)
    return request.param, build_agent(request.param)


def test_percept_round_trips_through_its_tensor(model):
    name, agent = model
    percept = perceive_all(agent, _observation(name))
    tensor = agent.percept_to_tensor(percept)
    assert isinstance(tensor, torch.Tensor)
    back = agent.percept_from_tensor(tensor.clone())
    assert agent.generate_request(back, 7).action.tolist() == agent.generate_request(percept, 7).action.tolist()


@pytest.mark.parametrize("bad", ["float64", "wrong_shape", "not_a_tensor"])
def test_a_tensor_of_another_form_is_refused_by_name(model, bad):
    name, agent = model
    good = agent.percept_to_tensor(perceive_all(agent, _observation(name)))
    tensor = {"float64": good.double(), "wrong_shape": torch.zeros(7, dtype=good.dtype), "not_a_tensor": [1.0]}[bad]
    with pytest.raises(InputError) as error:
        agent.percept_from_tensor(tensor)
    expected = f"{str(good.dtype).removeprefix('torch.')}{list(good.shape)}"
    assert error.value.expected.endswith(expected)
    if bad == "float64":
        assert error.value.got == f"float64{list(good.shape)}"
    if bad == "wrong_shape":
        assert error.value.got == f"{str(good.dtype).removeprefix('torch.')}[7]"
