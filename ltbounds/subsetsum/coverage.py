"""Coverage of an interval by subset sums: is every target within ``eps`` of some subset sum?

This is the event in Lueker's theorem (LEMMAS.md 1.1: for all ``x`` in ``[-1/2, 1/2]`` there
is ``S`` with ``|sum_S X_i - x| <= eps``) and in its simplified form used by Pensia et al. (2020,
Corollary 3.3) and Burkholz (2022) for ``z`` in ``[-1, 1]`` (LEMMAS.md 1.2). Two functions
decide it for a given candidate set, both exactly (for the float64 subset sums, whose own
rounding is about ``n * 1e-16``, far below any ``eps`` of interest):

* :func:`coverage` enumerates all ``2**n`` subset sums in sorted order and returns the worst
  point of the domain with its error: the answer in full, for ``n`` up to about 26 under the
  default memory budget (``28 * 2**n`` bytes).
* :func:`covers` only decides, for many candidate sets at once, and is what the Monte Carlo
  estimate of the failure probability (:mod:`ltbounds.subsetsum.concentration`) runs. It
  scans the gaps between the sorted sums of the first ``prefix`` candidates, which are subset
  sums of the whole set: a gap no wider than ``2 eps`` (allowing for the ends of the domain)
  is settled. A wider gap is walked with the whole set's sums, found by two-pointer queries on
  its sorted half-sums (Horowitz-Sahni): jump to the largest sum within ``2 eps`` while that
  covers everything in between, else step to the next sum and test that gap exactly. Memory is
  ``O(2**prefix + 2**(n/2))`` per thread, so it runs at any ``n`` the solver does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds.backend import get_backend
from ltbounds.errors import InvalidInput
from ltbounds.subsetsum.solver import DEFAULT_MEMORY_BUDGET, MAX_CANDIDATES
from ltbounds.validation import (
    check_int,
    check_interval,
    check_memory,
    check_positive,
    check_real_array,
)

_PREFIX_RANGE = (8, 20)


@dataclass(frozen=True)
class CoverageResult:
    """The outcome of :func:`coverage` for one candidate set.

    Attributes
    ----------
    covered : bool
        True when every ``z`` in the domain has a subset sum within ``eps``
        (``worst_error <= eps``).
    worst_z : float
        The point of the domain farthest from every subset sum (the smallest such point if
        several are equally far).
    worst_error : float
        Its distance to the nearest subset sum: ``max_z min_S |z - sum_S x|``.
    nearest_below, nearest_above : float
        The subset sums on either side of ``worst_z`` (``-inf``/``inf`` where there is none).
    eps : float
        The tolerance asked for.
    domain : tuple of float
        The interval ``[low, high]`` checked.
    n : int
        Number of candidates.
    """

    covered: bool
    worst_z: float
    worst_error: float
    nearest_below: float
    nearest_above: float
    eps: float
    domain: tuple[float, float]
    n: int


def _domain(domain: Any) -> tuple[float, float]:
    """``domain`` as a checked pair ``low < high``."""
    try:
        low, high = domain
    except (TypeError, ValueError):
        raise InvalidInput(f"domain={domain!r} must be a pair (low, high)") from None
    return check_interval("domain", low, high)


def _candidates(candidates: Any, *, batched: bool) -> np.ndarray:
    values = check_real_array("candidates", candidates, get_backend("numpy"))
    if values.ndim not in ((1, 2) if batched else (1,)):
        expected = "(n,) or (T, n)" if batched else "(n,)"
        raise InvalidInput(f"candidates has shape {values.shape}; expected {expected}")
    n = values.shape[-1]
    if not 1 <= n <= MAX_CANDIDATES:
        raise InvalidInput(f"candidates has n={n} values; expected 1 <= n <= {MAX_CANDIDATES}")
    return np.ascontiguousarray(values)


def coverage(
    candidates: Any,
    eps: float,
    domain: tuple[float, float] = (-1.0, 1.0),
    *,
    memory_budget: float | None = None,
) -> CoverageResult:
    """Decide exactly whether every ``z`` in ``domain`` is within ``eps`` of a subset sum.

    Enumerates the ``2**n`` subset sums of ``candidates`` in sorted order (built by merging,
    no sort) and scans the gaps: the worst point is an end of the domain or the midpoint of
    the widest gap inside it. This is the event of Lueker (1998), as restated by Pensia et al.
    (2020, Corollary 2.5) and used with ``z`` in ``[-1, 1]`` by Burkholz (2022); see
    LEMMAS.md 1.1-1.2. The answer is rigorous for the given numbers (no sampling of ``z``).

    Parameters
    ----------
    candidates : array of shape (n,)
        The random values ``X_1 .. X_n``.
    eps : float
        Tolerance, ``> 0``.
    domain : (float, float)
        The interval of targets, default ``[-1, 1]``.
    memory_budget : float, optional
        Bytes allowed (default 2 GiB); the enumeration needs about ``28 * 2**n`` bytes, so
        ``n <= 26`` fits the default.

    Returns
    -------
    CoverageResult

    Raises
    ------
    InvalidInput
        ``eps <= 0``, a bad domain, NaN candidates, ``n < 1``.
    ResourceLimitError
        ``28 * 2**n`` bytes exceed the budget.

    Examples
    --------
    >>> result = coverage([0.5, 0.25, -0.75], eps=0.2)
    >>> result.covered, result.worst_z, result.worst_error
    (False, -1.0, 0.25)
    """
    eps = check_positive("eps", eps)
    low, high = _domain(domain)
    values = _candidates(candidates, batched=False)
    n = values.shape[0]
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_positive(
        "memory_budget", memory_budget
    )
    check_memory(f"enumerating all 2**{n} subset sums", 28.0 * 2.0**n, budget)
    from ltbounds.subsetsum import kernels  # noqa: PLC0415  (loads numba on first use)

    sums = kernels.sorted_subset_sums(values)
    worst_z, worst_error, below, above = kernels.worst_point(sums, low, high)
    return CoverageResult(
        covered=bool(worst_error <= eps),
        worst_z=float(worst_z),
        worst_error=float(worst_error),
        nearest_below=float(below),
        nearest_above=float(above),
        eps=eps,
        domain=(low, high),
        n=int(n),
    )


def covers(
    candidates: Any,
    eps: float,
    domain: tuple[float, float] = (-1.0, 1.0),
    *,
    prefix: int | None = None,
    memory_budget: float | None = None,
) -> np.ndarray:
    """For each candidate set (row), decide exactly whether ``domain`` is ``eps``-covered.

    Same question and same exactness as :func:`coverage` (Lueker 1998; LEMMAS.md 1.1-1.2),
    without the worst point, batched and parallel over rows (numba). The method is described
    in the module notes; ``prefix`` only trades time between its two phases and never changes
    the answer.

    Parameters
    ----------
    candidates : array of shape (T, n) or (n,)
        One candidate set per row.
    eps : float
        Tolerance, ``> 0``.
    domain : (float, float)
        The interval of targets, default ``[-1, 1]``.
    prefix : int, optional
        Number of leading candidates whose sums are enumerated first (``>= 0``). Default:
        ``log2(40 / eps)`` rounded up, clipped to 8..20 (a compromise measured for uniform
        candidates, n = 16..24, ``eps`` = 0.01 and 0.001).
    memory_budget : float, optional
        Bytes allowed (default 2 GiB).

    Returns
    -------
    numpy.ndarray of bool, shape ``candidates.shape[:-1]``
        True where every ``z`` in ``domain`` has a subset sum within ``eps``.
    """
    eps = check_positive("eps", eps)
    low, high = _domain(domain)
    if prefix is None:
        low_prefix, high_prefix = _PREFIX_RANGE
        prefix = min(max(math.ceil(math.log2(40.0 / eps)), low_prefix), high_prefix)
    prefix = check_int("prefix", prefix, minimum=0)
    values = _candidates(candidates, batched=True)
    batch = values.reshape(-1, values.shape[-1])
    rows, n = batch.shape
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_positive(
        "memory_budget", memory_budget
    )
    import numba  # noqa: PLC0415

    from ltbounds.subsetsum import kernels  # noqa: PLC0415

    threads = numba.get_num_threads()
    per_thread = 8.0 * (3 * 2.0 ** min(n, prefix) + 6 * 2.0 ** ((n + 1) // 2))
    check_memory(
        f"coverage decision for {rows} sets of n={n}", threads * per_thread + rows, budget
    )
    out = np.zeros(rows, dtype=np.bool_)
    if rows:
        kernels.covers_batch(batch, eps, low, high, prefix, min(rows, 4 * threads), out)
    return out.reshape(values.shape[:-1])


__all__ = ["CoverageResult", "covers", "coverage"]
