"""One producer per role, ROS-free (auras_ros/core/sources.py): the fence takes one source, refuses a
second and floods, names both; the coalescer lets at most one change per interval through, the newest."""

from __future__ import annotations

import pytest

from auras_ros.core.errors import ConfigError
from auras_ros.core.sources import ADMITTED, FLOOD, SECOND_SOURCE, Coalescer, SourceFence


def test_the_first_source_is_taken_and_a_second_refused_while_it_lives() -> None:
    fence = SourceFence("gate", takeover_s=0.5, max_rate_hz=0.0)
    assert fence.admit(0xA, now=10.0) == ADMITTED
    assert fence.admit(0xB, now=10.1) == SECOND_SOURCE
    assert fence.admit(0xA, now=10.4) == ADMITTED
    assert fence.admit(0xB, now=10.5) == SECOND_SOURCE  # 0xA was heard 0.1 s ago: alive
    assert fence.refused == {SECOND_SOURCE: 2} and fence.current == 0xA
    conflict = fence.conflict(now=11.0, within_s=5.0)
    assert conflict is not None and "0xa is taken" in conflict and "0xb refused" in conflict
    assert fence.conflict(now=16.0, within_s=5.0) is None  # no intruder for 5 s: nothing to report
    # 0xA silent for longer than takeover_s: gone (a restart draws a new id); the next source is taken.
    assert fence.admit(0xC, now=11.0) == ADMITTED and fence.current == 0xC and fence.takeovers == 1


def test_a_fenced_role_never_takes_another_source() -> None:
    fence = SourceFence("gate", takeover_s=0.5, max_rate_hz=0.0, expected=0xA)
    assert fence.admit(0xB, now=10.0) == SECOND_SOURCE
    assert fence.admit(0xB, now=100.0) == SECOND_SOURCE  # however long 0xA is silent
    assert fence.admit(0xA, now=100.1) == ADMITTED


def test_a_flood_is_refused_beyond_the_rate_with_one_seconds_burst() -> None:
    fence = SourceFence("context", takeover_s=0.5, max_rate_hz=10.0)
    verdicts = [fence.admit(0xA, now=10.0) for _ in range(30)]  # 30 at one instant
    assert verdicts.count(ADMITTED) == 10 and verdicts.count(FLOOD) == 20
    # 0.25 s at 10/s: two and a half more
    assert [fence.admit(0xA, now=10.25) for _ in range(3)] == [ADMITTED, ADMITTED, FLOOD]


def test_a_refusal_names_both_producers_or_the_rate() -> None:
    """The one log text of every fenced node (the gate, the context node, generation's replica)."""
    fence = SourceFence("gate", takeover_s=0.5, max_rate_hz=1.0)
    assert fence.admit(0xA, now=1.0) == ADMITTED and fence.admit(0xA, now=1.0) == FLOOD
    assert fence.refusal(FLOOD, 1.0, "actions") == "more than 1 actions/s; refused so far: {'flood': 1}"
    assert fence.admit(0xB, now=1.1) == SECOND_SOURCE
    second = fence.refusal(SECOND_SOURCE, 1.1, "actions")
    assert "source 0xa is taken, source 0xb refused" in second and "'second_source': 1" in second


@pytest.mark.parametrize("kwargs", [{"takeover_s": 0.0}, {"max_rate_hz": -1.0}, {"expected": -1}])
def test_a_fence_without_limits_is_refused(kwargs) -> None:
    with pytest.raises(ConfigError):
        SourceFence("gate", **{"takeover_s": 0.5, "max_rate_hz": 1.0, **kwargs})


def test_changes_faster_than_the_interval_are_coalesced_to_the_newest() -> None:
    coalescer = Coalescer(interval_s=0.5)
    assert coalescer.offer("a", now=10.0) == ("a",)
    for t, item in ((10.1, "b"), (10.2, "c"), (10.3, "d")):
        assert coalescer.offer(item, now=t) == ()
    assert coalescer.holding and coalescer.coalesced == 2  # b and c never land
    assert coalescer.due(10.4) == ()
    assert coalescer.due(10.5) == ("d",) and not coalescer.holding
    assert coalescer.offer("e", now=10.7) == ()  # the interval runs from d's release
    assert coalescer.due(11.0) == ("e",)
    assert coalescer.offer("f", now=12.0) == ("f",)  # a slow change passes at once
