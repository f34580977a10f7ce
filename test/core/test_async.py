"""ASYNC, the peers' executor (core.async_runner): its text form, when it starts requests on a
frame-stepped clock, LeRobot's aggregate functions as chunk overlap policies (core.chunks), and a
closed loop with the shipped diffusion checkpoint."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
import torch

from auras_ros.core.async_runner import AsyncRunner
from auras_ros.core.chunks import AGGREGATES, OVERLAPS, ChunkPlayer
from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError
from auras_ros.core.external import ExternalPerception
from auras_ros.core.pacing import FreshObservations
from auras_ros.core.sources import LatestObservation, PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import AgentOutput, Observation
from auras_ros.core.workload import SyntheticAgent
from auras_ros.eval.episodes import run_episode
from auras_ros.eval.policies import load_policy
from auras_ros.eval.task import CatchTask
from core_helpers import FRAME, RecordingAgent

P = 0.1  # control period of the player tests


# ---- text form ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, threshold, aggregate, canonical", [
    ("async", 0.5, "weighted_average", "async:0.5:weighted_average"),
    ("async:0.25", 0.25, "weighted_average", "async:0.25:weighted_average"),
    ("async:1:average", 1.0, "average", "async:1:average"),
    ("async:0:latest_only", 0.0, "latest_only", "async:0:latest_only"),
    ("async:0.7:conservative", 0.7, "conservative", "async:0.7:conservative"),
    ("async:0.3333333333333333:average", 1 / 3, "average", "async:0.3333333333333333:average"),
])
def test_async_text_form_round_trips(text: str, threshold: float, aggregate: str, canonical: str) -> None:
    spec = ExecutorSpec.parse(text)
    assert (spec.kind, spec.threshold, spec.aggregate) == ("async", threshold, aggregate)
    assert str(spec) == canonical == spec.name
    assert ExecutorSpec.parse(str(spec)) == spec
    assert spec.in_flight == 1
    assert spec.chunk_overlap("ensemble") == aggregate  # its own aggregate, whatever the evaluation's choice
    assert ExecutorSpec.parse("seq").chunk_overlap("ensemble") == "ensemble"


@pytest.mark.parametrize("text, why", [
    ("async:", "at most a threshold"), ("async:0.5:", "at most a threshold"), ("async::average", "at most"),
    ("async:0.5:average:x", "at most"), ("async:1.5", "async threshold=1.5"), ("async:-0.1", "async threshold"),
    ("async:nan", "async threshold"), ("async:half", "could not convert"), ("async:0.5:mean", "async aggregate='mean'"),
])
def test_malformed_async_text_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match="async\\[:T\\[:AGG\\]\\]") as error:
        ExecutorSpec.parse(text)
    assert why in str(error.value)


def test_every_aggregate_is_an_overlap_policy_of_the_player() -> None:
    assert set(AGGREGATES) <= set(OVERLAPS)
    assert AGGREGATES["weighted_average"] == (0.3, 0.7) and AGGREGATES["conservative"] == (0.7, 0.3)


# ---- make_runner -------------------------------------------------------------------------------------

class ChunkAgent(SyntheticAgent):
    """A synthetic agent that states the rows its chunks play and their period, as a checkpoint would."""

    chunk_rows = 6
    chunk_period = 0.02


def test_make_runner_takes_rows_and_period_from_arguments_then_the_agent_then_the_frame_period() -> None:
    spec = ExecutorSpec.parse("async:0.25")
    runner = make_runner(spec, ChunkAgent(), LatestObservation(), SimClock(), frame_period=0.05)
    assert type(runner) is AsyncRunner
    assert (runner.chunk_rows, runner.chunk_period, runner.threshold) == (6, 0.02, 0.25)
    runner = make_runner(spec, ChunkAgent(), LatestObservation(), SimClock(), frame_period=0.05, chunk_rows=3,
                         chunk_period=0.04)
    assert (runner.chunk_rows, runner.chunk_period) == (3, 0.04)
    # The generation node wraps its agent: the wrapper states the wrapped agent's rows and period.
    runner = make_runner(spec, ExternalPerception(ChunkAgent()), LatestObservation(), SimClock(), frame_period=0.05)
    assert (runner.chunk_rows, runner.chunk_period) == (6, 0.02)
    runner = make_runner(spec, SyntheticAgent(), LatestObservation(), SimClock(), frame_period=0.05)
    assert (runner.chunk_rows, runner.chunk_period) == (1, 0.05)  # no chunk: one row per frame


def test_make_runner_refuses_async_without_a_row_period() -> None:
    with pytest.raises(ConfigError, match="invalid chunk_period=None: expected the seconds between"):
        make_runner(ExecutorSpec.parse("async"), SyntheticAgent(), LatestObservation(), SimClock())
    with pytest.raises(ConfigError, match="invalid chunk_period=-1"):
        make_runner(ExecutorSpec.parse("async"), SyntheticAgent(), LatestObservation(), SimClock(),
                    frame_period=0.05, chunk_period=-1)


# ---- when requests start -----------------------------------------------------------------------------

class Concurrency(RecordingAgent):
    """Counts the requests it is working on at once."""

    def __init__(self) -> None:
        super().__init__()
        self.busy = 0
        self.most = 0
        self._lock = threading.Lock()

    def generate_request(self, percept: Any, request_id: int) -> AgentOutput:
        with self._lock:
            self.busy += 1
            self.most = max(self.most, self.busy)
        try:
            return super().generate_request(percept, request_id)
        finally:
            with self._lock:
                self.busy -= 1


def frames_with_requests(threshold: float, rows: int, period: float, frames: int = 13) -> tuple[list[int], list]:
    """Frames (of ``FRAME`` seconds on a SimClock) in which ASYNC decided, and per frame (rows left
    before the frame, decided?)."""
    clock = SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    agent = Concurrency()
    runner = make_runner(ExecutorSpec("async", threshold=threshold), agent, camera, clock, frame_period=FRAME,
                         chunk_rows=rows, chunk_period=period)
    trace = []
    for frame in range(frames):
        left = runner.rows_left(clock.now())
        decisions = runner.step()
        assert len(decisions) <= 1 and agent.busy == 0
        trace.append((frame, left, bool(decisions)))
        for d in decisions:
            assert d.observation_stamp == pytest.approx(frame * FRAME)  # the newest observation, this frame's
    assert agent.most == 1
    return [f for f, _, decided in trace if decided], trace


@pytest.mark.parametrize("threshold, rows, period, expected", [
    (0.5, 4, FRAME, [0, 2, 4, 6, 8, 10, 12]),  # 2 of 4 rows left
    (0.25, 4, FRAME, [0, 3, 6, 9, 12]),  # 1 of 4 left
    (0.0, 4, FRAME, [0, 4, 8, 12]),  # the chunk played to its end
    (1.0, 4, FRAME, list(range(13))),  # always: SEQ
    (0.5, 4, 2 * FRAME, [0, 4, 8, 12]),  # rows twice as long as frames: 2 rows = 4 frames
    (0.5, 8, FRAME / 2, [0, 2, 4, 6, 8, 10, 12]),  # 4 rows of half a frame = 2 frames
    (0.4, 5, FRAME, [0, 3, 6, 9, 12]),  # 2 of 5 left: 2/5 <= 0.4, LeRobot's comparison
])
def test_a_request_starts_exactly_when_the_rows_left_fall_to_the_threshold(threshold, rows, period, expected) -> None:
    decided, trace = frames_with_requests(threshold, rows, period)
    assert decided == expected
    # Each frame: a request if and only if no chunk left yet or rows left / H <= threshold.
    first = True
    for _, left, made in trace:
        assert made == (first or left / rows <= threshold)
        first = False


def test_a_decision_the_sink_kept_leaves_the_estimate_as_it_was() -> None:
    clock = SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    refuse = [True, True, False]  # the first two decisions do not leave
    runner = make_runner(ExecutorSpec.parse("async"), RecordingAgent(), camera, clock, frame_period=FRAME,
                         chunk_rows=4, on_decision=lambda d: not refuse.pop(0) if refuse else None)
    made = [bool(runner.step()) for _ in range(5)]
    # Nothing left in frames 0 and 1, so it asked again; frame 2's left, so frames 3 waits, frame 4 asks.
    assert made == [True, True, True, False, True]
    assert runner.recorder.decisions_recorded == 2


def test_on_wall_clock_stamps_the_frame_at_the_threshold_requests_as_the_wait_expects() -> None:
    """ROS wall time (1.7e9 s): the time the threshold is crossed and the frame's check are one
    comparison, so a frame at that time requests (a rounding disagreement cost an idle frame)."""
    start = 1.7e9
    clock = SimClock(start)
    source = LatestObservation()
    runner = make_runner(ExecutorSpec.parse("async"), RecordingAgent(), source, clock, frame_period=FRAME,
                         chunk_rows=4, chunk_period=FRAME)
    made = []
    for frame in range(5):
        source.push(Observation(frame, clock.now(), 0.1))
        if frame == 2:  # 2 of 4 rows left: the threshold
            assert runner.due(clock.now()) and clock.now() >= runner.request_time()
        made.append(bool(runner.step()))
    assert made == [True, False, True, False, True]


class FrozenClock:
    """A wall-like clock (not simulated) that never moves: ASYNC's wait for its threshold never ends
    by itself, only by a stop. ``waiting`` is set once the thread named ``async-waits`` reads it a
    second time: the first is its frame's start, the second inside the wait."""

    simulated = False

    def __init__(self) -> None:
        self.waiter_reads = 0
        self.waiting = threading.Event()

    def now(self) -> float:
        if threading.current_thread().name == "async-waits":
            self.waiter_reads += 1
            if self.waiter_reads >= 2:
                self.waiting.set()
        return 100.0

    def wait_until(self, t: float) -> None:
        raise AssertionError("ASYNC waits interruptibly, never on the clock")

    def wall_until(self, t: float) -> float:
        return t - 100.0


def test_a_stop_ends_the_wait_for_the_threshold_on_a_wall_clock() -> None:
    source = LatestObservation()
    source.push(Observation(0, 100.0, 0.1))
    clock = FrozenClock()
    runner = make_runner(ExecutorSpec.parse("async"), RecordingAgent(), source, clock, chunk_rows=4,
                         chunk_period=0.05)
    assert len(runner.step()) == 1  # no chunk yet: at once
    assert runner.request_time() == pytest.approx(100.1)
    assert runner.step() == []  # a step alone (paced from outside) never waits
    waiting = threading.Thread(target=runner.run, name="async-waits")  # unpaced: waits for the threshold
    waiting.start()
    assert clock.waiting.wait(60), "the unpaced run never waited for its threshold"
    runner.stop()
    waiting.join(60)  # a bound for a hang, not a timing measurement
    assert not waiting.is_alive()
    assert runner.recorder.decisions_recorded == 1  # the stopped wait started no request


class ManualClock:
    """A wall-like clock (not simulated) that reads what the test sets."""

    simulated = False

    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        raise AssertionError("never reached: the test sets the clock at the threshold")

    def wall_until(self, t: float) -> float:
        return t - self.t


class RenderingWorld:
    """The real-time world's boundary (eval.realtime_world: frames stamped on the tick grid, rendered
    just after the tick): frames 0 and 1 are there; frame 2, stamped at the threshold, is rendered
    while a caller waits for a newer one (``wait_newer``)."""

    def __init__(self, start: float, period: float) -> None:
        self.start, self.period = start, period
        self.frames = [Observation(0, start, 0.0), Observation(1, start + period, 0.1)]

    def latest(self, now: float) -> Observation | None:
        return self.frames[-1]

    def wait_newer(self, seq: int, timeout: float) -> bool:
        if self.frames[-1].seq <= seq:
            n = len(self.frames)
            self.frames.append(Observation(n, self.start + n * self.period, 0.1 * n))
        return True


def test_unpaced_on_a_wall_clock_a_request_reads_the_frame_sensed_at_its_threshold() -> None:
    """LeRobot's client sends the observation it captures when the queue runs low. The real-time world
    stamps frames on the tick grid and the threshold falls on a tick (2 of 4 rows left: 2 periods after
    the chunk's observation), so the newest frame at that instant is the previous one (sensed while 3
    rows were left): the request waits for the frame of the threshold and counts the other superseded."""
    period = 0.05
    world = RenderingWorld(100.0, period)
    world.frames = world.frames[:1]  # only frame 0 at the first request
    clock = ManualClock(100.0)
    source = FreshObservations(world, timeout=2 * period)
    decided = []
    runner = make_runner(ExecutorSpec.parse("async"), RecordingAgent(), source, clock, chunk_rows=4,
                         chunk_period=period, on_decision=decided.append)
    runner.run(decisions=1)  # unpaced: what the real-time evaluation runs
    assert [d.observation_stamp for d in decided] == [100.0]
    world.frames.append(Observation(1, 100.0 + period, 0.1))  # sensed with 3 rows left
    clock.t = runner.request_time()  # the tick of frame 2: the threshold
    assert clock.t == pytest.approx(100.0 + 2 * period)
    metrics = runner.run(decisions=2)
    assert [d.observation_stamp for d in decided] == [100.0, pytest.approx(100.0 + 2 * period)]
    assert metrics.drops.get("superseded") == 1


class FastClock(ManualClock):
    """A replay's clock running ``speed`` times the wall's (bag_timed's ScaledClock at --speed)."""

    def __init__(self, t: float, speed: float) -> None:
        super().__init__(t)
        self.speed = speed

    def wall_until(self, t: float) -> float:
        return (t - self.t) / self.speed


def test_the_wait_for_the_threshold_is_in_wall_seconds_on_a_clock_faster_than_the_wall() -> None:
    """On a replay at speed 10, 0.03 clock seconds before the threshold are 3 ms of wall time: the wait
    must not sleep 30 ms (three rows late at that speed)."""
    source = LatestObservation()
    source.push(Observation(0, 100.0, 0.1))
    clock = FastClock(100.0, speed=10.0)
    runner = make_runner(ExecutorSpec.parse("async"), RecordingAgent(), source, clock, chunk_rows=4,
                         chunk_period=0.05)
    assert len(runner.step()) == 1
    clock.t = runner.request_time() - 0.03
    waits = []

    def woken(timeout: float) -> bool:  # in place of the Event's wait: record it, then the stop ends the run
        waits.append(timeout)
        runner.stop()
        return True

    runner._woken.wait = woken
    runner.run()
    assert waits == [pytest.approx(0.003)]


# ---- LeRobot's aggregate functions -------------------------------------------------------------------

def played(player: ChunkPlayer, times: list[float]) -> list[float | None]:
    rows = [player.row(t) for t in times]
    return [None if r is None else float(r[0]) for r in rows]


@pytest.mark.parametrize("name, old_w, new_w", [("weighted_average", 0.3, 0.7), ("average", 0.5, 0.5),
                                                ("conservative", 0.7, 0.3)])
def test_an_aggregate_merges_the_rows_both_chunks_have_and_merges_again_on_the_merged_queue(name, old_w, new_w):
    player = ChunkPlayer(P, name)
    player.add(np.array([0.0, 1, 2, 3]), stamp=0.0, now=0.0, width=1)
    assert played(player, [0.0, 0.1]) == [0, 1]
    player.add(np.array([10.0, 11, 12, 13]), stamp=0.2, now=0.2, width=1)
    # Rows due at 0.2 and 0.3: the old chunk's rows 2 and 3 with the new rows 0 and 1; then the new alone.
    first = [old_w * 2 + new_w * 10, old_w * 3 + new_w * 11, 12.0, 13.0]
    assert played(player, [0.2]) == first[:1]
    player.add(np.array([20.0, 21, 22, 23]), stamp=0.3, now=0.3, width=1)
    # The queue being played is the merged one: its rows at 0.3, 0.4, 0.5 merge with the new rows 0..2.
    second = [old_w * first[1] + new_w * 20, old_w * 12 + new_w * 21, old_w * 13 + new_w * 22, 23.0]
    assert played(player, [0.3, 0.4, 0.5, 0.6, 0.7]) == second + [None]


def test_latest_only_plays_as_replace_and_the_queue_beyond_a_short_new_chunk_is_dropped() -> None:
    latest, replace, average = ChunkPlayer(P, "latest_only"), ChunkPlayer(P, "replace"), ChunkPlayer(P, "average")
    for player in (latest, replace, average):
        player.add(np.arange(8.0), stamp=0.0, now=0.0, width=1)
        player.add(np.array([10.0, 11.0]), stamp=0.2, now=0.2, width=1)
    times = [0.2, 0.3, 0.4]
    assert played(latest, times) == played(replace, times) == [10.0, 11.0, None]
    # LeRobot rebuilds its queue from the incoming actions: old rows 4..7 are gone.
    assert played(average, times) == [0.5 * 2 + 0.5 * 10, 0.5 * 3 + 0.5 * 11, None]


def test_an_aggregate_pairs_rows_by_time_off_the_grid_and_a_late_chunk_still_skips() -> None:
    player = ChunkPlayer(P, "weighted_average")
    player.add(np.array([0.0, 1, 2, 3, 4]), stamp=0.0, now=0.0, width=1)
    # Sensed at 0.15 (between rows), arriving at 0.27: row k's step begins at 0.15 + 0.1k, when the old
    # chunk's row 1 + k is due; row 0 (0.15..0.25) had passed and is skipped.
    assert player.add(np.array([10.0, 11, 12, 13]), stamp=0.15, now=0.27, width=1) == 1
    expected = [0.3 * 2 + 0.7 * 11, 0.3 * 3 + 0.7 * 12, 0.3 * 4 + 0.7 * 13]
    assert played(player, [0.27, 0.35, 0.45, 0.55]) == expected + [None]


# ---- closed loop -------------------------------------------------------------------------------------

def test_async_runs_through_make_runner_with_the_synthetic_agent() -> None:
    clock = SimClock()
    camera = PeriodicCamera(1 / FRAME, lambda seq, stamp: seq * 0.01)
    runner = make_runner(ExecutorSpec.parse("async:0.5:average"), SyntheticAgent(), camera, clock,
                         frame_period=FRAME, chunk_rows=4)
    metrics = runner.run(frames=10)
    assert metrics.decisions == 5  # 4 rows, half left after two frames: frames 0, 2, 4, 6, 8


def test_async_with_the_shipped_diffusion_checkpoint_in_the_frame_stepped_closed_loop() -> None:
    torch.set_num_threads(1)
    agent = load_policy("diffusion")
    task = CatchTask()
    try:
        results = [run_episode(agent, ExecutorSpec.parse("async"), task, seed, agent.chunk_rows) for seed in (0, 1)]
    finally:
        task.close()
    assert agent.chunk_rows == 4
    for result in results:
        assert result.success
        # One request per 2 frames (2 of 4 rows left), each on its own frame's observation.
        assert result.intervals_frames == pytest.approx([2.0] * (result.decisions - 1))
