"""The CPU model benchmark runs end to end on the tiny configs and prints the promised table (no timing checks)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from auras_ros.bench.cpu_models import TABLE_COLUMNS, FAMILIES, format_table, main, pending_row


def test_bench_table_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    families = ["diffusion"]
    try:
        import transformers  # noqa: F401

        families.append("ar")
    except ImportError:
        pass
    out = tmp_path / "bench.json"
    threads = torch.get_num_threads()
    try:
        assert main(["--tiny", "--decisions", "3", "--L", "2", "3", "--families", *families, "--json", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)  # the bench sets it for the whole process
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| family"))
    assert lines[header] == "| " + " | ".join(TABLE_COLUMNS) + " |"
    body = [line.split(" | ") for line in lines[header + 2:] if line.startswith("|")]
    expected = ["SEQ", "DEC", "PAR(2)", "PAR(4)"]
    for family in families:
        executors = [cells[1] for cells in body if cells[0] == f"| {family}"]
        assert executors[:4] == expected
        assert [e.split(" ")[0] for e in executors[4:]] == ["Auras", "Auras"]
        offset = FAMILIES[family].fetch_offset
        assert executors[4:] == [f"Auras (1+1, fetch {offset})", f"Auras (1+2, fetch {offset})"]

    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 6 * len(families)
    for row in rows:
        assert row["decisions_per_s"] > 0 and math.isfinite(row["interval_cv"])
    seq = [row for row in rows if row["executor"] == "SEQ"]
    assert all(row["x_seq"] == 1.0 for row in seq)
    auras = [row for row in rows if row["executor"].startswith("Auras")]
    assert sorted({row["in_flight_limit"] for row in auras}) == [2, 3]


def test_pending_family_is_marked_in_the_table() -> None:
    table = format_table([pending_row("ar", "not runnable here (No module named 'transformers')")])
    assert "| ar | (pending): not runnable here" in table
    assert table.splitlines()[2].count("|") == len(TABLE_COLUMNS) + 1


def test_bad_arguments() -> None:
    with pytest.raises(SystemExit):
        main(["--L", "1"])
