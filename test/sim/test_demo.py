"""`make run`'s main job closes the loop for SEQ and Auras and prints the comparison; in the frame world
(strict lockstep: the world waits for each decision) a second run repeats the first's episodes exactly."""

from __future__ import annotations

import subprocess
import sys

# The table's columns that depend on the episodes only (not on this machine's speed).
EPISODE_COLUMNS = ("success", "frames to success", "age p50 (frames)", "age p99 (frames)")


def _demo() -> tuple[list[str], dict[str, dict[str, str]]]:
    result = subprocess.run([sys.executable, "-m", "auras_ros.demo", "--episodes", "1", "--timeout", "120"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    table = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| ")]
    header, rows = table[0], table[1:]  # the Markdown rule starts "|-", not "| "
    return lines, {row[0]: dict(zip(header, row, strict=False)) for row in rows}


def test_main_job_runs_seq_then_auras_in_the_simulator_and_repeats_exactly() -> None:
    lines, rows = _demo()
    assert {"seq", "auras:1+4:f0:a0"} <= set(rows), lines
    assert "auras:1+4:f0:a0 / seq:" in lines[-2] and "of seq's success at" in lines[-2], lines
    # The machine it ran on, beside the table: its CPUs and SEQ's decision latency on it.
    assert lines[-1].startswith("Machine: ") and "SEQ decision latency in-process on this machine: p50" in lines[-1]
    assert any(line.split()[:3] == ["seq", "seeds", "100..100:"] for line in lines), lines
    _, again = _demo()
    for executor, row in rows.items():
        assert {c: row[c] for c in EPISODE_COLUMNS} == {c: again[executor][c] for c in EPISODE_COLUMNS}, executor
