"""`make run`'s main job closes the loop for SEQ and Auras and prints the comparison."""

from __future__ import annotations

import subprocess
import sys


def test_main_job_runs_seq_then_auras_in_the_simulator() -> None:
    result = subprocess.run([sys.executable, "-m", "auras_ros.demo", "--episodes", "1", "--timeout", "120"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("| SEQ ") for line in lines), result.stdout
    assert any(line.startswith("| Auras (L=5)") for line in lines), result.stdout
    assert "of SEQ's success at" in lines[-1]
    assert "[SEQ] episode 100:" in result.stdout and "[Auras (L=5)] episode 100:" in result.stdout
