"""Chunk measurements (eval.seams) on hand-made traces, the chunk each played row came from, and the
task's target-reversal variant: seeded, the same for every executor on a seed, the default unchanged."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from auras_ros.core.errors import ConfigError, InputError
from auras_ros.core.metrics import Decision
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import AgentOutput
from auras_ros.eval.actuation import ChunkExecutor
from auras_ros.eval.chunk_table import noise_sentence, parse_row, runnable_rows, table_rows
from auras_ros.eval.episodes import run_realtime_episode
from auras_ros.eval.oracle import ExpertAgent
from auras_ros.eval.report import chunk_table
from auras_ros.eval.seams import ChunkMetrics, ChunkSummary, jerk, reaction_frames, seam_jumps
from auras_ros.eval.task import CatchTask, TaskConfig, expert_rollout

REVERSE = TaskConfig(image_size=16, max_frames=40, variant="reverse", reverse_frames=(5, 20))


# ---- metrics on hand-made traces -------------------------------------------------------------------

def test_seams_are_the_steps_whose_row_comes_from_a_newer_chunk():
    commands = [[0, 0], [0.1, 0], [0.2, 0], [0.5, 0.4], [0.6, 0.4], [0.6, 0.4], [0.0, 0.0]]
    sources = [None, 1, 1, 2, 2, 2, 3]  # the first chunk after standing still is no seam; a held row keeps its source
    assert seam_jumps(commands, sources) == pytest.approx([0.5, math.hypot(0.6, 0.4)])
    metrics = ChunkMetrics.of(commands, sources, period=0.05)
    assert metrics.seams == 2 and metrics.seam_max == pytest.approx(math.hypot(0.6, 0.4))
    assert math.isnan(ChunkMetrics.of(commands[:3], sources[:3], 0.05).seam_max)  # one chunk: no seam
    with pytest.raises(InputError, match="chunk sources"):
        seam_jumps(commands, sources[:-1])


def test_jerk_is_the_third_difference_over_the_period_cubed():
    period = 0.05
    t = np.arange(8) * period
    commands = np.stack([t ** 3, np.zeros_like(t)], axis=1)  # d³(t³)/dt³ = 6, and the third difference is exact
    assert jerk(commands, period) == pytest.approx(np.full(5, 6.0))
    assert ChunkMetrics.of(commands, [1] * 8, period).jerk_p99 == pytest.approx(6.0)
    steps = [[0.0, 0.0]] * 3 + [[1.0, 0.0]] * 3  # a unit step: third differences 1, -2, 1 (over period³)
    assert jerk(steps, 0.5) == pytest.approx(np.array([1, 2, 1]) / 0.5 ** 3)
    assert len(jerk(steps[:3], 0.5)) == 0


def test_reaction_counts_frames_from_the_reversal_to_the_first_command_with_the_new_motion():
    new_velocity = [-0.5, 0.0]
    commands = [[0.3, 0.0]] * 5 + [[0.3, 0.1], [0.0, 0.0], [-0.2, 0.1], [-0.3, 0.0]]
    # Reversal at the start of step 4: steps 5 (+x) and 6 (no motion along it) still do not follow.
    assert reaction_frames(commands, 4, new_velocity) == 3
    commands[4] = [-0.3, 0.0]  # step r itself was commanded before the flip: it never counts
    assert reaction_frames(commands, 4, new_velocity) == 3
    assert reaction_frames(commands[:7], 4, new_velocity) is None  # the episode ended before it turned
    assert reaction_frames(commands, None, None) is None  # no reversal (the catch variant)


def test_summary_over_episodes():
    a = ChunkMetrics(2, 0.4, 10.0, 2, reversal_frame=30, jerks=[1.0, 10.0])
    b = ChunkMetrics(0, math.nan, 5.0, None, reversal_frame=35, jerks=[5.0])
    c = ChunkMetrics(1, 0.8, 1.0, 4, reversal_frame=40, jerks=[1.0])
    s = ChunkSummary.of([True, False, True], [50, None, 70], [a, b, c])
    assert (s.episodes, s.success_rate, s.time_to_success) == (3, pytest.approx(2 / 3), 60.0)
    assert s.seam_max_p50 == pytest.approx(0.6)  # over the episodes that had a seam
    assert s.reaction_p50 == 3.0 and (s.reacted, s.reversals) == (2, 3)
    assert s.jerk_p99 == pytest.approx(np.percentile([1.0, 10.0, 5.0, 1.0], 99))
    table = chunk_table([("seq @ replace", s)])
    assert "| seq @ replace | 3 | 0.67 [" in table and "| 2/3 |" in table


def test_summary_without_reversal_or_success_shows_dashes_not_nan():
    """The catch variant (no reversal) and a row that never succeeded: undefined cells read "–"."""
    m = ChunkMetrics(1, 0.5, 2.0, None, reversal_frame=None, jerks=[2.0])
    table = chunk_table([("seq @ replace", ChunkSummary.of([False], [None], [m]))])
    assert "nan" not in table and "| – | 0.500/0.500 | 2 | – | – |" in table, table


# ---- which chunk each played row came from ----------------------------------------------------------

def _decision(request_id: int, rows: np.ndarray, stamp: float) -> Decision:
    return Decision(request_id, AgentOutput(rows.reshape(-1)), 0, stamp, (stamp,), stamp, 0, 0)


@pytest.mark.parametrize("overlap", ["replace", "ensemble", "blend"])
def test_chunk_executor_names_the_chunk_each_command_came_from(overlap):
    period = 0.1
    ex = ChunkExecutor(chunk_rows=3, period=period, overlap=overlap)
    ex.next([], 0.0)
    assert ex.source is None  # nothing played yet
    sources = []
    for step in range(8):
        now = step * period
        arrived = [_decision(7, np.ones((3, 2)), now)] if step == 0 else \
            [_decision(9, np.zeros((3, 2)), now)] if step == 2 else []
        ex.next(arrived, now)
        sources.append(ex.source)
    # Request 9 joins at step 2 (under ensemble and blend mixed with 7's last row, but the newest);
    # after its three rows the held command keeps its source.
    assert sources == [7, 7, 9, 9, 9, 9, 9, 9]


# ---- the target-reversal variant --------------------------------------------------------------------

def _zero_episode(task: CatchTask, seed: int) -> list:
    task.reset(seed)
    states = [task.state()]
    while not task.done:
        states.append(task.step(np.zeros(2)))
    return states


def test_the_target_reverses_at_the_seeded_frame():
    task = CatchTask(REVERSE)
    try:
        frames = set()
        for seed in (70000, 70001, 70002, 70003):
            states = _zero_episode(task, seed)
            r = task.score.reversal_frame
            assert r is not None and REVERSE.reverse_frames[0] <= r <= REVERSE.reverse_frames[1]
            frames.add(r)
            # The velocity flips in the step from frame r to r + 1 (observations up to r show the old motion).
            assert np.allclose(states[r + 1].target_velocity, -states[r].target_velocity)
            assert np.allclose(states[r].target_velocity, states[r - 1].target_velocity)
            assert task.score.reversal_velocity == pytest.approx(states[r + 1].target_velocity.tolist())
            assert task.reset(seed) is not None and task.score.reversal_frame == r  # reproducible
        assert len(frames) > 1  # drawn per seed, not fixed
    finally:
        task.close()


def test_only_a_hold_after_the_reversal_is_a_success():
    task = CatchTask(replace(REVERSE, max_frames=80))
    try:
        score = expert_rollout(task, 70001)
        assert score.success and score.success_frame >= score.reversal_frame + REVERSE.hold_frames
    finally:
        task.close()


def test_the_reversal_is_the_same_for_every_executor_on_a_seed():
    task = CatchTask(REVERSE)
    try:
        _zero_episode(task, 70002)
        expected = (task.score.reversal_frame, task.score.reversal_velocity)
        for spec in ("seq", "auras:1+2:f0:a0"):
            run = run_realtime_episode(ExpertAgent(REVERSE, chunk_rows=2), ExecutorSpec.parse(spec), task, 70002,
                                       chunk_rows=2, speed=5.0, overlap="ensemble")
            assert run.chunks is not None
            assert run.chunks.reversal_frame == expected[0]
            assert task.score.reversal_velocity == pytest.approx(expected[1])
            # One command per world step (ChunkMetrics.of refuses a source list of another length).
            assert len(task.score.commands) == run.episode.frames
    finally:
        task.close()


def test_the_default_variant_is_the_catch_task_unchanged():
    assert TaskConfig().variant == "catch"
    catch, reverse = CatchTask(replace(REVERSE, variant="catch")), CatchTask(REVERSE)
    try:
        plain = _zero_episode(catch, 70003)
        assert catch.score.reversal_frame is None and catch.score.reversal_velocity is None
        turned = _zero_episode(reverse, 70003)
        r = reverse.score.reversal_frame
        # The reversal is drawn after everything the catch variant draws: the same episode up to it.
        for a, b in zip(plain[: r + 1], turned[: r + 1], strict=True):
            assert np.array_equal(a.agent, b.agent) and np.array_equal(a.target, b.target)
        assert not np.allclose(plain[r + 1].target_velocity, turned[r + 1].target_velocity)
    finally:
        catch.close()
        reverse.close()


def test_task_refuses_an_unknown_variant_or_reversal_window():
    with pytest.raises(ConfigError, match="task variant"):
        TaskConfig(variant="zigzag")
    with pytest.raises(ConfigError, match="reverse_frames"):
        TaskConfig(variant="reverse", reverse_frames=(50, 200))


# ---- the table's rows --------------------------------------------------------------------------------

def test_table_rows_name_their_overlap_and_skip_what_is_not_here():
    assert parse_row("seq").overlap == "replace"
    assert parse_row("auras:1+4:f0:a0@ensemble").label == "auras:1+4:f0:a0 @ ensemble"
    rows, notes = runnable_rows(["seq@replace", "auras:1+4:f0:a0@zigzag", "warp:9"])
    assert [r.label for r in rows] == ["seq @ replace"]
    assert len(notes) == 2 and "zigzag" in notes[0] and "warp:9" in notes[1]


def test_inpaint_asks_for_an_agent_that_inpaints():
    task = CatchTask(REVERSE)
    try:
        with pytest.raises(ConfigError, match="inpaint"):
            run_realtime_episode(ExpertAgent(REVERSE), ExecutorSpec.parse("seq"), task, 70000, chunk_rows=1,
                                 speed=5.0, overlap="inpaint")
    finally:
        task.close()


def test_rows_name_their_noise_scale_only_when_more_than_one_is_played():
    rows, _ = runnable_rows(["seq@replace", "auras:1+4:f0:a0@inpaint"])
    one = table_rows(rows, [1.0])
    assert [r.label for r in one] == ["seq @ replace", "auras:1+4:f0:a0 @ inpaint"]  # the table as before
    assert [r.noise_scale for r in one] == [1.0, 1.0]
    two = table_rows(rows, [1.0, 0.0])
    assert [r.label for r in two] == ["seq @ replace, noise 1", "seq @ replace, noise 0",
                                      "auras:1+4:f0:a0 @ inpaint, noise 1", "auras:1+4:f0:a0 @ inpaint, noise 0"]
    assert [(r.row, r.noise_scale) for r in two] == [(rows[0], 1.0), (rows[0], 0.0), (rows[1], 1.0), (rows[1], 0.0)]
    assert [r.label for r in table_rows(rows[:1], [0.0])] == ["seq @ replace"]  # one scale: the note says it
    assert "Noise scale 0:" in noise_sentence([0.0]) and "Noise scales 1, 0.5:" in noise_sentence([1.0, 0.5])


@pytest.mark.parametrize("argv, said", [
    (["--noise-scales", "-1"], "invalid noise scale '-1'"),
    (["--noise-scales", "inf"], "invalid noise scale 'inf'"),
    (["--noise-scales", "1", "1"], "names a scale twice"),
])
def test_the_table_script_refuses_bad_noise_scales_before_any_episode(argv, said, capsys):
    from auras_ros.eval.chunk_table import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--policy", "diffusion", "--episodes", "1", *argv])
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_the_table_script_refuses_a_noise_scale_for_an_agent_that_samples_none(monkeypatch, capsys):
    from auras_ros.eval import chunk_table

    monkeypatch.setattr(chunk_table, "load_policy", lambda policy, checkpoint: ExpertAgent(REVERSE))
    with pytest.raises(SystemExit) as exit_info:
        chunk_table.main(["--policy", "diffusion", "--episodes", "1", "--noise-scales", "1", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--noise-scales: invalid noise_scale=0.0" in err and "ExpertAgent: it samples no noise" in err, err


def test_a_noise_scale_asks_for_an_agent_that_samples_noise():
    task = CatchTask(REVERSE)
    try:
        with pytest.raises(ConfigError, match="samples no noise"):
            run_realtime_episode(ExpertAgent(REVERSE), ExecutorSpec.parse("seq"), task, 70000, chunk_rows=1,
                                 speed=5.0, noise_scale=0.0)
    finally:
        task.close()


def test_the_table_script_writes_its_command_machine_and_rows(tmp_path):
    from auras_ros.eval.chunk_table import main

    out = tmp_path / "chunks.md"
    argv = ["--policy", "diffusion", "--episodes", "1", "--speeds", "5", "--rows", "seq@replace",
            "auras:1+2:f0:a0@blend", "auras:1+2:f0:a0@zigzag", "--out", str(out)]
    assert main(argv) == 0
    text = out.read_text()
    assert "Command: `python -m auras_ros.eval.chunk_table --policy diffusion --episodes 1" in text
    assert "Machine: " in text and "SEQ decision latency on this machine" in text
    assert "| seq @ replace | 1 |" in text and "| auras:1+2:f0:a0 @ blend | 1 |" in text
    assert "row `auras:1+2:f0:a0@zigzag` skipped" in text
