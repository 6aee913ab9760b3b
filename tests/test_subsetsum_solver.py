"""The exact solver against every subset, and its two implementations against each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ltbounds.strategies
from ltbounds.errors import InvalidInput, ResourceLimitError
from ltbounds.strategies import subset_sum_instances
from ltbounds.subsetsum import solve, solve_sparsest


def all_subsets(targets: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every subset of every row: (errors, sizes, codes, values), each of shape (B, 2**n).

    Sums are accumulated as the engine documents (left half in index order from 0.0, right
    half likewise, then left + right), so float results are comparable bit for bit.
    """
    rows, n = candidates.shape
    left = (n + 1) // 2
    codes = np.arange(2**n, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n)) & 1
    sizes = bits.sum(axis=1)

    def half_sums(start: int, count: int) -> np.ndarray:
        sums = np.zeros((rows, 1))
        for k in range(start, start + count):
            sums = np.concatenate([sums, sums + candidates[:, k : k + 1]], axis=1)
        return sums

    values = half_sums(0, left)[:, codes & (2**left - 1)] + half_sums(left, n - left)[:, codes >> left]
    errors = np.abs(targets[:, None] - values)
    return errors, np.broadcast_to(sizes, values.shape), np.broadcast_to(codes, values.shape), values


def brute_closest(targets: np.ndarray, candidates: np.ndarray, max_size: int | None = None):
    """The rule of ``solve`` by exhaustion: least (error, size, code) over admissible subsets."""
    errors, sizes, codes, values = all_subsets(targets, candidates)
    if max_size is not None:
        errors = np.where(sizes <= max_size, errors, np.inf)
    best = [np.lexsort((codes[b], sizes[b], errors[b]))[0] for b in range(len(targets))]
    rows = np.arange(len(targets))
    return errors[rows, best], sizes[rows, best], codes[rows, best]


def brute_sparsest(targets, candidates, tolerance, max_size=None):
    """The rule of ``solve_sparsest``: least (size, error, code) among subsets within tolerance."""
    errors, sizes, codes, values = all_subsets(targets, candidates)
    limit = candidates.shape[1] if max_size is None else max_size
    out = []
    for b in range(len(targets)):
        admissible = (errors[b] <= tolerance) & (sizes[b] <= limit)
        if admissible.any():
            order = np.lexsort((codes[b], errors[b], sizes[b], ~admissible))
            out.append((errors[b][order[0]], sizes[b][order[0]], codes[b][order[0]], True))
        else:
            capped = np.where(sizes[b] <= limit, errors[b], np.inf)
            order = np.lexsort((codes[b], sizes[b], capped))
            out.append((capped[order[0]], sizes[b][order[0]], codes[b][order[0]], False))
    return tuple(np.array(column) for column in zip(*out, strict=True))


def mask_codes(mask: np.ndarray) -> np.ndarray:
    return (np.asarray(mask).astype(np.int64) << np.arange(mask.shape[1])).sum(axis=1)


def assert_consistent(result, targets, candidates, max_size=None) -> None:
    """The mask realises the reported value, size and error."""
    mask = np.asarray(result.mask)
    assert mask.shape == candidates.shape and mask.dtype == np.bool_
    np.testing.assert_array_equal(np.asarray(result.size), mask.sum(axis=1))
    realised = np.array([math.fsum(row[m]) for row, m in zip(candidates, mask, strict=True)])
    np.testing.assert_allclose(np.asarray(result.value), realised, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(result.error), np.abs(targets - np.asarray(result.value)))
    if max_size is not None:
        assert (mask.sum(axis=1) <= max_size).all()


@settings(max_examples=60)
@given(subset_sum_instances(max_n=16, max_batch=3, target_bound=2.0), st.none() | st.integers(0, 8))
def test_compiled_matches_every_subset(instance, max_size) -> None:
    targets, candidates = instance
    result = solve(targets, candidates, max_size=max_size, method="compiled")
    best_error, _, _ = brute_closest(targets, candidates, max_size)
    np.testing.assert_array_equal(result.error, best_error)  # the float64 optimum, exactly
    assert_consistent(result, targets, candidates, max_size)


@settings(max_examples=25)
@given(subset_sum_instances(max_n=10, max_batch=3, target_bound=2.0), st.none() | st.integers(0, 6))
def test_array_twin_matches_every_subset(instance, max_size) -> None:
    targets, candidates = instance
    result = solve(targets, candidates, max_size=max_size, method="array")
    best_error, _, _ = brute_closest(targets, candidates, max_size)
    np.testing.assert_allclose(result.error, best_error, rtol=0, atol=1e-12)
    assert_consistent(result, targets, candidates, max_size)


@settings(max_examples=40)
@given(subset_sum_instances(max_n=12, max_batch=3, dyadic=True), st.none() | st.integers(0, 6))
def test_tie_rule_is_exact_on_dyadic_instances(instance, max_size) -> None:
    """With exact sums, ties are real; both implementations apply (error, size, mask) order."""
    targets, candidates = instance
    best_error, best_size, best_code = brute_closest(targets, candidates, max_size)
    for method in ("compiled", "array"):
        result = solve(targets, candidates, max_size=max_size, method=method)
        np.testing.assert_array_equal(result.error, best_error)
        np.testing.assert_array_equal(result.size, best_size)
        np.testing.assert_array_equal(mask_codes(result.mask), best_code)


@settings(max_examples=40)
@given(
    subset_sum_instances(max_n=12, max_batch=3, dyadic=True),
    st.sampled_from([0.0, 1 / 16, 0.1, 0.25]),
    st.none() | st.integers(0, 6),
)
def test_sparsest_matches_every_subset(instance, tolerance, max_size) -> None:
    targets, candidates = instance
    error, size, code, within = brute_sparsest(targets, candidates, tolerance, max_size)
    for method in ("compiled", "array"):
        result = solve_sparsest(targets, candidates, tolerance, max_size=max_size, method=method)
        np.testing.assert_array_equal(np.asarray(result.within), within)
        np.testing.assert_array_equal(result.size, size)
        np.testing.assert_array_equal(result.error, error)
        np.testing.assert_array_equal(mask_codes(result.mask), code)
        assert result.tolerance == tolerance


def test_random_instances_fast_path_and_twin_agree() -> None:
    """Many random rows through the four-lane kernel, the array twin and brute force."""
    rng = np.random.default_rng(7)
    targets = rng.uniform(-1, 1, 300)
    for n in (4, 5, 9, 14):
        candidates = rng.uniform(-1, 1, (300, n))
        fast = solve(targets, candidates)
        twin = solve(targets, candidates, method="array")
        best_error, best_size, best_code = brute_closest(targets, candidates)
        np.testing.assert_array_equal(fast.error, best_error)
        np.testing.assert_array_equal(mask_codes(fast.mask), best_code)
        np.testing.assert_allclose(twin.error, best_error, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(mask_codes(twin.mask), best_code)


def test_sparsest_on_random_instances_agrees_with_brute_force() -> None:
    rng = np.random.default_rng(8)
    targets = rng.uniform(-1, 1, 200)
    candidates = rng.uniform(-1, 1, (200, 11))
    error, size, code, within = brute_sparsest(targets, candidates, 0.01)
    result = solve_sparsest(targets, candidates, 0.01)
    np.testing.assert_array_equal(result.within, within)
    np.testing.assert_array_equal(result.size, size)
    np.testing.assert_array_equal(result.error, error)
    assert not within.all() and within.any()  # both branches exercised


def test_sparsest_with_a_tight_tolerance_agrees_with_brute_force() -> None:
    """Few rows meet the tolerance: the rows are screened by the closest search first."""
    rng = np.random.default_rng(13)
    targets = rng.uniform(-1, 1, 300)
    candidates = rng.uniform(-1, 1, (300, 10))
    error, size, code, within = brute_sparsest(targets, candidates, 0.002)
    assert 0.1 < within.mean() < 0.9
    result = solve_sparsest(targets, candidates, 0.002)
    np.testing.assert_array_equal(result.within, within)
    np.testing.assert_array_equal(result.size, size)
    np.testing.assert_array_equal(result.error, error)
    np.testing.assert_array_equal(mask_codes(result.mask), code)


@pytest.mark.parametrize(
    ("n", "tolerance", "max_size", "kind"),
    [
        (15, 0.01, None, "rounded"),
        (15, 0.002, 6, "rounded"),
        (16, 0.004, None, "zeros"),
        (16, 1 / 16, 4, "dyadic"),
        (16, 0.0, None, "dyadic"),
    ],
)
def test_sparsest_small_sizes_and_their_fallback_match_every_subset(
    n, tolerance, max_size, kind
) -> None:
    """Sizes enumerated directly (1-3), by cardinality classes (4-5 at n = 15) and the rows
    they leave to the general search, against brute force; ties real on dyadic instances.
    Draws of ``uniform(-1, 1)`` add up exactly (multiples of 2**-52), so the "rounded" rows are
    scaled by pi/3: then the order of the additions shows in the last bits of the sums."""
    rng = np.random.default_rng(n * 1000 + int(tolerance * 1e4))
    targets = rng.uniform(-1, 1, 48)
    candidates = rng.uniform(-1, 1, (48, n))
    if kind == "rounded":
        targets, candidates = targets * (np.pi / 3), candidates * (np.pi / 3)
    if kind == "dyadic":
        targets, candidates = np.round(targets * 8) / 8, np.round(candidates * 8) / 8
    if kind == "zeros":
        candidates[rng.random(candidates.shape) < 0.2] = 0.0
        candidates[rng.random(candidates.shape) < 0.1] *= -0.0
        candidates[:6, 8:] = candidates[:6, :8]
    error, size, code, within = brute_sparsest(targets, candidates, tolerance, max_size)
    result = solve_sparsest(targets, candidates, tolerance, max_size=max_size)
    np.testing.assert_array_equal(result.within, within)
    np.testing.assert_array_equal(result.size, size)
    np.testing.assert_array_equal(result.error, error)
    np.testing.assert_array_equal(mask_codes(result.mask), code)
    np.testing.assert_array_equal(np.abs(targets - result.value), result.error)


def test_sparsest_enumeration_agrees_with_the_general_search(monkeypatch) -> None:
    """The small-size enumeration and the sorted-list search by size, bit for bit, on
    rows answered at every size from 0 to 6 and rows with no subset within the tolerance."""
    from ltbounds.subsetsum import solver

    rng = np.random.default_rng(21)
    targets = rng.uniform(-1.2, 1.2, 3000) * (np.pi / 3)  # inexact sums: the order shows
    candidates = rng.uniform(-1, 1, (3000, 15)) * (np.pi / 3)
    fast = solve_sparsest(targets, candidates, 0.01)
    assert set(range(7)) <= set(np.asarray(fast.size)[np.asarray(fast.within)].tolist())
    assert not np.asarray(fast.within).all()
    monkeypatch.setattr(solver, "_SMALL_LIMIT", 0)  # enumerate size 0 only
    slow = solve_sparsest(targets, candidates, 0.01)
    for name in ("mask", "value", "error", "size", "within"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))


@pytest.mark.parametrize("tolerance", [1e-6, 0.05])
def test_screening_returns_what_the_search_by_size_returns(monkeypatch, tolerance) -> None:
    """Screened (closest search first) and unscreened sparsest searches agree bit for bit,
    also with zero candidates (unusable slots in the constructions) and tied sums."""
    from ltbounds.subsetsum import solver

    rng = np.random.default_rng(17)
    targets = rng.uniform(-1, 1, 400)
    candidates = rng.uniform(-1, 1, (400, 16))
    candidates[rng.random(candidates.shape) < 0.15] = 0.0
    candidates[:20, 8:] = candidates[:20, :8]  # equal half-sums
    screened = solve_sparsest(targets, candidates, tolerance)
    monkeypatch.setattr(solver, "_SCREEN_WITHIN", -1.0)  # every row searched by size
    by_size = solve_sparsest(targets, candidates, tolerance)
    for name in ("mask", "value", "error", "size", "within"):
        np.testing.assert_array_equal(getattr(screened, name), getattr(by_size, name))


@pytest.mark.parametrize("kind", ["rounded", "zeros", "dyadic"])
def test_one_pass_over_the_subsets_within_tolerance_agrees_with_the_search_by_size(
    monkeypatch, kind
) -> None:
    """kernels.sparsest_by_hits (every subset within the tolerance visited once) against the
    sweeps by cardinality class, bit for bit: inexact sums, zero and repeated candidates,
    dyadic ties; tight tolerances (few such subsets) and a loose one (rows over the visit
    limit fall back to the search by size)."""
    from ltbounds.subsetsum import solver

    rng = np.random.default_rng({"rounded": 31, "zeros": 32, "dyadic": 33}[kind])
    targets = rng.uniform(-1, 1, 600)
    candidates = rng.uniform(-1, 1, (600, 18))
    if kind == "rounded":
        targets, candidates = targets * (np.pi / 3), candidates * (np.pi / 3)
    if kind == "zeros":
        candidates[rng.random(candidates.shape) < 0.2] = 0.0
        candidates[rng.random(candidates.shape) < 0.1] *= -0.0
        candidates[:60, 9:] = candidates[:60, :9]
    if kind == "dyadic":
        # exact sums on a grid of 2**-12: many subsets share a sum (real ties)
        targets, candidates = np.round(targets * 4096) / 4096, np.round(candidates * 4096) / 4096
    searched_by_size = []
    general = solver._by_size

    def counting(kernels, problem, rows, *args):
        searched_by_size.append(len(problem.targets[rows]))
        return general(kernels, problem, rows, *args)

    for tolerance in (0.0, 1e-6, 1e-4, 0.02):
        searched_by_size.clear()
        with monkeypatch.context() as patch:
            patch.setattr(solver, "_by_size", counting)
            one_pass = solve_sparsest(targets, candidates, tolerance)
        with monkeypatch.context() as patch:
            patch.setattr(solver, "_HIT_VISITS", 0)  # every row to the search by size
            by_size = solve_sparsest(targets, candidates, tolerance)
        for name in ("mask", "value", "error", "size", "within"):
            np.testing.assert_array_equal(getattr(one_pass, name), getattr(by_size, name))
        # rows answered past the small sizes (4 at n = 18): the one pass took some of them
        general_rows = np.count_nonzero(np.asarray(one_pass.within) & (np.asarray(one_pass.size) > 4))
        if tolerance < 0.02 and general_rows:
            assert sum(searched_by_size) < general_rows
        if tolerance == 1e-6 and kind != "dyadic":
            assert 0 < np.mean(one_pass.within) < 1  # both kinds of row on the screened path


def test_sparsest_is_no_larger_and_closest_no_worse() -> None:
    rng = np.random.default_rng(9)
    targets = rng.uniform(-1, 1, 500)
    candidates = rng.uniform(-1, 1, (500, 15))
    closest = solve(targets, candidates)
    sparse = solve_sparsest(targets, candidates, 0.01)
    assert (closest.error <= sparse.error).all()
    within = np.asarray(sparse.within)
    assert (sparse.error[within] <= 0.01).all()
    assert (within == (closest.error <= 0.01)).all()
    assert (sparse.size[within] <= closest.size[within]).all()


def test_array_api_strict_inputs_use_the_array_twin() -> None:
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(10)
    targets = rng.uniform(-1, 1, 20)
    candidates = rng.uniform(-1, 1, (20, 9))
    expected = solve(targets, candidates)
    for max_size in (None, 3):
        result = solve(xp.asarray(targets), xp.asarray(candidates), max_size=max_size)
        assert type(result.mask).__module__.startswith("array_api_strict")
        reference = expected if max_size is None else solve(targets, candidates, max_size=3)
        np.testing.assert_allclose(np.asarray(result.error), reference.error, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(np.asarray(result.mask), reference.mask)
    sparse = solve_sparsest(xp.asarray(targets), xp.asarray(candidates), 0.05)
    reference = solve_sparsest(targets, candidates, 0.05)
    np.testing.assert_array_equal(np.asarray(sparse.size), reference.size)
    with pytest.raises(InvalidInput, match="method='compiled' needs numpy"):
        solve(xp.asarray(targets), xp.asarray(candidates), method="compiled")


def test_thirty_candidates() -> None:
    rng = np.random.default_rng(11)
    targets = rng.uniform(-1, 1, 3)
    candidates = rng.uniform(-1, 1, (3, 30))
    fast = solve(targets, candidates)
    twin = solve(targets, candidates, method="array")
    np.testing.assert_allclose(fast.error, twin.error, rtol=0, atol=1e-12)
    assert (fast.error < 1e-6).all()  # 2**30 sums: the optimum is tiny
    assert_consistent(fast, targets, candidates)
    bounded = solve(targets, candidates, max_size=4)
    assert (bounded.size <= 4).all() and (bounded.error >= fast.error).all()


def test_conveniences_and_determinism() -> None:
    candidates = np.array([0.5, 0.25, -0.125, 0.1])
    single = solve(0.7, candidates)
    assert single.mask.shape == (1, 4) and single.error[0] == pytest.approx(0.025)
    shared = solve(np.array([0.7, -0.125]), candidates)
    assert shared.mask.shape == (2, 4)
    np.testing.assert_array_equal(shared.mask[1], [False, False, True, False])
    rng = np.random.default_rng(12)
    targets, batch = rng.uniform(-1, 1, 50), rng.uniform(-1, 1, (50, 13))
    np.testing.assert_array_equal(solve(targets, batch).mask, solve(targets, batch).mask)
    empty = solve(np.zeros(0), np.zeros((0, 5)))
    assert empty.mask.shape == (0, 5) and empty.error.shape == (0,)
    assert solve(np.zeros(0), np.zeros((0, 5)), method="array").mask.shape == (0, 5)


@pytest.mark.parametrize(
    ("targets", "candidates", "match"),
    [
        (np.zeros(2), np.zeros((2, 0)), r"n=0 columns; expected n >= 1"),
        (np.zeros(2), np.zeros((3, 4)), r"targets has shape \(2,\) but candidates has shape \(3, 4\)"),
        (np.zeros(2), np.array([[0.1, np.nan], [0.2, 0.3]]), r"candidates holds .*nan.* index \(0, 1\)"),
        (np.array([np.inf]), np.ones((1, 3)), r"targets holds .*inf"),
        (np.zeros((2, 2)), np.ones((2, 3)), r"targets has shape \(2, 2\)"),
        (np.zeros(1), np.ones((1, 2, 3)), r"candidates has shape \(1, 2, 3\)"),
        (np.zeros(1), np.array([["a", "b"]]), r"expected real numbers"),
        (np.zeros(1), np.ones((1, 63)), r"n=63 columns; expected n <= 62"),
    ],
)
def test_bad_input_is_refused_clearly(targets, candidates, match) -> None:
    with pytest.raises(InvalidInput, match=match):
        solve(targets, candidates)


def test_bad_options_are_refused() -> None:
    targets, candidates = np.zeros(1), np.ones((1, 4))
    with pytest.raises(InvalidInput, match=r"max_size=-1 must be >= 0"):
        solve(targets, candidates, max_size=-1)
    with pytest.raises(InvalidInput, match=r"method='fast' must be one of"):
        solve(targets, candidates, method="fast")
    with pytest.raises(InvalidInput, match=r"tolerance=-0.1 must be >= 0"):
        solve_sparsest(targets, candidates, -0.1)
    with pytest.raises(InvalidInput, match=r"tolerance=nan must be finite"):
        solve_sparsest(targets, candidates, float("nan"))


def test_memory_budget_is_enforced_with_the_estimate() -> None:
    targets, candidates = np.zeros(2), np.ones((2, 30))
    for method in ("compiled", "array"):
        with pytest.raises(ResourceLimitError, match=r"needs about .* MiB, over the budget"):
            solve(targets, candidates, method=method, memory_budget=2**20)


def test_strategies_are_public() -> None:
    assert {"candidate_sets", "subset_sum_instances"} <= set(ltbounds.strategies.__all__)
