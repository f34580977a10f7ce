"""The pacing rules (core.pacing) and the run loop a node's frame thread calls (Runner.run_until):
lockstep ticks and waits, real time waits for a percept when idle (and every frame with per_percept),
nothing runs after a stop, and DEC/PAR run until stopped."""

from __future__ import annotations

import threading

import pytest

from auras_ros.core.clock import SimClock, WallClock
from auras_ros.core.errors import ConfigError
from auras_ros.core.pacing import FreshArrivals, FreshObservations, Pacer, Pacing
from auras_ros.core.sources import LatestObservation, PeriodicCamera
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.stages import Observation
from auras_ros.core.workload import SyntheticAgent, SyntheticConfig


class Arrivals:
    """Scripted arrivals: ``wait_newer`` answers from a list and records each wait."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.version = 0
        self.waits: list[tuple[int, float]] = []

    def wait_newer(self, version: int, timeout: float) -> bool:
        self.waits.append((version, timeout))
        arrived = self.answers.pop(0)
        self.version += arrived
        return arrived


def test_lockstep_ticks_then_waits_for_that_frames_observation() -> None:
    arrivals, ticks = Arrivals([False, True]), []
    pacer = Pacer(Pacing(lockstep=True, tick_wait_s=0.5), arrivals, tick=ticks.append)
    assert not pacer.ready(frame=3, in_flight=2)  # the tick or its image was lost: ask again
    assert pacer.ready(frame=3, in_flight=2)
    assert ticks == [3, 3] and arrivals.waits == [(0, 0.5), (0, 0.5)] and pacer.admitted == 1


@pytest.mark.parametrize("per_percept, in_flight, arrived, runs, waited", [
    (False, 0, False, False, True),   # idle and nothing new: skip
    (False, 0, True, True, True),     # idle, a new percept: run
    (False, 2, False, True, False),   # requests in flight: run at once
    (True, 2, False, True, True),     # per percept: wait for one, then run anyway
    (True, 0, False, False, True),
])
def test_real_time_frames_wait_for_a_percept(per_percept, in_flight, arrived, runs, waited) -> None:
    arrivals, ticks = Arrivals([arrived]), []
    pacer = Pacer(Pacing(per_percept=per_percept, percept_wait_s=0.1), arrivals, tick=ticks.append)
    assert pacer.ready(frame=7, in_flight=in_flight) is runs
    assert bool(arrivals.waits) is waited
    assert ticks == ([7] if runs else [])


def test_pacing_refuses_a_wait_that_is_not_a_positive_time() -> None:
    with pytest.raises(ConfigError, match="tick_wait_s"):
        Pacing(tick_wait_s=0.0)


def test_run_until_runs_paced_frames_and_none_after_the_stop() -> None:
    percepts = LatestObservation()
    runner = make_runner(ExecutorSpec.parse("seq"), SyntheticAgent(SyntheticConfig()), percepts, WallClock())
    stopped = threading.Event()
    frames: list[int] = []

    def after_frame() -> None:
        frames.append(runner.frame)
        if len(frames) == 3:
            stopped.set()
        else:
            percepts.push(Observation(len(frames), 0.0, 0.5))

    pacer = Pacer(Pacing(percept_wait_s=0.05), percepts)  # admits what arrives after it starts
    percepts.push(Observation(0, 0.0, 0.5))
    runner.run_until(stopped.is_set, pacer, after_frame)
    assert frames == [1, 2, 3] and runner.recorder.decisions_recorded == 3


@pytest.mark.parametrize("executor", ["dec", "par:2"])
def test_threaded_runners_run_until_stopped(executor: str) -> None:
    clock = WallClock()
    camera = PeriodicCamera(500.0, lambda seq, stamp: 0.5, start=clock.now())
    runner = make_runner(ExecutorSpec.parse(executor), SyntheticAgent(SyntheticConfig()), camera, clock)
    thread = threading.Thread(target=runner.run_until, args=(lambda: False,))
    thread.start()
    while runner.recorder.decisions_recorded < 5 and thread.is_alive():  # a condition, not a duration
        threading.Event().wait(0.01)
    runner.stop()
    thread.join(timeout=30)
    assert not thread.is_alive() and runner.recorder.decisions_recorded >= 5


def test_run_without_a_limit_runs_until_stop() -> None:
    camera = PeriodicCamera(20.0, lambda seq, stamp: 0.5)
    runner = make_runner(ExecutorSpec.parse("auras:1+2:f0:a0"), SyntheticAgent(SyntheticConfig()), camera,
                         SimClock(), frame_period=0.05, on_decision=lambda d: runner.stop() if d.request_id >= 4 else None)
    runner.run()
    assert runner.recorder.decisions_recorded == 5


def test_fresh_arrivals_hand_each_arrival_once() -> None:
    percepts = LatestObservation()
    percepts.push(Observation(0, 0.0, 0.5))  # from before: never handed
    fresh = FreshArrivals(percepts, timeout=0.01)
    assert fresh.latest(0.0) is None
    percepts.push(Observation(1, 0.0, 0.5))
    assert fresh.latest(0.0).seq == 1
    assert fresh.latest(0.0) is None  # waited for a newer one; none came
    percepts.push(Observation(2, 0.0, 0.5))
    assert fresh.latest(0.0).seq == 2


class StillWorld:
    """A world that renders only when the test sets ``frame``: ``wait_newer`` answers at once, recorded."""

    def __init__(self) -> None:
        self.frame: Observation | None = None
        self.waits: list[int] = []

    def latest(self, now: float) -> Observation | None:
        return self.frame

    def wait_newer(self, seq: int, timeout: float) -> bool:
        self.waits.append(seq)
        return self.frame is not None and self.frame.seq > seq


def test_fresh_observations_hand_the_newest_again_when_none_came() -> None:
    world = StillWorld()
    fresh = FreshObservations(world, timeout=1.0)
    assert fresh.latest(0.0) is None and world.waits == [-1]  # before the first render: waited, None
    world.frame = Observation(3, 0.0, 0.5)
    assert fresh.latest(0.0).seq == 3 and world.waits == [-1]  # the newest there is, at once
    assert fresh.latest(0.0).seq == 3 and world.waits == [-1, 3]  # waited for a newer one; none came: the same
    world.frame = Observation(4, 0.1, 0.5)
    assert fresh.latest(0.0).seq == 4 and world.waits == [-1, 3]


@pytest.mark.parametrize("timeout", [0, -1.0, float("inf"), float("nan"), "0.1"])
def test_fresh_sources_refuse_a_timeout_that_is_not_a_finite_positive_number(timeout: object) -> None:
    for make in (lambda: FreshArrivals(LatestObservation(), timeout), lambda: FreshObservations(StillWorld(), timeout)):
        with pytest.raises(ConfigError, match="timeout"):
            make()


@pytest.mark.parametrize("executor", ["dec", "par:3"])
def test_threaded_runners_decide_at_most_once_per_pushed_observation(executor: str) -> None:
    percepts = LatestObservation()
    decided = threading.Semaphore(0)
    runner = make_runner(ExecutorSpec.parse(executor), SyntheticAgent(SyntheticConfig()),
                         FreshArrivals(percepts, timeout=0.01), WallClock(), on_decision=lambda d: decided.release())
    thread = threading.Thread(target=runner.run_until, args=(lambda: False,))
    thread.start()
    for seq in range(3):
        percepts.push(Observation(seq, 0.0, 0.5))
        assert decided.acquire(timeout=30)  # a hang guard: each observation is decided on
    idle = runner.recorder.summary().drops.get("no_observation", 0)
    # Every worker found nothing new (a runner thread that died ends the wait, and the asserts fail).
    while runner.recorder.summary().drops.get("no_observation", 0) < idle + 3 and thread.is_alive():
        threading.Event().wait(0.01)
    runner.stop()
    thread.join(timeout=30)
    assert not thread.is_alive() and runner.recorder.decisions_recorded == 3
