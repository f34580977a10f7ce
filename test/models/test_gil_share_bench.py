"""The GIL benchmark runs end to end on the shipped checkpoint and prints its table (no timing checks),
and leaves the interpreter's switch interval as it found it."""

from __future__ import annotations

import sys

import pytest
import torch

from auras_ros.bench.gil_share import main


def test_table_rows_per_switch_interval(capsys: pytest.CaptureFixture[str]) -> None:
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    try:
        main(["--requests", "3", "--repeats", "1", "--switch-intervals", "0.005", "0.02", "--camera-hz", "200"])
    finally:
        torch.set_num_threads(threads)  # the bench sets it for the whole process
    assert sys.getswitchinterval() == interval
    lines = capsys.readouterr().out.splitlines()
    header = lines.index("| denoiser | switch interval | request alone (ms) | with perception beside it (ms) | added (ms) "
                         "| ratio |")
    rows = [line.split(" | ") for line in lines[header + 2:] if line.startswith("|")]
    assert [(row[0], row[1]) for row in rows] == [("| eager", "5 ms"), ("| eager", "20 ms"), ("| traced", "5 ms"),
                                                  ("| traced", "20 ms")]
    assert all(float(row[2].split()[0]) > 0 and float(row[3].split()[0]) > 0 for row in rows)


@pytest.mark.parametrize("argv", [["--requests", "2"], ["--camera-hz", "0"], ["--switch-intervals", "0"]])
def test_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        main(argv)
