"""Monte Carlo failure probability, exact binomial intervals and the fitted constant."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ltbounds.errors import InvalidInput
from ltbounds.subsetsum import (
    BLOCK,
    ConcentrationResult,
    block_failures,
    cell_constant,
    clopper_pearson,
    concentration,
    concentration_grid,
    coverage,
    draw_candidates,
    fit_constant,
)

CASES = [(0, 1), (1, 1), (0, 20), (3, 20), (20, 20), (0, 10000), (40, 10000), (4999, 10000), (7, 123)]


@pytest.mark.parametrize(("failures", "trials"), CASES)
@pytest.mark.parametrize("confidence", [0.95, 0.99])
def test_clopper_pearson_matches_scipy(failures, trials, confidence) -> None:
    stats = pytest.importorskip("scipy.stats")
    alpha = 1 - confidence
    low, high = clopper_pearson(failures, trials, confidence)
    expected_low = stats.beta.ppf(alpha / 2, failures, trials - failures + 1) if failures else 0.0
    expected_high = stats.beta.ppf(1 - alpha / 2, failures + 1, trials - failures) if failures < trials else 1.0
    assert low == pytest.approx(expected_low, rel=1e-12, abs=1e-300)
    assert high == pytest.approx(expected_high, rel=1e-12)


def test_clopper_pearson_defining_property() -> None:
    """At the bounds the binomial tails equal alpha/2 (checked with exact rational sums)."""
    from fractions import Fraction

    failures, trials = 3, 40
    low, high = clopper_pearson(failures, trials, 0.9)

    def upper_tail(p: float) -> float:  # P(X >= failures)
        q = Fraction(p)
        return float(sum(math.comb(trials, k) * q**k * (1 - q) ** (trials - k) for k in range(failures, trials + 1)))

    def lower_tail(p: float) -> float:  # P(X <= failures)
        return 1.0 - upper_tail(p) + float(
            math.comb(trials, failures) * Fraction(p) ** failures * (1 - Fraction(p)) ** (trials - failures)
        )

    assert upper_tail(low) == pytest.approx(0.05, rel=1e-9)
    assert lower_tail(high) == pytest.approx(0.05, rel=1e-9)
    assert low < failures / trials < high


def test_clopper_pearson_refuses_bad_counts() -> None:
    with pytest.raises(InvalidInput, match=r"failures=5 must be <= 4"):
        clopper_pearson(5, 4)
    with pytest.raises(InvalidInput, match=r"trials=0 must be >= 1"):
        clopper_pearson(0, 0)
    with pytest.raises(InvalidInput, match=r"confidence=1.0 must be in the open interval"):
        clopper_pearson(1, 4, 1.0)


def test_candidates_are_addressed_not_sequenced() -> None:
    whole = draw_candidates(7, 2 * BLOCK + 100, seed=5)
    pieces = [
        draw_candidates(7, 10, seed=5),
        draw_candidates(7, BLOCK + 5, seed=5, start=10),
        draw_candidates(7, BLOCK + 85, seed=5, start=BLOCK + 15),
    ]
    np.testing.assert_array_equal(np.concatenate(pieces), whole)
    assert whole.shape == (2 * BLOCK + 100, 7)
    assert not np.array_equal(draw_candidates(7, 5, seed=6), whole[:5])
    assert not np.array_equal(draw_candidates(8, 5, seed=5)[:, :7], whole[:5])
    product = draw_candidates(7, 2000, distribution="product", seed=5)
    assert np.abs(product).max() <= 1 and np.abs(whole).max() <= 1
    # E|ab| = 1/4 for the product law, E|a| = 1/2 for the uniform one
    assert abs(np.abs(product).mean() - 0.25) < 0.02 and abs(np.abs(whole).mean() - 0.5) < 0.02


def test_failures_are_the_exact_decisions_on_the_addressed_candidates() -> None:
    trials = 300
    result = concentration(9, 0.05, trials, seed=1)
    candidates = draw_candidates(9, trials, seed=1)
    expected = sum(not coverage(row, 0.05).covered for row in candidates)
    assert result.failures == expected
    assert result.delta == expected / trials
    assert (result.ci_low, result.ci_high) == clopper_pearson(expected, trials, 0.95)
    assert block_failures(9, 0, [0.05], trials, seed=1) == [expected]


def test_grid_is_independent_of_order_and_shares_candidates_across_eps() -> None:
    trials = BLOCK + 200  # two blocks, the second partial
    forward = concentration_grid([8, 11], [0.02, 0.1], trials, seed=2)
    backward = concentration_grid([11, 8], [0.1, 0.02], trials, seed=2)
    key = {(r.n, r.eps): r.failures for r in forward}
    assert key == {(r.n, r.eps): r.failures for r in backward}
    for n in (8, 11):  # common random numbers: a larger eps never fails more often
        assert key[(n, 0.1)] <= key[(n, 0.02)]
    assert concentration(11, 0.02, trials, seed=2).failures == key[(11, 0.02)]
    blocks = [block_failures(11, b, [0.02, 0.1], trials, seed=2) for b in (0, 1)]
    assert [sum(column) for column in zip(*blocks, strict=True)] == [key[(11, 0.02)], key[(11, 0.1)]]


def test_delta_falls_with_n() -> None:
    results = concentration_grid([8, 12, 16], [0.01], 2000, seed=3)
    deltas = [r.delta for r in results]
    assert deltas[0] > 0.99 and deltas[0] > deltas[1] > deltas[2]
    assert results[2].ci_high < results[1].ci_low  # separated beyond sampling noise
    product = concentration(12, 0.01, 2000, distribution="product", seed=3)
    assert product.distribution == "product" and product.delta > deltas[1]


def _cell(n: int, eps: float, failures: int, trials: int) -> ConcentrationResult:
    low, high = clopper_pearson(failures, trials)
    return ConcentrationResult(n, eps, trials, failures, failures / trials, low, high, 0.95, "uniform", 0)


def test_fit_constant_follows_the_operational_definition() -> None:
    cells = [_cell(15, 0.01, 40, 10000), _cell(12, 0.01, 3000, 10000), _cell(20, 0.01, 0, 10000)]
    fit = fit_constant(cells)
    assert cell_constant(15, 0.01, 0.00404) == pytest.approx(2.7216, abs=1e-4)  # LEMMAS.md 1.3
    assert fit.C == pytest.approx(max(15 / math.log(1 / 0.004), 12 / math.log(100)))
    assert (fit.n, fit.eps) == (15, 0.01)
    assert fit.C_low <= fit.C <= fit.C_high
    zero = fit.cells[2]
    assert zero.C == 0.0 and zero.C_low == 0.0 and 0 < zero.C_high < 20 / math.log(100)
    # joint (Bonferroni) bounds are wider than the per-cell 95% ones
    per_cell_high = cell_constant(15, 0.01, cells[0].ci_high)
    assert fit.cells[0].C_high > per_cell_high


def test_fit_constant_without_failures_claims_nothing_below() -> None:
    fit = fit_constant([_cell(24, 0.01, 0, 5000)])
    assert fit.C == 0.0 and fit.C_low == 0.0 and fit.C_high > 0


def test_fit_constant_refuses_bad_grids() -> None:
    with pytest.raises(InvalidInput, match="at least one"):
        fit_constant([])
    with pytest.raises(InvalidInput, match=r"eps=1.5 must be < 1"):
        fit_constant([_cell(10, 1.5, 3, 10)])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": 0}, r"n=0 must be >= 1"),
        ({"eps": 0.0}, r"eps=0.0 must be > 0"),
        ({"trials": 0}, r"trials=0 must be >= 1"),
        ({"distribution": "normal"}, r"distribution='normal' must be one of"),
        ({"seed": -1}, r"seed=-1 must be >= 0"),
        ({"confidence": 1.5}, r"confidence=1.5 must be in the open interval"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match) -> None:
    arguments = {"n": 8, "eps": 0.01, "trials": 10, "seed": 0} | kwargs
    with pytest.raises(InvalidInput, match=match):
        concentration(**arguments)


# -- the array twin of the coverage decision, on every namespace ----------------------------


def test_covers_array_agrees_with_the_kernel_on_every_backend(xp) -> None:
    from ltbounds.backend import namespace, to_numpy
    from ltbounds.subsetsum import covers
    from ltbounds.subsetsum.concentration import covers_array

    rng = np.random.default_rng(31)
    for n, eps, domain in [(1, 0.6, (-1.0, 1.0)), (5, 0.1, (-1.0, 1.0)), (9, 0.02, (-0.5, 0.25)),
                           (12, 0.004, (-1.0, 1.0))]:
        candidates = rng.uniform(-1, 1, (300, n))
        decided = covers_array(xp.asarray(candidates), eps, domain)
        assert namespace(decided) is xp
        kernel = covers(candidates, eps, domain)
        assert 0 < kernel.sum() < 300 or n == 1  # both outcomes occur: the comparison has teeth
        np.testing.assert_array_equal(to_numpy(decided), kernel)
    # exact ends of [-1, 1]: the sums {0} cover it from eps = 1 on; the sums
    # {-1, -0.5, 0, 0.5} from eps = 0.5 on (the end 1 is 0.5 from the sum 0.5)
    rows = np.array([[0.0, 0.0], [0.5, -1.0]])
    for eps, expected in [(1.0, [True, True]), (np.nextafter(1.0, 0.0), [False, True]),
                          (0.5, [False, True]), (0.4999, [False, False])]:
        assert to_numpy(covers_array(xp.asarray(rows), eps)).tolist() == expected
        assert covers(rows, eps).tolist() == expected


def test_block_failures_are_the_same_on_every_backend(xp) -> None:
    from ltbounds.backend import BACKENDS

    name = next(name for name in BACKENDS if name.replace("-", "_") in getattr(xp, "__name__", ""))
    for distribution in ("uniform", "product"):
        numpy_counts = block_failures(10, 1, [0.05, 0.01], BLOCK + 200, seed=5, distribution=distribution)
        assert block_failures(
            10, 1, [0.05, 0.01], BLOCK + 200, seed=5, distribution=distribution, backend=name
        ) == numpy_counts
