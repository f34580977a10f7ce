"""Closed loop through the core executors: determinism, bookkeeping with the expert as an agent (it
perceives only the observation it is handed), the public context against stale private contexts, the
tuner, the report."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.eval.actuation import ChunkExecutor
from auras_ros.eval.episodes import evaluate, run_episode
from auras_ros.eval.oracle import ExpertAgent, IdleAgent
from auras_ros.eval.results import headline
from auras_ros.eval.task import CatchTask, TaskConfig, TaskSource
from auras_ros.eval.tuner import TunerConfig, cost_model, tune
from auras_ros.models.diffusion import DiffusionPolicyAgent, tiny

SEEDS = range(6)
SEQ = ExecutorSpec("seq")


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
    spec = ExecutorSpec.parse("auras:1+2:f0:a0")
    a = run_episode(agent, spec, task, 5, 4, keep_actions=True)
    b = run_episode(agent, spec, task, 5, 4, keep_actions=True)
    task.close()
    assert a.actions == b.actions and len(a.actions) == 12
    assert a.decisions == 12 - 2  # L = 3: the first decision leaves in frame 2
    assert any(abs(v) > 0 for row in a.actions[2:] for v in row)


def test_expert_through_the_executors_succeeds_and_idle_fails(task):
    expert = ExpertAgent(task.config)
    results = [run_episode(expert, SEQ, task, s, 1) for s in SEEDS]
    assert all(r.success for r in results)
    assert all(r.ages_frames == pytest.approx([1.0] * r.decisions) for r in results)  # SEQ acts on this frame's image
    assert all(r.success_frame == r.frames for r in results)
    idle = [run_episode(IdleAgent(task.config), SEQ, task, s, 1) for s in SEEDS]
    assert not any(r.success for r in idle)
    assert all(r.frames == task.config.max_frames for r in idle)


def test_public_context_restores_what_stale_requests_lose(task):
    """The method's claim on a policy that is exactly the expert: at L = 4, the Auras pipeline keeps
    SEQ's success, while PAR(4) and naive pipelining (private context) act on 4-frame-old images."""
    expert = ExpertAgent(task.config)
    seq = rate(expert, SEQ, task)
    auras = rate(expert, ExecutorSpec.parse("auras:1+3:f0:a0"), task)
    naive = rate(expert, ExecutorSpec.parse("auras:1+3:f0:a0:private"), task)
    par = rate(expert, ExecutorSpec.parse("par:4"), task)
    assert seq == 1.0 and auras == 1.0
    assert par <= 0.5 and naive <= 0.5


class DelayedSource:
    """The task's camera three frames late: what an executor that feeds perception an old
    observation would hand the agent."""

    def __init__(self, task: CatchTask, delay: int = 3) -> None:
        self.task, self.delay, self.history = task, delay, []

    def latest(self, now):
        self.history.append(self.task.observation())
        return self.history[max(0, len(self.history) - 1 - self.delay)]


def test_the_expert_acts_on_the_observation_it_is_handed(task):
    """SEQ fed a three-frame-old observation fails where SEQ fed the current one succeeds: the
    headline test above can only pass if the executor feeds perception the right observation."""
    # Chunks of 4 equal rows: a three-frame-old decision still has its row 3 due, so it acts (on the
    # old observation) rather than being skipped as late.
    expert = ExpertAgent(task.config, chunk_rows=4)
    for source, expected in ((TaskSource, True), (DelayedSource, False)):
        task.reset(0)
        runner = make_runner(SEQ, expert, source(task), SimClock(), frame_period=task.config.frame_period)
        executor = ChunkExecutor(4, task.config.frame_period, timing="observation")
        while not task.done:
            task.step(executor.next(runner.step(), task.time))
        runner.close()
        assert task.score.success is expected


@pytest.mark.parametrize("timing, stale_row", [("arrival", [0, 1]), ("observation", [4, 5])])
def test_chunk_executor_plays_rows_then_holds(timing: str, stale_row: list[int]):
    from auras_ros.core.metrics import Decision
    from auras_ros.core.stages import AgentOutput

    period = 0.05
    chunk = np.arange(8, dtype=float).reshape(4, 2)
    ex = ChunkExecutor(chunk_rows=3, period=period, timing=timing)
    assert np.array_equal(ex.next([], 0.0), [0, 0])  # nothing decided yet: stand still
    fresh = Decision(0, AgentOutput(chunk.reshape(-1)), 0, 1.0, (1.0,), 1.0, 0, 0)  # age 0: both timings agree
    played = [ex.next([fresh], 1.0).tolist()] + [ex.next([], 1.0 + k * period).tolist() for k in range(1, 5)]
    assert played == [[0, 1], [2, 3], [4, 5], [4, 5], [4, 5]]
    # Two frames old on arrival: by its observation's time rows 0 and 1 belonged to steps that have passed.
    stale = Decision(1, AgentOutput(chunk.reshape(-1)), 0, 2.0, (2.0,), 2.0 + 2 * period, 0, 0)
    assert ex.next([stale], 2.0 + 2 * period).tolist() == stale_row
    # A decision with no observation stamp (a stop through the simulator) plays from now under both.
    stop = SimpleNamespace(request_id=2, output=SimpleNamespace(action=np.zeros(2)), observation_stamp=None)
    assert ex.next([stop], 3.0).tolist() == [0, 0]


def test_chunk_executor_refuses_an_unknown_timing():
    with pytest.raises(ConfigError, match="chunk timing"):
        ChunkExecutor(chunk_rows=1, period=0.05, timing="late")


def test_tuner_returns_a_configuration_meeting_its_target(task):
    expert = ExpertAgent(task.config, iterations=4)
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

    expert = ExpertAgent(task.config)
    specs = [ExecutorSpec.parse(text) for text in ("seq", "par:3", "auras:1+2:f0:a0")]
    ev = evaluate(expert, "expert", specs, episodes=3, chunk_rows=1, wall_decisions=5, wall_repeats=1,
                  progress=False, task=task)
    names = [r.name for r in ev.results]
    assert names == ["seq", "par:3", "auras:1+2:f0:a0"]
    seq, par, auras = ev.results
    assert seq.ratio_to_seq == 1.0 and auras.success_rate == 1.0
    assert par.age_p50_frames == pytest.approx(3.0) and auras.age_p50_frames == pytest.approx(1.0)
    assert headline(ev).name == auras.name
    path = write_report(ev, tmp_path)
    text = path.read_text()
    assert "| seq | 1 |" in text and "| auras:1+2:f0:a0 | 3 |" in text
    assert all((tmp_path / f"expert_{p}.png").stat().st_size > 1000
               for p in ("success_vs_L", "throughput_vs_L", "observation_age", "seq_vs_auras"))
