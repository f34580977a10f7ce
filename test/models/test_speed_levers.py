"""Speed levers of the AR agent: fused projections (models.fused) and a compiled merged forward decide
the same tokens as the plain agent; fused blocks are per thread (PAR's workers share the layers);
bad choices are refused clearly."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from auras_ros.core.errors import ConfigError
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.fused import FusedPart, FusedProjections, fuse_projections


def agents() -> tuple[ARVLAAgent, ARVLAAgent]:
    config = tiny_config(dtype="float32")
    return (ARVLAAgent.from_config(config, seed=4, graphs=True),
            ARVLAAgent.from_config(config, seed=4, graphs=True, projections="fused"))


def test_fused_projections_decide_the_same_tokens_through_seq_and_the_merged_path() -> None:
    torch.set_num_threads(1)
    plain, fused = agents()
    layers = plain.config.lm.num_hidden_layers
    assert sum(isinstance(m, FusedProjections) for m in fused.lm.modules()) == 2 * layers
    assert not any(isinstance(m, nn.Linear) and n.endswith(("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj"))
                   for n, m in fused.lm.named_modules())
    generator = torch.Generator().manual_seed(1)
    for k in range(4):
        image = torch.randint(0, 256, (plain.config.image_size,) * 2 + (3,), dtype=torch.uint8, generator=generator)
        p, f = (perceive_all(a, Observation(k, 0.0, image)) for a in (plain, fused))
        assert plain.generate_request(p, k).tokens == fused.generate_request(f, k).tokens
        x_a = plain.initial_action_tokens()
        l_a = plain.config.action_dims
        assert torch.equal(plain.merged_action_tokens(p, x_a, l_a), fused.merged_action_tokens(f, x_a, l_a))


def test_each_thread_gets_its_own_blocks() -> None:
    torch.manual_seed(0)
    linears = [nn.Linear(8, 4), nn.Linear(8, 6)]
    group = FusedProjections(linears)
    a, b = FusedPart(group, 0), FusedPart(group, 1)
    inputs = [torch.randn(3, 8) for _ in range(2)]
    barrier = threading.Barrier(2)
    results: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def run(k: int) -> None:
        first = a(inputs[k])
        barrier.wait()  # both threads hold a half-served input: neither may see the other's
        results[k] = (first, b(inputs[k]))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k in range(2):
        torch.testing.assert_close(results[k][0], linears[0](inputs[k]))
        torch.testing.assert_close(results[k][1], linears[1](inputs[k]))


def test_refusals_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="must share input size"):
        FusedProjections([nn.Linear(8, 4), nn.Linear(6, 4)])
    with pytest.raises(ConfigError, match="projections"):
        ARVLAAgent.from_config(tiny_config(), projections="int4")
    assert fuse_projections(nn.Sequential(nn.Linear(4, 4))) == 0  # nothing to fuse: nothing changed


def test_a_compiled_merged_forward_decides_the_same_tokens() -> None:
    torch.set_num_threads(1)
    config = tiny_config(dtype="float32")
    plain = ARVLAAgent.from_config(config, seed=4, graphs=True)
    compiled = ARVLAAgent.from_config(config, seed=4, graphs=True, compile=True)
    image = torch.randint(0, 256, (config.image_size,) * 2 + (3,), dtype=torch.uint8, generator=torch.Generator().manual_seed(2))
    p, c = (perceive_all(a, Observation(0, 0.0, image)) for a in (plain, compiled))
    x_a = plain.initial_action_tokens()
    for _ in range(config.action_dims):  # Jacobi frames on a fixed percept, as the merged path runs them
        expected = plain.merged_action_tokens(p, x_a, config.action_dims)
        assert torch.equal(compiled.merged_action_tokens(c, x_a, config.action_dims), expected)
        x_a = expected
