"""The shipped checkpoints load with the adapters' local loaders and act finitely on a task image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auras_ros.core.stages import perceive_all
from auras_ros.eval.closed_loop import CHECKPOINTS, load_policy
from auras_ros.eval.task import CatchTask


@pytest.mark.parametrize("policy", ["diffusion", "ar"])
def test_shipped_checkpoint_loads_and_acts(policy):
    if not (CHECKPOINTS / policy).is_dir():
        pytest.skip(f"no shipped checkpoint at {CHECKPOINTS / policy}")
    torch.set_num_threads(1)
    agent, rows = load_policy(policy)
    task = CatchTask()
    obs = task.reset(0)
    task.close()
    output = agent.generate_request(perceive_all(agent, obs), request_id=0)
    chunk = np.asarray(output.action).reshape(-1, 2)
    assert len(chunk) >= rows >= 1
    assert np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0 + 1e-6)


def test_checkpoints_are_small():
    files = [f for f in CHECKPOINTS.rglob("*") if f.is_file()]
    if not files:
        pytest.skip("no shipped checkpoints")
    assert sum(f.stat().st_size for f in files) <= 20e6
