"""The AR agent's compiled merged forward (the lever that took the 7B-shaped agent from 46 to 58
decisions/s on an H200) decides the same tokens as the plain one, and bench.gpu_profile, which
measures it, runs its whole code path here on the CPU with a tiny config."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from auras_ros.bench import gpu_profile
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ARVLAAgent


def test_a_compiled_merged_forward_decides_the_same_tokens() -> None:
    torch.set_num_threads(1)
    config = tiny_config(dtype="float32")
    plain = ARVLAAgent.from_config(config, seed=4, graphs=True)
    compiled = ARVLAAgent.from_config(config, seed=4, graphs=True, compile=True)
    generator = torch.Generator().manual_seed(2)
    image = torch.randint(0, 256, (config.image_size,) * 2 + (3,), dtype=torch.uint8, generator=generator)
    p, c = (perceive_all(a, Observation(0, 0.0, image)) for a in (plain, compiled))
    x_a = plain.initial_action_tokens()
    for _ in range(config.action_dims):  # Jacobi frames on a fixed percept, as the merged path runs them
        expected = plain.merged_action_tokens(p, x_a, config.action_dims)
        assert torch.equal(compiled.merged_action_tokens(c, x_a, config.action_dims), expected)
        x_a = expected


def test_gpu_profile_runs_tiny_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    assert gpu_profile.main(["--tiny", "--device", "cpu", "--calls", "3", "--decisions", "6", "--inputs", "3",
                             "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert list(result["variants"]) == ["plain", "compiled"]
    for row in result["variants"].values():
        assert row["merged_frame_ms"] > 0 and row["auras_decisions_per_s"] > 0
        assert row["merged_tokens"] == 16 + 6 + 5 - 1  # n_v + n_l + l_a - 1
        assert row["graph_captures"] == "0 captured, 0 fell back to eager"  # no capture on the CPU
    parts = result["variants"]["plain"]["eager_forward_ms"]
    assert parts["projections (GEMMs)"] > 0 and parts["attention core"] > 0
    assert parts["whole forward"] >= parts["projections (GEMMs)"] + parts["attention core"]
    assert "eager_forward_ms" not in result["variants"]["compiled"]  # hooks would recompile it
    assert result["variants"]["plain"]["tokens_changed"] == 0.0  # the reference itself
    assert 0.0 <= result["variants"]["compiled"]["tokens_changed"] <= 1.0
    assert result["attention"]["lm"] in {"sdpa", "eager", "flash_attention_2"}
