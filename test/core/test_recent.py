from auras_ros.core.metrics import Decision
from auras_ros.core.recent import RecentDecisions
from auras_ros.core.stages import AgentOutput


def _decision(t: float, age: float) -> Decision:
    return Decision(0, AgentOutput(action=[0.0]), 0, t - age, (t - age,), t, 0, 0)


def test_totals_cover_the_run_and_percentiles_the_newest_window() -> None:
    recent = RecentDecisions(window=100, warmup=5)
    for i in range(10_000):
        # Ages 1 s for the first 9 900 decisions, 2 s for the last 100: only those are in the window.
        recent.decision(_decision(i * 0.1, 2.0 if i >= 9_900 else 1.0))
        recent.in_flight(7 if i == 3 else 2)
    s = recent.summary()
    assert s.decisions == 9_995
    assert abs(s.decisions_per_s - 10.0) < 1e-6  # over the whole run after the warm-up
    assert s.age_p50_s == 2.0 and s.age_p99_s == 2.0
    assert s.in_flight_max == 7
    assert len(recent._times) == 100  # bounded
