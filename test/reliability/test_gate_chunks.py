"""The safety gate plays action chunks (core.safety with core.chunks): one row per tick at the rows'
times, the chunk to its end, then the hold/stop rules on its last row; late chunks skip or are refused."""

from __future__ import annotations

import math

import pytest

from auras_ros.core.chunks import ACT_ENSEMBLE_COEFF
from auras_ros.core.errors import ConfigError
from auras_ros.core.safety import ACCEPTED, LATE, NO_ACTION, REPEAT, ROW, STOP, GateConfig, SafetyGate

P = 0.1  # the chunk period


def kinds_and_rows(gate: SafetyGate, times: list[float]) -> list[tuple[str, list[float]] | None]:
    commands = [gate.tick(t) for t in times]
    return [None if c is None else (c.kind, c.action.tolist()) for c in commands]


def test_rows_play_one_per_tick_then_the_last_holds_then_the_watchdog_stops() -> None:
    gate = SafetyGate(GateConfig(row_width=2, chunk_period=P, action_timeout=0.45, max_observation_age=1.0))
    accepted = gate.offer([0.1, -0.1, 0.2, -0.2, 0.3, -0.3], observation_stamp=10.0, now=10.0)
    assert accepted.kind == ACCEPTED and accepted.action.tolist() == [0.1, -0.1]
    assert accepted.chunk.rows.tolist() == [[0.1, -0.1], [0.2, -0.2], [0.3, -0.3]]
    assert kinds_and_rows(gate, [10.05, 10.1, 10.2, 10.3, 10.4, 10.5, 10.6]) == [
        None,  # row 0 is what the action itself sent
        (ROW, [0.2, -0.2]), (ROW, [0.3, -0.3]),
        (REPEAT, [0.3, -0.3]), (REPEAT, [0.3, -0.3]),  # played to its end: the last row holds ...
        (STOP, [0.0, 0.0]), None]  # ... until action_timeout (0.45 s) after the action
    assert gate.stop_causes == {NO_ACTION: 1}


def test_a_chunk_plays_to_its_end_past_the_timeout_and_stops_at_once_after() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, action_timeout=0.15, max_observation_age=0.2))
    gate.offer([0.0, 0.1, 0.2, 0.3, 0.4, 0.5], observation_stamp=10.0, now=10.0)
    assert kinds_and_rows(gate, [10.0 + P * k for k in range(1, 7)]) == [
        (ROW, [0.1]), (ROW, [0.2]), (ROW, [0.3]), (ROW, [0.4]), (ROW, [0.5]), (STOP, [0.0])]


def test_a_tick_in_the_row_already_sent_sends_nothing_and_a_later_one_renews_it() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, action_timeout=1.0, max_observation_age=1.0))
    gate.offer([0.5, 0.6], observation_stamp=10.0, now=10.0)
    # Ticks twice per row: the first tick after the action has nothing new, the second renews row 0.
    assert kinds_and_rows(gate, [10.02, 10.07, 10.12, 10.17]) == [
        None, (ROW, [0.5]), (ROW, [0.6]), (ROW, [0.6])]


def test_observation_timing_skips_the_rows_whose_time_passed_and_refuses_a_chunk_with_none_left() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, chunk_timing="observation", action_timeout=1.0,
                                 max_observation_age=1.0))
    # Sensed at 10.0, arriving at 10.25: rows 0 and 1 (due at 10.0 and 10.1) have passed.
    accepted = gate.offer([0.0, 0.1, 0.2, 0.3], observation_stamp=10.0, now=10.25)
    assert accepted.action.tolist() == [0.2] and gate.player.skipped_rows == 2
    assert accepted.chunk.stamp == 10.0 and accepted.chunk.target_time(2) == pytest.approx(10.3)
    assert gate.offer([0.9, 0.9], observation_stamp=10.05, now=10.3) == LATE  # its rows were due until 10.25
    assert gate.refused == {LATE: 1} and gate.accepted == 1
    assert kinds_and_rows(gate, [10.3]) == [(ROW, [0.3])]  # the chunk in force plays on


def test_arrival_timing_plays_row_zero_when_the_action_arrives_whatever_its_age() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, action_timeout=1.0, max_observation_age=1.0))
    assert gate.offer([0.7, 0.8], observation_stamp=10.0, now=10.25).action.tolist() == [0.7]
    assert kinds_and_rows(gate, [10.35, 10.45]) == [(ROW, [0.8]), (REPEAT, [0.8])]


def test_a_stop_forgets_the_chunk_in_force() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P))
    gate.offer([0.1, 0.2, 0.3], observation_stamp=10.0, now=10.0)
    assert gate.clock_jumped().action.tolist() == [0.0]
    assert gate.tick(10.1) is None  # row 1 is due by the clock, but nothing plays after a stop


def test_ensemble_through_the_gate_mixes_the_chunks_in_force() -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, overlap="ensemble", action_timeout=1.0,
                                 max_observation_age=1.0))
    gate.offer([0.0, 0.0, 0.0], observation_stamp=10.0, now=10.0)
    mixed = gate.offer([0.5, 0.5, 0.5], observation_stamp=10.1, now=10.1).action[0]
    w = math.exp(-ACT_ENSEMBLE_COEFF)  # ACT's weights: 1 for the oldest chunk, exp(-m) for the next
    assert mixed == pytest.approx(0.5 * w / (1 + w))


def test_unknown_overlap_and_timing_are_refused_by_name() -> None:
    with pytest.raises(ConfigError) as error:
        SafetyGate(GateConfig(overlap="average_of_three"))
    assert error.value.field == "overlap"
    with pytest.raises(ConfigError) as error:
        GateConfig(chunk_timing="soon")
    assert error.value.field == "chunk_timing"


def test_gate_config_refuses_a_row_narrower_than_the_elements_the_outputs_map() -> None:
    # Twist index.linear.y = 1 maps element 1 of each row: rows of one element could never be sent.
    with pytest.raises(ConfigError) as error:
        GateConfig(min_length=2, row_width=1)
    assert error.value.field == "row_width" and error.value.value == 1
    assert "min_length = 2" in str(error.value) and "index.<field>" in str(error.value)
    GateConfig(min_length=2, row_width=0)  # the whole action is one row: its length is judged per action
    GateConfig(min_length=2, row_width=2)


@pytest.mark.parametrize("period", [0.0, -0.1, math.nan, math.inf])
def test_gate_config_refuses_a_chunk_period_that_is_not_seconds_above_zero(period: float) -> None:
    with pytest.raises(ConfigError) as error:
        GateConfig(chunk_period=period)
    assert error.value.field == "chunk_period"


@pytest.mark.parametrize("overlap", ["ensemble", "blend", "average"])
def test_an_accepted_chunks_plan_is_what_the_gate_then_plays_tick_by_tick(overlap: str) -> None:
    gate = SafetyGate(GateConfig(row_width=1, chunk_period=P, overlap=overlap, action_timeout=1.0,
                                 max_observation_age=1.0))
    gate.offer([0.0, 0.1, 0.2, 0.3], observation_stamp=10.0, now=10.0)
    accepted = gate.offer([0.8, 0.8, 0.8], observation_stamp=10.1, now=10.1)
    planned = [float(row[0]) for row, _ in accepted.plan]
    assert [t for _, t in accepted.plan] == pytest.approx([10.2, 10.3, 10.4])
    assert planned[0] == pytest.approx(accepted.action[0])
    # The overlap mixes the older chunk's rows in: the plan is not the chunk's own rows...
    assert planned != pytest.approx(accepted.chunk.rows[:, 0].tolist())
    # ...it is what each later tick plays.
    ticks = [gate.tick(t) for t in (10.2, 10.3)]
    assert [float(c.action[0]) for c in ticks] == pytest.approx(planned[1:])
