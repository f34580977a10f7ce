"""The traced denoiser (models/traced.py) decides exactly what the eager one does on the CPU, one trace
per batch shape; a module a trace would misrepresent (a value read in Python) runs eagerly instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auras_ros.core.stages import perceive_all
from auras_ros.models.diffusion import DiffusionPolicyAgent
from auras_ros.models.traced import TracedModule
from test_diffusion import observation, run_pipeline

SHIPPED = Path(__file__).resolve().parents[2] / "auras_ros" / "eval" / "checkpoints" / "diffusion"


def decisions(agent: DiffusionPolicyAgent, trace: bool) -> tuple[list[np.ndarray], dict[int, np.ndarray]]:
    """Whole requests (the baselines' path) and a merged pipeline of 4 requests (Auras's), traced or not."""
    agent.trace = trace
    try:
        percept = perceive_all(agent, observation(agent.config, seed=3))
        whole = [agent.generate_request(percept, request_id).action for request_id in range(3)]
        merged, _ = run_pipeline(agent, percept, [10, 11, 12, 13], pp_generation=3, alpha=0.0)
        return whole, merged
    finally:
        agent.trace = True


@pytest.mark.parametrize("which", ["agent", "ddpm_agent"])
def test_traced_decisions_equal_eager_ones_bit_for_bit(which: str, request: pytest.FixtureRequest) -> None:
    agent = request.getfixturevalue(which)
    assert agent.trace  # on by default on the CPU
    (whole_eager, merged_eager), (whole_traced, merged_traced) = decisions(agent, False), decisions(agent, True)
    assert all(np.array_equal(a, b) for a, b in zip(whole_eager, whole_traced, strict=True))
    assert merged_eager.keys() == merged_traced.keys()
    assert all(np.array_equal(merged_eager[r], merged_traced[r]) for r in merged_eager)
    assert agent.traced_denoiser.refused is None
    # One trace per batch shape: 1 (whole requests) and the merged frames' 2 and 3 in flight at once.
    assert agent.traced_denoiser.traces == 3


@pytest.mark.slow
def test_the_shipped_checkpoint_decides_the_same_traced() -> None:
    agent = DiffusionPolicyAgent.load(SHIPPED)
    (whole_eager, merged_eager), (whole_traced, merged_traced) = decisions(agent, False), decisions(agent, True)
    assert all(np.array_equal(a, b) for a, b in zip(whole_eager, whole_traced, strict=True))
    assert all(np.array_equal(merged_eager[r], merged_traced[r]) for r in merged_eager)


class Branches(torch.nn.Module):
    """Takes a branch on a value read in Python: a trace would keep the branch of its first call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2 if bool(x.sum() > 0) else x - 5


def test_a_module_that_reads_a_value_in_python_runs_eagerly() -> None:
    module = TracedModule(Branches(), "branches")
    assert torch.equal(module(torch.ones(3)), torch.full((3,), 2.0))
    assert torch.equal(module(-torch.ones(3)), torch.full((3,), -6.0))  # the other branch: not frozen
    assert module.refused is not None and module.traces == 0


def test_one_trace_per_signature() -> None:
    module = TracedModule(torch.nn.Linear(4, 2), "linear")
    for batch in (1, 2, 1, 2, 3):
        x = torch.randn(batch, 4)
        assert torch.equal(module(x), module.module(x))
    assert module.traces == 3 and module.refused is None
