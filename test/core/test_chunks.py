"""Time-aligned chunk execution (core.chunks): due rows, skipping, and each overlap policy's arithmetic
against rows computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from auras_ros.core.chunks import (ACT_ENSEMBLE_COEFF, OVERLAPS, ChunkPlayer, TimedChunk, check_overlap, check_period,
                                   parse_overlap, row_index, row_period, row_start)
from auras_ros.core.errors import ConfigError, InputError

P = 0.1  # control period


def chunk(*values: float) -> np.ndarray:
    """A one-column chunk: each row is one value, easy to follow by hand."""
    return np.asarray(values, dtype=np.float64)


def test_row_k_is_due_from_stamp_plus_k_periods_and_targets_the_end_of_its_step() -> None:
    timed = TimedChunk(chunk(10, 11, 12).reshape(-1, 1), stamp=2.0, period=P, arrival=2.0)
    assert [timed.row_index(2.0 + k * P) for k in range(4)] == [0, 1, 2, 3]  # no float shortfall
    assert timed.due(2.0 + 0.5 * P)[0] == 10
    assert timed.due(2.0 + 2 * P)[0] == 12
    assert timed.due(2.0 + 3 * P) is None  # played to its end
    assert timed.target_time(0) == pytest.approx(2.0 + P)
    assert timed.end == pytest.approx(2.0 + 3 * P)


def test_a_late_chunk_skips_the_rows_whose_time_has_passed() -> None:
    player = ChunkPlayer(P)
    # Sensed at 1.0, arriving 0.25 s later: rows 0 and 1 (due at 1.0 and 1.1) are gone.
    assert player.add(chunk(0, 1, 2, 3, 4), stamp=1.0, now=1.25, width=1) == 2
    assert player.row(1.25)[0] == 2
    assert player.row(1.3)[0] == 3
    assert player.row(1.4)[0] == 4
    assert player.row(1.5) is None  # no new chunk: it played to its end; the caller holds or stops
    assert player.skipped_rows == 2


def test_chunk_rows_limits_what_plays_and_a_fresh_chunk_skips_nothing() -> None:
    player = ChunkPlayer(P, chunk_rows=2)
    assert player.add(chunk(5, 6, 7, 8), stamp=0.0, now=0.0, width=1) == 0
    assert [player.row(t)[0] for t in (0.0, 0.1)] == [5, 6]
    assert player.row(0.2) is None


def test_replace_plays_the_newest_chunk_alone() -> None:
    player = ChunkPlayer(P, "replace")
    player.add(chunk(0, 0, 0, 0), stamp=0.0, now=0.0, width=1)
    player.add(chunk(1, 2, 3, 4), stamp=0.1, now=0.2, width=1)  # row 0 (due at 0.1) skipped
    assert [player.row(t)[0] for t in (0.2, 0.3, 0.4)] == [2, 3, 4]


def test_inpaint_plays_as_replace_since_generation_already_joined_the_new_chunk_to_the_old() -> None:
    played = {}
    for overlap in ("replace", "inpaint"):
        player = ChunkPlayer(P, overlap)
        player.add(chunk(0, 0, 0, 0), stamp=0.0, now=0.0, width=1)
        player.add(chunk(1, 2, 3, 4), stamp=0.1, now=0.2, width=1)
        played[overlap] = [player.row(t)[0] for t in (0.2, 0.3, 0.4)]
        assert player.row(0.5) is None
    assert played["inpaint"] == played["replace"] == [2, 3, 4]


def test_ensemble_weights_live_chunks_oldest_first_as_act_does() -> None:
    m = 0.5
    player = ChunkPlayer(P, f"ensemble:{m}")
    player.add(chunk(0, 10, 20, 30), stamp=0.0, now=0.0, width=1)
    player.add(chunk(100, 110, 120, 130), stamp=0.1, now=0.1, width=1)
    player.add(chunk(1000, 1010), stamp=0.2, now=0.2, width=1)
    w = [1.0, math.exp(-m), math.exp(-2 * m)]
    # At 0.2 the three chunks' due rows are 20 (row 2), 110 (row 1), 1000 (row 0).
    assert player.row(0.2)[0] == pytest.approx((w[0] * 20 + w[1] * 110 + w[2] * 1000) / sum(w))
    # At 0.4 the first chunk has ended (its end 0.4), the third too (0.4): only the second is left.
    assert player.row(0.35)[0] == pytest.approx((w[0] * 30 + w[1] * 120 + w[2] * 1010) / sum(w))
    assert player.row(0.4)[0] == pytest.approx(130)


@pytest.mark.parametrize("overlap", ["replace", "ensemble", "blend", "weighted_average"])
def test_a_chunk_ending_within_a_rounding_error_of_now_has_no_row_due(overlap: str) -> None:
    # Sim-time stamps add periods in floating point: 8 rows 0.05 apart from 1.0 end at 1.4, and "now"
    # may read a hair before it. The row index (with its tolerance) says no row is due; so does every policy.
    player = ChunkPlayer(0.05, overlap)
    player.add(np.ones(8), stamp=1.0, now=1.0, width=1)
    assert player.row(1.0 + 8 * 0.05 - 1e-12) is None


def test_blend_crossfades_over_the_rows_the_two_chunks_share() -> None:
    player = ChunkPlayer(P, "blend")
    player.add(chunk(0, 0, 0, 0, 0), stamp=0.0, now=0.0, width=1)  # ends at 0.5
    player.add(chunk(10, 10, 10, 10, 10, 10), stamp=0.2, now=0.2, width=1)  # shares 0.2, 0.3, 0.4
    # n = 3 shared steps: the new chunk weighs 1/4, 2/4, 3/4, then plays alone.
    assert [round(float(player.row(t)[0]), 9) for t in (0.2, 0.3, 0.4, 0.5)] == [2.5, 5.0, 7.5, 10.0]


def test_two_column_rows_and_clear() -> None:
    player = ChunkPlayer(P)
    player.add([1, 2, 3, 4], stamp=0.0, now=0.0, width=2)
    assert player.row(0.1).tolist() == [3, 4]
    player.clear()
    assert player.row(0.1) is None


@pytest.mark.parametrize("text, parsed", [
    ("replace", ("replace", ACT_ENSEMBLE_COEFF)), ("ensemble", ("ensemble", ACT_ENSEMBLE_COEFF)),
    ("ensemble:-0.5", ("ensemble", -0.5)), ("ensemble:2", ("ensemble", 2.0)), ("average", ("average", ACT_ENSEMBLE_COEFF)),
])
def test_an_overlap_text_names_its_policy_and_the_ensembles_exponent(text: str, parsed: tuple) -> None:
    assert parse_overlap(text) == parsed and check_overlap(text) == text


@pytest.mark.parametrize("text", ["mix", "ensemble:", "ensemble:inf", "ensemble:x", "blend:0.5", 3, None])
def test_a_malformed_overlap_text_is_refused_naming_every_form(text) -> None:
    with pytest.raises(ConfigError) as error:
        parse_overlap(text)
    message = str(error.value)
    assert "'ensemble:M'" in message and all(repr(name) in message for name in OVERLAPS) and "\n" not in message


def test_a_negative_ensemble_exponent_weighs_the_newest_chunk_most() -> None:
    player = ChunkPlayer(P, "ensemble:-1")
    player.add(chunk(0, 0), stamp=0.0, now=0.0, width=1)
    player.add(chunk(1, 1), stamp=0.1, now=0.1, width=1)
    # Weights 1 (oldest) and e (newest): the newest row pulls the mix past the middle.
    assert player.row(0.1)[0] == pytest.approx(math.e / (1 + math.e))


@pytest.mark.parametrize("kwargs, field", [
    (dict(period=0.0), "chunk period"), (dict(period=P, overlap="mix"), "overlap"),
    (dict(period=P, chunk_rows=0), "chunk_rows"), (dict(period=P, overlap="ensemble:nan"), "overlap"),
    (dict(period=P, overlap="ensemble:"), "overlap"), (dict(period=P, overlap="replace:1"), "overlap"),
])
def test_bad_configuration_is_refused_by_name(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ChunkPlayer(**kwargs)


def test_a_chunk_that_is_not_whole_rows_is_refused() -> None:
    with pytest.raises(InputError, match="multiple of 2"):
        ChunkPlayer(P).add([1, 2, 3], stamp=0.0, now=0.0, width=2)


# ---- the plan: what the player will play with no newer chunk ----------------------------------------

def test_the_plan_of_a_blend_is_the_crossfade_not_the_newest_chunks_rows() -> None:
    player = ChunkPlayer(P, "blend")
    player.add(chunk(0, 0, 0, 0, 0), stamp=0.0, now=0.0, width=1)  # ends at 0.5
    player.add(chunk(10, 10, 10, 10, 10, 10), stamp=0.2, now=0.2, width=1)
    plan = player.plan(0.2)
    # Steps 0..5 of the newest chunk (0.2 .. 0.7), each with its target time (the step's end).
    assert [round(float(r[0]), 9) for r, _ in plan] == [2.5, 5.0, 7.5, 10.0, 10.0, 10.0]
    assert [t for _, t in plan] == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7, 0.8])


def test_the_plan_of_an_ensemble_mixes_the_rows_due_at_each_step_and_leaves_the_player_as_it_was() -> None:
    m = 0.5
    player = ChunkPlayer(P, f"ensemble:{m}")
    player.add(chunk(0, 10, 20), stamp=0.0, now=0.0, width=1)  # ends at 0.3
    player.add(chunk(100, 110, 120), stamp=0.1, now=0.15, width=1)  # rows at 0.1, 0.2, 0.3
    w = math.exp(-m)
    plan = player.plan(0.15)
    # At 0.15 and 0.2 both chunks mix (10 with 100, then 20 with 110); at 0.3 the first has ended.
    assert [float(r[0]) for r, _ in plan] == pytest.approx([(10 + w * 100) / (1 + w), (20 + w * 110) / (1 + w), 120])
    assert [t for _, t in plan] == pytest.approx([0.2, 0.3, 0.4])
    # Asking for the plan changes nothing: the player plays those very rows.
    assert [float(player.row(t)[0]) for t in (0.15, 0.2, 0.3)] == pytest.approx([float(r[0]) for r, _ in plan])


@pytest.mark.parametrize("overlap", ["replace", "inpaint", "latest_only", "weighted_average", "ensemble", "blend"])
def test_the_plan_is_what_row_plays_at_each_step_of_the_newest_chunk(overlap: str) -> None:
    player = ChunkPlayer(P, overlap)
    player.add(chunk(0, 1, 2, 3, 4), stamp=0.0, now=0.0, width=1)
    player.add(chunk(10, 11, 12, 13), stamp=0.15, now=0.27, width=1)  # off the grid, row 0 skipped
    plan = player.plan(0.27)
    starts = [0.27, 0.35, 0.45]  # now, then where rows 2 and 3 of the newest chunk begin
    assert [float(player.row(t)[0]) for t in starts] == pytest.approx([float(r[0]) for r, _ in plan])
    assert [t for _, t in plan] == pytest.approx([0.35, 0.45, 0.55])
    assert player.plan(0.55) == [] and player.row(0.55) is None


# ---- the row period: one rule, one check -------------------------------------------------------------

@pytest.mark.parametrize("explicit, checkpoint, fallback, expected", [
    (0.1, 0.02, 0.05, 0.1),  # an explicit chunk_period wins
    (0.0, 0.02, 0.05, 0.02),  # 0 means none given: the checkpoint's, before the frame/control period
    (None, 0.02, 0.05, 0.02),
    (0.0, None, 0.05, 0.05),  # no checkpoint period: the fallback
    (0.0, None, 0.0, None),  # none at all: the caller refuses what needs one
    (None, None, None, None),
])
def test_row_period_takes_explicit_then_the_checkpoints_then_the_fallback(explicit, checkpoint, fallback, expected):
    assert row_period(explicit, checkpoint, fallback) == expected


@pytest.mark.parametrize("explicit, checkpoint, fallback, field", [
    (-1.0, 0.02, 0.05, "chunk_period"), (math.nan, None, 0.05, "chunk_period"),
    (0.0, 0.0, 0.05, "the checkpoint's chunk_period"), (0.0, None, -0.05, "chunk_period fallback"),
])
def test_row_period_refuses_a_bad_period_instead_of_passing_over_it(explicit, checkpoint, fallback, field) -> None:
    with pytest.raises(ConfigError) as error:
        row_period(explicit, checkpoint, fallback)
    assert error.value.field.startswith(field)


@pytest.mark.parametrize("value", [0, 0.0, -0.1, math.inf, math.nan, True, "0.1", None])
def test_check_period_names_its_field(value) -> None:
    with pytest.raises(ConfigError) as error:
        check_period(value, "inpaint period")
    assert error.value.field == "inpaint period" and "seconds > 0" in str(error.value)
    assert check_period(1) == 1.0 and isinstance(check_period(1), float)


def test_a_clock_reading_a_rows_start_has_reached_row_start_even_on_wall_clock_stamps() -> None:
    # On a 1.7e9 s stamp (ROS wall time) stamp + k * period rounds below the boundary row_index sees
    # (row_index says row k - 1 there); row_start never lies after it, nor before row k - 1 ends.
    assert row_index(1.7e9, 0.05, 1.7e9 + 2 * 0.05) == 1
    for stamp in (0.0, 1.0, 1.7e9, 1.7e9 + 0.0137):
        for period in (0.02, 0.05, 0.1, 1 / 30):
            for k in range(1, 6):
                assert stamp + (k - 1) * period < row_start(stamp, period, k) <= stamp + k * period
