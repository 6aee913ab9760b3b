"""Exact batched subset sum, coverage of an interval by subset sums, and their statistics.

The random-subset-sum lemma (Lueker 1998; Pensia et al. 2020, Corollaries 2.5 and 3.3;
LEMMAS.md section 1) is the engine of every strong-lottery-ticket construction we check: a
target weight is approximated within ε by a sum of a subset of ``n ~ C log(1/min(ε, δ))``
random weights. This package

* finds such subsets exactly, for many targets at once (:func:`solve`,
  :func:`solve_sparsest`);
* decides exactly whether a candidate set ε-approximates *every* target of an interval
  (:func:`coverage`, :func:`covers`);
* estimates how often that fails, with exact binomial intervals, and the constant C the
  papers leave unspecified (:func:`concentration`, :func:`fit_constant`).

Importing it is cheap; numba compiles (or loads from its cache) the kernels on first use.
"""

from ltbounds.subsetsum.concentration import (
    BLOCK,
    DISTRIBUTIONS,
    CellConstant,
    ConcentrationResult,
    ConstantFit,
    block_failures,
    cell_constant,
    clopper_pearson,
    concentration,
    concentration_grid,
    draw_candidates,
    fit_constant,
)
from ltbounds.subsetsum.coverage import CoverageResult, coverage, covers
from ltbounds.subsetsum.solver import (
    DEFAULT_MEMORY_BUDGET,
    MAX_CANDIDATES,
    SparsestResult,
    SubsetSumResult,
    solve,
    solve_sparsest,
)

__all__ = [
    "BLOCK",
    "DEFAULT_MEMORY_BUDGET",
    "DISTRIBUTIONS",
    "MAX_CANDIDATES",
    "CellConstant",
    "ConcentrationResult",
    "ConstantFit",
    "CoverageResult",
    "SparsestResult",
    "SubsetSumResult",
    "block_failures",
    "cell_constant",
    "clopper_pearson",
    "concentration",
    "concentration_grid",
    "coverage",
    "covers",
    "draw_candidates",
    "fit_constant",
    "solve",
    "solve_sparsest",
]
