"""The shipped checkpoints load through the one loader, act finitely on a task image, and the
diffusion policy does its job: it catches the target, frame-stepped under SEQ."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import perceive_all
from auras_ros.eval.episodes import run_episode
from auras_ros.eval.policies import CHECKPOINTS, load_policy
from auras_ros.eval.task import CatchTask


@pytest.mark.parametrize("policy", ["diffusion", "ar"])
def test_shipped_checkpoint_loads_and_acts(policy):
    torch.set_num_threads(1)
    agent = load_policy(policy)
    task = CatchTask()
    obs = task.reset(0)
    task.close()
    output = agent.generate_request(perceive_all(agent, obs), request_id=0)
    chunk = np.asarray(output.action).reshape(-1, 2)
    assert len(chunk) >= agent.chunk_rows >= 1
    assert np.all(np.isfinite(chunk)) and np.all(np.abs(chunk) <= 1.0 + 1e-6)


def test_shipped_diffusion_policy_catches_the_target():
    """Seeds 0-3 (the evaluation's first seeds, where SEQ succeeded in the shipped results); the
    idle agent fails every one of them (test_closed_loop), so success here is the policy's doing."""
    torch.set_num_threads(1)
    agent = load_policy("diffusion")
    task = CatchTask()
    try:
        results = [run_episode(agent, ExecutorSpec("seq"), task, seed, agent.chunk_rows) for seed in range(4)]
    finally:
        task.close()
    assert [r.success for r in results] == [True] * 4


def test_checkpoints_are_small():
    files = [f for f in CHECKPOINTS.rglob("*") if f.is_file()]
    assert files, f"no shipped checkpoints under {CHECKPOINTS}"
    assert sum(f.stat().st_size for f in files) <= 20e6
