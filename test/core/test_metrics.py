import numpy as np
import pytest

from auras_ros.core.metrics import Decision, MetricsRecorder
from auras_ros.core.stages import AgentOutput


def _decision(t: float, stamp: float) -> Decision:
    return Decision(0, AgentOutput(np.zeros(1)), 0, stamp, (stamp,), t, 0, 0)


def test_summary_statistics_match_hand_computed_values() -> None:
    recorder = MetricsRecorder(warmup_decisions=1)
    times = [0.0, 1.0, 1.1, 1.2, 1.4, 1.6]  # the first is warm-up and excluded
    for t in times:
        recorder.decision(_decision(t, t - 0.05))
    recorder.stage("generation", 0.01)
    recorder.stage("generation", 0.03)
    recorder.in_flight(2)
    recorder.in_flight(4)
    recorder.drop("superseded", 3)
    recorder.cancel("new_instruction")
    m = recorder.summary()
    # Intervals 0.1, 0.1, 0.2, 0.2: mean 0.15, population std 0.05, so CV 1/3; the 99th percentile
    # interpolates between the two largest, both 0.2.
    assert m.decisions == 5
    assert m.decisions_per_s == pytest.approx(4 / 0.6)
    assert m.interval_mean == pytest.approx(0.15)
    assert m.interval_cv == pytest.approx(1 / 3)
    assert m.interval_spread == pytest.approx(0.1 / 0.15)
    assert m.interval_p99 == pytest.approx(0.2)
    assert m.age_p50 == pytest.approx(0.05)
    assert m.stage_latency["generation"].p50 == pytest.approx(0.02)
    assert (m.in_flight_max, m.in_flight_mean) == (4, 3.0)
    assert m.drops == {"superseded": 3} and m.cancels == {"new_instruction": 1}


def test_empty_run_reports_nan_not_a_crash() -> None:
    m = MetricsRecorder().summary()
    assert m.decisions == 0 and np.isnan(m.decisions_per_s) and np.isnan(m.age_p50)


def test_windows_report_only_their_own_decisions_and_counts() -> None:
    recorder = MetricsRecorder()
    for t in (0.0, 0.1, 0.2):
        recorder.decision(_decision(t, t))
    recorder.drop("superseded")
    first = recorder.take_window()
    for t in (1.0, 1.5):
        recorder.decision(_decision(t, t - 0.2))
    second = recorder.take_window()
    assert (first.decisions, second.decisions) == (3, 2)
    assert first.drops == {"superseded": 1} and second.drops == {}
    assert second.interval_mean == pytest.approx(0.5) and second.age_p50 == pytest.approx(0.2)
    assert recorder.decisions_recorded == 5

