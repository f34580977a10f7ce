"""The GPU benchmark's code path, run on CPU with tiny configs (and the static-shape buffers the GPU
captures) so that it works first time on a GPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from auras_ros.bench import gpu_models


def test_gpu_bench_runs_tiny_on_cpu(tmp_path: Path, capsys) -> None:
    out = tmp_path / "gpu_models.json"
    code = gpu_models.main(["--tiny", "--device", "cpu", "--graphs", "on", "--decisions", "4", "--repeats", "2",
                            "--ls", "2", "3", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    rows = {(r["family"], r["executor"]): r for r in report["rows"]}
    expected = {"ar": ["seq", "dec", "par:2", "par:4", "auras:1+1:f-1:a0", "auras:1+2:f-1:a0"],
                "diffusion": ["seq", "dec", "par:2", "par:4", "auras:1+1:f0:a0", "auras:1+2:f0:a0"]}
    assert sorted(rows) == sorted((family, e) for family, executors in expected.items() for e in executors)
    for row in rows.values():
        assert row["note"] == "", row
        rate = row["decisions_per_s"]
        assert rate["repeats"] == 2 and math.isfinite(rate["median"]) and rate["low"] <= rate["median"] <= rate["high"]
    assert any("graphs True" in note for note in report["notes"])  # the static-buffer path ran
    assert "| ar | auras:1+2:f-1:a0 | 3 |" in capsys.readouterr().out  # the table was printed


def test_gpu_bench_runs_each_executor_through_the_composed_nodes(tmp_path: Path, capfd) -> None:
    # capfd, not capsys: the EventsExecutor enables faulthandler, which needs sys.stderr's file descriptor.
    """--nodes: the same executor, agent and images through the ROS graph users launch, beside the core's run."""
    out = tmp_path / "gpu_models.json"
    code = gpu_models.main(["--tiny", "--device", "cpu", "--families", "ar", "--executors", "auras:1+2:f-1:a0",
                            "--decisions", "5", "--repeats", "1", "--nodes", "--json", str(out)])
    assert code == 0
    rows = {r["executor"]: r for r in json.loads(out.read_text())["rows"]}
    assert sorted(rows) == ["auras:1+2:f-1:a0", "seq"]
    for row in rows.values():
        assert row["note"] == "", row
        nodes, ratio = row["nodes_decisions_per_s"], row["nodes_x_core"]
        assert nodes["repeats"] == 1 and nodes["median"] > 0  # actions arrived through the nodes
        assert math.isclose(ratio["median"], nodes["median"] / row["decisions_per_s"]["median"])
    assert "| ar | auras:1+2:f-1:a0 |" in capfd.readouterr().out.split("nodes / core")[1]  # the nodes table


OPENVLA = Path(__file__).resolve().parents[1] / "data" / "openvla_tiny"


def test_gpu_bench_measures_a_checkpoint_directory(tmp_path: Path) -> None:
    """--model: an OpenVLA checkpoint with its instruction and dataset key, SEQ against Auras, and what the
    load cost (the line a 7B checkpoint's bf16 load is judged by)."""
    out = tmp_path / "gpu_models.json"
    code = gpu_models.main(["--model", str(OPENVLA / "checkpoint"), "--instruction", "pick up the red block",
                            "--unnorm-key", "tiny_a", "--device", "cpu", "--decisions", "3", "--repeats", "1",
                            "--executors", "seq", "auras:1+3:f-1:a0", "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert [(r["family"], r["executor"]) for r in report["rows"]] == [("model", "seq"), ("model", "auras:1+3:f-1:a0")]
    assert all(r["note"] == "" and math.isfinite(r["decisions_per_s"]["median"]) for r in report["rows"])
    described = report["notes"][0]
    assert "OpenVLAAgent, 7 generation iterations" in described and "peak host RSS" in described


def test_gpu_bench_of_a_checkpoint_skips_in_one_line_without_a_gpu(capsys) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the bench would run")
    assert gpu_models.main(["--model", str(OPENVLA / "checkpoint"), "--instruction", "pick up the red block"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [out[0]] and out[0].startswith("gpu_models: no CUDA device: --model") and "skipped" in out[0]


def test_gpu_bench_load_only_loads_in_the_dtype_asked(capsys) -> None:
    """--load-only --dtype bfloat16: the no-fp32-copy check of a real-size checkpoint, on the CPU too."""
    assert gpu_models.main(["--model", str(OPENVLA / "checkpoint"), "--instruction", "pick up the red block",
                            "--unnorm-key", "tiny_a", "--device", "cpu", "--dtype", "bfloat16", "--load-only"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "OpenVLAAgent" in out[0] and "peak host RSS" in out[0] and "bfloat16" in out[0], out
