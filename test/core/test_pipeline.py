from __future__ import annotations

import math
import threading

import pytest
from hypothesis import given, settings, strategies as st

from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.context import KeySpec, Policy, PublicContext
from auras_ros.core.errors import ConfigError
from auras_ros.core.partition import stage_ranges
from auras_ros.core.pipeline import AurasPipeline, PipelineConfig
from auras_ros.core.sources import LatestObservation, PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import PERCEPT_KEY, Observation

from core_helpers import FRAME, TINY, RecordingAgent

configs = st.builds(PipelineConfig, pp_perception=st.integers(1, 3), pp_generation=st.integers(1, 5),
                    fetch_offset=st.sampled_from([0, -1]), alpha=st.floats(-1, 2), frame_period=st.just(FRAME))


def _run(config: PipelineConfig, frames: int, agent: RecordingAgent | None = None, clock: SimClock | None = None,
         **kwargs):
    agent = agent or RecordingAgent()
    clock = clock or SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    decisions = []
    pipeline = AurasPipeline(agent, config, camera, clock, on_decision=decisions.append, **kwargs)
    agent.pipeline = pipeline
    try:
        metrics = pipeline.run(frames=frames)
    finally:
        pipeline.close()
    return agent, pipeline, decisions, metrics


@settings(deadline=None, max_examples=25)
@given(configs)
def test_in_flight_never_exceeds_L_and_one_decision_leaves_per_frame_once_full(config: PipelineConfig) -> None:
    frames = 3 * config.in_flight_limit + 4
    _, _, decisions, metrics = _run(config, frames)
    assert metrics.in_flight_max <= config.in_flight_limit
    assert metrics.in_flight_max == config.in_flight_limit  # the pipeline does fill up
    first = decisions[0].frame
    assert first == config.in_flight_limit - 1
    assert [d.frame for d in decisions] == list(range(first, frames))


@settings(deadline=None, max_examples=25)
@given(configs)
def test_each_generation_step_reads_the_freshest_context_of_its_frame(config: PipelineConfig) -> None:
    agent, _, decisions, _ = _run(config, 3 * config.in_flight_limit + 2)
    ranges = stage_ranges(agent.generation_iterations, config.pp_generation, config.alpha)
    # Frame f's generation reads slot f + fetch_offset, which holds the percept of the observation
    # that entered perception pp_perception - 1 frames before; the camera senses once per frame.
    assert agent.call_frames
    for frame, (seq, steps) in zip(agent.call_frames, agent.calls, strict=False):
        assert seq == frame + config.fetch_offset - (config.pp_perception - 1)
        assert {(begin, end) for _, begin, end in steps} <= {r for r in ranges if r[0] < r[1]}
    for decision in decisions:
        active = [s for s, (b, e) in enumerate(ranges) if b < e]
        expected = [(decision.frame - (config.pp_generation - 1 - s) + config.fetch_offset
                     - (config.pp_perception - 1)) * FRAME for s in active]
        assert decision.context_stamps == pytest.approx(expected)
        assert decision.observation_stamp == pytest.approx(max(expected))
        assert decision.age == pytest.approx(decision.decision_time - max(expected))


def test_fetch_offset_minus_one_reads_the_previous_frame() -> None:
    agent, _, decisions, _ = _run(PipelineConfig(1, 2, fetch_offset=-1, frame_period=FRAME), 8)
    fresh_agent, _, fresh_decisions, _ = _run(PipelineConfig(1, 2, fetch_offset=0, frame_period=FRAME), 8)
    assert [seq for seq, _ in agent.calls] == [seq - 1 for seq, _ in fresh_agent.calls[: len(agent.calls)]]
    # Reading one frame older costs exactly one frame of observation age.
    assert decisions[-1].age == pytest.approx(fresh_decisions[-1].age + FRAME)


def test_merged_generation_runs_all_in_flight_steps_in_one_call() -> None:
    agent, _, _, _ = _run(PipelineConfig(1, 3, -1, frame_period=FRAME), 10)
    full_calls = [steps for _, steps in agent.calls if len(steps) == 3]
    assert full_calls, "the pipeline never held pp_generation requests at once"
    assert len(agent.calls) == 10 - 1  # one merged call per frame once a percept exists


def test_private_context_reads_only_the_requests_own_observation() -> None:
    _, _, decisions, _ = _run(PipelineConfig(1, 3, fetch_offset=0, frame_period=FRAME, context_mode="private"), 10)
    for decision in decisions:
        assert set(decision.context_stamps) == {decision.observation_stamp}
        # Its own observation entered L - 1 frames ago: the staleness Auras removes.
        assert decision.age == pytest.approx(4 * FRAME)


@given(st.integers(0, 2**31 - 1))
@settings(deadline=None, max_examples=5)
def test_frame_stepped_runs_are_deterministic(seed: int) -> None:
    def actions() -> bytes:
        agent = RecordingAgent(TINY.__class__(**{**TINY.__dict__, "seed": seed}))
        _, _, decisions, _ = _run(PipelineConfig(2, 3, -1, frame_period=FRAME, alpha=0.5), 20, agent)
        return b"".join(d.output.action.tobytes() for d in decisions) + repr(
            [(d.request_id, d.decision_time, d.context_stamps) for d in decisions]).encode()

    assert actions() == actions()


def test_cancel_drops_every_in_flight_request_and_counts_it() -> None:
    agent = RecordingAgent()
    clock = SimClock()
    pipeline = AurasPipeline(agent, PipelineConfig(1, 3, -1, frame_period=FRAME),
                             PeriodicCamera(1 / FRAME, lambda s, t: 0.1), clock)
    pipeline.run(frames=6)
    assert pipeline.in_flight == 3  # between frames: the perception slot waits for the next observation
    pipeline.cancel_in_flight("new_instruction")
    decisions = pipeline.step()
    assert decisions == [] and pipeline.in_flight == 1  # only the newly admitted observation
    metrics = pipeline.run(frames=6)
    pipeline.close()
    assert metrics.cancels == {"new_instruction": 3}
    assert metrics.decisions > 0  # the pipeline refills and goes on


def test_a_changed_instruction_cancels_in_flight_requests() -> None:
    clock = SimClock()
    context = PublicContext([KeySpec("instruction", cancels_in_flight=True)], clock)
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 2, -1, frame_period=FRAME),
                             PeriodicCamera(1 / FRAME, lambda s, t: 0.1), clock, context=context)
    context.write("instruction", "pick the cup", stamp=0.0, seq=0)
    pipeline.run(frames=5)
    context.write("instruction", "place the cup", stamp=clock.now(), seq=1)
    metrics = pipeline.run(frames=1)
    pipeline.close()
    assert metrics.cancels == {"context_changed:instruction": 2}  # the L - 1 between frames


def test_a_dropped_stale_percept_skips_generation_and_is_counted() -> None:
    clock = SimClock()
    # max_age below one frame: with fetch_offset -1 every percept is too old when generation reads it.
    context = PublicContext([KeySpec(PERCEPT_KEY, max_age=FRAME / 2, policy=Policy.DROP)], clock)
    _, _, decisions, metrics = _run(PipelineConfig(1, 2, fetch_offset=-1, frame_period=FRAME), 6, clock=clock,
                                    context=context)
    assert decisions == []
    assert metrics.drops["dropped:percept"] == 5
    assert metrics.in_flight_max <= 3


def test_a_held_stale_percept_is_used_and_flagged() -> None:
    clock = SimClock()
    context = PublicContext([KeySpec(PERCEPT_KEY, max_age=FRAME / 2, policy=Policy.HOLD)], clock)
    _, _, decisions, metrics = _run(PipelineConfig(1, 2, fetch_offset=-1, frame_period=FRAME), 6, clock=clock,
                                    context=context)
    assert len(decisions) == 4 and metrics.drops["stale_held:percept"] == 5


def test_a_bad_observation_is_dropped_and_the_pipeline_goes_on() -> None:
    clock = SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: math.nan if seq == 3 else 0.1)
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 2, -1, frame_period=FRAME), camera, clock)
    metrics = pipeline.run(frames=10)
    pipeline.close()
    assert metrics.drops["bad_input"] == 1 and "observation data" in str(pipeline.last_error)
    assert metrics.decisions == 7


def test_wall_clock_run_at_a_fixed_period_never_starts_a_frame_early() -> None:
    clock = WallClock()
    start = clock.now()
    camera = PeriodicCamera(1000.0, lambda s, t: 0.1, start=start)
    decisions = []
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 2, -1, frame_period=0.01), camera, clock,
                             on_decision=decisions.append)
    metrics = pipeline.run(decisions=10)
    pipeline.close()
    assert metrics.decisions == 10
    # Frame k starts no earlier than its tick k periods after the first frame (later only on overrun).
    for decision in decisions:
        assert decision.decision_time >= start + decision.frame * 0.01


@pytest.mark.parametrize("kwargs, field", [
    ({"pp_perception": 0}, "pp_perception"),
    ({"pp_generation": 0}, "pp_generation"),
    ({"pp_generation": 1.5}, "pp_generation"),
    ({"fetch_offset": 1}, "fetch_offset"),
    ({"alpha": math.nan}, "alpha"),
    ({"alpha": math.inf}, "alpha"),
    ({"context_mode": "shared"}, "context_mode"),
])
def test_bad_pipeline_config_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        PipelineConfig(**{"pp_perception": 1, "pp_generation": 2, "fetch_offset": 0, **kwargs})
    assert error.value.field == field


def test_pipeline_refuses_more_perception_slices_than_the_agent_has() -> None:
    with pytest.raises(ConfigError, match="pp_perception=9: expected at most 4"):
        AurasPipeline(RecordingAgent(), PipelineConfig(9, 1, -1, frame_period=FRAME), PeriodicCamera(20, lambda s, t: 0.1),
                      SimClock())


def test_a_simulated_clock_needs_a_frame_period() -> None:
    with pytest.raises(ConfigError, match="frame_period"):
        AurasPipeline(RecordingAgent(), PipelineConfig(1, 1, -1), PeriodicCamera(20, lambda s, t: 0.1), SimClock())


class _FailingOnce(RecordingAgent):
    """Raises in the merged generation call of one chosen frame, as a percept of the wrong shape does."""

    def __init__(self, fail_frames: set[int]) -> None:
        super().__init__()
        self.fail_frames = fail_frames

    def generate(self, context, steps):
        if self.pipeline.frame in self.fail_frames:
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied (1x7 and 32x32)")
        return super().generate(context, steps)


def _guarded(agent: RecordingAgent, frames: int, config: PipelineConfig = PipelineConfig(1, 2, 0, frame_period=FRAME)):
    clock = SimClock()
    decisions = []
    pipeline = AurasPipeline(agent, config, PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01), clock,
                             on_decision=decisions.append)
    agent.pipeline = pipeline
    try:
        for _ in range(frames):
            pipeline.guarded_step()
    finally:
        pipeline.close()
    return pipeline, decisions


def test_an_exception_in_a_frame_is_counted_and_the_next_frames_run() -> None:
    pipeline, decisions = _guarded(_FailingOnce({4}), frames=12)
    drops = pipeline.recorder.summary().drops
    assert drops["frame_error:RuntimeError"] == 1 and pipeline.faults.counts["frame_error:RuntimeError"] == 1
    assert pipeline.recorder.summary().cancels  # the half-run requests were cancelled, counted
    assert max(d.frame for d in decisions) >= 10  # decisions kept leaving after the fault
    assert not pipeline.faults.fatal and pipeline.faults.consecutive == 0


def test_the_same_fault_on_every_frame_becomes_fatal() -> None:
    agent = _FailingOnce(set(range(1000)))
    pipeline, decisions = _guarded(agent, frames=40)
    assert decisions == []
    assert pipeline.faults.fatal and pipeline.faults.last_reason == "frame_error:RuntimeError"


def test_stale_error_policy_is_counted_at_the_frame_boundary() -> None:
    config = PipelineConfig(1, 1, 0, frame_period=FRAME)
    clock = SimClock()
    context = PublicContext([KeySpec(PERCEPT_KEY, max_age=FRAME / 2, policy=Policy.ERROR)], clock)
    source = LatestObservation()
    pipeline = AurasPipeline(RecordingAgent(), config, source, clock, context=context)
    try:
        for seq in range(5):
            source.push(Observation(seq, clock.now() - 10.0, 0.0))  # sensed long ago: stale on arrival
            pipeline.guarded_step()
    finally:
        pipeline.close()
    assert pipeline.faults.counts["stale_error:percept"] >= 2  # each generation read raised; none ended the clock
    assert pipeline.frame == 5


def test_a_restarted_source_is_taken_at_once_whatever_its_old_seq() -> None:
    clock = SimClock()
    source = LatestObservation()
    decisions = []
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 1, 0, frame_period=FRAME), source, clock,
                             on_decision=decisions.append)
    try:
        for seq in (5000, 5001, 1, 2):  # the source restarts numbering after 5001
            source.push(Observation(seq, clock.now(), 0.0))
            pipeline.step()
    finally:
        pipeline.close()
    # L = 2: the first decision leaves in frame 1 and reads the freshest percept; none is held back.
    assert [d.observation_seq for d in decisions] == [5001, 1, 2]
    assert pipeline.recorder.summary().drops["source_restart"] == 1


class _FaultyWorker(RecordingAgent):
    """Fails the whole request ``request_id`` on a worker thread (DEC's and PAR's run whole requests)."""

    def __init__(self, request_id: int) -> None:
        super().__init__()
        self.fail_request = request_id

    def generate_request(self, percept, request_id):
        if request_id == self.fail_request:
            raise RuntimeError("worker fault")
        return super().generate_request(percept, request_id)


@pytest.mark.parametrize("text", ["dec", "par:2"])
def test_a_dead_worker_is_counted_and_the_workers_start_again(text: str) -> None:
    clock = WallClock()
    camera = PeriodicCamera(200.0, lambda seq, stamp: seq * 0.01, start=clock.now())
    runner = make_runner(ExecutorSpec.parse(text), _FaultyWorker(request_id=3), camera, clock)
    try:
        runner.run_guarded(decisions=10)
    finally:
        runner.close()
    assert runner.faults.counts["frame_error:RuntimeError"] == 1
    assert runner.recorder.decisions_recorded >= 10  # the workers came back and decided


def test_a_fault_in_the_perception_pool_is_caught_at_the_frame_boundary() -> None:
    class FaultyPerception(RecordingAgent):
        def perceive(self, carry, stage, num_stages):
            if stage == 0 and carry.seq == 3:
                raise RuntimeError("perception worker fault")
            return super().perceive(carry, stage, num_stages)

    pipeline, decisions = _guarded(FaultyPerception(), frames=12, config=PipelineConfig(2, 2, -1, frame_period=FRAME))
    assert pipeline.faults.counts["frame_error:RuntimeError"] == 1
    assert max(d.frame for d in decisions) >= 10


def _in_thread(target, *args) -> threading.Thread:
    thread = threading.Thread(target=target, args=args)
    thread.start()
    return thread


def test_a_wait_on_the_percept_never_blocks_the_frame_that_writes_it() -> None:
    """Only the pipeline's own frames write the percept: a stale one skips the frame (counted) at once,
    and the next frame's fresh percept is decided on, though ``wait_timeout`` is a minute."""
    clock, percepts = WallClock(), LatestObservation()
    context = PublicContext([KeySpec(PERCEPT_KEY, max_age=5.0, policy=Policy.WAIT, wait_timeout=60.0)], clock)
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 1, 0), percepts, clock, context=context)
    decided = []
    for seq, age in enumerate((30.0, 30.0, 0.0)):  # the first generation (frame 1) reads a stale percept
        percepts.push(Observation(seq, clock.now() - age, 0.1))
        frame = _in_thread(lambda: decided.extend(pipeline.step()))
        frame.join(timeout=30)  # within the wait_timeout at all: a frame waiting it out would be alive
        assert not frame.is_alive()
    assert pipeline.recorder.summary().drops["wait_timeout:percept"] == 1
    assert [d.observation_seq for d in decided] == [2]


def test_a_wait_on_a_key_others_write_ends_when_the_run_stops() -> None:
    clock, percepts = WallClock(), LatestObservation()
    context = PublicContext([KeySpec(PERCEPT_KEY), KeySpec("instruction", policy=Policy.WAIT, wait_timeout=60.0)],
                            clock)
    pipeline = AurasPipeline(RecordingAgent(), PipelineConfig(1, 1, 0), percepts, clock, context=context)
    stopped = threading.Event()
    percepts.push(Observation(0, clock.now(), 0.1))
    run = _in_thread(pipeline.run_until, stopped.is_set)
    stopped.set()
    pipeline.wake()
    run.join(timeout=30)  # within the wait_timeout at all
    assert not run.is_alive() and pipeline.recorder.decisions_recorded == 0
