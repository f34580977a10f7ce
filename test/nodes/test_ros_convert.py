"""Reading the nodes' stats messages back (nodes.ros_convert): what the player and the evaluator name
when a replay decides nothing comes from these sums."""

from __future__ import annotations

from collections import Counter

from auras_ros.msg import PipelineStats
from auras_ros.nodes.ros_convert import add_drops


def _window(drops: dict[str, int]) -> PipelineStats:
    return PipelineStats(drop_reasons=list(drops), drop_counts=list(drops.values()))


def test_add_drops_sums_the_windows_by_reason_under_a_prefix() -> None:
    counts: Counter[str] = Counter()
    add_drops(counts, _window({"stale": 2, "queue_full": 1}), prefix="generation ")
    add_drops(counts, _window({"stale": 3}), prefix="generation ")
    add_drops(counts, _window({"stale": 5}), prefix="perception ")
    add_drops(counts, _window({}))
    assert counts == {"generation stale": 5, "generation queue_full": 1, "perception stale": 5}


def test_add_drops_without_a_prefix_keeps_the_reasons() -> None:
    counts: Counter[str] = Counter({"bad_input:image size": 1})
    add_drops(counts, _window({"bad_input:image size": 2, "superseded": 4}))
    assert counts == {"bad_input:image size": 3, "superseded": 4}
