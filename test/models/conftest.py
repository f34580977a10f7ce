"""Shared fixtures of the model tests."""

from __future__ import annotations

from typing import Iterator

import pytest
import torch

from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny


def pytest_configure(config) -> None:
    # Tests over a real checkpoint take ~30-60 s on two cores; `-m "not slow"` skips them.
    config.addinivalue_line("markers", "slow: loads a real checkpoint or runs longer than a few seconds")


@pytest.fixture(scope="module")
def agent() -> DiffusionPolicyAgent:
    """The tiny diffusion agent (DDIM)."""
    return DiffusionPolicyAgent(tiny())


@pytest.fixture(scope="module")
def ddpm_agent() -> DiffusionPolicyAgent:
    # DDPM needs n_steps == train_timesteps; a short training schedule keeps the test fast.
    return DiffusionPolicyAgent(tiny(sampler="ddpm", n_steps=12, train_timesteps=12))


@pytest.fixture
def exact_fp32() -> Iterator[None]:
    """CUDA convolutions default to TF32 (10-bit mantissa); compare fp32 with fp32."""
    previous = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = previous
