"""The demo's command line and its paired report (the closed-loop runs themselves are the demo's job:
`make run`, and the commands in the README)."""

from __future__ import annotations

import pytest

from auras_ros import demo
from auras_ros.core.spec import ExecutorSpec


def test_executors_are_read_in_the_spec_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.executor_arg("auras:2+3:f-1:a0.5") == ExecutorSpec("auras", 2, 3, -1, 0.5)
    with pytest.raises(SystemExit) as exit_info:
        demo.main(["--executors", "seq", "auras:0+2"])
    assert exit_info.value.code == 2
    assert "auras:P+G" in capsys.readouterr().err


def test_speed_is_refused_in_the_frame_stepped_world(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--speed", "3"])
    assert "--speed is for the realtime world" in capsys.readouterr().err


def test_report_pairs_episodes_by_seed(capsys: pytest.CaptureFixture[str]) -> None:
    seq, auras = demo.Results(ExecutorSpec("seq")), demo.Results(ExecutorSpec("auras", 1, 4))
    # Blocks arrive in any order; the pairing is by seed.
    seq.add_block([{"seed": s, "success": s % 2 == 0, "success_frame": 20} for s in range(4)], [0.0, 1.0], [0.05])
    auras.add_block([{"seed": s, "success": True, "success_frame": 30} for s in (3, 2)], [0.0, 0.5], [0.0])
    auras.add_block([{"seed": s, "success": True, "success_frame": 30} for s in (1, 0)], [0.0, 0.5], [0.0])
    demo.report([seq, auras])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| auras:1+4"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["100%", "0.51–1.00"] and cells[3] == "200%"
    assert "auras:1+4:f0:a0 / seq: 200% of seq's success at 2.00x decisions per second" in out


def test_ratios_to_a_baseline_that_never_succeeded_read_n_a(capsys: pytest.CaptureFixture[str]) -> None:
    seq, auras = demo.Results(ExecutorSpec("seq")), demo.Results(ExecutorSpec("auras", 1, 4))
    seq.add_block([{"seed": s, "success": False, "success_frame": None} for s in range(2)], [0.0, 1.0], [0.05])
    auras.add_block([{"seed": s, "success": s == 0, "success_frame": 30 if s == 0 else None} for s in range(2)],
                    [0.0, 0.5], [0.0])
    demo.report([seq, auras])
    out = capsys.readouterr().out
    assert "nan" not in out, out
    assert "success 50% (seq none)" in out
    assert out.count("n/a") >= 3  # seq's frames to success, auras's ratio and its interval
