"""The construction's one door to the subset-sum engine.

Every target parameter becomes one subset-sum instance; instances are solved in batches by
:mod:`ltbounds.subsetsum` (exact meet-in-the-middle). Two objectives:

* ``"sparse"`` (default): the smallest subset whose sum is within the per-parameter
  tolerance (the sparsest ticket, after the early-stopping search of the authors' code and
  Natale et al. 2024), the closest subset where none is within tolerance;
* ``"closest"``: the subset whose sum is closest to the target (the most accurate ticket).

An instance whose best error exceeds the tolerance is a *miss*: it is counted and reported,
never hidden by redrawing weights (the source network is fixed by its seed).

:func:`solve_spread` serves targets far larger than one window of candidates can reach (the
bias of a 2L sigmoid layer that also cancels the offset φ(0)·Σv): its subset may use every
window of the block at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ltbounds.subsetsum import solve, solve_sparsest
from ltbounds.validation import check_choice

OBJECTIVES = ("sparse", "closest")
#: Candidates of the one wider exact search an instance gets when every window missed its
#: tolerance (:func:`solve_problems`). Meet-in-the-middle over n candidates resolves sums to
#: about 2^(-n/2) of their range: after three windows of 24, one search over 28 makes a miss's
#: error 4.5x smaller on average (5.4e-8 -> 1.2e-8, 76 uniform candidates, tolerance 1e-10)
#: for 2.5x the solver time (``benchmarks/bench_refine.py``, 2-core machine).
REFINE_WINDOW = 28


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
    refine: int | None = REFINE_WINDOW,
) -> SubsetSums:
    """Solve ``len(targets)`` instances over the rows of ``candidates``.

    When a row holds more than ``window`` candidates, the exact solver runs on the first
    ``window`` of them; instances still missing their tolerance are solved again on the next
    ``window`` candidates, and so on, keeping the better answer (the subset is any subset of
    the block, so each window is a legitimate, independent try). Zero candidates mark unusable
    slots and windows of zeros are skipped.

    Instances that every window missed get one more exact search over the first ``refine``
    candidates (when ``refine`` exceeds ``window`` and the row holds more than ``window``),
    kept where closer: the wider search resolves finer sums (about ``2^(-refine/2)`` of their
    range), so a miss's error shrinks by about ``2^((refine − window)/2)``. Instances that
    meet their tolerance in a window never reach it, so tickets without misses do not change.
    ``refine=None`` turns it off.
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
    state = (mask, value, error)
    for start in range(0, width, window):
        _search_misses(targets, candidates, tolerance, objective, slice(start, start + window), state)
    if refine is not None and refine > window and width > window:
        columns = slice(0, min(refine, width))
        _search_misses(targets, candidates, tolerance, objective, columns, state)
    missed = int(np.count_nonzero(error > tolerance))
    return SubsetSums(mask, value, error, missed, np.where(mask, candidates, 0.0))


def _search_misses(
    targets: np.ndarray,
    candidates: np.ndarray,
    tolerance: float,
    objective: str,
    columns: slice,
    state: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """One exact search over ``candidates[:, columns]`` for every instance still beyond
    ``tolerance``; ``state = (mask, value, error)`` is updated in place where closer.

    The windows and the refining search share this one call. The refine's instances are
    expected to miss again, and :func:`solve_sparsest` screens such rows itself (the closest
    subset first, the search over subset sizes only where that one is within the tolerance;
    the same answers as searching every row by size, ``tests/test_subsetsum_solver.py``).
    """
    mask, value, error = state
    block = candidates[:, columns]
    pending = np.flatnonzero((error > tolerance) & np.any(block != 0, axis=1))
    if pending.size == 0:
        return
    if objective == "sparse":
        result = solve_sparsest(targets[pending], block[pending], tolerance)
    else:
        result = solve(targets[pending], block[pending])
    chosen = np.asarray(result.mask, dtype=bool)
    found = np.asarray(result.value, dtype=np.float64)
    found_error = np.abs(found - targets[pending])
    better = found_error < error[pending]
    rows = pending[better]
    mask[rows] = False
    mask[rows, columns] = chosen[better]
    value[rows] = found[better]
    error[rows] = found_error[better]


def _masked_sum(mask: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    return np.sum(np.where(mask, candidates, 0.0), axis=1)


def solve_spread(
    targets: np.ndarray,
    candidates: np.ndarray,
    tolerance: float,
    window: int,
    passes: int = 3,
) -> SubsetSums:
    """Closest subsets that may span *all* windows of the rows of ``candidates``.

    :func:`solve_problems` keeps each answer inside one window, so a target beyond one
    window's reach (a sum of order |t| needs about 4|t|/E|c| candidates of one sign) always
    misses. Here the first ``window`` candidates are the *precision* window and the others
    are *bulk* windows of ``window`` candidates each:

    1. the bulk windows, in order, each take the exact closest subset to what is left of
       ``t − m``, with ``m = Σ(precision window)/2`` the centre of the precision window's
       subset sums (where they are densest), so a far target is covered by whole-window sums;
    2. the precision window takes the exact closest subset to ``t −`` (bulk sums);
    3. up to ``passes`` rounds of block coordinate descent: every window in turn is re-solved
       exactly against ``t −`` (the other windows' sums), an answer replaced only when closer,
       so the error never grows; instances within ``tolerance`` stop early;
    4. the answer of :func:`solve_problems` (closest, one window) replaces it where closer,
       since descent may stop at a local optimum: never worse than the windowed search.

    Every step is the exact meet-in-the-middle solver of :mod:`ltbounds.subsetsum`; the
    returned value and error are recomputed from the final mask (the realised sum), and
    instances still beyond ``tolerance`` are counted as misses, as in :func:`solve_problems`.
    Zero candidates mark unusable slots (never chosen in a useful way; windows of zeros are
    skipped).
    """
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    candidates = np.ascontiguousarray(candidates, dtype=np.float64)
    batch = targets.shape[0]
    width = candidates.shape[1] if candidates.ndim == 2 else 0
    if batch == 0 or width == 0:
        return solve_problems(targets, candidates, tolerance, "closest", window)
    window = max(1, min(int(window), width))
    blocks = [slice(start, min(start + window, width)) for start in range(0, width, window)]
    mask = np.zeros((batch, width), dtype=bool)
    parts = np.zeros((batch, len(blocks)))

    def solve_block(k: int, rows: np.ndarray, goal: np.ndarray) -> None:
        """Re-solve block ``k`` for ``rows`` towards ``goal``; keep answers that bring the total closer."""
        block = candidates[rows, blocks[k]]
        live = np.any(block != 0, axis=1)
        rows, block, goal = rows[live], block[live], goal[live]
        if rows.size == 0:
            return
        chosen = np.asarray(solve(goal, block).mask, dtype=bool)
        found = _masked_sum(chosen, block)
        better = np.abs(goal - found) < np.abs(goal - parts[rows, k])
        rows, chosen, found = rows[better], chosen[better], found[better]
        mask[rows, blocks[k]] = chosen
        parts[rows, k] = found

    everyone = np.arange(batch)
    centre = 0.5 * np.sum(candidates[:, blocks[0]], axis=1)
    for k in range(1, len(blocks)):
        solve_block(k, everyone, targets - centre - parts[:, 1:k].sum(axis=1))
    solve_block(0, everyone, targets - parts[:, 1:].sum(axis=1))
    for _ in range(passes):
        for k in range(len(blocks)):
            error = np.abs(targets - parts.sum(axis=1))
            pending = np.flatnonzero(error > tolerance)
            if pending.size == 0:
                break
            rest = parts[pending].sum(axis=1) - parts[pending, k]
            solve_block(k, pending, targets[pending] - rest)
    value = _masked_sum(mask, candidates)
    error = np.abs(value - targets)
    # Coordinate descent can stop at a local optimum worse than one window's best subset: keep
    # whichever is closer, so the answer is never worse than solve_problems' (nor than ∅).
    windowed = solve_problems(targets, candidates, tolerance, "closest", window)
    worse = windowed.error < error
    mask[worse] = windowed.mask[worse]
    value[worse] = windowed.value[worse]
    error[worse] = windowed.error[worse]
    missed = int(np.count_nonzero(error > tolerance))
    return SubsetSums(mask, value, error, missed, np.where(mask, candidates, 0.0))


def retry_spread(
    result: SubsetSums, targets: np.ndarray, candidates: np.ndarray, tolerance: float, window: int
) -> SubsetSums:
    """``result`` with every miss re-solved by :func:`solve_spread`, kept where closer.

    A miss of :func:`solve_problems` may only be a miss of its windows: the subset-sum lemma
    speaks of all ρ candidates of the block, the exact solver sees ``window`` at a time (seen
    on the 2L digits CNN: a weight near 1 whose 41 candidates held positive products summing
    to 1.43, split over two windows that each fell 0.28 short).
    """
    rows = np.flatnonzero(result.error > tolerance)
    if rows.size == 0:
        return result
    again = solve_spread(targets[rows], candidates[rows], tolerance, window)
    better = again.error < result.error[rows]
    rows, chosen = rows[better], again.mask[better]
    mask, value, error = result.mask.copy(), result.value.copy(), result.error.copy()
    mask[rows] = chosen
    value[rows] = again.value[better]
    error[rows] = again.error[better]
    missed = int(np.count_nonzero(error > tolerance))
    return SubsetSums(mask, value, error, missed, np.where(mask, candidates, 0.0))


__all__ = ["OBJECTIVES", "REFINE_WINDOW", "SubsetSums", "retry_spread", "solve_problems", "solve_spread"]
