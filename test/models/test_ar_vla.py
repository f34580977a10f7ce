"""The AR VLA agent: perception split, SEQ decode, merged (Auras) generation and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.stages import PERCEPT_KEY, Agent, GenerationStep, Observation, perceive_all
from auras_ros.models.action_bins import ActionBins
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ACTION_TOKENS_KEY, ARVLAAgent

VARIANTS = [("llama", "clip"), ("qwen2", "siglip")]


def image(seed: int, size: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: "+".join(v))
def agent(request) -> ARVLAAgent:
    lm, vision = request.param
    return ARVLAAgent.from_config(tiny_config(lm, vision), seed=3)


@pytest.fixture(scope="module")
def llama_agent() -> ARVLAAgent:
    return ARVLAAgent.from_config(tiny_config("llama", "clip"), seed=3)


def run_frames(agent: ARVLAAgent, percept: torch.Tensor, frames: int, steps_of_frame) -> list[torch.Tensor]:
    """Drive merged generation like the executor does: write back X_A after every frame."""
    context: dict = {PERCEPT_KEY: percept}
    history = []
    for frame in range(frames):
        result = agent.generate(context, steps_of_frame(frame))
        context.update(result.context_writes)
        history.append(result.context_writes[ACTION_TOKENS_KEY])
    return history


def test_agent_satisfies_the_protocol(agent: ARVLAAgent) -> None:
    assert isinstance(agent, Agent)
    assert agent.generation_iterations == 5
    assert agent.max_perception_stages == 3


def test_percept_is_vision_then_prompt_tokens(agent: ARVLAAgent) -> None:
    cfg = agent.config
    percept = perceive_all(agent, Observation(0, 0.0, image(0)))
    assert percept.shape == (1, 16 + len(cfg.prompt_ids), cfg.lm.hidden_size)
    prompt = agent.token_embedding(agent.prompt_ids)
    assert torch.equal(percept[0, 16:], prompt)
    other = perceive_all(agent, Observation(1, 0.0, image(1)))
    assert not torch.allclose(percept[0, :16], other[0, :16])  # X_V depends on the image


@pytest.mark.parametrize("num_stages", [2, 3])
def test_split_perception_equals_one_stage(agent: ARVLAAgent, num_stages: int) -> None:
    obs = Observation(0, 0.0, {"image": image(5)})
    whole = perceive_all(agent, obs, 1)
    carry = agent.perceive(obs, 0, num_stages)
    # A real split: the first slice hands on vision hidden states (CLS included for CLIP), not the percept.
    assert carry.shape[-1] == agent.config.vision.hidden_size
    for stage in range(1, num_stages):
        carry = agent.perceive(carry, stage, num_stages)
    torch.testing.assert_close(carry, whole, rtol=0, atol=0)


def test_seq_decode_matches_full_recompute(llama_agent: ARVLAAgent) -> None:
    """KV-cache greedy decode = greedy over full forwards without a cache, one token at a time."""
    agent = llama_agent
    percept = perceive_all(agent, Observation(0, 0.0, image(2)))
    tokens = agent.generate_request(percept, 0).tokens
    expected = []
    x = percept
    with torch.inference_mode():
        for _ in range(agent.config.action_dims):
            hidden = agent.backbone(inputs_embeds=x, use_cache=False).last_hidden_state[:, -1:]
            token = agent.greedy_action_tokens(hidden)[0]
            expected.append(int(token))
            x = torch.cat([x, agent.token_embedding(token).unsqueeze(0)], dim=1)
    assert tokens == tuple(expected)
    assert all(t in agent.config.action_token_ids for t in tokens)


def test_static_cache_decode_equals_dynamic(agent: ARVLAAgent) -> None:
    cfg = agent.config
    static = ARVLAAgent(
        tiny_config(cfg.lm.model_type, "clip" if cfg.vision.model_type.startswith("clip") else "siglip", seq_cache="static"),
        agent.vision_tower, agent.projector, agent.lm,
    )
    for seed in (0, 1):
        percept = perceive_all(agent, Observation(seed, 0.0, image(seed)))
        assert static.generate_request(percept, seed).tokens == agent.generate_request(percept, seed).tokens


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.bfloat16, 1e-2)])
def test_causal_merge_invariant(llama_agent: ARVLAAgent, dtype: torch.dtype, atol: float) -> None:
    """Logits at position l+i from one forward over l+j tokens equal those of a forward over l+i tokens:
    the reason one forward per frame can serve every in-flight decode step (paper §2.2)."""
    agent = llama_agent
    backbone = agent.backbone.to(dtype)
    head = agent.head.to(dtype)
    try:
        generator = torch.Generator().manual_seed(7)
        context, j, d = 20, 7, agent.config.lm.hidden_size
        x = torch.randn(1, context + j, d, generator=generator).to(dtype)
        with torch.inference_mode():
            merged = head(backbone(inputs_embeds=x, use_cache=False).last_hidden_state).float()
            for i in range(j + 1):
                alone = head(backbone(inputs_embeds=x[:, : context + i], use_cache=False).last_hidden_state).float()
                torch.testing.assert_close(merged[:, : context + i], alone, rtol=0, atol=atol)
        # The invariant is not vacuous: the positions differ from one another.
        assert (merged[0, context - 1] - merged[0, context + j - 1]).abs().max() > 10 * atol
    finally:
        backbone.to(torch.float32)
        head.to(torch.float32)


def test_merged_generation_converges_to_kv_cache_decode(agent: ARVLAAgent) -> None:
    """Jacobi property: after frame k (every position refreshed), X_A[:k+1] equals the greedy decode."""
    l_a = agent.config.action_dims
    percept = perceive_all(agent, Observation(0, 0.0, image(11)))
    greedy = torch.tensor(agent.generate_request(percept, 0).tokens)
    history = run_frames(agent, percept, l_a, lambda frame: [GenerationStep(0, None, 0, l_a)])
    for frame, x_a in enumerate(history):
        assert torch.equal(x_a[: frame + 1], greedy[: frame + 1])
    assert torch.equal(history[-1], greedy)
    assert agent.finish(history[-1]).tokens == tuple(greedy.tolist())


def test_pipelined_requests_share_x_a(agent: ARVLAAgent) -> None:
    """l_a in-flight requests, request r at iteration r: one merged call serves all, and the shared X_A
    reaches the greedy decode after l_a frames just as with one request."""
    l_a = agent.config.action_dims
    percept = perceive_all(agent, Observation(0, 0.0, image(12)))
    greedy = torch.tensor(agent.generate_request(percept, 0).tokens)

    def steps(frame: int) -> list[GenerationStep]:
        return [GenerationStep(r, agent.init_request(r), r, r + 1) for r in range(l_a)]

    history = run_frames(agent, percept, l_a, steps)
    assert torch.equal(history[-1], greedy)
    result = agent.generate({PERCEPT_KEY: percept, ACTION_TOKENS_KEY: history[-1]}, steps(0))
    assert len(result.states) == l_a
    assert all(agent.finish(s).tokens == tuple(greedy.tolist()) for s in result.states)


def test_unserved_positions_keep_their_tokens(llama_agent: ARVLAAgent) -> None:
    agent = llama_agent
    percept = perceive_all(agent, Observation(0, 0.0, image(13)))
    x_a = torch.tensor([agent.config.action_token_ids[b] for b in (0, 1, 2, 3, 4)])
    result = agent.generate({PERCEPT_KEY: percept, ACTION_TOKENS_KEY: x_a}, [GenerationStep(0, None, 1, 3)])
    new = result.context_writes[ACTION_TOKENS_KEY]
    assert new[0] == x_a[0] and torch.equal(new[3:], x_a[3:])
    expected = agent.merged_action_tokens(percept, x_a, 3)
    assert torch.equal(new[1:3], expected[1:3])


def test_merged_generation_follows_the_newest_percept(llama_agent: ARVLAAgent) -> None:
    """When the image changes, X_A is recomputed on the new percept (public context), not the old one."""
    agent = llama_agent
    l_a = agent.config.action_dims
    old, new = (perceive_all(agent, Observation(s, 0.0, image(20 + s))) for s in (0, 1))

    def all_positions(frame: int) -> list[GenerationStep]:
        return [GenerationStep(0, None, 0, l_a)]

    context = {PERCEPT_KEY: old}
    for _ in range(l_a):
        context.update(agent.generate(context, all_positions(0)).context_writes)
    context[PERCEPT_KEY] = new
    for _ in range(l_a):
        context.update(agent.generate(context, all_positions(0)).context_writes)
    new_greedy = agent.generate_request(new, 0).tokens
    assert tuple(context[ACTION_TOKENS_KEY].tolist()) == new_greedy


def test_action_bins_map_tokens_to_bin_centres() -> None:
    bins = ActionBins(token_ids=range(100, 104), low=(-1.0, 0.0), high=(1.0, 4.0))
    np.testing.assert_allclose(bins.to_action([100, 103]), [-0.75, 3.5])
    assert bins.to_tokens([-0.75, 3.5]) == (100, 103)
    assert bins.mid_token == 102
    with pytest.raises(InputError, match="action token"):
        bins.to_action([100, 99])


def test_default_action_tokens_are_the_last_vocabulary_ids() -> None:
    cfg = tiny_config()
    assert cfg.action_token_ids == tuple(range(512 - 32, 512))


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.zeros((32, 32, 3), dtype=np.float32), "image dtype"),
        (np.zeros((32, 32, 4), dtype=np.uint8), "image shape"),
        (np.zeros((24, 32, 3), dtype=np.uint8), "image size"),
        ("not an image", "image type"),
        ({"depth": np.zeros((32, 32, 3), dtype=np.uint8)}, "observation data"),
    ],
)
def test_bad_images_raise_input_error(llama_agent: ARVLAAgent, bad, match: str) -> None:
    with pytest.raises(InputError, match=match):
        llama_agent.perceive(Observation(0, 0.0, bad), 0, 1)


def test_bad_percepts_and_tokens_raise_input_error(llama_agent: ARVLAAgent) -> None:
    agent = llama_agent
    percept = perceive_all(agent, Observation(0, 0.0, image(0)))
    nan = percept.clone()
    nan[0, 3, 5] = float("nan")
    with pytest.raises(InputError, match="percept values"):
        agent.generate_request(nan, 0)
    with pytest.raises(InputError, match="percept values"):
        agent.generate({PERCEPT_KEY: nan}, [GenerationStep(0, None, 0, 1)])
    with pytest.raises(InputError, match="percept shape"):
        agent.generate_request(percept[:, :-1], 0)
    with pytest.raises(InputError, match="public context"):
        agent.generate({}, [GenerationStep(0, None, 0, 1)])
    with pytest.raises(InputError, match="step iterations"):
        agent.generate({PERCEPT_KEY: percept}, [GenerationStep(0, None, 2, 9)])
    with pytest.raises(InputError, match="action tokens"):
        agent.generate({PERCEPT_KEY: percept, ACTION_TOKENS_KEY: torch.zeros(2, dtype=torch.long)}, [GenerationStep(0, None, 0, 1)])
    with pytest.raises(InputError, match="action token"):
        agent.finish(torch.zeros(5, dtype=torch.long))  # id 0 is no action token
    with pytest.raises(InputError, match="perception carry"):
        agent.perceive(torch.zeros(3), 1, 2)


def test_bad_configs_raise_config_error(llama_agent: ARVLAAgent) -> None:
    with pytest.raises(ConfigError, match="num_stages"):
        llama_agent.perceive(Observation(0, 0.0, image(0)), 0, 4)
    with pytest.raises(ConfigError, match="n_bins"):
        tiny_config(n_bins=1)
    with pytest.raises(ConfigError, match="action_low"):
        tiny_config(action_low=(0.0,) * 3)
    with pytest.raises(ConfigError, match="dtype"):
        tiny_config(dtype="int8")
    with pytest.raises(ConfigError, match="prompt_ids"):
        tiny_config(prompt_ids=(1, 10_000))
    with pytest.raises(ConfigError, match="lm"):
        tiny_config(lm="gpt2")


def test_mismatched_parts_raise_config_error(llama_agent: ARVLAAgent) -> None:
    from auras_ros.models.ar_vla import build_projector

    agent = llama_agent
    with pytest.raises(ConfigError, match="projector.out_features"):
        ARVLAAgent(agent.config, agent.vision_tower, build_projector(32, 48), agent.lm)
    with pytest.raises(ConfigError, match="projector.in_features"):
        ARVLAAgent(agent.config, agent.vision_tower, build_projector(16, 64), agent.lm)
