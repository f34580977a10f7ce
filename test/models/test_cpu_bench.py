"""The CPU model benchmark runs end to end on the tiny configs through the shipped runners and prints
the promised table (no timing checks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from auras_ros.bench.cpu_models import main


def test_bench_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:
        assert main(["--tiny", "--decisions", "3", "--repeats", "2", "--L", "2", "3", "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # the bench sets it for the whole process
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| family"))
    assert lines[header].startswith("| family | executor | L | decisions/s | x SEQ |")
    body = [line.split(" | ") for line in lines[header + 2:] if line.startswith("|")]
    assert [(cells[0], cells[1]) for cells in body] == [
        (f"| {family}", executor) for family, fetch in (("diffusion", 0), ("ar", -1))
        for executor in ("seq", "dec", "par:2", "par:4", f"auras:1+1:f{fetch}:a0", f"auras:1+2:f{fetch}:a0")]
    rows = json.loads(out.read_text())["rows"]
    for row in rows:
        rate = row["decisions_per_s"]
        assert rate["repeats"] == 2 and rate["median"] > 0 and math.isfinite(row["interval_cv"]["median"])


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--L", "1"])
    with pytest.raises(SystemExit):
        main(["--executors", "auras:1"])
