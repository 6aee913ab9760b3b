"""The construction's one door to the subset-sum engine.

Every target parameter becomes one subset-sum instance; instances are solved in batches by
:mod:`ltbounds.subsetsum` (exact meet-in-the-middle). Two objectives:

* ``"sparse"`` (default): the smallest subset whose sum is within the per-parameter
  tolerance (the sparsest ticket, after the early-stopping search of the authors' code and
  Natale et al. 2024), the closest subset where none is within tolerance;
* ``"closest"``: the subset whose sum is closest to the target (the most accurate ticket).

An instance whose best error exceeds the tolerance is a *miss*: it is counted and reported,
never hidden by redrawing weights (the source network is fixed by its seed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltbounds.subsetsum import solve, solve_sparsest
from ltbounds.validation import check_choice

OBJECTIVES = ("sparse", "closest")


@dataclass(frozen=True)
class SubsetSums:
    """Solutions of a batch: mask (B, n), realised sums and errors (B,), misses."""

    mask: np.ndarray
    value: np.ndarray
    error: np.ndarray
    missed: int
    selected_values: np.ndarray


def solve_problems(
    targets: np.ndarray,
    candidates: np.ndarray,
    tolerance: float,
    objective: str,
    window: int | None = None,
) -> SubsetSums:
    """Solve ``len(targets)`` instances over the rows of ``candidates``.

    When a row holds more than ``window`` candidates, the exact solver runs on the first
    ``window`` of them; instances still missing their tolerance are solved again on the next
    ``window`` candidates, and so on, keeping the better answer (the subset is any subset of
    the block, so each window is a legitimate, independent try). Zero candidates mark unusable
    slots and windows of zeros are skipped.
    """
    check_choice("objective", objective, OBJECTIVES)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    candidates = np.ascontiguousarray(candidates, dtype=np.float64)
    batch = targets.shape[0]
    width = candidates.shape[1] if candidates.ndim == 2 else 0
    if batch == 0 or width == 0:
        mask = np.zeros((batch, width), dtype=bool)
        error = np.abs(targets)
        return SubsetSums(mask, np.zeros(batch), error, int(np.count_nonzero(error > tolerance)), np.zeros((batch, width)))
    window = width if window is None else max(1, min(window, width))
    mask = np.zeros((batch, width), dtype=bool)
    value = np.zeros(batch)
    error = np.abs(targets)
    for start in range(0, width, window):
        block = candidates[:, start:start + window]
        pending = np.flatnonzero((error > tolerance) & np.any(block != 0, axis=1))
        if pending.size == 0:
            continue
        if objective == "sparse":
            result = solve_sparsest(targets[pending], block[pending], tolerance)
        else:
            result = solve(targets[pending], block[pending])
        found = np.asarray(result.value, dtype=np.float64)
        found_error = np.abs(found - targets[pending])
        better = found_error < error[pending]
        rows = pending[better]
        mask[rows] = False
        mask[rows, start:start + window] = np.asarray(result.mask, dtype=bool)[better]
        value[rows] = found[better]
        error[rows] = found_error[better]
    missed = int(np.count_nonzero(error > tolerance))
    return SubsetSums(mask, value, error, missed, np.where(mask, candidates, 0.0))


__all__ = ["OBJECTIVES", "SubsetSums", "solve_problems"]
