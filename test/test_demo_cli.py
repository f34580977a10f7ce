"""The demo's command line and its paired report (the closed-loop runs themselves are the demo's job:
`make run`, and the commands in the README)."""

from __future__ import annotations

import pytest

from auras_ros import demo
from auras_ros.core.spec import ExecutorSpec, Row


def test_executors_are_read_in_the_spec_text_form(capsys: pytest.CaptureFixture[str]) -> None:
    args = demo.checked(demo.build_parser(), demo.build_parser().parse_args(
        ["--executors", "seq", "auras:2+3:f-1:a0.5@ensemble", "async", "--overlap", "blend"]))
    assert args.rows == [Row(ExecutorSpec("seq"), "blend"), Row(ExecutorSpec("auras", 2, 3, -1, 0.5), "ensemble"),
                         Row(ExecutorSpec("async"), "blend")]
    # What each row's chunks play under, as the world, the action node and the tables name it.
    assert [r.played for r in args.rows] == ["blend", "ensemble", "weighted_average"]
    assert [str(r) for r in args.rows] == ["seq@blend", "auras:2+3:f-1:a0.5@ensemble", "async:0.5:weighted_average@blend"]
    for bad, said in ((["auras:0+2"], "auras:P+G"), (["seq@zigzag"], "'zigzag'"), (["seq", "seq@replace"], "twice")):
        with pytest.raises(SystemExit) as exit_info:
            demo.main(["--executors", *bad])
        assert exit_info.value.code == 2
        assert said in capsys.readouterr().err


def test_default_rows_keep_their_executor_labels() -> None:
    args = demo.checked(demo.build_parser(), demo.build_parser().parse_args([]))
    assert [str(r) for r in args.rows] == ["seq", "auras:1+4:f0:a0"]
    assert demo.agent_params(args.rows[1], args)["overlap"] == "replace"
    assert demo.sim_params(args.rows[1], 100, 1, args)["chunk_timing"] == "arrival"


def test_speed_is_refused_in_the_frame_stepped_world(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        demo.main(["--speed", "3"])
    assert "--speed is for the realtime world" in capsys.readouterr().err


def test_report_pairs_episodes_by_seed(capsys: pytest.CaptureFixture[str]) -> None:
    seq, auras = demo.Results(Row(ExecutorSpec("seq"))), demo.Results(Row(ExecutorSpec("auras", 1, 4)))
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
    seq, auras = demo.Results(Row(ExecutorSpec("seq"))), demo.Results(Row(ExecutorSpec("auras", 1, 4)))
    seq.add_block([{"seed": s, "success": False, "success_frame": None} for s in range(2)], [0.0, 1.0], [0.05])
    auras.add_block([{"seed": s, "success": s == 0, "success_frame": 30 if s == 0 else None} for s in range(2)],
                    [0.0, 0.5], [0.0])
    demo.report([seq, auras])
    out = capsys.readouterr().out
    assert "nan" not in out, out
    assert "success 50% (seq none)" in out
    assert out.count("n/a") >= 3  # seq's frames to success, auras's ratio and its interval


def test_report_gives_the_chunk_table_of_what_the_world_measured(capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import asdict

    from auras_ros.eval.seams import ChunkMetrics

    seq, auras = demo.Results(Row(ExecutorSpec("seq"))), demo.Results(Row(ExecutorSpec("auras", 1, 4), "ensemble"))
    # What sim_node's scores carry: the metrics of the commands it executed (eval.world).
    commands = [[0.0, 0.0], [0.5, 0.0], [0.5, 0.0], [-0.5, 0.0], [-0.5, 0.0]]
    metrics = ChunkMetrics.of(commands, [None, 0, 0, 1, 1], 0.05, reversal_frame=2, reversal_velocity=[-1.0, 0.0])
    for result in (seq, auras):
        result.add_block([{"seed": 7, "success": True, "success_frame": 30, "chunks": asdict(metrics)}], [0.0, 1.0],
                         [0.05])
    demo.report([seq, auras])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| auras:1+4:f0:a0 @ ensemble"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # One episode: its one seam of 1.0, reacting 1 frame after the reversal at step 2.
    assert cells[1] == "1" and cells[4] == "1.000/1.000" and cells[6] == "1.0" and cells[7] == "1/1", cells
    assert "| auras:1+4:f0:a0@ensemble " in out  # the first table names the row in its text form


@pytest.mark.parametrize("chunk_rows", [1, 4])
def test_the_gate_plays_the_worlds_chunks_to_their_end(chunk_rows: int) -> None:
    """The demo tells the gate each action is a chunk of the world's rows, so SEQ's chunk is not stopped
    mid-way once its observation is older than max_observation_age (the core's world never stops it)."""
    from auras_ros.core.safety import ROW, STOP, GateConfig, SafetyGate
    from auras_ros.eval.actuation import ROW_WIDTH

    args = demo.checked(demo.build_parser(), demo.build_parser().parse_args(
        ["--world", "realtime", "--speed", "3", "--chunk-rows", str(chunk_rows)]))
    params = demo.agent_params(args.rows[0], args)
    assert params["row_width"] == (ROW_WIDTH if chunk_rows > 1 else 0)
    gate = SafetyGate(GateConfig(row_width=params["row_width"], chunk_period=params["chunk_period"]))
    period = params["chunk_period"]
    chunk = [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.4]  # 4 rows of (vx, vy)
    gate.offer(chunk, observation_stamp=0.0, now=period)  # one frame old on arrival
    kinds = [(c.kind if (c := gate.tick(period * (1 + k))) else None) for k in range(1, 4)]
    # Rows 1..3 play at 2, 3 and 4 periods: by the last the observation is 0.2 s old.
    if chunk_rows > 1:
        assert kinds == [ROW, ROW, ROW]
    else:  # the whole action is one row: the watchdog's age limit ends it
        assert STOP in kinds


def test_noise_scale_reaches_the_generation_nodes_parameters(capsys: pytest.CaptureFixture[str]) -> None:
    parser = demo.build_parser()
    default = demo.checked(parser, parser.parse_args([]))
    assert demo.agent_params(default.rows[0], default)["noise_scale"] == 1.0
    args = demo.checked(parser, parser.parse_args(["--noise-scale", "0"]))
    assert demo.agent_params(args.rows[1], args)["noise_scale"] == 0.0
    for bad in ("-1", "nan", "zero"):
        with pytest.raises(SystemExit) as exit_info:
            demo.main(["--noise-scale", bad])
        assert exit_info.value.code == 2
        assert f"invalid noise scale {bad!r}" in capsys.readouterr().err
