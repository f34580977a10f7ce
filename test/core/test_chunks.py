"""Time-aligned chunk execution (core.chunks): due rows, skipping, and each overlap policy's arithmetic
against rows computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from auras_ros.core.chunks import ChunkPlayer, TimedChunk
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
    player = ChunkPlayer(P, "ensemble", ensemble_coeff=m)
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


@pytest.mark.parametrize("kwargs, field", [
    (dict(period=0.0), "chunk period"), (dict(period=P, overlap="mix"), "overlap"),
    (dict(period=P, chunk_rows=0), "chunk_rows"), (dict(period=P, ensemble_coeff=math.nan), "ensemble_coeff"),
])
def test_bad_configuration_is_refused_by_name(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        ChunkPlayer(**kwargs)


def test_a_chunk_that_is_not_whole_rows_is_refused() -> None:
    with pytest.raises(InputError, match="multiple of 2"):
        ChunkPlayer(P).add([1, 2, 3], stamp=0.0, now=0.0, width=2)
