"""`make run`'s main job closes the loop for SEQ and Auras and prints the comparison; in the frame world
(strict lockstep: the world waits for each decision) a second run repeats the first's episodes exactly.
In the real-time world with the target-reversal variant and overlaps it reports the chunk table of what
the world executed."""

from __future__ import annotations

import math
import re
import subprocess
import sys

# The table's columns that depend on the episodes only (not on this machine's speed).
EPISODE_COLUMNS = ("success", "frames to success", "age p50 (frames)", "age p99 (frames)")


def _demo() -> tuple[list[str], dict[str, dict[str, str]]]:
    result = subprocess.run([sys.executable, "-m", "auras_ros.demo", "--episodes", "1", "--timeout", "120"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    return lines, _table(lines, 0)


def _table(lines: list[str], index: int) -> dict[str, dict[str, str]]:
    """The ``index``-th Markdown table of the output, by its first column."""
    tables: list[list[list[str]]] = []
    for previous, line in zip([""] + lines, lines, strict=False):
        if line.startswith("|"):
            if not previous.startswith("|"):
                tables.append([])
            if line.startswith("| "):  # the Markdown rule starts "|-"
                tables[-1].append([cell.strip() for cell in line.strip("|").split("|")])
    header, *rows = tables[index]
    return {row[0]: dict(zip(header, row, strict=False)) for row in rows}


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


def test_realtime_reversal_with_overlaps_reports_the_chunk_metrics() -> None:
    rows = ("seq", "auras:1+4:f0:a0@ensemble")
    result = subprocess.run([sys.executable, "-m", "auras_ros.demo", "--world", "realtime", "--variant", "reverse",
                             "--overlap", "inpaint", "--chunk-timing", "observation", "--executors", *rows,
                             "--episodes", "1", "--seed", "70000", "--timeout", "120"],
                            capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert {"seq@inpaint", "auras:1+4:f0:a0@ensemble"} <= set(_table(lines, 0)), lines
    chunks = _table(lines, 1)
    assert set(chunks) == {"seq @ inpaint", "auras:1+4:f0:a0 @ ensemble"}, lines
    for label, row in chunks.items():
        assert row["episodes"] == "1", (label, row)
        seams = [float(v) for v in row["seam max ‖Δ‖ p50/p99"].split("/")]
        assert len(seams) == 2 and all(math.isfinite(v) and v >= 0 for v in seams), (label, row)
        assert math.isfinite(float(row["jerk p99 (1/s³)"])), (label, row)
        reacted = re.fullmatch(r"([01])/1", row["reacted"])  # the episode had its reversal
        assert reacted, (label, row)
        # A reaction time wherever the executor reacted (a frame count >= 1).
        assert reacted[1] == "0" or float(row["reaction p50 (frames)"]) >= 1, (label, row)
