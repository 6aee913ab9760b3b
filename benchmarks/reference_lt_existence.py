"""A re-implementation of the subset-sum search used by the authors' public code.

RelationalML/LT-existence (MIT licence), ``Utils/pruning.py`` and ``main_ssa_stats.py``,
function ``exhaustive(target, numbers, eps, nmax)`` with its helper ``subset_fixed_size``.
Written here from a reading of that code, not copied. What it does, and what we keep:

* subset sizes ``k = 0, 1, ..., min(nmax, n) - 1`` in increasing order (so with
  ``nmax = n`` the full set is never tried; ``main_ssa_stats.py`` ran ``nmax = 15`` at
  ``n = 15``, ``solve_subset_sum`` in the constructions uses ``nmax = 10``);
* within a size, ``itertools.combinations(range(n), k)`` in lexicographic order, each sum
  taken with numpy (``np.sum(numbers[indices])``), as the original does;
* the incumbent starts as the empty subset (error ``|target|``) and is replaced only by a
  strictly smaller error;
* early stop: the scan of a size stops at the first subset with error ``<= eps``, and no
  larger size is tried once the incumbent is within ``eps``;
* on failure (nothing within ``eps``) it returns the closest subset it saw, i.e. the closest
  among sizes ``< nmax``. (The original then retries with fresh random numbers; a retry is
  a new instance, so the benchmark counts it as such.)

The original signals "empty subset" with the index array ``[-1]``; we return an empty tuple.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np


def exhaustive_search(
    target: float, numbers: np.ndarray, eps: float, nmax: int
) -> tuple[float, tuple[int, ...], float]:
    """Subset of ``numbers`` whose sum is within ``eps`` of ``target``, found by size order.

    Returns ``(value, indices, error)``: the sum of the returned subset, its indices and
    ``|target - value|``.
    """
    count = len(numbers)
    best_error = abs(target)
    best_value = 0.0
    best_indices: tuple[int, ...] = ()
    for size in range(min(nmax, count)):
        for combination in combinations(range(count), size):
            indices = np.array(combination, dtype=int)
            value = np.sum(numbers[indices])
            error = np.abs(target - value)
            if error < best_error:
                best_error = error
                best_value = value
                best_indices = combination
            if error <= eps:
                break
        if best_error <= eps:
            break
    return float(best_value), best_indices, float(best_error)
