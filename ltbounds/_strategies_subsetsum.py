"""Hypothesis strategies for subset-sum instances (public through :mod:`ltbounds.strategies`).

Imports hypothesis: only :mod:`ltbounds.strategies` and the tests import this module. For
tolerances use :func:`ltbounds.strategies.eps_values`.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

DYADIC_DENOMINATOR = 16
"""Dyadic values are multiples of ``1/16``: every subset sum of a few of them is exact."""


def _values(bound: float, dyadic: bool) -> st.SearchStrategy[float]:
    if dyadic:
        steps = int(bound * DYADIC_DENOMINATOR)
        return st.integers(-steps, steps).map(lambda k: k / DYADIC_DENOMINATOR)
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def candidate_sets(
    *, min_n: int = 1, max_n: int = 12, bound: float = 1.0, dyadic: bool = False
) -> st.SearchStrategy[np.ndarray]:
    """One candidate set: a float64 array of shape ``(n,)`` with entries in ``[-bound, bound]``.

    Shrinks towards ``n = min_n`` and towards all-zero candidates. With ``dyadic=True`` the
    entries are multiples of 1/16, so every subset sum is exact in float64 and equal sums
    (ties between different subsets) really occur: the strategy for testing tie rules.
    """
    return st.integers(min_n, max_n).flatmap(
        lambda n: st.lists(_values(bound, dyadic), min_size=n, max_size=n).map(
            lambda values: np.asarray(values, dtype=np.float64)
        )
    )


@st.composite
def subset_sum_instances(
    draw: st.DrawFn,
    *,
    min_n: int = 1,
    max_n: int = 12,
    max_batch: int = 4,
    bound: float = 1.0,
    target_bound: float | None = None,
    dyadic: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch ``(targets, candidates)`` of shapes ``(B,)`` and ``(B, n)`` for ``solve``.

    ``1 <= B <= max_batch``, ``min_n <= n <= max_n``; candidates in ``[-bound, bound]``,
    targets in ``[-target_bound, target_bound]`` (default ``bound``). Shrinks towards one
    instance, ``n = min_n``, zero targets and zero candidates. ``dyadic`` as in
    :func:`candidate_sets` (targets too).
    """
    rows = draw(st.integers(1, max_batch))
    n = draw(st.integers(min_n, max_n))
    values = _values(bound, dyadic)
    candidates = draw(st.lists(values, min_size=rows * n, max_size=rows * n))
    targets = draw(
        st.lists(
            _values(bound if target_bound is None else target_bound, dyadic),
            min_size=rows,
            max_size=rows,
        )
    )
    return (
        np.asarray(targets, dtype=np.float64),
        np.asarray(candidates, dtype=np.float64).reshape(rows, n),
    )


__all__ = ["DYADIC_DENOMINATOR", "candidate_sets", "subset_sum_instances"]
