"""FP8 projections (models.fp8): close to the bf16 product, refused for shapes _scaled_mm cannot take,
kept in float8 inside an agent, and measured by bench.gpu_profile (its code path runs here on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch import nn

from auras_ros.bench import gpu_profile
from auras_ros.core.stages import Observation, perceive_all
from auras_ros.models.ar_config import tiny_config
from auras_ros.models.ar_vla import ARVLAAgent
from auras_ros.models.fp8 import E4M3, FP8Linear, use_fp8_linears


@pytest.mark.parametrize("rows", [1, 16, 23])
def test_fp8_linear_is_close_to_the_bf16_product_for_any_number_of_rows(rows: int) -> None:
    torch.manual_seed(0)
    linear = nn.Linear(64, 48, bias=True).to(torch.bfloat16)
    x = torch.randn(2, rows, 64, dtype=torch.bfloat16)
    expected, got = linear(x).float(), FP8Linear(linear)(x)
    assert got.shape == (2, rows, 48) and got.dtype == torch.bfloat16
    assert ((got.float() - expected).norm() / expected.norm()).item() < 0.08  # e4m3: ~3 significant bits


def test_fp8_refuses_a_weight_whose_sizes_are_not_multiples_of_16() -> None:
    with pytest.raises(ValueError, match=r"weight \(10, 64\) needs both sizes divisible by 16"):
        FP8Linear(nn.Linear(64, 10))


def test_an_fp8_agent_keeps_float8_weights_and_decides_close_to_bf16() -> None:
    torch.set_num_threads(1)
    config = tiny_config(dtype="bfloat16")
    bf16 = ARVLAAgent.from_config(config, seed=2, graphs=True)
    expected = [bf16.generate_request(perceive_all(bf16, Observation(0, 0.0, image)), 0).tokens
                for image in images(config.image_size)]
    fp8 = ARVLAAgent.from_config(config, seed=2, graphs=True, projections="fp8")
    linears = [m for m in fp8.lm.base_model.modules() if isinstance(m, FP8Linear)]
    assert len(linears) == 7 * config.lm.num_hidden_layers and all(m.weight.dtype == E4M3 for m in linears)
    got = [fp8.generate_request(perceive_all(fp8, Observation(0, 0.0, image)), 0).tokens
           for image in images(config.image_size)]
    same = sum(a == b for e, g in zip(expected, got) for a, b in zip(e, g))
    assert same >= 0.6 * sum(len(e) for e in expected)  # random weights: close, not equal


def images(size: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(0, 256, (size, size, 3), dtype=torch.uint8, generator=generator) for _ in range(4)]


def test_use_fp8_linears_counts_what_it_replaced() -> None:
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Sequential(nn.Linear(32, 16)))
    assert use_fp8_linears(model) == 2 and isinstance(model[2][0], FP8Linear)


def test_gpu_profile_runs_tiny_on_cpu(tmp_path: Path) -> None:
    path = tmp_path / "profile.json"
    assert gpu_profile.main(["--tiny", "--device", "cpu", "--calls", "3", "--decisions", "6", "--inputs", "3",
                             "--variants", "plain", "fused", "fp8", "--json", str(path)]) == 0
    result = json.loads(path.read_text())
    assert list(result["variants"]) == ["plain", "fused", "fp8"]
    for row in result["variants"].values():
        assert row["merged_frame_ms"] > 0 and row["auras_decisions_per_s"] > 0
        assert row["merged_tokens"] == 16 + 6 + 5 - 1  # n_v + n_l + l_a - 1
        parts = row["eager_forward_ms"]
        assert parts["projections (GEMMs)"] > 0 and parts["attention core"] > 0
        assert parts["whole forward"] >= parts["projections (GEMMs)"] + parts["attention core"]
    assert result["variants"]["plain"]["tokens_changed"] == 0.0  # the reference itself
    assert 0.0 <= result["variants"]["fp8"]["tokens_changed"] <= 1.0
    assert result["attention"]["lm"] in {"sdpa", "eager", "flash_attention_2"}
