"""The static-buffer paths that run as CUDA graphs on a GPU compute what the eager agents compute.

On the CPU ``graphs=True`` runs the very buffers and calls that a GPU captures (only the capture is
skipped), so these tests hold the GPU path to the eager one through the shipped executors; the
CUDA-only test checks that capture itself succeeds and agrees."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auras_ros.core.clock import SimClock
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import Observation
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny
from auras_ros.models.graphs import GraphedFunction

SPECS = ["seq", "auras:1+2:f0:a0", "auras:1+3:f-1:a0", "auras:1+3:f0:a1.5"]
FRAMES = 10


class Camera:
    """A new image every frame, the same sequence for every run."""

    def __init__(self, size: int) -> None:
        rng = np.random.default_rng(0)
        self.images = [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(3)]
        self.seq = -1

    def latest(self, now: float) -> Observation:
        self.seq += 1
        return Observation(self.seq, now, self.images[self.seq % len(self.images)])


def twins(family: str, device: str = "cpu"):
    """The same weights as an eager agent and a static-buffer (graphs) agent."""
    if family == "ar":
        eager = ARVLAAgent.from_config(tiny_config("llama", "clip", device=device), seed=3, graphs=False)
        static = ARVLAAgent(eager.config, eager.vision_tower, eager.projector, eager.lm, graphs=True)
        return eager, static, eager.config.image_size
    config = tiny(device=device, state_dim=0, sampler=family.split("-")[1], n_steps=6, train_timesteps=6)
    eager = DiffusionPolicyAgent(config, graphs=False)
    return eager, DiffusionPolicyAgent(config, eager.model, graphs=True), config.image_size[0]


def decisions(agent, spec: str, size: int) -> list[np.ndarray]:
    runner = make_runner(ExecutorSpec.parse(spec), agent, Camera(size), SimClock(), frame_period=0.05)
    try:
        return [d.output.action for _ in range(FRAMES) for d in runner.step()]
    finally:
        runner.close()


@pytest.mark.parametrize("family", ["ar", "diffusion-ddim", "diffusion-ddpm"])
def test_static_buffers_decide_what_the_eager_agent_decides(family):
    torch.set_num_threads(1)
    eager, static, size = twins(family)
    for spec in SPECS:
        expected, got = decisions(eager, spec, size), decisions(static, spec, size)
        assert len(got) == len(expected) >= FRAMES - 4, spec
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=spec)


def test_graphed_function_keeps_one_slot_per_signature_and_returns_copies():
    calls = []

    def double(x: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return x * 2

    graphed = GraphedFunction(double, torch.device("cpu"))
    a = graphed(torch.ones(2))
    b = graphed(torch.full((2,), 3.0))
    c = graphed(torch.ones(3))
    assert a.tolist() == [2.0, 2.0] and b.tolist() == [6.0, 6.0] and c.tolist() == [2.0, 2.0, 2.0]
    assert calls == [(2,), (2,), (3,)]  # eager on the CPU: every call runs, on its signature's buffer
    assert len(graphed._local.entries) == 2 and graphed.errors == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: graph capture")
@pytest.mark.parametrize("family", ["ar", "diffusion-ddim"])
def test_cuda_graphs_capture_and_agree(family):
    eager, static, size = twins(family, device="cuda")
    for spec in SPECS[:2]:
        expected, got = decisions(eager, spec, size), decisions(static, spec, size)
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-4, err_msg=spec)
    errors = static.graph_errors() if family == "ar" else static._denoise_graph.errors
    assert errors == []
