"""The simulator's world (eval.world, what sim_node runs) plays chunks under an overlap and a timing, as
the evaluations do, and measures each episode's executed commands with eval.seams: a chunk timed from
its observation skips its passed rows; the safety gate's ramp or stop ends every chunk and plays alone
at once, under any overlap; each score carries the episode's ChunkMetrics."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from auras_ros.eval.seams import ChunkMetrics
from auras_ros.eval.task_config import TaskConfig
from auras_ros.eval.world import SimWorld, decision

CONFIG = replace(TaskConfig(), image_size=16, max_frames=12, hold_frames=100)  # never succeeds: 12 steps


def _applied(world: SimWorld, decisions: list) -> list[float]:
    frame = world.advance(decisions)
    assert frame is not None
    return [float(v) for v in frame.applied_action]


def test_observation_timing_skips_the_rows_whose_time_passed() -> None:
    world = SimWorld(CONFIG, chunk_rows=4, timing="observation")
    start = world.start()
    _applied(world, [])
    _applied(world, [])  # two frames pass: the chunk below was sensed at the start
    chunk = [0.1, 0.0, 0.2, 0.0, 0.3, 0.0, 0.4, 0.0]
    assert _applied(world, [decision(1, chunk, start.stamp)]) == [0.3, 0.0]  # rows 0 and 1 are late
    assert _applied(world, []) == [0.4, 0.0]


def test_a_gate_stop_plays_alone_at_once_under_any_overlap() -> None:
    for overlap in ("ensemble", "blend", "weighted_average", "replace"):
        world = SimWorld(CONFIG, chunk_rows=8, overlap=overlap, timing="observation")
        start = world.start()
        chunk = [0.5, 0.5] * 8
        _applied(world, [decision(1, chunk, start.stamp)])
        # The gate's stop carries the request id and stamps of the action it ends.
        assert _applied(world, [decision(1, [0.0, 0.0], start.stamp, interrupts=True)]) == [0.0, 0.0], overlap
        assert _applied(world, []) == [0.0, 0.0], overlap  # held: the chunk it ended does not come back


def test_each_score_carries_the_chunk_measurements_of_what_the_world_executed() -> None:
    world = SimWorld(replace(CONFIG, variant="reverse", reverse_frames=(4, 4)), chunk_rows=2)
    world.start()
    applied = []
    for step in range(CONFIG.max_frames):
        # A new 2-row chunk every other step, heading right, then from step 6 left: a seam at each new chunk.
        sign = 1.0 if step < 6 else -1.0
        decisions = [decision(step, [0.2 * sign, 0.0, 0.4 * sign, 0.0])] if step % 2 == 0 else []
        applied.append(_applied(world, decisions))
    assert len(world.scores) == 1
    metrics = ChunkMetrics(**world.scores[0]["chunks"])
    score = world.task.score
    np.testing.assert_allclose(score.commands, applied, atol=1e-12)  # the commands the world executed, by step
    sources = [step - step % 2 for step in range(CONFIG.max_frames)]  # the request each step's row came from
    assert metrics == ChunkMetrics.of(score.commands, sources, CONFIG.frame_period, 4, score.reversal_velocity)
    # Seams at steps 2, 4, 6, 8, 10; the largest where the chunks turn: 0.4 -> -0.2.
    assert metrics.seams == 5 and math.isclose(metrics.seam_max, 0.6) and metrics.reversal_frame == 4
    assert np.isfinite(metrics.jerk_p99) and len(metrics.jerks) == CONFIG.max_frames - 3


def test_a_decision_sensed_before_the_episode_reset_is_counted_not_executed() -> None:
    # Two 12-step episodes back to back: a request in flight when the first ended reaches the second.
    world = SimWorld(CONFIG, episodes=2, chunk_rows=4)
    first = world.start()
    for _ in range(CONFIG.max_frames):
        world.advance()
    second = world.advance()  # the first episode is done: the second's reset frame
    assert second is not None and second.episode == 1 and second.stamp > first.stamp
    late = decision(7, [0.5, 0.5] * 4, first.stamp + CONFIG.frame_period)  # sensed in episode 0
    assert _applied(world, [late]) == [0.0, 0.0]  # the agent stands still, as before any decision
    # A stamp of this episode's reset frame a nanosecond early (ROS time is whole nanoseconds) acts.
    fresh = decision(8, [0.25, 0.0] * 4, second.stamp - 1e-9)
    assert _applied(world, [fresh]) == [0.25, 0.0]
    assert _applied(world, [decision(0, [0.0, 0.0], None, interrupts=True)]) == [0.0, 0.0]  # a gate stop acts
    for _ in range(CONFIG.max_frames):
        world.advance()
    assert [s["earlier_episode_decisions"] for s in world.scores] == [0, 1]
