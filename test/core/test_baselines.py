from __future__ import annotations

import threading

import numpy as np
import pytest

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.errors import ConfigError
from auras_ros.core.metrics import MetricsRecorder
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.sources import PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner

from core_helpers import FRAME, RecordingAgent


def _sim_decisions(make, frames: int = 12):
    clock = SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    decisions = []
    runner = make(clock, camera, decisions.append)
    runner.run(frames=frames)
    runner.close()
    return decisions


def test_seq_decides_every_frame_on_that_frames_observation() -> None:
    decisions = _sim_decisions(lambda c, s, sink: SequentialRunner(RecordingAgent(), s, c, frame_period=FRAME,
                                                                   on_decision=sink))
    assert [d.observation_seq for d in decisions] == list(range(12))
    assert all(d.age == pytest.approx(FRAME) for d in decisions)


class SameNoiseAgent(RecordingAgent):
    """Every request starts from the same state, so an action depends only on what was perceived
    (the two executors number their requests differently)."""

    def init_request(self, request_id: int):
        return super().init_request(0)


def test_seq_equals_the_one_plus_one_pipeline_reading_the_same_frame() -> None:
    """SEQ and Auras(1, 1, fetch_offset 0) compute the same action from the same observation."""
    seq = _sim_decisions(lambda c, s, sink: SequentialRunner(SameNoiseAgent(), s, c, frame_period=FRAME,
                                                             on_decision=sink))
    auras = _sim_decisions(lambda c, s, sink: AurasPipeline(SameNoiseAgent(), PipelineConfig(1, 1, 0, frame_period=FRAME),
                                                            s, c, on_decision=sink))
    by_observation = {d.observation_seq: d for d in seq}
    for decision in auras:
        assert decision.age == pytest.approx(FRAME)
        twin = by_observation[decision.observation_seq]
        np.testing.assert_array_equal(twin.output.action, decision.output.action)
    assert len(auras) >= 10 and len({tuple(d.output.action) for d in auras}) == len(auras)  # actions differ per scene


@pytest.mark.parametrize("workers", [2, 3])
def test_par_acts_on_observations_k_frames_old(workers: int) -> None:
    decisions = _sim_decisions(lambda c, s, sink: ParallelRunner(RecordingAgent(), s, c, workers, frame_period=FRAME,
                                                                 on_decision=sink))
    assert len(decisions) == 12 - workers + 1
    assert all(d.age == pytest.approx(workers * FRAME) for d in decisions)


def test_dec_generation_spans_frames_and_reads_the_previous_percept() -> None:
    decisions = _sim_decisions(lambda c, s, sink: DecoupledRunner(RecordingAgent(), s, c, generation_frames=2,
                                                                  frame_period=FRAME, on_decision=sink))
    assert len(decisions) == 5  # frames 2, 4, ..., 10: one every generation_frames after the first percept
    assert all(d.age == pytest.approx(3 * FRAME) for d in decisions)


@pytest.mark.parametrize("make", [
    lambda a, s, c, r: SequentialRunner(a, s, c, recorder=r),
    lambda a, s, c, r: DecoupledRunner(a, s, c, recorder=r),
    lambda a, s, c, r: ParallelRunner(a, s, c, 2, recorder=r),
    lambda a, s, c, r: ParallelRunner(a, s, c, 2, recorder=r, frame_period=0.002),
    lambda a, s, c, r: AurasPipeline(a, PipelineConfig(1, 3, -1), s, c, recorder=r),
], ids=["SEQ", "DEC", "PAR2", "PAR2-paced", "AURAS"])
def test_every_executor_runs_on_the_wall_clock(make) -> None:
    clock = WallClock()
    camera = PeriodicCamera(2000.0, lambda seq, stamp: 0.1, start=clock.now())
    runner = make(RecordingAgent(), camera, clock, MetricsRecorder())
    metrics = runner.run(decisions=20)
    runner.close()
    assert metrics.decisions >= 20
    assert np.isfinite([metrics.decisions_per_s, metrics.interval_cv, metrics.age_p50, metrics.age_p99]).all()
    assert metrics.age_p50 >= 0 and metrics.stage_latency["generation"].p50 > 0


@pytest.mark.parametrize("make, field", [
    (lambda a, s, c: ParallelRunner(a, s, c, 0), "workers"),
    (lambda a, s, c: DecoupledRunner(a, s, c, generation_frames=0), "generation_frames"),
    (lambda a, s, c: SequentialRunner(a, s, c, frame_period=-1.0), "frame_period"),
])
def test_bad_baseline_config_names_the_field(make, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        make(RecordingAgent(), PeriodicCamera(20, lambda s, t: 0.1), WallClock())
    assert error.value.field == field


@pytest.mark.parametrize("kind", ["seq", "auras:1+2:f0:a0"])
def test_a_decision_the_sink_did_not_let_leave_is_not_counted_as_one(kind) -> None:
    """A node being deactivated refuses a decision that finishes meanwhile (its sink returns False): the
    recorder must not count it among the decisions, or it would be counted twice (decision and cancel)."""
    left = []
    sink = lambda d: (left.append(d) or True) if d.request_id % 2 else False  # noqa: E731
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    runner = make_runner(ExecutorSpec.parse(kind), RecordingAgent(), camera, SimClock(), frame_period=FRAME,
                         on_decision=sink)
    try:
        runner.run(frames=12)
        recorded = runner.recorder.decisions_recorded
    finally:
        runner.close()
    assert len(left) >= 4 and recorded == len(left)


@pytest.mark.parametrize("make", [
    lambda a, s, c, sink: DecoupledRunner(a, s, c, on_decision=sink),
    lambda a, s, c, sink: ParallelRunner(a, s, c, 2, on_decision=sink),
], ids=["DEC", "PAR2"])
def test_the_stop_callable_ends_the_threaded_runners(make) -> None:
    """A node's health exit reaches DEC's and PAR's threads through run_until's stop callable, not only
    a deactivation's runner.stop(): once it turns true, run_until returns and its worker threads end."""
    clock = WallClock()
    camera = PeriodicCamera(2000.0, lambda seq, stamp: 0.1, start=clock.now())
    decided = threading.Event()
    stop = threading.Event()
    runner = make(RecordingAgent(), camera, clock, lambda d: decided.set())
    thread = threading.Thread(target=runner.run_until, args=(stop.is_set,), name="runs-until")
    thread.start()
    try:
        assert decided.wait(60), "the runner made no decision"
        stop.set()  # never runner.stop(): only the callable says stop
        thread.join(60)  # a bound for a hang, not a timing measurement
        assert not thread.is_alive(), "run_until did not return after its stop callable turned true"
        workers = [t.name for t in threading.enumerate() if t.name == "dec-perception" or t.name.startswith("par-")]
        assert workers == [] and not runner._stop.is_set()
    finally:
        runner.stop()
        thread.join()
        runner.close()
