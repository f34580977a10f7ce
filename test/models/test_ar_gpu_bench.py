"""The GPU benchmark's code path, run on CPU with tiny configs (and the static-shape buffers the GPU
captures) so that it works first time on a GPU."""

from __future__ import annotations

import json
import math
from pathlib import Path

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
