"""tools/cuda_machine.sh, the one command for a bare CUDA machine, checked on the CPU by its dry run:
it refuses a missing or wrong wheel folder with what to do, and plans every step in order."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "cuda_machine.sh"


def dry_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), "run", "--dry-run", *args], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PY=sys.executable, **env))


def test_dry_run_plans_every_step_in_order_and_writes_nothing(tmp_path: Path) -> None:
    wheels = tmp_path / "whl"
    wheels.mkdir()
    (wheels / "ros_rclpy-7.1.6-cp312-cp312-manylinux_2_28_x86_64.whl").touch()
    results = tmp_path / "results"
    done = dry_run(str(wheels), str(results), BENCH_ARGS="--repeats 2")
    assert done.returncode == 0, done.stderr
    plan = [line for line in done.stdout.splitlines() if line.startswith("[dry-run]")]
    names = [line.split(" (limit")[0].removeprefix("[dry-run] ") for line in plan]
    assert names == ["install ROS 2 wheels", "colcon build", "CUDA tests", "gpu_models", "gpu_profile", "gpu_models compiled"]
    tests, models = plan[2], plan[3]
    assert "-m pytest" in tests and "-m cuda" in tests and "test/models/test_graphs.py" in tests
    assert "test/models/test_diffusion.py" in tests and "test/transport/test_roundtrip.py" in tests
    assert "auras_ros.bench.gpu_models --nodes" in models and models.endswith("--repeats 2")
    assert f"--json {results}/gpu_models.json" in models and "--compile" in plan[5]
    assert not results.exists()


def test_a_missing_or_foreign_wheel_folder_is_refused_with_what_to_do(tmp_path: Path) -> None:
    done = dry_run(str(tmp_path / "nowhere"))
    assert done.returncode == 2 and "does not exist: make it with 'tools/cuda_machine.sh wheels DIR'" in done.stderr
    done = dry_run(str(tmp_path))
    assert done.returncode == 2 and "has no cp312 ros_rclpy wheel" in done.stderr
