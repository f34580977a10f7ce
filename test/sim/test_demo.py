"""`make run`'s main job closes the loop for SEQ and Auras and prints the comparison."""

from __future__ import annotations

import subprocess
import sys


def test_main_job_runs_seq_then_auras_in_the_simulator() -> None:
    result = subprocess.run([sys.executable, "-m", "auras_ros.demo", "--episodes", "1", "--timeout", "120"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    rows = {line.split("|")[1].strip(): line for line in lines if line.startswith("| ")}
    assert {"seq", "auras:1+4:f0:a0"} <= set(rows), result.stdout
    assert "auras:1+4:f0:a0 / seq:" in lines[-1] and "of seq's success at" in lines[-1], result.stdout
    assert any(line.split()[:3] == ["seq", "seeds", "100..100:"] for line in lines), result.stdout
