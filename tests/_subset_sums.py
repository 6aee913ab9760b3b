"""Slow, obvious subset-sum references shared by test modules (imported by name)."""

from __future__ import annotations

import itertools

import numpy as np


def brute_force_best(target: float, candidates: np.ndarray) -> float:
    """Smallest |target − Σ_S c| over all subsets (the slow obvious reference)."""
    best = abs(target)
    for size in range(1, len(candidates) + 1):
        for subset in itertools.combinations(candidates, size):
            best = min(best, abs(target - sum(subset)))
    return best
