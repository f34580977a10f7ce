import math

import pytest
from hypothesis import given, strategies as st

from auras_ros.core.errors import ConfigError
from auras_ros.core.partition import skew_partition, stage_ranges


@pytest.mark.parametrize("iterations, stages, alpha, last", [(100, 4, 0.5, 46), (100, 5, 1.0, 64), (100, 5, 0.0, 20)])
def test_paper_examples(iterations: int, stages: int, alpha: float, last: int) -> None:
    assert skew_partition(iterations, stages, alpha)[-1] == last


def test_uniform_is_even() -> None:
    assert skew_partition(100, 5, 0.0) == [20] * 5


@given(st.integers(1, 500), st.integers(1, 12), st.floats(-4, 4, allow_nan=False))
def test_counts_sum_and_stay_within_one_of_the_exact_share(iterations: int, stages: int, alpha: float) -> None:
    counts = skew_partition(iterations, stages, alpha)
    assert sum(counts) == iterations and all(c >= 0 for c in counts)
    weights = [math.exp(alpha * i) for i in range(1, stages + 1)]
    for count, weight in zip(counts, weights, strict=False):
        assert abs(count - iterations * weight / sum(weights)) <= 1.0 + 1e-9


@given(st.integers(1, 300), st.integers(1, 10), st.floats(0.01, 3))
def test_positive_alpha_moves_work_to_later_stages(iterations: int, stages: int, alpha: float) -> None:
    counts = skew_partition(iterations, stages, alpha)
    assert counts[-1] >= counts[0]


def test_ranges_tile_the_iterations() -> None:
    ranges = stage_ranges(10, 3, 0.7)
    assert ranges[0][0] == 0 and ranges[-1][1] == 10
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))


@pytest.mark.parametrize("kwargs, field", [
    ({"iterations": 0, "stages": 2}, "generation_iterations"),
    ({"iterations": 10, "stages": 0}, "pp_generation"),
    ({"iterations": 10, "stages": 2, "alpha": math.inf}, "alpha"),
    ({"iterations": 10, "stages": 2, "alpha": math.nan}, "alpha"),
])
def test_bad_configuration_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError) as error:
        skew_partition(**kwargs)
    assert error.value.field == field and field in str(error.value)
