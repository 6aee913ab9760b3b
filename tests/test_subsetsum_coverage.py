"""Coverage of an interval by subset sums: exact answers against dense grids and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.errors import InvalidInput, ResourceLimitError
from ltbounds.strategies import candidate_sets, eps_values
from ltbounds.subsetsum import coverage, covers

GRID = 20001


def every_sum(candidates: np.ndarray) -> np.ndarray:
    """All 2**n subset sums, sorted (plain enumeration)."""
    n = len(candidates)
    codes = np.arange(2**n)
    return np.sort(((codes[:, None] >> np.arange(n)) & 1) @ candidates)


def distance_to_sums(z: np.ndarray, sums: np.ndarray) -> np.ndarray:
    index = np.searchsorted(sums, z)
    below = sums[np.clip(index - 1, 0, len(sums) - 1)]
    above = sums[np.clip(index, 0, len(sums) - 1)]
    return np.minimum(np.abs(z - below), np.abs(above - z))


@settings(max_examples=80)
@given(candidate_sets(max_n=10, bound=1.5), eps_values(0.005, 0.5), st.sampled_from([(-1.0, 1.0), (-0.5, 0.5), (0.0, 2.0)]))
def test_coverage_agrees_with_a_dense_grid(candidates, eps, domain) -> None:
    result = coverage(candidates, eps, domain)
    sums = every_sum(candidates)
    grid = np.linspace(*domain, GRID)
    grid_errors = distance_to_sums(grid, sums)
    spacing = (domain[1] - domain[0]) / (GRID - 1)
    # the exact worst point is at least as bad as any grid point, and within half a grid step
    assert grid_errors.max() <= result.worst_error + 1e-12
    assert result.worst_error <= grid_errors.max() + spacing / 2 + 1e-12
    assert domain[0] <= result.worst_z <= domain[1]
    assert distance_to_sums(np.array([result.worst_z]), sums)[0] == pytest.approx(result.worst_error, abs=1e-12)
    assert result.nearest_below <= result.worst_z <= result.nearest_above
    assert result.covered == (result.worst_error <= eps)
    if not result.covered:  # an uncovered grid point exists once the gap is wide enough
        assert (grid_errors > eps).any() or result.worst_error - eps <= spacing


@settings(max_examples=60)
@given(candidate_sets(max_n=14), eps_values(0.002, 0.3), st.sampled_from([0, 3, 6, None]))
def test_fast_decision_matches_full_enumeration(candidates, eps, prefix) -> None:
    expected = coverage(candidates, eps).covered
    assert bool(covers(candidates, eps, prefix=prefix)) == expected


def test_fast_decision_on_random_batches_every_phase() -> None:
    """Rows decided from the prefix alone, and rows whose gaps need the walk over the full set."""
    rng = np.random.default_rng(3)
    for n, eps in ((6, 0.2), (12, 0.01), (17, 0.01), (18, 0.002)):
        batch = rng.uniform(-1, 1, (60, n))
        expected = np.array([coverage(row, eps).covered for row in batch])
        for prefix in (0, 4, n // 2, None):
            np.testing.assert_array_equal(covers(batch, eps, prefix=prefix), expected)
        assert covers(batch, eps).shape == (60,)


def test_decision_is_sharp_at_the_worst_error() -> None:
    rng = np.random.default_rng(4)
    for n in (9, 15, 20):
        candidates = rng.uniform(-1, 1, n)
        worst = coverage(candidates, 0.1).worst_error
        assert covers(candidates, worst * (1 + 1e-9), prefix=4)
        assert not covers(candidates, worst * (1 - 1e-9), prefix=4)


def test_known_answers() -> None:
    result = coverage([0.5, 0.25, -0.75], eps=0.2)
    assert (result.covered, result.worst_z, result.worst_error) == (False, -1.0, 0.25)
    assert (result.nearest_below, result.nearest_above) == (-np.inf, -0.75)
    # sums of {1/4, 1/2, 1}: 0, 1/4, ..., 7/4; on [0, 1] every gap is 1/4, worst error 1/8
    result = coverage([0.25, 0.5, 1.0], eps=0.125, domain=(0.0, 1.0))
    assert result.covered and result.worst_error == 0.125 and result.worst_z == 0.125
    assert covers(np.array([0.25, 0.5, 1.0]), 0.125, (0.0, 1.0))
    assert not covers(np.array([0.25, 0.5, 1.0]), 0.124, (0.0, 1.0))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: coverage([0.5], 0.0), r"eps=0.0 must be > 0"),
        (lambda: coverage([0.5], -1), r"eps=-1.0 must be > 0"),
        (lambda: coverage([0.5, np.nan], 0.1), r"candidates holds .*nan"),
        (lambda: coverage([], 0.1), r"n=0 values"),
        (lambda: coverage([0.5], 0.1, (1.0, 1.0)), r"domain=\(1.0, 1.0\) must satisfy low < high"),
        (lambda: coverage([0.5], 0.1, (1.0,)), r"domain=\(1.0,\) must be a pair"),
        (lambda: coverage([[0.5]], 0.1), r"candidates has shape \(1, 1\); expected \(n,\)"),
        (lambda: covers(np.ones((2, 3)), float("nan")), r"eps=nan must be finite"),
        (lambda: covers(np.ones((2, 3)), 0.1, prefix=-1), r"prefix=-1 must be >= 0"),
        (lambda: covers(np.ones((2, 2, 3)), 0.1), r"expected \(n,\) or \(T, n\)"),
    ],
)
def test_bad_input_is_refused_clearly(call, match) -> None:
    with pytest.raises(InvalidInput, match=match):
        call()


def test_enumeration_refuses_past_the_memory_budget() -> None:
    with pytest.raises(ResourceLimitError, match=r"enumerating all 2\*\*30 subset sums needs about"):
        coverage(np.ones(30), 0.1)
    with pytest.raises(ResourceLimitError, match=r"over the budget of 1.0 MiB"):
        coverage(np.ones(20), 0.1, memory_budget=2**20)
