"""Group sums of :mod:`ltbounds.certify._alignment`: the sorted reduction against slow twins.

``_group_sum`` used to multiply by a dense one-hot ``(channels, groups)`` matrix, which needs
150 GiB for the flatten→dense layer of a ρ=64 MNIST ticket; it now sorts the channels by group
and reduces each run. Slow twins: the old one-hot formula (kept here as the reference) and the
exact rational sums (``fractions.Fraction``), on random inputs with empty groups and groups of
size one.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.certify._alignment import _group_sum, _interval_group_sum
from ltbounds.certify._rigorous import down, growth, up


def onehot_group_sum(values: np.ndarray, groups: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The former dense formula: ``values @ onehot`` with the same error term."""
    rows, channels, kernel = values.shape
    if channels == 0:
        zero = np.zeros((rows, count, kernel))
        return zero, zero
    onehot = np.zeros((channels, count))
    onehot[np.arange(channels), groups] = 1.0
    moved = np.ascontiguousarray(values.transpose(0, 2, 1))
    total = (moved @ onehot).transpose(0, 2, 1)
    magnitude = (np.abs(moved) @ onehot).transpose(0, 2, 1)
    terms = int(np.bincount(groups, minlength=count).max(initial=1))
    error = up(up(growth(terms) * magnitude) + 2.0 * terms * 2.0**-1074)
    return down(total - error), up(total + error)


def exact_group_sum(values: np.ndarray, groups: np.ndarray, count: int) -> list:
    """``out[o][g][r]`` as exact rationals, one channel at a time."""
    rows, channels, kernel = values.shape
    out = [[[Fraction(0)] * kernel for _ in range(count)] for _ in range(rows)]
    for o in range(rows):
        for c in range(channels):
            for r in range(kernel):
                out[o][int(groups[c])][r] += Fraction(float(values[o, c, r]))
    return out


@st.composite
def group_problems(draw, integer: bool = False):
    """Random ``(values, groups, count)``: some groups empty, some of size one, one maybe huge."""
    rows = draw(st.integers(1, 3))
    kernel = draw(st.integers(1, 3))
    count = draw(st.integers(1, 8))
    channels = draw(st.integers(0, 12))
    groups = np.array(draw(st.lists(st.integers(0, count - 1), min_size=channels, max_size=channels)), dtype=np.int64)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if integer:
        values = rng.integers(-1000, 1000, (rows, channels, kernel)).astype(np.float64)
    else:
        # Mixed magnitudes and signs so that cancellation and rounding both happen.
        values = rng.standard_normal((rows, channels, kernel)) * 10.0 ** rng.integers(-20, 20, (rows, channels, kernel))
    return values, groups, count


@settings(max_examples=150, deadline=None)
@given(group_problems())
def test_group_sum_encloses_the_exact_sums_like_the_onehot_formula(problem) -> None:
    values, groups, count = problem
    lo, hi = _group_sum(values, groups, count)
    ref_lo, ref_hi = onehot_group_sum(values, groups, count)
    assert lo.shape == hi.shape == ref_lo.shape == (values.shape[0], count, values.shape[2])
    exact = exact_group_sum(values, groups, count)
    for index in np.ndindex(lo.shape):
        o, g, r = index
        assert Fraction(float(lo[index])) <= exact[o][g][r] <= Fraction(float(hi[index]))
        assert Fraction(float(ref_lo[index])) <= exact[o][g][r] <= Fraction(float(ref_hi[index]))
    # Same error term: the ends agree up to the rounding of the sums themselves (a few ulps).
    scale = np.spacing(np.maximum.reduce([np.abs(lo), np.abs(hi), np.abs(ref_lo), np.abs(ref_hi)]))
    assert np.all(np.abs(lo - ref_lo) <= 8 * scale) and np.all(np.abs(hi - ref_hi) <= 8 * scale)
    # Empty groups sum to zero, widened only by the underflow allowance.
    empty = np.setdiff1d(np.arange(count), groups)
    assert np.all(lo[:, empty] <= 0.0) and np.all(hi[:, empty] >= 0.0)
    assert np.all(hi[:, empty] - lo[:, empty] < 1e-300)


@settings(max_examples=100, deadline=None)
@given(group_problems(integer=True))
def test_group_sum_of_exact_integers_matches_the_onehot_formula_bit_for_bit(problem) -> None:
    values, groups, count = problem
    lo, hi = _group_sum(values, groups, count)
    ref_lo, ref_hi = onehot_group_sum(values, groups, count)
    np.testing.assert_array_equal(lo, ref_lo)
    np.testing.assert_array_equal(hi, ref_hi)


def test_singletons_and_empty_groups_by_hand() -> None:
    values = np.array([[[1.5], [-2.0], [0.25]]])  # one row, three channels, kernel 1
    groups = np.array([3, 0, 3])
    lo, hi = _group_sum(values, groups, 5)
    expected = np.array([-2.0, 0.0, 0.0, 1.75, 0.0])
    assert np.all(lo[0, :, 0] <= expected) and np.all(expected <= hi[0, :, 0])
    # Group 0 has one term, group 3 two; the widths are a few ulps, not more.
    assert np.all(hi[0, :, 0] - lo[0, :, 0] <= 4 * np.spacing(np.abs(expected) + 2.0))


def test_interval_group_sum_takes_the_outer_ends() -> None:
    rng = np.random.default_rng(3)
    lo_values = rng.standard_normal((2, 7, 2))
    hi_values = lo_values + rng.uniform(0, 1, lo_values.shape)
    groups = np.array([0, 2, 2, 4, 0, 2, 4])
    lo, hi = _interval_group_sum((lo_values, hi_values), groups, 6)
    exact_lo = exact_group_sum(lo_values, groups, 6)
    exact_hi = exact_group_sum(hi_values, groups, 6)
    for index in np.ndindex(lo.shape):
        o, g, r = index
        assert Fraction(float(lo[index])) <= exact_lo[o][g][r]
        assert exact_hi[o][g][r] <= Fraction(float(hi[index]))


def test_group_sum_memory_does_not_scale_with_channels_times_groups() -> None:
    # 200k channels into 50k groups: the one-hot matrix would be 80 GB; the reduction is instant.
    rng = np.random.default_rng(0)
    channels, count = 200_000, 50_000
    groups = rng.integers(0, count, channels)
    values = rng.standard_normal((2, channels, 1))
    lo, hi = _group_sum(values, groups, count)
    check = np.zeros((2, count, 1))
    np.add.at(check, (slice(None), groups, slice(None)), values)
    assert np.all(lo <= hi)
    np.testing.assert_allclose(0.5 * (lo + hi), check, rtol=1e-9, atol=1e-9)
