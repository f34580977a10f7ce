"""Real-time closed loop: the bookkeeping of episodes run against a world in wall time, with the
expert as the agent. No timing thresholds: wall time on a shared machine decides how many decisions
land, so the tests check only what must hold whatever the machine does."""

from __future__ import annotations

import numpy as np
import pytest

from auras_ros.core.metrics import Decision
from auras_ros.core.spec import ExecutorSpec
from auras_ros.core.stages import AgentOutput
from auras_ros.core.pacing import FreshObservations
from auras_ros.eval.episodes import (RealTimeActuator, evaluate, evaluate_realtime,
                                     run_realtime_episode)
from auras_ros.eval.oracle import ExpertAgent
from auras_ros.eval.realtime_world import RealTimeWorld
from auras_ros.eval.report import realtime_table, write_report
from auras_ros.eval.results import (EpisodeResult, RealTimeEpisode, load_evaluation, load_realtime,
                                    summarize_realtime, write_json)
from auras_ros.eval.task import CatchTask, TaskConfig

CONFIG = TaskConfig(image_size=16, max_frames=12)
SPEED = 5.0  # 10 ms world frames: an episode is ~0.12 s of wall time


@pytest.fixture()
def task():
    t = CatchTask(CONFIG)
    yield t
    t.close()


@pytest.mark.parametrize("timing, rows", [("arrival", [0, 0, 1, 2, 2]), ("observation", [1, 2, 2, 2, 2])])
def test_actuator_plays_the_row_due_at_each_world_step(task, timing, rows):
    world = RealTimeWorld(task)  # not started: nothing steps, the hooks are called by hand
    now = [0.0]
    actuator = RealTimeActuator(world, chunk_rows=3, now=lambda: now[0], timing=timing)
    assert actuator.on_tick() is None  # before any decision: stand still
    chunk = np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]])
    # Sensed at 0, leaving 1.5 world periods later, mid-step: by arrival row 0 plays now and through the
    # next step; by the observation's time row 1 is due (row 0's step has passed).
    now[0] = 1.5 * world.period
    actuator.on_decision(Decision(0, AgentOutput(chunk.reshape(-1)), 0, 0.0, (0.0,), now[0], 0, 0))
    assert task.data.ctrl[:2] == pytest.approx(chunk[rows[0]] * CONFIG.max_speed)  # applied on arrival
    played = []
    for k in (2, 3, 4, 5):
        now[0] = k * world.period
        played.append(actuator.on_tick().tolist())
    assert played == [chunk[r].tolist() for r in rows[1:]]  # then rows, the last of chunk_rows = 3 holding
    assert actuator.arrival_frames == [0] and len(actuator.decisions) == 1


def test_fresh_observations_hand_each_frame_once_then_waits_for_the_next(task):
    world = RealTimeWorld(task, speed=SPEED)
    world.start(seed=0)
    feed = FreshObservations(world, timeout=1.0)
    seqs = [feed.latest(0.0).seq for _ in range(4)]
    world.stop()
    assert seqs == sorted(seqs) and len(set(seqs)) == 4  # never the same frame twice while the world runs


@pytest.mark.parametrize("spec", ["seq", "par:2", "dec", "auras:1+2:f0:a0"])
def test_episode_bookkeeping(task, spec):
    run = run_realtime_episode(ExpertAgent(CONFIG), ExecutorSpec.parse(spec), task, seed=3, chunk_rows=1,
                               speed=SPEED)
    e = run.episode
    assert 1 <= e.frames <= CONFIG.max_frames
    assert e.success == (e.success_frame is not None)
    assert e.success or e.frames == CONFIG.max_frames  # the world ran to its end, not cut short
    assert e.decisions == len(e.ages_frames)
    assert len(e.intervals_frames) == max(0, e.decisions - 1) and all(i >= 0 for i in e.intervals_frames)
    assert all(a >= 0 for a in e.ages_frames)  # nothing acts on an image from the future
    assert run.wall_s > 0 and run.overruns >= 0


def _episode(seed: int, success: bool, decisions: int, ages: list[float]) -> EpisodeResult:
    return EpisodeResult(seed, success, 12, 10 if success else None, 0.1, decisions, ages, [1.0] * (decisions - 1))


def test_realtime_summary_of_a_scripted_case():
    """Two seeds by hand. SEQ: 4 decisions in 2 s and 3 in 1 s (2 and 3 decisions/s), succeeds on
    seed 0 only. The executor: 10 in 2 s and 9 in 1 s (5 and 9 /s), succeeds on both."""
    seq = [RealTimeEpisode(_episode(0, True, 4, [2, 2, 2, 2]), 2.0, 1),
           RealTimeEpisode(_episode(1, False, 3, [3, 3, 3]), 1.0, 0)]
    ours = [RealTimeEpisode(_episode(0, True, 10, [1] * 10), 2.0, 0),
            RealTimeEpisode(_episode(1, True, 9, [1] * 8 + [2]), 1.0, 2)]
    r = summarize_realtime(ExecutorSpec.parse("auras:1+2:f0:a0"), ours, seq, period=0.01)
    assert r.per_episode_decisions_per_s == [5.0, 9.0]
    assert r.decisions_per_s == 7.0  # the mean of the per-episode rates
    assert r.decisions_vs_seq == pytest.approx((5 / 2 + 9 / 3) / 2)  # the mean of the per-seed ratios
    assert (r.overruns_per_episode, r.wall_s) == (1.0, 1.5)
    c = r.config
    assert (c.success_rate, c.ratio_to_seq) == (1.0, 2.0)
    assert c.age_p50_frames == 1.0 and c.age_p50_s == pytest.approx(0.01)
    assert c.age_p99_frames == pytest.approx(1.82)  # 19 ages, 18 of them 1: rank 0.99 * 18 = 17.82
    assert c.interval_cv == 0.0  # every interval is one frame
    seq_row = summarize_realtime(ExecutorSpec("seq"), seq, seq, period=0.01)
    assert seq_row.decisions_vs_seq == 1.0 and seq_row.config.ratio_to_seq == 1.0


def test_evaluate_realtime_pairs_every_config_with_seq(task):
    specs = [ExecutorSpec.parse("par:2"), ExecutorSpec.parse("auras:1+2:f0:a0")]
    ev = evaluate_realtime(ExpertAgent(CONFIG), "expert", specs, episodes=2, chunk_rows=1, speed=SPEED,
                           warmup=False, progress=False, task=task)
    assert [r.config.name for r in ev.results] == ["seq", "par:2", "auras:1+2:f0:a0"]
    assert ev.seeds == [0, 1] and ev.world_period_s == pytest.approx(CONFIG.frame_period / SPEED)
    assert all(r.config.episodes == 2 and len(r.per_episode_decisions_per_s) == 2 for r in ev.results)
    text = realtime_table(ev)
    assert text.count("\n") == 1 + len(ev.results) and "| seq | 1 |" in text and "| par:2 | 2 |" in text


def test_realtime_and_alpha_sections_of_the_report_from_json(tmp_path, task):
    expert = ExpertAgent(CONFIG)
    specs = [ExecutorSpec.parse(f"auras:1+2:f0:a{a}") for a in (0, 1)]
    stepped = evaluate(expert, "expert", specs, episodes=2, chunk_rows=1, wall_decisions=0, progress=False, task=task)
    rt = evaluate_realtime(expert, "expert", specs[:1], episodes=1, chunk_rows=1, speed=SPEED, warmup=False,
                           progress=False, task=task)
    write_json(tmp_path / "rt.json", rt)
    write_json(tmp_path / "fs.json", stepped)
    rt_back, stepped_back = load_realtime(tmp_path / "rt.json"), load_evaluation(tmp_path / "fs.json")
    assert realtime_table(rt_back) == realtime_table(rt)
    assert [r.name for r in stepped_back.results] == [r.name for r in stepped.results]
    text = write_report(stepped_back, tmp_path, realtime=rt_back, alpha=stepped_back, iterations=4,
                        commands={"realtime": "python -m auras_ros.eval.realtime"}).read_text()
    assert "## Real time" in text and "## α sweep" in text and "| 2/2 |" in text and "| 1/3 |" in text
    assert "`python -m auras_ros.eval.realtime`" in text
    assert all((tmp_path / f"expert_{p}.png").stat().st_size > 1000 for p in ("realtime", "alpha"))


class NoisyExpert(ExpertAgent):
    """The expert, saying it samples noise (core.stages.samples_noise): its scale records what was set."""

    noise_scale = 0.25


def test_evaluate_realtime_leaves_the_agents_noise_scale_as_set_and_an_episode_sets_its_own(task):
    agent = NoisyExpert(CONFIG)
    evaluate_realtime(agent, "expert", [ExecutorSpec.parse("auras:1+2:f0:a0")], episodes=1, chunk_rows=1,
                      speed=SPEED, warmup=False, progress=False, task=task)
    assert agent.noise_scale == 0.25  # eval.realtime sets it once, before; the episodes keep it
    run_realtime_episode(agent, ExecutorSpec.parse("seq"), task, seed=3, chunk_rows=1, speed=SPEED, noise_scale=0.0)
    assert agent.noise_scale == 0.0  # eval.chunk_table's rows: each episode at its row's scale


@pytest.mark.parametrize("argv, said", [(["--noise-scale", "-1"], "invalid noise scale '-1'"),
                                        (["--noise-scale", "0"], "ExpertAgent: it samples no noise")])
def test_the_command_refuses_a_noise_scale_it_can_not_play(monkeypatch, capsys, argv, said):
    from auras_ros.eval import realtime

    monkeypatch.setattr(realtime, "load_policy", lambda policy, checkpoint: ExpertAgent(CONFIG))
    with pytest.raises(SystemExit) as exit_info:
        realtime.main(["--policy", "diffusion", "--episodes", "1", *argv])
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err
