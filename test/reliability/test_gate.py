"""The safety gate's rules, ROS-free (auras_ros/core/safety.py): age from the observation stamp on the
gate's clock, refusals counted by reason, the watchdog's stop and ramp."""

from __future__ import annotations

import math

import numpy as np
import pytest

from auras_ros.core.errors import ConfigError
from auras_ros.core.safety import (
    ACCEPTED, BAD_LENGTH, FUTURE, NO_ACTION, NON_FINITE, OLD_OBSERVATION, OUT_OF_RANGE, RAMP, REPEAT, STALE, STOP,
    CommandTimeout, GateConfig, SafetyGate)


def test_fresh_finite_action_in_range_passes_unchanged() -> None:
    gate = SafetyGate(GateConfig())
    command = gate.offer([0.5, -0.25], observation_stamp=9.9, now=10.0)
    assert command.kind == ACCEPTED and command.action.tolist() == [0.5, -0.25]
    assert gate.accepted == 1 and not gate.refused


@pytest.mark.parametrize("action, stamp, reason", [
    ([0.1], 0.0, STALE),  # 10 s old on the gate's clock, whatever the sender claims
    ([0.1], 10.5, FUTURE),  # stamped ahead of the gate's clock by more than the tolerance
    ([math.nan], 10.0, NON_FINITE),
    ([math.inf], 10.0, NON_FINITE),
    ([1.5], 10.0, OUT_OF_RANGE),
    ([-1.01], 10.0, OUT_OF_RANGE),
    ([], 10.0, BAD_LENGTH),
])
def test_bad_actions_are_refused_and_counted_by_reason(action, stamp, reason) -> None:
    gate = SafetyGate(GateConfig(max_observation_age=0.5, future_tolerance=0.1))
    assert gate.offer(action, observation_stamp=stamp, now=10.0) == reason
    assert gate.refused == {reason: 1} and gate.accepted == 0
    assert gate.tick(20.0) is None  # nothing was accepted: no command at all


def test_outputs_decide_the_length_an_action_needs() -> None:
    gate = SafetyGate(GateConfig(min_length=2, row_width=2))
    assert gate.offer([0.1], 10.0, 10.0) == BAD_LENGTH
    assert gate.offer([0.1, 0.2, 0.3], 10.0, 10.0) == BAD_LENGTH
    assert gate.offer([0.1, 0.2, 0.3, 0.4], 10.0, 10.0).kind == ACCEPTED


def test_watchdog_stops_once_after_the_timeout_and_repeats_the_command_before() -> None:
    gate = SafetyGate(GateConfig(action_timeout=0.5, max_observation_age=1.0))
    gate.offer([0.8, 0.2], 10.0, 10.0)
    assert gate.tick(10.25) is None  # the action itself went out in this period
    repeat = gate.tick(10.5)  # none did in this one: the command in force again, for the robot's timeout
    assert repeat.kind == REPEAT and repeat.action.tolist() == [0.8, 0.2]
    stop = gate.tick(10.55)
    assert stop.kind == STOP and stop.action.tolist() == [0.0, 0.0]
    assert gate.timeouts == 1 and gate.stop_causes == {NO_ACTION: 1}
    assert gate.tick(10.6) is None  # stopped: nothing more is owed
    assert gate.offer([0.3, 0.0], 10.7, 10.7).kind == ACCEPTED  # a fresh action moves again
    assert gate.tick(11.3).kind == STOP and gate.timeouts == 2


def test_the_command_in_force_stops_once_its_observation_is_too_old() -> None:
    """Perception, the context or the camera gone: generation goes on deciding on the last observation
    it has; those actions are refused as stale, and the one in force ends at the same limit."""
    gate = SafetyGate(GateConfig(action_timeout=1.0, max_observation_age=0.2))
    assert gate.offer([0.5], observation_stamp=10.0, now=10.05).kind == ACCEPTED
    assert gate.offer([0.5], observation_stamp=10.0, now=10.15).kind == ACCEPTED  # same observation, still young
    assert gate.tick(10.2) is None
    assert gate.offer([0.5], observation_stamp=10.0, now=10.25) == STALE
    stop = gate.tick(10.25)
    assert stop.kind == STOP and gate.stop_causes == {OLD_OBSERVATION: 1}


def test_a_clock_jump_stops_at_once_and_actions_from_before_it_are_refused() -> None:
    gate = SafetyGate(GateConfig())
    gate.offer([0.5, 0.5], 20.0, 20.0)
    stop = gate.clock_jumped()  # /clock went back to 10 s
    assert stop.kind == STOP and stop.action.tolist() == [0.0, 0.0] and gate.clock_jumps == 1
    assert not gate.moving and gate.tick(10.05) is None
    assert gate.offer([0.5, 0.5], observation_stamp=20.0, now=10.05) == FUTURE  # decided before the jump
    assert gate.offer([0.5, 0.5], observation_stamp=10.0, now=10.05).kind == ACCEPTED  # after it


def test_the_base_controller_times_a_command_out_by_its_stamp() -> None:
    """CommandTimeout behaves as diff_drive_controller's cmd_vel_timeout on stamped commands."""
    base = CommandTimeout(0.15)
    assert not base.timed_out(5.0)  # nothing received: nothing to time out
    assert base.receive(stamp=10.0, now=10.01)
    assert not base.timed_out(10.1) and not base.timed_out(10.15)
    assert base.timed_out(10.2) and base.brakes == 1
    assert not base.timed_out(10.3)  # braked once; stays braked until a newer command
    assert not base.receive(stamp=10.0, now=10.3) and base.ignored == 1  # too old on receipt: ignored
    assert base.receive(stamp=0.0, now=10.3)  # stamped 0: stamped on receipt
    assert not base.timed_out(10.4) and base.timed_out(10.5)
    unlimited = CommandTimeout(0.0)  # no timeout
    assert unlimited.receive(stamp=1.0, now=100.0) and not unlimited.timed_out(1000.0)
    with pytest.raises(ConfigError) as error:
        CommandTimeout(-1.0)
    assert error.value.field == "command_timeout"


def test_refused_actions_do_not_feed_the_watchdog() -> None:
    gate = SafetyGate(GateConfig(action_timeout=0.5, max_observation_age=1.0))
    gate.offer([0.5], 10.0, 10.0)
    for now in (10.2, 10.4, 10.6):
        assert gate.offer([math.nan], now, now) == NON_FINITE
    assert gate.tick(10.6).kind == STOP


def test_ramp_keeps_the_direction_and_limits_the_rate() -> None:
    gate = SafetyGate(GateConfig(action_timeout=0.5, max_observation_age=1.0, deceleration=1.0))
    gate.offer([0.8, -0.4], 10.0, 10.0)
    gate.tick(10.5)
    commands = [gate.tick(10.5 + 0.1 * k) for k in range(1, 12)]
    ramp = [c for c in commands if c is not None and c.kind == RAMP]
    assert [c.kind for c in commands if c is not None][-1] == STOP
    assert len(ramp) == 7  # 0.8 falls by at most 0.1 per 0.1 s step: 0.7 ... 0.1, then the stop
    for c in ramp:
        assert c.action[0] == pytest.approx(-2 * c.action[1])  # same direction
    peaks = [0.8] + [float(np.max(np.abs(c.action))) for c in ramp] + [0.0]
    assert all(0 < a - b <= 0.1 + 1e-9 for a, b in zip(peaks, peaks[1:], strict=False))


def test_stop_on_demand_is_zero_and_ends_what_is_owed() -> None:
    gate = SafetyGate(GateConfig())
    gate.offer([0.4, 0.4, 0.4], 10.0, 10.0)
    assert gate.moving
    stop = gate.stop()
    assert stop.kind == STOP and stop.action.tolist() == [0.0] * 3 and not gate.moving
    assert gate.tick(100.0) is None


@pytest.mark.parametrize("kwargs, field", [
    ({"action_timeout": 0.0}, "action_timeout"),
    ({"max_observation_age": math.inf}, "max_observation_age"),
    ({"deceleration": -1.0}, "deceleration"),
    ({"action_min": 0.5}, "action_min..action_max"),
    ({"row_width": -1}, "min_length/row_width"),
])
def test_a_gate_that_would_not_fail_closed_is_refused(kwargs, field) -> None:
    with pytest.raises(ConfigError) as error:
        GateConfig(**kwargs)
    assert error.value.field == field
