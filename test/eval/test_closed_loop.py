"""Closed loop through the core executors: determinism, bookkeeping with the expert as an agent,
the public context against stale private contexts, the tuner, the report."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from auras_ros.core.pipeline import PipelineConfig
from auras_ros.eval.closed_loop import (ChunkExecutor, RunSpec, evaluate, headline, paired_ratio_ci, run_episode,
                                        wilson)
from auras_ros.eval.oracle import ExpertAgent, IdleAgent
from auras_ros.eval.task import CatchTask, TaskConfig
from auras_ros.eval.tuner import TunerConfig, cost_model, tune
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny

SEEDS = range(6)


@pytest.fixture(scope="module")
def task():
    t = CatchTask()
    yield t
    t.close()


def rate(agent, spec, task, seeds=SEEDS):
    return float(np.mean([run_episode(agent, spec, task, s, 1).success for s in seeds]))


def test_same_seed_same_actions_through_the_pipeline():
    torch.set_num_threads(1)
    task = CatchTask(TaskConfig(image_size=32, max_frames=12))
    agent = DiffusionPolicyAgent(tiny(n_steps=4))
    spec = RunSpec("auras", pipeline=PipelineConfig(1, 2, 0, 0.0))
    a = run_episode(agent, spec, task, 5, 4, keep_actions=True)
    b = run_episode(agent, spec, task, 5, 4, keep_actions=True)
    task.close()
    assert a.actions == b.actions and len(a.actions) == 12
    assert a.decisions == 12 - 2  # L = 3: the first decision leaves in frame 2
    assert any(abs(v) > 0 for row in a.actions[2:] for v in row)


def test_expert_through_the_executors_succeeds_and_idle_fails(task):
    expert = ExpertAgent(task)
    results = [run_episode(expert, RunSpec("seq"), task, s, 1) for s in SEEDS]
    assert all(r.success for r in results)
    assert all(r.ages_frames == pytest.approx([1.0] * r.decisions) for r in results)  # SEQ acts on this frame's image
    assert all(r.success_frame == r.frames for r in results)
    idle = [run_episode(IdleAgent(task), RunSpec("seq"), task, s, 1) for s in SEEDS]
    assert not any(r.success for r in idle)
    assert all(r.frames == task.config.max_frames for r in idle)


def test_public_context_restores_what_stale_requests_lose(task):
    """The method's claim on a policy that is exactly the expert: at L = 4, the Auras pipeline keeps
    SEQ's success, while PAR(4) and naive pipelining (private context) act on 4-frame-old images."""
    expert = ExpertAgent(task)
    seq = rate(expert, RunSpec("seq"), task)
    auras = rate(expert, RunSpec("auras", pipeline=PipelineConfig(1, 3, 0, 0.0)), task)
    naive = rate(expert, RunSpec("auras", pipeline=PipelineConfig(1, 3, 0, 0.0, context_mode="private")), task)
    par = rate(expert, RunSpec("par", workers=4), task)
    assert seq == 1.0 and auras == 1.0
    assert par <= 0.5 and naive <= 0.5


def test_chunk_executor_plays_rows_then_holds():
    from auras_ros.core.metrics import Decision
    from auras_ros.core.stages import AgentOutput

    chunk = np.arange(8, dtype=float).reshape(4, 2)
    decision = Decision(0, AgentOutput(chunk.reshape(-1)), 0, 0.0, (0.0,), 0.05, 0, 0)
    ex = ChunkExecutor(execute_rows=3)
    assert np.array_equal(ex.next([]), [0, 0])  # nothing decided yet: stand still
    played = [ex.next([decision]).tolist()] + [ex.next([]).tolist() for _ in range(4)]
    assert played == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]


def test_statistics():
    lo, hi = wilson(8, 10)
    assert 0.4 < lo < 0.8 < hi < 1.0
    assert wilson(0, 5)[0] == 0.0
    lo, hi = paired_ratio_ci([True] * 10, [True] * 10)
    assert lo == hi == 1.0
    assert all(math.isnan(v) for v in paired_ratio_ci([True] * 3, [False] * 3))


def test_tuner_returns_a_configuration_meeting_its_target(task):
    expert = ExpertAgent(task, iterations=4)
    model = cost_model(perception_s=0.001, iteration_s=0.004, iterations=4)
    config = TunerConfig(target=2.0, pp_perception=(1,), pp_generation=(1, 2, 4), fetch_offsets=(0, -1),
                         episodes=4)
    result = tune(expert, config, 1, model, task=task, progress=False)
    assert result.seq_success == 1.0
    assert result.best, "some configuration meets 2x on this cost model"
    for c in result.best:
        assert c.throughput_vs_seq >= 2.0 and c.success_rate == 1.0
    below = [c for c in result.candidates if c.throughput_vs_seq < 2.0]
    assert below and all(not c.meets_target for c in below)


def test_evaluate_and_report(tmp_path, task):
    from auras_ros.eval.report import write_report

    expert = ExpertAgent(task)
    specs = [RunSpec("seq"), RunSpec("par", workers=3), RunSpec("auras", pipeline=PipelineConfig(1, 2, 0, 0.0))]
    ev = evaluate(expert, "expert", specs, episodes=3, execute_rows=1, wall_decisions=5, wall_repeats=1,
                  progress=False, task=task)
    names = [r.name for r in ev.results]
    assert names == ["SEQ", "PAR(3)", "Auras(1+2, f0, a0)"]
    seq, par, auras = ev.results
    assert seq.ratio_to_seq == 1.0 and auras.success_rate == 1.0
    assert par.age_p50_frames == pytest.approx(3.0) and auras.age_p50_frames == pytest.approx(1.0)
    assert headline(ev).name == auras.name
    path = write_report(ev, tmp_path)
    text = path.read_text()
    assert "| SEQ | 1 |" in text and "Auras(1+2, f0, a0)" in text
    assert all((tmp_path / f"expert_{p}.png").stat().st_size > 1000
               for p in ("success_vs_L", "throughput_vs_L", "observation_age", "seq_vs_auras"))
