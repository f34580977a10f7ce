"""The timed bag replay (``bag_eval --timed``, :mod:`auras_ros.eval.bag_timed`): the bag's camera and the
executors in wall time, one played command per replayed frame, the seams measured on those commands,
and bad input refused in one line. Nothing here judges how fast the machine is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from auras_ros.core.inputs import input_spec
from auras_ros.core.metrics import Decision
from auras_ros.core.spec import parse_row
from auras_ros.core.stages import AgentOutput
from auras_ros.core.workload import SyntheticAgent
from auras_ros.eval import bag_eval
from auras_ros.eval.actuation import ROW_WIDTH, ChunkExecutor, ClockedChunks, action_chunk
from auras_ros.eval.bag import SIM_TOPIC_MAP, check_bag
from auras_ros.eval.bag_timed import OPEN_LOOP_NOTE, evaluate_timed
from auras_ros.eval.seams import ChunkMetrics, seam_jumps

BAG = Path(__file__).resolve().parents[1] / "data" / "catch_small"  # 44 camera frames, 50 ms apart, a reference
ROWS = ("seq", "async", "auras:1+2@ensemble")


def test_every_row_plays_one_command_per_frame_and_its_seams_come_from_those_commands() -> None:
    info = check_bag(BAG, SIM_TOPIC_MAP)
    agent = SyntheticAgent()
    period = info.frame_period
    runs = evaluate_timed(info, agent, [parse_row(text) for text in ROWS], input_spec(agent), period, speed=2.0,
                          timing="observation", width=ROW_WIDTH, warmup=False)
    assert len(runs) == len(ROWS)
    for label, (run,) in runs.items():
        assert run.frames == info.images == len(run.commands) == len(run.sources), label
        assert run.records, f"{label}: no decision in the timed replay"
        # The seams and the jerk are those of the played trace.
        expected = ChunkMetrics.of(run.commands, run.sources, period)
        assert (run.metrics.seams, run.metrics.jerk_p99) == (expected.seams, expected.jerk_p99), label
        assert run.seams == seam_jumps(run.commands, run.sources), label
        # Every played command is a row of a decision's chunk; one per frame from the first chunk on is scored.
        chunks = {r.request_id: action_chunk(r.action) for r in run.records}
        played = [(c, s) for c, s in zip(run.commands, run.sources, strict=True) if s is not None]
        assert played and len(run.errors) == len(played), label
        if "@ replace" in label:  # under replace a command is its chunk's own row (ensemble mixes rows)
            for command, source in played:
                assert any(np.array_equal(command, row) for row in chunks[source]), (label, source, command)
        # Ages are bag time: the decision's time on the bag clock minus its image's stamp, never negative.
        assert all(r.age >= 0 for r in run.records), label


def _decision(request_id: int, action: list[float]) -> Decision:
    return Decision(request_id, AgentOutput(np.array(action)), 0, 0.0, (0.0,), 0.0, 0, 0)


def test_played_commands_keep_each_ticks_source_and_play_no_decision_after_the_replay_ends() -> None:
    now = [0.0]
    played = ClockedChunks(ChunkExecutor(chunk_rows=2, period=1.0), lambda: now[0])
    assert played.on_tick().tolist() == [0.0, 0.0] and played.sources == [None]  # before any chunk: stand still
    assert played.on_decision(_decision(7, [1.0, 2.0, 3.0, 4.0])).tolist() == [1.0, 2.0]  # row 0 due on arrival
    now[0] = 1.0
    second = played.on_tick()
    assert second.tolist() == [3.0, 4.0] and played.sources == [None, 7]
    second[:] = 0.0  # a tick's command is the caller's to keep: changing it changes nothing played
    played.close()
    assert played.on_decision(_decision(8, [9.0, 9.0])) is None  # after the last frame: not played
    now[0] = 2.0
    assert played.on_tick().tolist() == [3.0, 4.0] and played.sources == [None, 7, 7]  # the last row holds


def test_the_command_prints_every_row_and_says_it_is_open_loop(capsys: pytest.CaptureFixture) -> None:
    code = bag_eval.main([str(BAG), "--model", "synthetic", "--timed", "--speed", "2", "--overlap", "blend",
                          "--executors", "seq", "auras:1+2@replace"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert OPEN_LOOP_NOTE in out
    assert "| seq @ blend | 44 |" in out and "| auras:1+2:f0:a0 @ replace | 44 |" in out, out


@pytest.mark.parametrize("args, named", [
    (["--timed", "--speed", "0"], "--speed"),
    (["--timed", "--speed", "nan"], "--speed"),
    (["--speed", "3"], "--speed"),  # a timed option without --timed
    (["--timed", "--executors", "seq@sideways"], "overlap"),
    (["--timed", "--row-width", "0"], "--row-width"),
    (["--timed", "--executors", "auras:1+2@inpaint"], "inpaint"),  # the synthetic agent does not inpaint
])
def test_bad_timed_input_is_refused_in_one_line(args: list[str], named: str, capsys: pytest.CaptureFixture) -> None:
    code = bag_eval.main([str(BAG), "--model", "synthetic", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and named in err and err.startswith("bag_eval: "), err


@pytest.mark.parametrize("args, named", [
    (["--timed", "--noise-scale", "0"], "samples no noise"),  # the synthetic agent samples none
    (["--timed", "--noise-scale", "-1"], "noise_scale"),
    (["--timed", "--noise-scale", "nan"], "noise_scale"),
    (["--noise-scale", "0"], "--noise-scale"),  # a timed option without --timed
])
def test_bad_noise_scales_are_refused_in_one_line(args: list[str], named: str, capsys: pytest.CaptureFixture) -> None:
    code = bag_eval.main([str(BAG), "--model", "synthetic", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and named in err and err.startswith("bag_eval: "), err
