"""The ``inpaint`` overlap (guided denoising, RTC's vjp and the gradient-free x0_blend): the soft mask and
its two uses (``prefix``, ``rtc``), the alignment to the executing chunk, the frozen prefix, plain sampling
when d = 0 under ``prefix``, guidance at d = 0 under ``rtc``, merged generation equal to SEQ, and the
runners' hook."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from auras_ros.core.baselines import SequentialRunner
from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.inpaint import (GUIDANCE_METHODS, ExecutingChunk, ExecutingChunks, Inpaint, InpaintConfig,
                                    mask_weights, prefix_weights)
from auras_ros.core.metrics import Decision
from auras_ros.core.partition import stage_ranges
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.stages import PERCEPT_KEY, GenerationStep, Observation, inpaints, perceive_all
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig
from auras_ros.eval.inpaint_seams import expert_observations
from auras_ros.eval.task import CatchTask
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.models.factory import build_agent
from auras_ros.models.lerobot.diffusion import LeRobotDiffusionAgent
from gpu import cuda_test

SHIPPED = Path(__file__).resolve().parents[2] / "auras_ros" / "eval" / "checkpoints" / "diffusion"
LEROBOT_DIFFUSION = Path(__file__).resolve().parents[1] / "data" / "lerobot_diffusion"
PERIOD = 0.05
# The frozen prefix's tolerance, in the normalized action space [-1, 1]: 5% of its range (measured up to
# 0.06 on the shipped checkpoint over the catch task's observations and 0.05 on the tiny models with
# β = 50; plain sampling misses by up to ~1).
PREFIX_TOLERANCE = 0.1


def f(u: float) -> float:
    """RTC's exponential bend of the linear ramp, by hand."""
    return u * (np.exp(u) - 1) / (np.e - 1)


def observation(agent: DiffusionPolicyAgent, seed: int, stamp: float = 0.0) -> Observation:
    rng = np.random.default_rng(seed)
    height, width = agent.config.image_size
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    return Observation(seed, stamp, {"image": image, "state": rng.uniform(-1, 1, agent.config.state_dim)})


def percept(agent: DiffusionPolicyAgent, seed: int):
    return perceive_all(agent, observation(agent, seed))


def inpaint(chunk: np.ndarray, shift: int, delay: float, stamp: float = 1.0, beta: float | None = None,
            method: str | None = None, mask: str | None = None) -> Inpaint:
    """The new chunk's stamp ``shift`` rows after the executing chunk's, ``delay`` rows of delay; β, the
    guidance method and the mask the config's defaults unless given."""
    config = InpaintConfig(PERIOD)
    if beta is not None:
        config = dataclasses.replace(config, max_guidance=beta)
    if method is not None:
        config = dataclasses.replace(config, method=method)
    if mask is not None:
        config = dataclasses.replace(config, mask=mask)
    return Inpaint(ExecutingChunk(np.asarray(chunk, dtype=np.float64).reshape(-1), stamp), stamp + shift * PERIOD,
                   delay * PERIOD, config)


# -- the soft mask and the alignment -----------------------------------------------------------------

def test_prefix_weights_against_hand_values() -> None:
    # RTC's docstring case: d = 2, end = 6, 10 rows: linear 1 1 4/5 3/5 2/5 1/5 0 0 0 0, then bent.
    np.testing.assert_allclose(prefix_weights(2, 6, 10),
                               [1, 1, 0.570589, 0.287072, 0.114492, 0.025770, 0, 0, 0, 0], atol=1e-6)
    assert [f(0.8), f(0.6)] == pytest.approx([0.570589, 0.287072], abs=1e-6)
    # d = 0: no row at 1; the ramp starts at end / (end + 1).
    np.testing.assert_allclose(prefix_weights(0, 3, 5), [0.487551, 0.188770, 0.041324, 0, 0], atol=1e-6)
    # end wins over d: rows from end on are 0, those before it frozen.
    np.testing.assert_array_equal(prefix_weights(5, 3, 6), [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(prefix_weights(2, 0, 4), [0, 0, 0, 0])
    np.testing.assert_array_equal(prefix_weights(4, 4, 4), [1, 1, 1, 1])


def test_mask_weights_against_hand_values() -> None:
    # rtc, d = 0, end = 7, 8 rows (Auras's usual request): no row at 1, linear 7/8 6/8 ... 1/8 0, then bent.
    np.testing.assert_allclose(mask_weights("rtc", 0, 7, 8),
                               [0.712349, 0.487551, 0.315812, 0.188770, 0.099298, 0.041324, 0.009686, 0], atol=1e-6)
    assert [f(7 / 8), f(6 / 8)] == pytest.approx([0.712349, 0.487551], abs=1e-6)
    # prefix: nothing frozen at d = 0, nothing guided.
    np.testing.assert_array_equal(mask_weights("prefix", 0, 7, 8), np.zeros(8))
    # With d > 0 both are RTC's mask as it is (end <= d included: the rows before end frozen).
    for mask in ("prefix", "rtc"):
        np.testing.assert_array_equal(mask_weights(mask, 2, 6, 10), prefix_weights(2, 6, 10))
        np.testing.assert_array_equal(mask_weights(mask, 5, 3, 6), [1, 1, 1, 0, 0, 0])
    with pytest.raises(ConfigError) as error:
        mask_weights("firm", 1, 2, 4)
    assert error.value.field == "inpaint mask"
    with pytest.raises(ConfigError) as error:
        mask_weights("prefix", -1, 2, 4)  # the arguments are checked whatever the mask
    assert error.value.field == "prefix_weights delay"


@pytest.mark.parametrize("args,field", [((-1, 2, 4), "prefix_weights delay"), ((1, 5, 4), "prefix_weights end"),
                                        ((1.5, 2, 4), "prefix_weights delay"), ((True, 2, 4), "prefix_weights delay")])
def test_prefix_weights_refuse_bad_arguments(args: tuple, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        prefix_weights(*args)
    assert error.value.field == field


def test_target_is_the_executing_chunk_at_the_new_rows_times() -> None:
    executing = np.arange(16, dtype=np.float64).reshape(8, 2)  # row k = (2k, 2k + 1)
    request = inpaint(executing, shift=2, delay=1)
    target, weights = request.target(8, 2)
    assert request.delay_rows == 1
    # Its row 2 is due when the new row 0 is; it runs out after the new row 5 (RTC's end = H - s = 6).
    np.testing.assert_array_equal(target[:6], executing[2:])
    np.testing.assert_array_equal(target[6:], 0)
    np.testing.assert_allclose(weights, prefix_weights(1, 6, 8))
    # A delay of 2.5 rows: two rows have passed when it arrives, the third is due then.
    assert inpaint(executing, 2, 0).delay_rows == 0
    assert Inpaint(request.chunk, request.stamp, 2.5 * PERIOD, request.config).delay_rows == 2
    # Within one row (d = 0): rtc guides the same rows from row 0 on; prefix (the default) none.
    within = inpaint(executing, shift=2, delay=0.75, mask="rtc")
    target, weights = within.target(8, 2)
    assert within.delay_rows == 0
    np.testing.assert_array_equal(target[:6], executing[2:])
    np.testing.assert_allclose(weights, prefix_weights(0, 6, 8))
    assert weights[0] == pytest.approx(f(6 / 7)) and weights[1] == pytest.approx(f(5 / 7))
    assert not inpaint(executing, 2, 0.75).target(8, 2)[1].any()


@pytest.mark.parametrize("shift,delay,mask", [(2, 0, "prefix"), (2, 0.75, "prefix"), (-1, 1, "rtc"), (8, 1, "rtc"),
                                              (9, 2, "rtc"), (-1, 0.5, "rtc")])
def test_no_row_to_follow_gives_zero_weights(shift: int, delay: float, mask: str) -> None:
    """prefix with d = 0, an observation older than the executing chunk's, or a chunk that ran out:
    nothing to follow."""
    target, weights = inpaint(np.ones((8, 2)), shift, delay, mask=mask).target(8, 2)
    assert not weights.any() and not target.any()


def test_executing_chunk_of_another_width_is_refused() -> None:
    with pytest.raises(InputError) as error:
        inpaint(np.ones(15), 1, 1).target(8, 2)
    assert error.value.what == "executing chunk" and error.value.got == 15


@pytest.mark.parametrize("kwargs,field", [(dict(period=0.0), "inpaint period"), (dict(period=float("nan")), "inpaint period"),
                                          (dict(period=0.05, max_guidance=-1.0), "inpaint max_guidance"),
                                          (dict(period=0.05, method="pigdm"), "inpaint method"),
                                          (dict(period=0.05, mask="firm"), "inpaint mask")])
def test_bad_inpaint_config(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        InpaintConfig(**kwargs)
    assert error.value.field == field


# -- the agent: frozen prefix, plain when d = 0, merged = sequential -----------------------------------

def prefix_misses(agent: DiffusionPolicyAgent, pairs: list[tuple[object, object]], shift: int,
                  delay: int, method: str) -> tuple[list[float], list[float]]:
    """For each (old, new) percept pair: how far the new chunk's first d rows are from the executing
    chunk's (old's) rows at their times, guided and plain."""
    horizon, width = agent.config.chunk_shape
    guided_misses, plain_misses = [], []
    for n, (old, new) in enumerate(pairs):
        executing = agent.generate_request(old, 50 + n).action.reshape(horizon, width)
        guided = agent.generate_request(new, n, inpaint=inpaint(executing, shift, delay, method=method)).action.reshape(
            horizon, width)
        plain = agent.generate_request(new, n).action.reshape(horizon, width)
        frozen = executing[shift:shift + delay]
        guided_misses.append(float(np.abs(guided[:delay] - frozen).max()))
        plain_misses.append(float(np.abs(plain[:delay] - frozen).max()))
    return guided_misses, plain_misses


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
@pytest.mark.parametrize("which", ["agent", "ddpm_agent"])
@pytest.mark.parametrize("shift,delay", [(1, 1), (2, 2), (1, 3)])
def test_inpainting_freezes_the_prefix(which: str, shift: int, delay: int, method: str, request) -> None:
    agent = request.getfixturevalue(which)
    pairs = [(percept(agent, seed), percept(agent, seed + 10)) for seed in range(3)]
    guided, plain = prefix_misses(agent, pairs, shift, delay, method)
    assert max(guided) <= PREFIX_TOLERANCE
    assert max(plain) > PREFIX_TOLERANCE  # the test is not vacuous


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
@pytest.mark.parametrize("shift,delay", [(1, 1), (2, 2), (4, 2)])
def test_inpainting_freezes_the_prefix_on_the_shipped_checkpoint(shift: int, delay: int, method: str) -> None:
    """The trained policy on the catch task's observations, ``shift`` frames apart: its clean estimate
    follows the data, so guidance can only move it along what the new observation allows; on the task's
    own observations that is within the tolerance."""
    agent = DiffusionPolicyAgent.load(SHIPPED)
    task = CatchTask()
    try:
        observations = expert_observations(task, 100, 12 + shift)
    finally:
        task.close()
    pairs = [(perceive_all(agent, observations[n]), perceive_all(agent, observations[n + shift])) for n in (0, 6, 12)]
    guided, plain = prefix_misses(agent, pairs, shift, delay, method)
    assert max(guided) <= PREFIX_TOLERANCE
    assert max(plain) > PREFIX_TOLERANCE


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
@pytest.mark.parametrize("which", ["agent", "ddpm_agent"])
def test_rtc_mask_guides_the_first_rows_at_d_zero(which: str, method: str, request) -> None:
    """rtc, a decision within one row (d = 0): its first rows, the ones that play at the seam, are pulled toward
    the executing chunk's rows at their times (soft weights 0.71 and 0.49 for s = 1, H = 8): on average
    over observations closer than plain sampling's from the same noise (the untrained tiny models'
    denoisers pull back hardest under DDIM's vjp: measured 0.76 of plain's miss there, 0.06-0.13 else)."""
    agent = request.getfixturevalue(which)
    horizon, width = agent.config.chunk_shape
    guided_misses, plain_misses = [], []
    for seed in range(6):
        executing = agent.generate_request(percept(agent, seed), 50 + seed).action.reshape(horizon, width)
        new = percept(agent, seed + 10)
        guided = agent.generate_request(new, seed, inpaint=inpaint(executing, 1, 0.75, method=method, mask="rtc"))
        plain = agent.generate_request(new, seed).action.reshape(horizon, width)
        guided_misses.append(np.abs(guided.action.reshape(horizon, width)[:2] - executing[1:3]).max(axis=1))
        plain_misses.append(np.abs(plain[:2] - executing[1:3]).max(axis=1))
    assert np.mean(guided_misses) < 0.9 * np.mean(plain_misses)


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
@pytest.mark.parametrize("plainly", [dict(shift=1, delay=0, mask="prefix"), dict(shift=1, delay=0.75, mask="prefix"),
                                     dict(shift=8, delay=1, mask="rtc"), dict(shift=-1, delay=0.75, mask="rtc")])
def test_nothing_to_guide_is_plain_sampling_bit_for_bit(agent: DiffusionPolicyAgent, ddpm_agent: DiffusionPolicyAgent,
                                                        method: str, plainly: dict) -> None:
    """prefix with d = 0 (the issue's contract); rtc with no row to follow (a chunk that ran out, an older
    observation)."""
    for each in (agent, ddpm_agent):
        p = percept(each, 1)
        executing = each.generate_request(p, 99).action
        plain = each.generate_request(p, 3).action
        np.testing.assert_array_equal(each.generate_request(p, 3, inpaint=inpaint(executing, method=method, **plainly)).action,
                                      plain)
        np.testing.assert_array_equal(each.generate_request(p, 3, inpaint=None).action, plain)
    # In a merged call, such a request beside a guided one comes out as plain too (CPU: bit for bit).
    p = percept(agent, 1)
    executing = agent.generate_request(p, 99).action
    a, b = agent.init_request(1), agent.init_request(2)
    mixed = agent.generate({PERCEPT_KEY: p}, [GenerationStep(1, a, 0, 8, inpaint(executing, 1, 1, method=method)),
                                               GenerationStep(2, b, 0, 8, inpaint(executing, method=method, **plainly))]).states
    plain_states = agent.generate({PERCEPT_KEY: p}, [GenerationStep(1, a, 0, 8), GenerationStep(2, b, 0, 8)]).states
    assert torch.equal(mixed[1].sample, plain_states[1].sample)
    assert not torch.equal(mixed[0].sample, plain_states[0].sample)


def run_pipeline(agent: DiffusionPolicyAgent, p: object, requests: dict[int, Inpaint | None], pp_generation: int,
                 alpha: float) -> dict[int, np.ndarray]:
    """As the Auras frame runs generation (test_diffusion.run_pipeline), each request with its own inpaint."""
    ranges = stage_ranges(agent.generation_iterations, pp_generation, alpha)
    ids = list(requests)
    states = {rid: agent.init_request(rid) for rid in ids}
    for frame in range(len(ids) + pp_generation - 1):
        steps = [GenerationStep(rid, states[rid], *ranges[frame - entry], requests[rid])
                 for entry, rid in enumerate(ids) if 0 <= frame - entry < pp_generation]
        for step, state in zip(steps, agent.generate({PERCEPT_KEY: p}, steps).states, strict=True):
            states[step.request_id] = state
    return {rid: agent.finish(state).action for rid, state in states.items()}


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
@pytest.mark.parametrize("sampler_agent", ["agent", "ddpm_agent"])
@pytest.mark.parametrize("pp_generation,alpha", [(1, 0.0), (3, 0.0), (4, 0.5)])
def test_merged_generation_with_inpaint_equals_seq(sampler_agent: str, pp_generation: int, alpha: float, method: str,
                                                   request) -> None:
    agent = request.getfixturevalue(sampler_agent)
    p = percept(agent, 2)
    chunks = [agent.generate_request(percept(agent, 20 + k), 90 + k).action for k in range(2)]
    # Each request its own executing chunk, shift, d and β; one without, one with d = 0 under rtc (guided),
    # one with d = 0 under prefix (plain).
    requests = {3: inpaint(chunks[0], 1, 1, method=method), 4: inpaint(chunks[1], 2, 2, beta=2.0, method=method),
                5: None, 6: inpaint(chunks[0], 1, 0.75, method=method, mask="rtc"),
                7: inpaint(chunks[1], 1, 3, method=method), 8: inpaint(chunks[1], 1, 0.75, method=method)}
    merged = run_pipeline(agent, p, requests, pp_generation, alpha)
    for rid, conditioning in requests.items():
        sequential = agent.generate_request(p, rid, inpaint=conditioning).action
        np.testing.assert_allclose(merged[rid], sequential, rtol=1e-5, atol=1e-5)
    assert not np.allclose(merged[3], agent.generate_request(p, 3).action, atol=1e-3)


@pytest.mark.parametrize("which", ["agent", "ddpm_agent"])
def test_x0_blend_through_the_graph_buffers_equals_the_direct_call(which: str, request) -> None:
    """x0_blend iterations run through their own GraphedFunction (a CUDA graph on a GPU); on the CPU
    ``graphs=True`` runs the very buffers a GPU captures: merged and whole requests come out bit for bit
    as the direct calls."""
    eager = request.getfixturevalue(which)
    graphed = DiffusionPolicyAgent(eager.config, eager.model, graphs=True)
    p = percept(eager, 2)
    executing = eager.generate_request(percept(eager, 20), 90).action
    requests = {3: inpaint(executing, 1, 1, method="x0_blend"), 4: None, 5: inpaint(executing, 2, 2, method="x0_blend")}
    merged, direct = run_pipeline(graphed, p, requests, 3, 0.5), run_pipeline(eager, p, requests, 3, 0.5)
    for rid, conditioning in requests.items():
        np.testing.assert_array_equal(merged[rid], direct[rid])
        np.testing.assert_array_equal(graphed.generate_request(p, rid, inpaint=conditioning).action,
                                      eager.generate_request(p, rid, inpaint=conditioning).action)
    # The guided iterations went through the blend graph's static buffers (entries keyed by batch shape).
    assert graphed._blend_graph._local.entries


def test_a_step_inpaint_that_is_not_one_is_refused(agent: DiffusionPolicyAgent) -> None:
    with pytest.raises(InputError) as error:
        agent.generate({PERCEPT_KEY: percept(agent, 0)}, [GenerationStep(0, agent.init_request(0), 0, 1, "rows")])
    assert error.value.what == "inpaint" and error.value.got == "str"


def test_two_guidance_methods_in_one_call_are_refused(agent: DiffusionPolicyAgent) -> None:
    executing = agent.generate_request(percept(agent, 0), 9).action
    steps = [GenerationStep(rid, agent.init_request(rid), 0, 1, inpaint(executing, 1, 1, method=method))
             for rid, method in enumerate(GUIDANCE_METHODS)]
    with pytest.raises(InputError) as error:
        agent.generate({PERCEPT_KEY: percept(agent, 0)}, steps)
    assert error.value.what == "inpaint method" and error.value.got == sorted(GUIDANCE_METHODS)


@pytest.mark.parametrize("which", ["agent", "ddpm_agent"])
def test_x0_blend_lands_the_frozen_rows_on_the_executing_chunk(which: str, request) -> None:
    """Where β does not clip the last iteration (blend weight 1), x0_blend's last update is the clipped
    x0' = y on the rows whose W is 1: DDIM's and DDPM's last iteration returns it as it is."""
    agent = request.getfixturevalue(which)
    last = torch.tensor([agent.config.n_steps - 1])
    beta = torch.tensor([InpaintConfig(PERIOD).max_guidance], dtype=agent.dtype)
    assert agent.schedule.blend_weight(last, beta, torch.zeros(1, 1, 1)).item() == 1.0
    horizon, width = agent.config.chunk_shape
    executing = agent.generate_request(percept(agent, 4), 40).action.reshape(horizon, width)
    guided = agent.generate_request(percept(agent, 5), 5, inpaint=inpaint(executing, 1, 2, method="x0_blend"))
    np.testing.assert_allclose(guided.action.reshape(horizon, width)[:2], executing[1:3], atol=1e-6)


def test_blend_weight_is_the_clipped_weight_mapped_to_one(ddpm_agent: DiffusionPolicyAgent) -> None:
    """min(1, β sqrt(abar (1 - abar))), by hand from the schedule's abar, per row's own iteration and β."""
    schedule = ddpm_agent.schedule
    ks, betas = torch.tensor([0, 5, 11]), torch.tensor([2.0, 0.0, 50.0])
    abar = schedule.sqrt_abar[ks] ** 2
    expected = torch.clamp(betas * torch.sqrt(abar * (1 - abar)), max=1.0)
    got = schedule.blend_weight(ks, betas, torch.zeros(3, 4, 2)).reshape(-1)
    torch.testing.assert_close(got, expected)
    assert got[1] == 0.0 and 0.0 < got[0] < 1.0  # β = 0 guides nothing; a small β cuts the noisy first step


@pytest.mark.parametrize("method", GUIDANCE_METHODS)
def test_lerobot_diffusion_inpaints_the_rows_its_decision_holds(method: str) -> None:
    """LeRobot's decision is rows n_obs_steps - 1 on of its sample, unnormalised: the executing chunk is
    normalised back and followed there (compared in the normalised space, where the tolerance holds)."""
    agent = build_agent(str(LEROBOT_DIFFUSION / "pretrained_model"))
    assert isinstance(agent, LeRobotDiffusionAgent)
    norm = agent.checkpoint.unnormalize_action
    with np.load(LEROBOT_DIFFUSION / "golden.npz") as golden:
        images, states = golden["images"], golden["states"]
    agent.reset()
    old, new = (perceive_all(agent, Observation(i, 0.0, {"image": images[i], "state": states[i]})) for i in (0, 1))
    executing = agent.generate_request(old, 0).action
    rows = executing.reshape(agent.config.n_action_steps, -1)
    shift, delay = 1, 2
    guided, plain = (agent.generate_request(new, 1, inpaint=conditioning).action.reshape(rows.shape)
                     for conditioning in (inpaint(executing, shift, delay, method=method), None))

    def miss(chunk: np.ndarray) -> float:
        normalized = norm.normalize(torch.from_numpy(np.concatenate([chunk[:delay], rows[shift:shift + delay]])))
        return float((normalized[:delay] - normalized[delay:]).abs().max())

    assert miss(guided) <= PREFIX_TOLERANCE < miss(plain)


# -- the runners' hook ---------------------------------------------------------------------------------

def camera(agent: DiffusionPolicyAgent) -> PeriodicCamera:
    return PeriodicCamera(1 / PERIOD, lambda seq, stamp: observation(agent, seq, stamp).data)


def chunks_of(decisions: list[Decision], agent: DiffusionPolicyAgent) -> list[np.ndarray]:
    return [d.output.action.reshape(agent.config.chunk_shape) for d in decisions]


def assert_continues(inpainted: list[np.ndarray], plain: list[np.ndarray]) -> None:
    """Each inpainted chunk's row 0 is the previous chunk's row 1 (d = 1, s = 1), within the tolerance;
    the plain chunks, from the same requests' noise, are not."""
    guided = [np.abs(chunk[0] - previous[1]).max() for previous, chunk in zip(inpainted, inpainted[1:], strict=False)]
    unguided = [np.abs(chunk[0] - previous[1]).max() for previous, chunk in zip(inpainted, plain[1:], strict=False)]
    assert max(guided) <= PREFIX_TOLERANCE
    assert max(unguided) > PREFIX_TOLERANCE


def test_seq_runner_conditions_each_request_on_the_last_chunk(agent: DiffusionPolicyAgent) -> None:
    """SEQ on a frame clock: a decision leaves one period after its observation (d = 1) and the next
    observation is one period later (s = 1), so each chunk's row 0 continues the previous chunk's row 1."""
    runs = {}
    for name, config in (("plain", None), ("inpaint", InpaintConfig(PERIOD))):
        runner = SequentialRunner(agent, camera(agent), SimClock(), frame_period=PERIOD, inpaint=config)
        runs[name] = chunks_of([d for _ in range(5) for d in runner.step()], agent)
        assert runner.recorder.decisions_recorded == 5
    np.testing.assert_array_equal(runs["inpaint"][0], runs["plain"][0])  # no chunk executing yet: plain
    assert_continues(runs["inpaint"], runs["plain"])


def test_auras_conditions_every_in_flight_request(agent: DiffusionPolicyAgent) -> None:
    """Auras (1+2) on a frame clock: one decision per frame, each read the frame's percept (d = 1, s = 1);
    every request after the first continues the chunk emitted just before it."""
    config = PipelineConfig(1, 2, 0, frame_period=PERIOD)
    runs = {}
    for name, inpaint_config in (("plain", None), ("inpaint", InpaintConfig(PERIOD))):
        pipeline = AurasPipeline(agent, config, camera(agent), SimClock(), inpaint=inpaint_config)
        try:
            decisions = [d for _ in range(7) for d in pipeline.step()]
        finally:
            pipeline.close()
        assert [d.age for d in decisions] == pytest.approx([PERIOD] * 5)
        runs[name] = chunks_of(decisions, agent)
    np.testing.assert_array_equal(runs["inpaint"][0], runs["plain"][0])
    assert_continues(runs["inpaint"], runs["plain"])


def test_executing_chunks_follow_the_newest_decision() -> None:
    record = ExecutingChunks(InpaintConfig(PERIOD))
    assert record.request(0.0) is None  # nothing emitted: plain sampling
    record.emitted(4, np.zeros(4), 1.0, 0.1)
    record.emitted(5, np.ones(4), 1.05, 0.15)
    record.emitted(3, np.full(4, 7.0), 1.1, 0.2)  # an older request arriving late does not take over
    request = record.request(2.0, finish_in=2)
    assert request is not None
    np.testing.assert_array_equal(request.chunk.action, np.ones(4))
    # Its chunk will be timed two decision spacings (0.05 s) on; the delay is the newest decision's age.
    assert (request.chunk.stamp, request.stamp, request.delay) == pytest.approx((1.05, 2.1, 0.15))
    assert request.delay_rows == 3
    # A non-finite chunk is not followed (the runner counts it): plain sampling until a finite one leaves.
    assert not record.emitted(6, np.array([0.0, np.nan, 0.0, 0.0]), 1.1, 0.1)
    assert record.request(2.0) is None
    assert record.emitted(7, np.full(4, 2.0), 1.15, 0.1)
    follow = record.request(2.0)
    assert follow is not None and follow.chunk.stamp == pytest.approx(1.15)


def test_an_agent_that_does_not_inpaint_is_refused() -> None:
    synthetic = SyntheticAgent(SyntheticConfig(width=8, perception_tokens=2, perception_layers=1,
                                               generation_width=8, iterations=2))
    assert not inpaints(synthetic) and inpaints(DiffusionPolicyAgent(tiny(n_steps=2)))
    with pytest.raises(ConfigError) as error:
        SequentialRunner(synthetic, PeriodicCamera(20.0, lambda seq, stamp: None), SimClock(), frame_period=PERIOD,
                         inpaint=InpaintConfig(PERIOD))
    assert (error.value.field, error.value.value) == ("overlap", "inpaint")


@cuda_test
@pytest.mark.usefixtures("exact_fp32")
@pytest.mark.parametrize("method", GUIDANCE_METHODS)
def test_cuda_merged_inpaint_equals_seq_and_the_cpu(method: str) -> None:
    """On a GPU, on the generation stream, vjp's iterations run eagerly and x0_blend's as their own CUDA
    graphs beside the graphed plain ones: merged equals sequential, and both equal the CPU's."""
    cpu, gpu = DiffusionPolicyAgent(tiny()), DiffusionPolicyAgent(tiny(device="cuda"))
    assert gpu.graphs
    executing = cpu.generate_request(percept(cpu, 20), 90).action
    requests = {3: inpaint(executing, 1, 1, method=method), 4: None, 5: inpaint(executing, 2, 2, method=method)}
    p = perceive_all(gpu, observation(gpu, 2), 2)
    merged = run_pipeline(gpu, p, requests, 3, 0.5)
    for rid, conditioning in requests.items():
        np.testing.assert_allclose(merged[rid], gpu.generate_request(p, rid, inpaint=conditioning).action,
                                   rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(merged[rid], cpu.generate_request(percept(cpu, 2), rid, inpaint=conditioning).action,
                                   rtol=1e-3, atol=1e-3)
