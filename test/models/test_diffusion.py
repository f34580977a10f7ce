"""The diffusion policy agent: merged generation is the sequential math, inputs and configs fail loudly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
import torch

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.partition import stage_ranges
from auras_ros.core.stages import (PERCEPT_KEY, Agent, GenerationStep, Observation, perceive_all, samples_noise,
                                   set_noise_scale)
from auras_ros.models.diffusion import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    DiffusionPolicyAgent,
    DiffusionPolicyConfig,
    DiffusionState,
    diffusion_policy_shaped,
    tiny,
)
from auras_ros.models.schedule import make_schedule
from gpu import cuda_test


def observation(config: DiffusionPolicyConfig, seed: int = 0) -> Observation:
    rng = np.random.default_rng(seed)
    height, width = config.image_size
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    if config.state_dim == 0:
        return Observation(seq=seed, stamp=0.0, data=image)
    return Observation(seq=seed, stamp=0.0, data={"image": image, "state": rng.standard_normal(config.state_dim)})


def run_pipeline(agent: DiffusionPolicyAgent, percept: object, request_ids: list[int], pp_generation: int, alpha: float):
    """Drive generation like the Auras frame does: request r enters generation in frame r and runs stage
    f - r in frame f; every frame's active steps go through ONE generate call on the same percept."""
    ranges = stage_ranges(agent.generation_iterations, pp_generation, alpha)
    states = {rid: agent.init_request(rid) for rid in request_ids}
    calls = 0
    for frame in range(len(request_ids) + pp_generation - 1):
        steps = []
        for entry, rid in enumerate(request_ids):
            stage = frame - entry
            if 0 <= stage < pp_generation:
                begin, end = ranges[stage]
                steps.append(GenerationStep(rid, states[rid], begin, end))
        result = agent.generate({PERCEPT_KEY: percept}, steps)
        calls += 1
        for step, state in zip(steps, result.states, strict=False):
            states[step.request_id] = state
    return {rid: agent.finish(state).action for rid, state in states.items()}, calls


def test_is_an_agent(agent: DiffusionPolicyAgent) -> None:
    assert isinstance(agent, Agent)
    assert agent.generation_iterations == 8
    assert agent.max_perception_stages == 6


@pytest.mark.parametrize("sampler_agent", ["agent", "ddpm_agent"])
@pytest.mark.parametrize("pp_generation,alpha", [(1, 0.0), (3, 0.0), (4, 0.5), (5, 1.0)])
def test_merged_frames_equal_sequential_request(sampler_agent: str, pp_generation: int, alpha: float, request) -> None:
    agent = request.getfixturevalue(sampler_agent)
    percept = perceive_all(agent, observation(agent.config))
    ids = [3, 4, 5, 6]
    merged, _ = run_pipeline(agent, percept, ids, pp_generation, alpha)
    for rid in ids:
        sequential = agent.generate_request(percept, rid)
        np.testing.assert_allclose(merged[rid], sequential.action, rtol=1e-5, atol=1e-5)


def test_two_requests_in_one_call_equal_two_calls(agent: DiffusionPolicyAgent) -> None:
    percept = perceive_all(agent, observation(agent.config))
    context = {PERCEPT_KEY: percept}
    a, b = agent.init_request(1), agent.init_request(2)
    together = agent.generate(context, [GenerationStep(1, a, 0, 3), GenerationStep(2, b, 0, 5)]).states
    alone_a = agent.generate(context, [GenerationStep(1, a, 0, 3)]).states[0]
    alone_b = agent.generate(context, [GenerationStep(2, b, 0, 5)]).states[0]
    torch.testing.assert_close(together[0].sample, alone_a.sample, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(together[1].sample, alone_b.sample, rtol=1e-5, atol=1e-5)
    assert [s.iteration for s in together] == [3, 5]
    assert not torch.equal(together[0].sample, together[1].sample)


def test_generation_reads_the_latest_percept(agent: DiffusionPolicyAgent) -> None:
    old = perceive_all(agent, observation(agent.config, seed=1))
    new = perceive_all(agent, observation(agent.config, seed=2))
    state = agent.init_request(7)
    first = agent.generate({PERCEPT_KEY: old}, [GenerationStep(7, state, 0, 4)]).states[0]
    fresh = agent.finish(agent.generate({PERCEPT_KEY: new}, [GenerationStep(7, first, 4, 8)]).states[0]).action
    stale = agent.generate_request(old, 7).action
    assert not np.allclose(fresh, stale)


def test_request_noise_is_seeded_by_request_id(agent: DiffusionPolicyAgent) -> None:
    assert torch.equal(agent.init_request(9).sample, agent.init_request(9).sample)
    assert not torch.equal(agent.init_request(9).sample, agent.init_request(10).sample)
    again = DiffusionPolicyAgent(tiny())
    percept = perceive_all(agent, observation(agent.config))
    np.testing.assert_array_equal(again.generate_request(percept, 9).action, agent.generate_request(percept, 9).action)
    other = DiffusionPolicyAgent(tiny(seed=1))
    assert not torch.equal(other.init_request(9).sample, agent.init_request(9).sample)


def test_action_is_the_flattened_chunk_in_normalized_space(agent: DiffusionPolicyAgent) -> None:
    action = agent.generate_request(perceive_all(agent, observation(agent.config)), 0).action
    assert action.dtype == np.float64
    assert action.shape == (agent.config.horizon * agent.config.action_dim,)
    assert agent.config.chunk_shape == (8, 2)
    assert np.all(np.abs(action) <= 1.0)


@pytest.mark.parametrize("num_stages", [2, 3, 6])
def test_perception_slices_compose_to_the_whole_encoder(agent: DiffusionPolicyAgent, num_stages: int) -> None:
    obs = observation(agent.config)
    whole = perceive_all(agent, obs, 1).cond
    sliced = perceive_all(agent, obs, num_stages).cond
    torch.testing.assert_close(sliced, whole, rtol=1e-5, atol=1e-6)
    assert whole.shape == (agent.config.cond_dim,)
    # The robot state enters H_o unchanged, after the image features.
    np.testing.assert_allclose(whole[-2:].numpy(), obs.data["state"], rtol=1e-6)


def test_too_many_perception_stages(agent: DiffusionPolicyAgent) -> None:
    with pytest.raises(ConfigError) as error:
        agent.perceive(observation(agent.config), 0, 7)
    assert error.value.field == "num_stages"


def test_image_only_observation() -> None:
    agent = DiffusionPolicyAgent(tiny(state_dim=0))
    obs = observation(agent.config)
    percept = perceive_all(agent, obs, 2)
    assert percept.cond.shape == (agent.config.encoder_features,)
    as_mapping = perceive_all(agent, Observation(0, 0.0, {"image": obs.data, "state": [1.0]}), 2)
    torch.testing.assert_close(as_mapping.cond, percept.cond)


def test_bfloat16_runs() -> None:
    agent = DiffusionPolicyAgent(tiny(dtype="bfloat16", n_steps=2))
    action = agent.generate_request(perceive_all(agent, observation(agent.config)), 0).action
    assert np.isfinite(action).all()


def good_data(config: DiffusionPolicyConfig) -> dict:
    return dict(observation(config).data)


@pytest.mark.parametrize(
    "change,what",
    [
        (lambda d: d.update(image=np.zeros((16, 32, 3), np.uint8)), "image size"),
        (lambda d: d.update(image=np.zeros((32, 32, 4), np.uint8)), "image shape"),
        (lambda d: d.update(image=np.full((32, 32, 3), np.nan, np.float32)), "image dtype"),
        (lambda d: d.update(state=np.array([0.0, np.nan])), "state values"),
        (lambda d: d.update(state=np.zeros(3)), "state shape"),
        (lambda d: d.pop("state"), "observation data"),
        (lambda d: d.update(state=["left", "up"]), "state type"),
    ],
)
def test_bad_observation(agent: DiffusionPolicyAgent, change, what: str) -> None:
    data = good_data(agent.config)
    change(data)
    with pytest.raises(InputError) as error:
        agent.perceive(Observation(0, 0.0, data), 0, 1)
    assert error.value.what == what


def test_bad_generation_calls(agent: DiffusionPolicyAgent) -> None:
    percept = perceive_all(agent, observation(agent.config))
    state = agent.init_request(0)
    with pytest.raises(InputError, match="context"):
        agent.generate({}, [GenerationStep(0, state, 0, 1)])
    with pytest.raises(InputError, match="iteration"):
        agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, state, 2, 4)])
    with pytest.raises(InputError, match="range"):
        agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, state, 0, 9)])
    with pytest.raises(InputError, match="percept"):
        agent.generate({PERCEPT_KEY: torch.zeros(3)}, [GenerationStep(0, state, 0, 1)])
    with pytest.raises(InputError, match="state iteration"):
        agent.finish(state)
    unchanged = agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, state, 0, 0)]).states[0]
    assert isinstance(unchanged, DiffusionState) and torch.equal(unchanged.sample, state.sample)


@pytest.mark.parametrize(
    "overrides,field",
    [
        (dict(global_cond_dim=65), "global_cond_dim"),
        (dict(n_steps=0), "n_steps"),
        (dict(n_steps=101), "n_steps"),
        (dict(horizon=6, down_dims=(16, 32, 64)), "horizon"),
        (dict(sampler="euler"), "sampler"),
        (dict(sampler="ddpm", n_steps=10), "n_steps"),
        (dict(denoiser="mlp"), "denoiser"),
        (dict(dtype="float64"), "dtype"),
        (dict(n_groups=5), "n_groups"),
        (dict(image_size=(32,)), "image_size"),
        (dict(n_action_steps=9), "n_action_steps"),
        (dict(device="tpu"), "device"),
    ],
)
def test_inconsistent_config(overrides: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        DiffusionPolicyAgent(tiny(**overrides))
    assert error.value.field == field


def test_matching_global_cond_dim_is_accepted() -> None:
    assert DiffusionPolicyAgent(tiny(global_cond_dim=66)).config.cond_dim == 66


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_cuda_without_cuda() -> None:
    with pytest.raises(ConfigError) as error:
        DiffusionPolicyAgent(tiny(device="cuda"))
    assert error.value.field == "device"


def test_checkpoint_round_trip(agent: DiffusionPolicyAgent, tmp_path: Path) -> None:
    agent.save(tmp_path)
    loaded = DiffusionPolicyAgent.load(tmp_path)
    assert loaded.config == agent.config
    percept = perceive_all(agent, observation(agent.config))
    np.testing.assert_array_equal(loaded.generate_request(percept, 4).action, agent.generate_request(percept, 4).action)
    # Weights come from the file, not from the seed.
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["config"]["seed"] = 123
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    reseeded = DiffusionPolicyAgent.load(tmp_path)
    torch.testing.assert_close(reseeded.model.state_dict(), agent.model.state_dict())


@pytest.mark.parametrize("missing", [CONFIG_FILE, WEIGHTS_FILE])
def test_checkpoint_missing_file(agent: DiffusionPolicyAgent, tmp_path: Path, missing: str) -> None:
    agent.save(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(InputError) as error:
        DiffusionPolicyAgent.load(tmp_path)
    assert missing in error.value.what


def test_checkpoint_weights_that_do_not_fit(agent: DiffusionPolicyAgent, tmp_path: Path) -> None:
    agent.save(tmp_path)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["config"]["encoder_width"] = 16
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="size mismatch") as error:
        DiffusionPolicyAgent.load(tmp_path)
    assert error.value.value == str(tmp_path / WEIGHTS_FILE)


def test_truncated_weights_name_the_file(agent: DiffusionPolicyAgent, tmp_path: Path) -> None:
    agent.save(tmp_path)
    weights = tmp_path / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ConfigError, match="a state_dict written by DiffusionPolicyAgent.save") as error:
        DiffusionPolicyAgent.load(tmp_path)
    assert error.value.value == str(weights)


@pytest.mark.parametrize("text,missing", [('{"kind": "auras_ros.diffusion_policy"}', "(missing 'config')"),
                                          ("{}", "(missing 'kind', 'config')"), ("[1, 2]", "not a JSON list"),
                                          ('{"kind": ', "JSONDecodeError")])
def test_config_without_its_keys_names_the_file(agent: DiffusionPolicyAgent, tmp_path: Path, text: str,
                                                missing: str) -> None:
    agent.save(tmp_path)
    (tmp_path / CONFIG_FILE).write_text(text)
    with pytest.raises(ConfigError, match="a JSON object with 'kind', 'config'") as error:
        DiffusionPolicyAgent.load(tmp_path)
    assert error.value.value == str(tmp_path / CONFIG_FILE) and missing in error.value.allowed


def test_checkpoint_unknown_config_field(agent: DiffusionPolicyAgent, tmp_path: Path) -> None:
    agent.save(tmp_path)
    meta = json.loads((tmp_path / CONFIG_FILE).read_text())
    meta["config"]["heads"] = 4
    (tmp_path / CONFIG_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError) as error:
        DiffusionPolicyAgent.load(tmp_path)
    assert error.value.field == "heads"


@pytest.mark.parametrize("sampler,n_steps", [("ddim", 10), ("ddim", 100), ("ddpm", 100)])
def test_schedule_recovers_x0_from_the_true_noise(sampler: str, n_steps: int) -> None:
    """With an oracle denoiser (eps = the noise that was added), DDIM walks x_t = sqrt(abar) x0 + sqrt(1-abar) eps
    exactly and lands on x0; DDPM's posterior mean also lands on x0 at the last step."""
    schedule = make_schedule(n_steps, 100, sampler).to("cpu", torch.float64)
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand((3, 8, 2), generator=gen, dtype=torch.float64) * 2 - 1
    eps = torch.randn((3, 8, 2), generator=gen, dtype=torch.float64)
    x = schedule.sqrt_abar[0] * x0 + schedule.sqrt_one_minus_abar[0] * eps
    for k in range(n_steps):
        ks = torch.full((3,), k)
        # The oracle: the noise that x currently carries.
        true_eps = (x - schedule.sqrt_abar[k] * x0) / schedule.sqrt_one_minus_abar[k]
        x = schedule.step(x, true_eps, ks, torch.zeros_like(x) if schedule.stochastic else None)
    torch.testing.assert_close(x, x0)


def test_schedule_timesteps_descend_to_zero() -> None:
    schedule = make_schedule(10, 100, "ddim")
    assert schedule.timesteps.tolist() == list(range(90, -1, -10))
    assert not schedule.stochastic and make_schedule(100, 100, "ddpm").stochastic


def test_paper_shaped_preset_config() -> None:
    config = diffusion_policy_shaped()
    config.validate()
    assert (config.n_steps, config.encoder_width, config.down_dims, config.cond_dim) == (100, 64, (256, 512, 1024), 514)


@cuda_test
def test_cuda_streams_and_merged_equals_sequential(exact_fp32: None) -> None:
    agent = DiffusionPolicyAgent(tiny(device="cuda"))
    streams = {agent.perception_stream, agent.generation_stream, torch.cuda.default_stream()}
    assert len(streams) == 3 and all(isinstance(s, torch.cuda.Stream) for s in streams)
    percept = perceive_all(agent, observation(agent.config), 3)
    assert percept.ready is not None and percept.cond.device.type == "cuda"
    merged, _ = run_pipeline(agent, percept, [0, 1, 2, 3], 4, 0.5)
    for rid, action in merged.items():
        np.testing.assert_allclose(action, agent.generate_request(percept, rid).action, rtol=1e-4, atol=1e-4)


@cuda_test
def test_cuda_matches_cpu(exact_fp32: None) -> None:
    cpu, gpu = DiffusionPolicyAgent(tiny()), DiffusionPolicyAgent(tiny(device="cuda"))
    obs = observation(cpu.config)
    expected = cpu.generate_request(perceive_all(cpu, obs), 5).action
    got = gpu.generate_request(perceive_all(gpu, obs, 2), 5).action
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)


@cuda_test
def test_cuda_memory_is_one_model_whatever_l() -> None:
    """No per-request model copies: six requests in flight add far less than the weights themselves."""
    # Eager: the CUDA graphs' private memory pools (one per batch size) are their own, separate cost.
    agent = DiffusionPolicyAgent(diffusion_policy_shaped(device="cuda", n_steps=10, sampler="ddim"), graphs=False)
    weights = sum(p.numel() * p.element_size() for p in agent.model.parameters())
    percept = perceive_all(agent, observation(agent.config))
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    run_pipeline(agent, percept, list(range(6)), 5, 0.0)
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() - base < weights / 4


# -- noise_scale (issue #18: seams between independently sampled chunks) -------------------------------

@pytest.fixture
def scaled(request) -> Iterator[Callable[[str, float], DiffusionPolicyAgent]]:
    """``scaled(fixture name, scale)``: that module-scoped agent at ``scale``, set back to 1 afterwards."""
    touched: list[DiffusionPolicyAgent] = []

    def at(name: str, scale: float) -> DiffusionPolicyAgent:
        agent = request.getfixturevalue(name)
        set_noise_scale(agent, scale)
        touched.append(agent)
        return agent

    yield at
    for agent in touched:
        set_noise_scale(agent, 1.0)


@pytest.mark.parametrize("sampler_agent", ["agent", "ddpm_agent"])
def test_noise_scale_zero_makes_the_chunk_independent_of_the_request_id(scaled, sampler_agent: str) -> None:
    agent = scaled(sampler_agent, 0.0)
    state = agent.init_request(11)
    assert not state.sample.any() and (state.noise is None or not state.noise.any())
    percept = perceive_all(agent, observation(agent.config))
    np.testing.assert_array_equal(agent.generate_request(percept, 11).action, agent.generate_request(percept, 12).action)
    set_noise_scale(agent, 1.0)  # as trained: the two requests are two samples again
    assert not np.array_equal(agent.generate_request(percept, 11).action, agent.generate_request(percept, 12).action)


@pytest.mark.parametrize("sampler", ["ddim", "ddpm"])
def test_noise_scale_one_is_the_default_path_bit_for_bit(sampler: str) -> None:
    config = tiny(sampler=sampler, n_steps=12, train_timesteps=12)
    default, reset = DiffusionPolicyAgent(config), DiffusionPolicyAgent(config)
    assert default.noise_scale == 1.0
    set_noise_scale(reset, 0.5)
    set_noise_scale(reset, 1)
    percept = perceive_all(default, observation(config))
    for rid in (0, 5):
        a, b = default.init_request(rid), reset.init_request(rid)
        assert torch.equal(a.sample, b.sample)
        assert (a.noise is None) == (sampler == "ddim") and (a.noise is None or torch.equal(a.noise, b.noise))
        np.testing.assert_array_equal(default.generate_request(percept, rid).action,
                                      reset.generate_request(percept, rid).action)


def test_noise_scale_scales_x_t_and_the_ddpm_step_noise(scaled) -> None:
    agent = scaled("ddpm_agent", 0.5)
    half = agent.init_request(4)
    set_noise_scale(agent, 1.0)
    full = agent.init_request(4)
    torch.testing.assert_close(half.sample, 0.5 * full.sample, rtol=0, atol=0)
    torch.testing.assert_close(half.noise, 0.5 * full.noise, rtol=0, atol=0)


@pytest.mark.parametrize("sampler_agent", ["agent", "ddpm_agent"])
@pytest.mark.parametrize("scale", [0.0, 0.5])
def test_merged_frames_equal_sequential_request_at_any_noise_scale(scaled, sampler_agent: str, scale: float) -> None:
    agent = scaled(sampler_agent, scale)
    percept = perceive_all(agent, observation(agent.config))
    ids = [3, 4, 5, 6]
    merged, _ = run_pipeline(agent, percept, ids, 4, 0.5)
    for rid in ids:
        np.testing.assert_allclose(merged[rid], agent.generate_request(percept, rid).action, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [-1, -0.1, float("nan"), float("inf"), "0", None, True])
def test_bad_noise_scales_are_refused(agent: DiffusionPolicyAgent, bad: object) -> None:
    for set_it in (lambda: set_noise_scale(agent, bad), lambda: setattr(agent, "noise_scale", bad)):
        with pytest.raises(ConfigError, match="noise_scale") as error:
            set_it()
        assert "a finite number >= 0" in str(error.value)
    assert agent.noise_scale == 1.0


def test_an_agent_that_samples_no_noise_takes_only_scale_one() -> None:
    from auras_ros.models.factory import build_agent

    synthetic = build_agent("synthetic")
    assert not samples_noise(synthetic) and samples_noise(DiffusionPolicyAgent(tiny()))
    set_noise_scale(synthetic, 1.0)  # as trained: nothing to change
    assert not hasattr(synthetic, "noise_scale")
    with pytest.raises(ConfigError, match="it samples no noise"):
        set_noise_scale(synthetic, 0.0)
