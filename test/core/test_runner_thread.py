"""RunnerThread: the real-time evaluators' runner beside a world thread; a runner's exception stops the
world and is raised where the evaluator finishes."""

from __future__ import annotations

import threading

import pytest

from auras_ros.core.runner import RunnerThread


class StubRunner:
    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.stopped = threading.Event()
        self.calls: list[str] = []

    def run(self) -> None:
        self.calls.append("run")
        if self.error is not None:
            raise self.error
        self.stopped.wait()

    def stop(self) -> None:
        self.calls.append("stop")
        self.stopped.set()

    def close(self) -> None:
        self.calls.append("close")


def test_a_runner_runs_until_finish_stops_and_closes_it() -> None:
    runner = StubRunner()
    stops: list[int] = []
    driver = RunnerThread(runner, "test", on_error=lambda: stops.append(1))  # type: ignore[arg-type]
    driver.start()
    driver.finish()
    assert runner.calls == ["run", "stop", "close"] and stops == []


def test_a_runners_exception_stops_the_world_and_is_raised_by_finish() -> None:
    runner = StubRunner(ValueError("the agent broke"))
    world_stopped = threading.Event()
    driver = RunnerThread(runner, "test", on_error=world_stopped.set)  # type: ignore[arg-type]
    driver.start()
    assert world_stopped.wait(timeout=60)  # a hang guard: the error stops the world at once
    with pytest.raises(ValueError, match="the agent broke"):
        driver.finish()
    assert runner.calls == ["run", "stop", "close"]
