"""LeRobot checkpoints (diffusion, ACT) load with build_agent and act as LeRobot itself does.

``test/data/lerobot_{diffusion,act}/`` were written by ``tools/lerobot_golden.py`` with LeRobot 0.4.4
installed (its docstring has the versions): the policy saved by LeRobot's own ``save_pretrained`` with
its processors, fixed inputs, and the actions LeRobot's ``select_action`` produced for them (fp32; the
diffusion noise fixed and stored as an input).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.stages import PERCEPT_KEY, Agent, GenerationStep, Observation, chunk_rows, perceive_all, state_size
from auras_ros.models.factory import build_agent
from auras_ros.models.lerobot.act import LeRobotACTAgent
from auras_ros.models.lerobot.diffusion import LeRobotDiffusionAgent
from executor_runs import decisions_over
from test_diffusion import run_pipeline

DATA = Path(__file__).resolve().parents[1] / "data"
DIFFUSION = DATA / "lerobot_diffusion"
ACT = DATA / "lerobot_act"
FRAME = 0.1


def golden(name: Path) -> dict[str, np.ndarray]:
    with np.load(name / "golden.npz") as data:
        return {key: data[key] for key in data.files}


def observation_data(g: dict[str, np.ndarray], index: int) -> dict[str, np.ndarray]:
    return {"image": g["images"][index], "state": g["states"][index]}


def with_golden_noise(agent: LeRobotDiffusionAgent, g: dict[str, np.ndarray]) -> LeRobotDiffusionAgent:
    """Request r starts from the noise LeRobot's run for observation r used."""
    agent.noise_source = lambda rid: (torch.from_numpy(g["x0"][rid]), torch.from_numpy(g["z"][rid]))
    return agent


def run_executor(agent: Agent, g: dict[str, np.ndarray], executor: str, frames: int) -> list:
    """``executor`` over a camera that shows the golden observations in order, one per frame."""
    count = len(g["images"])
    return decisions_over(agent, executor, frames, FRAME, lambda seq: observation_data(g, seq % count))


@pytest.fixture(scope="module")
def diffusion_agent() -> LeRobotDiffusionAgent:
    agent = build_agent(str(DIFFUSION / "pretrained_model"))
    assert isinstance(agent, LeRobotDiffusionAgent)
    return agent


@pytest.fixture(scope="module")
def act_agent() -> LeRobotACTAgent:
    agent = build_agent(str(ACT / "pretrained_model"))
    assert isinstance(agent, LeRobotACTAgent)
    return agent


def test_the_checkpoints_declare_what_the_robot_must_provide(diffusion_agent, act_agent) -> None:
    for agent, rows in ((diffusion_agent, 8), (act_agent, 5)):
        assert isinstance(agent, Agent)
        assert agent.input_spec.size == (48, 64)
        assert state_size(agent) == 4
        assert chunk_rows(agent) == rows
    assert diffusion_agent.generation_iterations == 10  # DDPM, num_inference_steps = num_train_timesteps
    assert act_agent.generation_iterations == 1  # one decoder layer


def test_diffusion_seq_equals_lerobot(diffusion_agent) -> None:
    """SEQ over the golden observations in order (n_obs_steps = 2: each decision also sees the one
    before, the first one twice) gives LeRobot's actions, unnormalised, to 1e-4."""
    g = golden(DIFFUSION)
    agent = with_golden_noise(diffusion_agent, g)
    agent.reset()
    try:
        decisions = run_executor(agent, g, "seq", frames=len(g["actions"]))
    finally:
        agent.noise_source = None
        agent.reset()
    assert [(d.request_id, d.observation_seq) for d in decisions] == [(i, i) for i in range(len(g["actions"]))]
    for d in decisions:
        np.testing.assert_allclose(d.output.action.reshape(8, 3), g["actions"][d.observation_seq], rtol=0, atol=1e-4)


def test_diffusion_ddim_in_fewer_steps_equals_lerobot(tmp_path: Path) -> None:
    """The same weights under DDIM with 5 of the 10 training steps (the generator's DDIM_CHANGES)."""
    g = golden(DIFFUSION)
    agent = build_agent(str(copy_checkpoint(DIFFUSION, tmp_path, noise_scheduler_type="DDIM", num_inference_steps=5)))
    assert agent.generation_iterations == 5
    agent.noise_source = lambda rid: (torch.from_numpy(g["x0"][rid]), None)
    decisions = run_executor(agent, g, "seq", frames=len(g["actions"]))
    with np.load(DIFFUSION / "golden_ddim.npz") as data:
        expected = data["actions"]
    assert [d.observation_seq for d in decisions] == list(range(len(expected)))
    for d in decisions:
        np.testing.assert_allclose(d.output.action.reshape(8, 3), expected[d.observation_seq], rtol=0, atol=1e-4)


def test_act_seq_equals_lerobot(act_agent) -> None:
    g = golden(ACT)
    decisions = run_executor(act_agent, g, "seq", frames=len(g["actions"]))
    assert [d.observation_seq for d in decisions] == list(range(len(g["actions"])))
    for d in decisions:
        np.testing.assert_allclose(d.output.action.reshape(5, 3), g["actions"][d.observation_seq], rtol=0, atol=1e-4)


@pytest.mark.parametrize("pp_generation,alpha", [(3, 0.0), (4, 0.5)])
def test_diffusion_merged_generation_equals_seq(diffusion_agent, pp_generation: int, alpha: float) -> None:
    diffusion_agent.reset()
    percept = perceive_all(diffusion_agent, Observation(0, 0.0, observation_data(golden(DIFFUSION), 1)))
    ids = [3, 4, 5]
    merged, calls = run_pipeline(diffusion_agent, percept, ids, pp_generation, alpha)
    assert calls == len(ids) + pp_generation - 1
    for rid in ids:
        np.testing.assert_allclose(merged[rid], diffusion_agent.generate_request(percept, rid).action, rtol=1e-5, atol=1e-5)
    assert not np.array_equal(merged[3], merged[4])  # each request has its own noise


def test_act_merged_generation_equals_seq(act_agent) -> None:
    g = golden(ACT)
    percepts = [perceive_all(act_agent, Observation(i, 0.0, observation_data(g, i))) for i in range(2)]
    steps = [GenerationStep(rid, act_agent.init_request(rid), 0, 1) for rid in (7, 8)]
    states = act_agent.generate({PERCEPT_KEY: percepts[1]}, steps).states
    for state in states:
        np.testing.assert_allclose(act_agent.finish(state).action, act_agent.generate_request(percepts[1], state.request_id).action,
                                   rtol=1e-5, atol=1e-5)
    # The decoder reads the context's percept, not one fixed when the request began.
    older = act_agent.generate_request(percepts[0], 7).action
    assert not np.allclose(older, act_agent.finish(states[0]).action)


def test_act_merged_decoder_layers_equal_seq(tmp_path: Path) -> None:
    """With two decoder layers, requests at different layers share a frame: the merged frames equal
    the sequential request (the second layer's weights: the first's, perturbed)."""
    path = copy_checkpoint(ACT, tmp_path, n_decoder_layers=2)
    weights = load_file(path / "model.safetensors")
    prefix = "model.decoder.layers.0."
    generator = torch.Generator().manual_seed(5)
    for key in [k for k in weights if k.startswith(prefix)]:
        value = weights[key]
        weights[key.replace(".0.", ".1.", 1)] = value + 0.05 * torch.randn(value.shape, generator=generator)
    save_file(weights, path / "model.safetensors")
    agent = build_agent(str(path))
    assert agent.generation_iterations == 2
    percept = perceive_all(agent, Observation(0, 0.0, observation_data(golden(ACT), 2)))
    ids = [1, 2, 3]
    merged, calls = run_pipeline(agent, percept, ids, 2, 0.0)
    assert calls == len(ids) + 1
    for rid in ids:
        np.testing.assert_allclose(merged[rid], agent.generate_request(percept, rid).action, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("executor", ["seq", "dec", "par:2", "auras:2+3:f0:a0"])
@pytest.mark.parametrize("which", ["diffusion", "act"])
def test_every_executor_runs_the_checkpoints(which: str, executor: str, diffusion_agent, act_agent) -> None:
    agent, path, rows = (diffusion_agent, DIFFUSION, 8) if which == "diffusion" else (act_agent, ACT, 5)
    decisions = run_executor(agent, golden(path), executor, frames=6)  # auras:2+3 decides from frame 4 on
    assert decisions, f"{executor} made no decision in 6 frames"
    for d in decisions:
        assert d.output.action.shape == (rows * 3,) and np.isfinite(d.output.action).all()


@pytest.mark.parametrize("which", ["diffusion", "act"])
def test_percept_crosses_a_topic_as_one_tensor(which: str, diffusion_agent, act_agent) -> None:
    agent, path = (diffusion_agent, DIFFUSION) if which == "diffusion" else (act_agent, ACT)
    percept = perceive_all(agent, Observation(0, 0.0, observation_data(golden(path), 0)))
    tensor = agent.percept_to_tensor(percept)
    back = agent.percept_from_tensor(tensor.clone())
    np.testing.assert_array_equal(agent.generate_request(back, 1).action, agent.generate_request(percept, 1).action)
    with pytest.raises(InputError, match="percept tensor"):
        agent.percept_from_tensor(tensor[..., :-1])


@pytest.mark.parametrize("which", ["diffusion", "act"])
def test_a_state_of_another_size_is_refused_naming_both(which: str, diffusion_agent, act_agent) -> None:
    agent, path = (diffusion_agent, DIFFUSION) if which == "diffusion" else (act_agent, ACT)
    data = observation_data(golden(path), 0)
    with pytest.raises(InputError) as error:
        perceive_all(agent, Observation(0, 0.0, {"image": data["image"], "state": np.zeros(3)}))
    assert error.value.expected == "(4,)" and error.value.got == (3,)


def copy_checkpoint(source: Path, tmp_path: Path, **config_changes: object) -> Path:
    target = tmp_path / "pretrained_model"
    shutil.copytree(source / "pretrained_model", target)
    config = json.loads((target / "config.json").read_text())
    config.update(config_changes)
    (target / "config.json").write_text(json.dumps(config))
    return target


@pytest.mark.parametrize("kind", ["pi0", "smolvla", "tdmpc"])
def test_an_unsupported_type_is_refused_in_one_line_listing_the_supported(tmp_path: Path, kind: str) -> None:
    path = copy_checkpoint(ACT, tmp_path, type=kind)
    with pytest.raises(ConfigError) as error:
        build_agent(str(path))
    message = str(error.value)
    assert "\n" not in message and repr(kind) in message and "'diffusion', 'act'" in message


@pytest.mark.parametrize("change,field", [
    ({"noise_scheduler_type": "DPM"}, "noise_scheduler_type"),
    ({"prediction_type": "sample"}, "prediction_type"),
    ({"beta_schedule": "linear"}, "beta_schedule"),
    ({"clip_sample_range": 2.0}, "clip_sample_range"),
])
def test_a_diffusion_setting_not_reproduced_is_refused_by_name(tmp_path: Path, change: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        build_agent(str(copy_checkpoint(DIFFUSION, tmp_path, **change)))


def test_weights_that_do_not_fit_the_config_are_refused(tmp_path: Path) -> None:
    path = copy_checkpoint(ACT, tmp_path, dim_feedforward=128)
    with pytest.raises(ConfigError, match="model.safetensors"):
        build_agent(str(path))


def test_a_missing_processor_state_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = copy_checkpoint(DIFFUSION, tmp_path)
    (path / "policy_postprocessor_step_0_unnormalizer_processor.safetensors").unlink()
    with pytest.raises(ConfigError, match="unnormalizer_processor.safetensors"):
        build_agent(str(path))


def test_diffusion_noise_scale_scales_the_noise_sources_draw(diffusion_agent) -> None:
    """LeRobot diffusion takes the project agent's noise_scale: its x_0 and per-step noise scaled alike,
    whether drawn or handed by a noise source."""
    from auras_ros.core.stages import set_noise_scale

    g = golden(DIFFUSION)
    agent = with_golden_noise(diffusion_agent, g)
    try:
        set_noise_scale(agent, 0.5)
        state = agent.init_request(0)
        torch.testing.assert_close(state.sample, 0.5 * torch.from_numpy(g["x0"][0]).float(), rtol=0, atol=0)
        torch.testing.assert_close(state.noise, 0.5 * torch.from_numpy(g["z"][0]).float(), rtol=0, atol=0)
        agent.noise_source = None
        set_noise_scale(agent, 0.0)
        assert not agent.init_request(3).sample.any() and not agent.init_request(3).noise.any()
    finally:
        agent.noise_source = None
        set_noise_scale(agent, 1.0)
