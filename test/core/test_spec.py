"""The executor spec's text form round-trips, refuses malformed text, and builds the runner it names."""

from __future__ import annotations

import pytest

from auras_ros.core.baselines import DecoupledRunner, ParallelRunner, SequentialRunner
from auras_ros.core.clock import SimClock
from auras_ros.core.errors import ConfigError
from auras_ros.core.pipeline import AurasPipeline
from auras_ros.core.sources import LatestObservation
from auras_ros.core.spec import ExecutorSpec, make_runner
from auras_ros.core.workload import SyntheticAgent


@pytest.mark.parametrize("text, fields, in_flight", [
    ("seq", {"kind": "seq"}, 1),
    ("dec", {"kind": "dec", "generation_frames": 1}, 2),
    ("dec:3", {"kind": "dec", "generation_frames": 3}, 4),
    ("par:3", {"kind": "par", "workers": 3}, 3),
    ("auras:1+5:f0:a0", {"kind": "auras", "pp_perception": 1, "pp_generation": 5, "fetch_offset": 0, "alpha": 0.0}, 6),
    ("auras:2+3:f-1:a0.5", {"kind": "auras", "pp_perception": 2, "pp_generation": 3, "fetch_offset": -1,
                            "alpha": 0.5}, 5),
    ("auras:1+2:f0:a0:private", {"kind": "auras", "pp_generation": 2, "context_mode": "private"}, 3),
])
def test_text_form_round_trips(text: str, fields: dict, in_flight: int) -> None:
    spec = ExecutorSpec.parse(text)
    for name, value in fields.items():
        assert getattr(spec, name) == value, name
    assert str(spec) == text
    assert ExecutorSpec.parse(str(spec)) == spec
    assert spec.in_flight == in_flight


def test_short_auras_form_takes_the_defaults() -> None:
    assert str(ExecutorSpec.parse("auras:1+4")) == "auras:1+4:f0:a0"
    assert str(ExecutorSpec.parse("auras:1+4:f-1")) == "auras:1+4:f-1:a0"


@pytest.mark.parametrize("text", ["", "fast", "par", "par:x", "par:0", "auras", "auras:5", "auras:0+2",
                                  "auras:1+2:f1", "auras:1+2:q3", "auras:1+2:anan", "seq:2", "dec:0"])
def test_malformed_text_is_refused_with_the_expected_forms(text: str) -> None:
    with pytest.raises(ConfigError, match="auras:P\\+G"):
        ExecutorSpec.parse(text)


@pytest.mark.parametrize("text, runner_type", [
    ("seq", SequentialRunner), ("dec:2", DecoupledRunner), ("par:2", ParallelRunner), ("auras:1+3:f0:a1", AurasPipeline),
])
def test_make_runner_builds_what_the_spec_names(text: str, runner_type: type) -> None:
    agent = SyntheticAgent()
    runner = make_runner(ExecutorSpec.parse(text), agent, LatestObservation(), SimClock(), frame_period=0.01)
    try:
        assert type(runner) is runner_type
        if isinstance(runner, AurasPipeline):
            assert (runner.config.pp_generation, runner.config.alpha, runner.config.frame_period) == (3, 1.0, 0.01)
        if isinstance(runner, ParallelRunner):
            assert runner.workers == 2
        if isinstance(runner, DecoupledRunner):
            assert runner.generation_frames == 2
    finally:
        runner.close()


@pytest.mark.parametrize("text, field, at_cap", [("auras:1+100", "pp_generation", "auras:1+64"),
                                                 ("auras:65+1", "pp_perception", "auras:64+1"),
                                                 ("par:65", "workers", "par:64"),
                                                 ("dec:1000", "generation_frames", "dec:64")])
def test_degrees_beyond_the_cap_are_refused_at_parse_time(text: str, field: str, at_cap: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid {field}="):
        ExecutorSpec.parse(text)
    assert str(ExecutorSpec.parse(at_cap)).startswith(at_cap)


def test_an_over_long_executor_text_is_refused_in_a_bounded_message() -> None:
    with pytest.raises(ConfigError) as error:
        ExecutorSpec.parse("auras:1+" + "9" * 100_000)
    assert len(str(error.value)) < 1000 and "characters" in str(error.value)
