"""Exact, batched subset sum: the closest subset, and the sparsest subset within a tolerance.

Given ``B`` targets ``t_b`` and candidates ``x_{b,1..n}`` (one row per instance), find for each
instance the subset ``S`` minimising ``|t_b - sum_{i in S} x_{b,i}|``. This is the step that
every strong-lottery-ticket construction repeats for each target parameter: Lueker (1998),
as used by Pensia et al. (2020, Corollary 2.5/3.3) and Burkholz (ICML 2022, NeurIPS 2022),
guarantees (LEMMAS.md 1.1-1.2) that ``n >= C log(1/min(eps, delta))`` random candidates
contain such a subset within ``eps`` with probability ``1 - delta``; this module *finds* it.

The search is exhaustive by meet in the middle (Horowitz and Sahni 1974): ``O(n 2**(n/2))``
time per instance, ``O(2**(n/2))`` memory, exact. Two implementations compute the same thing:

* ``method="compiled"``: numba kernels (:mod:`ltbounds.subsetsum.kernels`), parallel over
  instances. Used for numpy inputs.
* ``method="array"``: written against the array API (numpy, CuPy, array-api-strict), vectorised
  over instances (half-sums enumerated as arrays, sorted, nearest neighbours found by a sorted
  merge); used for other namespaces, and the slow twin in the tests.

Floating point and ties are described in :mod:`ltbounds.subsetsum.kernels`: the compiled
kernel returns the exact float64 minimum; the array version evaluates, for every left
half-sum, the nearest right half-sums below and above ``target - left`` and agrees with it
except where rounding of that difference moves the neighbour (differences of a few ulps).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from ltbounds.backend import is_numpy, namespace
from ltbounds.errors import InvalidInput
from ltbounds.validation import (
    check_choice,
    check_int,
    check_memory,
    check_nonnegative,
    check_positive,
    check_real_array,
)

DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes of working memory a call may use unless the caller passes ``memory_budget``."""

MAX_CANDIDATES = 62
"""Largest ``n``: subsets are carried as 64-bit masks. Time, not this limit, binds first."""

METHODS = ("auto", "compiled", "array")

_BIG = 2**62


@dataclass(frozen=True, eq=False)
class SubsetSumResult:
    """The chosen subset of each instance.

    Attributes
    ----------
    mask : array of bool, shape (B, n)
        ``mask[b, i]`` is True when candidate ``i`` of instance ``b`` is in the subset.
    value : array of float64, shape (B,)
        The subset sum, accumulated as ``left + right`` half-sums (see the module notes).
    error : array of float64, shape (B,)
        ``|target - value|``.
    size : array of int64, shape (B,)
        Number of chosen candidates.
    """

    mask: Any
    value: Any
    error: Any
    size: Any


@dataclass(frozen=True, eq=False)
class SparsestResult(SubsetSumResult):
    """:class:`SubsetSumResult` of :func:`solve_sparsest`, with the tolerance it met.

    Attributes
    ----------
    tolerance : float
        The error allowed.
    within : array of bool, shape (B,)
        True where a subset within ``tolerance`` exists (then it is a smallest one); False
        where none does and the closest subset was returned instead.
    """

    tolerance: float = 0.0
    within: Any = None


def solve(
    targets: Any,
    candidates: Any,
    *,
    max_size: int | None = None,
    xp: Any = None,
    method: str = "auto",
    memory_budget: float | None = None,
) -> SubsetSumResult:
    """Closest subset sum for each of ``B`` independent instances, exactly.

    For every instance ``b`` returns the subset ``S`` of the candidates ``x_b`` (with
    ``|S| <= max_size`` when given) that minimises ``|targets[b] - sum_{i in S} x_{b,i}|``.
    Among equally close subsets the one with fewer elements wins, then the one whose mask,
    read as a binary number with candidate 0 as the lowest bit, is smaller. This is the subset
    whose existence Lueker (1998) and Pensia et al. (2020, Corollary 2.5) assert
    (LEMMAS.md 1.1-1.2); the restriction on ``|S|`` gives the sparser tickets of Natale et al.
    (2024).

    Parameters
    ----------
    targets : array of shape (B,) or scalar
        The values to approximate.
    candidates : array of shape (B, n) or (n,)
        Candidate values per instance; a 1-D array is shared by all instances. ``1 <= n <= 62``
        (about ``n <= 40`` is practical: time grows as ``2**(n/2)``).
    max_size : int, optional
        Largest admissible subset size (``>= 0``); default no limit.
    xp : array namespace, optional
        Namespace of the computation; default the namespace of the inputs.
    method : {"auto", "compiled", "array"}
        ``"compiled"`` (numba, numpy inputs only), ``"array"`` (array API, any namespace) or
        ``"auto"``: compiled for numpy, array otherwise.
    memory_budget : float, optional
        Bytes of working memory allowed (default 2 GiB). Work is chunked to fit; a problem
        whose smallest chunk does not fit is refused.

    Returns
    -------
    SubsetSumResult
        Arrays of the input namespace.

    Raises
    ------
    InvalidInput
        Mismatched shapes, ``n < 1``, NaN or infinite values, a bad option.
    ResourceLimitError
        The estimated memory exceeds ``memory_budget`` (the message gives the estimate).

    Examples
    --------
    Two targets sharing one candidate set:

    >>> import numpy as np
    >>> result = solve(np.array([0.7, -0.3]), np.array([0.5, 0.25, -0.125, 0.1]))
    >>> result.mask.astype(int).tolist(), result.value.tolist()
    ([[1, 1, 1, 1], [0, 0, 1, 0]], [0.725, -0.125])
    """
    problem = _prepare(targets, candidates, max_size, xp, method, memory_budget)
    if problem.compiled:
        return _solve_compiled(problem, sparsest=False, tolerance=0.0)
    return _solve_array(problem, sparsest=False, tolerance=0.0)


def solve_sparsest(
    targets: Any,
    candidates: Any,
    tolerance: float,
    *,
    max_size: int | None = None,
    xp: Any = None,
    method: str = "auto",
    memory_budget: float | None = None,
) -> SparsestResult:
    """Smallest subset within ``tolerance`` of each target, exactly; else the closest subset.

    For every instance returns, among the subsets with error ``<= tolerance`` (and at most
    ``max_size`` elements), one of minimal cardinality, choosing the smallest error among
    those and then the smallest mask (as in :func:`solve`). Where no such subset exists, it
    returns the closest subset with at most ``max_size`` elements and sets ``within`` False.
    This is what a sparse ticket needs: Lueker's guarantee (LEMMAS.md 1.2) with the fewest
    kept weights (after Natale et al. 2024).

    Parameters
    ----------
    targets, candidates, max_size, xp, method, memory_budget
        As in :func:`solve`.
    tolerance : float
        Largest acceptable error, ``>= 0``.

    Returns
    -------
    SparsestResult

    Examples
    --------
    >>> import numpy as np
    >>> result = solve_sparsest(np.array([0.7, -0.3]), np.array([0.5, 0.25, -0.125, 0.1]), 0.06)
    >>> result.size.tolist(), result.within.tolist()
    ([2, 1], [True, False])
    """
    tolerance = check_nonnegative("tolerance", tolerance)
    problem = _prepare(targets, candidates, max_size, xp, method, memory_budget)
    if problem.compiled:
        return _solve_compiled(problem, sparsest=True, tolerance=tolerance)
    return _solve_array(problem, sparsest=True, tolerance=tolerance)


# --------------------------------------------------------------------------- input handling


@dataclass(frozen=True)
class _Problem:
    xp: Any
    targets: Any
    candidates: Any
    max_size: int
    compiled: bool
    budget: float

    @property
    def rows(self) -> int:
        return int(self.candidates.shape[0])

    @property
    def n(self) -> int:
        return int(self.candidates.shape[1])


def _prepare(
    targets: Any, candidates: Any, max_size: Any, xp: Any, method: str, memory_budget: Any
) -> _Problem:
    check_choice("method", method, METHODS)
    budget = DEFAULT_MEMORY_BUDGET if memory_budget is None else check_positive(
        "memory_budget", memory_budget
    )
    if xp is None:
        xp = namespace(targets, candidates)
    candidates = check_real_array("candidates", candidates, xp)
    targets = check_real_array("targets", targets, xp)
    if candidates.ndim not in (1, 2):
        raise InvalidInput(
            f"candidates has shape {tuple(candidates.shape)}; expected (B, n) or (n,)"
        )
    n = int(candidates.shape[-1])
    if n < 1:
        raise InvalidInput(f"candidates has n={n} columns; expected n >= 1")
    if n > MAX_CANDIDATES:
        raise InvalidInput(f"candidates has n={n} columns; expected n <= {MAX_CANDIDATES}")
    if targets.ndim == 0:
        targets = xp.reshape(targets, (1,))
    if targets.ndim != 1:
        raise InvalidInput(f"targets has shape {tuple(targets.shape)}; expected (B,) or a scalar")
    rows = int(targets.shape[0])
    if candidates.ndim == 1:
        candidates = xp.broadcast_to(xp.reshape(candidates, (1, n)), (rows, n))
    elif int(candidates.shape[0]) != rows:
        raise InvalidInput(
            f"targets has shape ({rows},) but candidates has shape {tuple(candidates.shape)}; "
            f"expected candidates of shape ({rows}, n)"
        )
    limit = n if max_size is None else min(check_int("max_size", max_size, minimum=0), n)
    numpy_inputs = is_numpy(xp)
    if method == "compiled" and not numpy_inputs:
        raise InvalidInput(f"method='compiled' needs numpy arrays; got namespace {xp.__name__}")
    compiled = method == "compiled" or (method == "auto" and numpy_inputs)
    if compiled:
        targets = np.ascontiguousarray(targets, dtype=np.float64)
        candidates = np.ascontiguousarray(candidates, dtype=np.float64)
    return _Problem(xp, targets, candidates, limit, compiled, budget)


def _halves(n: int) -> tuple[int, int]:
    left = (n + 1) // 2
    return left, n - left


# --------------------------------------------------------------------------- compiled path

_ENUMERATION_LIMIT = 1024
"""Subset sizes with at most this many subsets are searched by direct enumeration."""


def _enumerated_sizes(n: int, max_size: int) -> int:
    """Number of leading sizes ``0, 1, ...`` (up to ``max_size``) with few enough subsets."""
    sizes = 0
    while sizes <= max_size and math.comb(n, sizes) <= _ENUMERATION_LIMIT:
        sizes += 1
    return sizes


def _class_codes(h: int, largest: int) -> tuple[np.ndarray, np.ndarray]:
    """Bitmasks of the subsets of ``h`` elements with ``0 .. largest`` members, by size."""
    codes: list[int] = []
    offsets = [0]
    for count in range(min(largest, h) + 1):
        codes.extend(sum(1 << k for k in members) for members in combinations(range(h), count))
        offsets.append(len(codes))
    offsets += [offsets[-1]] * (h + 1 - len(offsets) + 1)
    return np.asarray(codes, dtype=np.int64), np.asarray(offsets, dtype=np.int64)


def _solve_compiled(problem: _Problem, *, sparsest: bool, tolerance: float) -> Any:
    import numba  # noqa: PLC0415  (numba is loaded only when the compiled path runs)

    from ltbounds.subsetsum import kernels  # noqa: PLC0415

    rows, n = problem.rows, problem.n
    threads = numba.get_num_threads()
    width = 2 ** _halves(n)[0]
    by_size = sparsest or problem.max_size < n
    screened = sparsest and problem.max_size >= n
    scratch = (14 if by_size and not screened else 16) * 8 * width * threads
    check_memory(
        f"subset sum over {rows} instances of n={n}", scratch + rows * (n + 40), problem.budget
    )
    mask = np.zeros((rows, n), dtype=np.bool_)
    value = np.zeros(rows, dtype=np.float64)
    error = np.zeros(rows, dtype=np.float64)
    size = np.zeros(rows, dtype=np.int64)
    within = np.zeros(rows, dtype=np.bool_)
    if rows and sparsest:
        outputs = (mask, value, error, size, within)
        pending = _sparsest_small(kernels, problem, tolerance, threads, outputs)
        if pending.size:
            sub = dataclasses.replace(
                problem,
                targets=problem.targets[pending],
                candidates=problem.candidates[pending],
            )
            parts = tuple(np.empty((pending.size, *out.shape[1:]), out.dtype) for out in outputs)
            if screened:
                _sparsest_screened(kernels, sub, tolerance, threads, parts)
            else:
                _by_size(kernels, sub, slice(0, sub.rows), tolerance, True, threads, parts)
            for out, part in zip(outputs, parts, strict=True):
                out[pending] = part
    elif rows and by_size:
        outputs = (mask, value, error, size, within)
        _by_size(kernels, problem, slice(0, rows), tolerance, sparsest, threads, outputs)
    elif rows:
        kernels.solve_closest(
            problem.targets, problem.candidates, _blocks(rows, threads), mask, value, error, size
        )
    if sparsest:
        return SparsestResult(mask, value, error, size, tolerance=tolerance, within=within)
    return SubsetSumResult(mask, value, error, size)


_SCREEN_PROBE = 64
"""Rows of a sparsest search whose closest subsets estimate how many meet the tolerance."""

_SCREEN_WITHIN = 0.9
"""Screen the other rows by the closest search when at most this share of the probe met it."""


_SMALL_LIMIT = 4096
"""Sizes ``s`` with at most this many subsets ``C(n, s)`` are tried first by enumeration."""


def _small_top(n: int, max_size: int) -> int:
    """Largest size enumerated by :func:`kernels.sparsest_small` (sizes ``0 .. top``)."""
    top = 0
    while top < max_size and math.comb(n, top + 1) <= _SMALL_LIMIT:
        top += 1
    return top


@functools.lru_cache(maxsize=64)
def _class_tables(h: int, top: int) -> tuple[np.ndarray, ...]:
    """Subsets of a half of ``h`` candidates by cardinality ``0 .. min(top, h)``.

    Returns ``(parents, elements, codes, offsets)``: class ``c`` occupies
    ``offsets[c]:offsets[c + 1]``; entry ``r`` is its parent entry ``parents[r]`` (class
    ``c - 1``) plus the element ``elements[r]``, larger than every member of the parent, and
    ``codes[r]`` is its bitmask. See :func:`kernels._class_sums`.
    """
    members: list[tuple[int, ...]] = [()]
    parents, elements, codes, offsets = [0], [0], [0], [0, 1]
    previous = {(): 0}
    for count in range(1, min(top, h) + 1):
        current = {}
        for combination in combinations(range(h), count):
            current[combination] = len(members)
            members.append(combination)
            parents.append(previous[combination[:-1]])
            elements.append(combination[-1])
            codes.append(sum(1 << k for k in combination))
        offsets.append(len(members))
        previous = current
    return tuple(
        np.asarray(column, dtype=np.int64) for column in (parents, elements, codes, offsets)
    )


def _blocks(rows: int, threads: int) -> int:
    """Work items of a parallel kernel: a few per thread, so that uneven rows even out."""
    return min(rows, 4 * threads)


def _sparsest_small(
    kernels: Any, problem: _Problem, tolerance: float, threads: int, outputs: tuple[np.ndarray, ...]
) -> np.ndarray:
    """First pass of a sparsest search: enumerate the small sizes of every row exactly.

    At the tolerances the constructions use, most rows have a subset of a few elements
    within the tolerance (at n = 15, eps = 0.01: 99 % of rows, by size 4), and enumerating
    the ``C(n, s)`` subsets of each size up to that one costs far less than building sorted
    half-lists. Writes the rows it settles into ``outputs`` and returns the indices of the
    others, which need the general search.
    """
    n = problem.n
    top = _small_top(n, problem.max_size)
    h_left, h_right = _halves(n)
    resolved = np.zeros(problem.rows, dtype=np.bool_)
    kernels.sparsest_small(
        problem.targets, problem.candidates, tolerance, top, top == problem.max_size,
        *_class_tables(h_left, top), *_class_tables(h_right, top),
        _blocks(problem.rows, threads), *outputs, resolved,
    )
    return np.flatnonzero(~resolved)


def _by_size(
    kernels: Any,
    problem: _Problem,
    rows: slice | np.ndarray,
    tolerance: float,
    sparsest: bool,
    threads: int,
    outputs: tuple[np.ndarray, ...],
) -> None:
    """Run the by-size kernel on ``rows`` of ``problem`` and write them into ``outputs``.

    A slice of rows is solved in place (views of the outputs); an index array through copies.
    """
    targets = problem.targets[rows]
    count = int(targets.shape[0])
    if count == 0:
        return
    n = problem.n
    enumerated = _enumerated_sizes(n, problem.max_size)
    h_left, h_right = _halves(n)
    left_codes, left_offsets = _class_codes(h_left, enumerated - 1)
    right_codes, right_offsets = _class_codes(h_right, enumerated - 1)
    in_place = isinstance(rows, slice)
    parts = tuple(out[rows] if in_place else np.empty((count, *out.shape[1:]), out.dtype) for out in outputs)
    kernels.solve_by_size(
        targets, problem.candidates[rows], problem.max_size, tolerance, sparsest,
        enumerated, left_codes, left_offsets, right_codes, right_offsets,
        _blocks(count, threads), *parts,
    )
    if not in_place:
        for out, part in zip(outputs, parts, strict=True):
            out[rows] = part


def _sparsest_screened(
    kernels: Any, problem: _Problem, tolerance: float, threads: int, outputs: tuple[np.ndarray, ...]
) -> None:
    """Sparsest subsets, screening out rows that cannot meet ``tolerance`` (no size limit).

    Where no subset is within the tolerance, the sparsest search returns the closest subset
    under the same order (error, then size, then mask), which the closest kernel finds many
    times faster (about 20× at n = 24) than a search through every cardinality class. So the
    closest kernel runs first and only rows whose closest error is within the tolerance are
    searched (:func:`_sparsest_unlimited`); the result is the same. When most rows meet the
    tolerance (loose tolerances) screening would not pay: the first :data:`_SCREEN_PROBE` rows decide, and if
    more than :data:`_SCREEN_WITHIN` of them meet it every row is searched.
    """
    mask, value, error, size, within = outputs
    probe = min(problem.rows, _SCREEN_PROBE)

    def closest(rows: slice) -> None:  # rows are contiguous, so views are written in place
        kernels.solve_closest(
            problem.targets[rows], problem.candidates[rows], _blocks(rows.stop - rows.start, threads),
            mask[rows], value[rows], error[rows], size[rows],
        )

    closest(slice(0, probe))
    if np.mean(error[:probe] <= tolerance) > _SCREEN_WITHIN:
        _sparsest_unlimited(kernels, problem, np.arange(problem.rows), tolerance, threads, outputs)
        return
    if probe < problem.rows:
        closest(slice(probe, problem.rows))
    within[:] = False
    hits = np.flatnonzero(error <= tolerance)
    _sparsest_unlimited(kernels, problem, hits, tolerance, threads, outputs)


_HIT_VISITS = 8
"""Subsets within the tolerance :func:`kernels.sparsest_by_hits` may visit per row, in units
of ``2**h`` (``h = ceil(n/2)``, the length of a half-list), before it leaves the row to the
search by size: beyond that many the pass would cost more than the sweeps by size."""


def _sparsest_unlimited(
    kernels: Any,
    problem: _Problem,
    rows: np.ndarray,
    tolerance: float,
    threads: int,
    outputs: tuple[np.ndarray, ...],
) -> None:
    """Sparsest subsets (no size limit) of ``rows``, written into ``outputs``.

    :func:`kernels.sparsest_by_hits` first: one pass that visits every subset within the
    tolerance and keeps the least (size, error, code), the rule of the search by size; rows
    it leaves (none within the tolerance, or more than :data:`_HIT_VISITS` ``· 2**h``) go to
    :func:`_by_size`. Where sums are exact the two agree bit for bit (tested, also on every
    construction of the embedded targets); where different subsets round to one float sum
    the pass still returns the least (size, error, code) among them, and the sweeps by size,
    which meet only some pairs of equal sums, might pick another of the same size and error.
    """
    count = int(rows.size)
    if count == 0:
        return
    parts = tuple(np.zeros((count, *out.shape[1:]), out.dtype) for out in outputs)
    resolved = np.zeros(count, dtype=np.bool_)
    limit = _HIT_VISITS << _halves(problem.n)[0]
    kernels.sparsest_by_hits(
        problem.targets[rows], problem.candidates[rows], tolerance, limit,
        _blocks(count, threads), *parts, resolved,
    )
    done = rows[resolved]
    for out, part in zip(outputs, parts, strict=True):
        out[done] = part[resolved]
    _by_size(kernels, problem, rows[~resolved], tolerance, True, threads, outputs)


# --------------------------------------------------------------------------- array path


def _popcount(codes: np.ndarray) -> np.ndarray:
    counts = np.zeros(codes.shape, dtype=np.int64)
    remaining = codes.copy()
    while remaining.any():
        counts += remaining & 1
        remaining >>= 1
    return counts


def _half_sums(xp: Any, candidates: Any, start: int, count: int) -> Any:
    """All ``2**count`` subset sums of ``candidates[:, start:start+count]``; column ``c`` holds
    the subset with bitmask ``c``, accumulated in increasing candidate order from 0.0."""
    sums = xp.zeros((int(candidates.shape[0]), 1), dtype=xp.float64)
    for k in range(start, start + count):
        sums = xp.concat([sums, sums + candidates[:, k : k + 1]], axis=1)
    return sums


def _take_rows(xp: Any, values: Any, index: Any) -> Any:
    """``values[b, index[b, j]]`` for every ``b, j`` (a row-wise gather)."""
    rows, width = int(values.shape[0]), int(values.shape[1])
    offsets = xp.reshape(xp.arange(rows, dtype=xp.int64) * width, (rows, 1))
    flat = xp.take(xp.reshape(values, (-1,)), xp.reshape(index + offsets, (-1,)))
    return xp.reshape(flat, tuple(index.shape))


def _take_flat(xp: Any, vector: np.ndarray, index: Any) -> Any:
    """``vector[index]`` for a host vector and an index array of any shape."""
    flat = xp.take(xp.asarray(vector), xp.reshape(index, (-1,)))
    return xp.reshape(flat, tuple(index.shape))


def _take_columns(xp: Any, values: Any, columns: np.ndarray) -> Any:
    return xp.take(values, xp.asarray(columns, dtype=xp.int64), axis=1)


def _lexmin(xp: Any, errors: Any, sizes: Any, codes: Any, values: Any) -> tuple[Any, ...]:
    """Row-wise minimum of ``(error, size, code)``; returns the four columns at it."""
    candidate = errors == xp.min(errors, axis=1, keepdims=True)
    sizes_left = xp.where(candidate, sizes, _BIG)
    candidate = candidate & (sizes_left == xp.min(sizes_left, axis=1, keepdims=True))
    position = xp.reshape(xp.argmin(xp.where(candidate, codes, _BIG), axis=1), (-1, 1))
    return tuple(
        xp.reshape(_take_rows(xp, column, position), (-1,))
        for column in (errors, sizes, codes, values)
    )


def _nearest_pairs(
    xp: Any,
    targets: Any,
    a_vals: Any,
    a_codes: np.ndarray,
    a_sizes: np.ndarray,
    b_vals: Any,
    b_codes: np.ndarray,
    b_sizes: np.ndarray,
    shift: int,
) -> tuple[Any, ...]:
    """Best ``(error, size, code, value)`` per row over pairs (left sum, right sum).

    For every left sum ``a`` the right sums just below and just above ``t - a`` are paired
    with it. Right sums are ordered by value twice, once with ties in preferred order and once
    reversed, so that whichever neighbour is taken from a run of equal sums is the preferred
    one (fewest elements, then smallest mask).
    """
    width_b = int(b_vals.shape[1])
    preferred = np.lexsort((b_codes, b_sizes))
    ordered = {}
    for name, order in (("up", preferred), ("down", preferred[::-1])):
        values = _take_columns(xp, b_vals, order)
        index = xp.argsort(values, axis=1, stable=True)
        ordered[name] = (
            _take_rows(xp, values, index),
            _take_flat(xp, b_codes[order], index),
            _take_flat(xp, b_sizes[order], index),
        )
    sorted_b = ordered["up"][0]
    queries = xp.reshape(targets, (-1, 1)) - a_vals
    order = xp.argsort(xp.concat([sorted_b, queries], axis=1), axis=1, stable=True)
    is_query = order >= width_b
    count = xp.cumulative_sum(xp.astype(~is_query, xp.int64), axis=1)
    a_index = xp.where(is_query, order - width_b, 0)
    left = _take_rows(xp, a_vals, a_index)
    left_code = _take_flat(xp, a_codes, a_index)
    left_size = _take_flat(xp, a_sizes, a_index)
    t = xp.reshape(targets, (-1, 1))
    columns: dict[str, list[Any]] = {"error": [], "size": [], "code": [], "value": []}
    for name, position, valid in (
        ("down", count - 1, is_query & (count >= 1)),
        ("up", count, is_query & (count < width_b)),
    ):
        position = xp.clip(position, 0, width_b - 1)
        right_vals, right_codes, right_sizes = ordered[name]
        total = left + _take_rows(xp, right_vals, position)
        columns["error"].append(xp.where(valid, xp.abs(t - total), xp.inf))
        columns["size"].append(left_size + _take_rows(xp, right_sizes, position))
        columns["code"].append((_take_rows(xp, right_codes, position) << shift) | left_code)
        columns["value"].append(total)
    return _lexmin(xp, *(xp.concat(columns[key], axis=1) for key in columns))


def _stack_best(xp: Any, parts: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    return _lexmin(xp, *(xp.stack([part[k] for part in parts], axis=1) for k in range(4)))


def _array_chunk(
    xp: Any, targets: Any, candidates: Any, max_size: int, sparsest: bool, tolerance: float
) -> tuple[Any, ...]:
    n = int(candidates.shape[1])
    h_left, h_right = _halves(n)
    a_vals = _half_sums(xp, candidates, 0, h_left)
    b_vals = _half_sums(xp, candidates, h_left, h_right)
    a_codes = np.arange(2**h_left, dtype=np.int64)
    b_codes = np.arange(2**h_right, dtype=np.int64)
    a_sizes, b_sizes = _popcount(a_codes), _popcount(b_codes)

    def pairs(a_columns: np.ndarray, b_columns: np.ndarray) -> tuple[Any, ...]:
        return _nearest_pairs(
            xp, targets,
            _take_columns(xp, a_vals, a_columns), a_codes[a_columns], a_sizes[a_columns],
            _take_columns(xp, b_vals, b_columns), b_codes[b_columns], b_sizes[b_columns],
            h_left,
        )

    if not sparsest and max_size >= n:
        closest = _nearest_pairs(
            xp, targets, a_vals, a_codes, a_sizes, b_vals, b_codes, b_sizes, h_left
        )
        return (*closest, None)
    if not sparsest:
        parts = [
            pairs(np.flatnonzero(a_sizes == i), np.flatnonzero(b_sizes <= max_size - i))
            for i in range(min(h_left, max_size) + 1)
        ]
        return (*_stack_best(xp, parts), None)
    per_size = []
    for s in range(max_size + 1):
        parts = [
            pairs(np.flatnonzero(a_sizes == i), np.flatnonzero(b_sizes == s - i))
            for i in range(max(0, s - h_right), min(h_left, s) + 1)
        ]
        per_size.append(_stack_best(xp, parts))
    errors, sizes, codes, values = (xp.stack([p[k] for p in per_size], axis=1) for k in range(4))
    within = errors <= tolerance
    first = xp.reshape(xp.argmax(xp.astype(within, xp.int8), axis=1), (-1, 1))
    closest = _lexmin(xp, errors, sizes, codes, values)
    any_within = xp.any(within, axis=1)
    chosen = tuple(
        xp.where(any_within, xp.reshape(_take_rows(xp, column, first), (-1,)), fallback)
        for column, fallback in zip((errors, sizes, codes, values), closest, strict=True)
    )
    return (*chosen, any_within)


def _solve_array(problem: _Problem, *, sparsest: bool, tolerance: float) -> Any:
    xp, rows, n = problem.xp, problem.rows, problem.n
    h_left, h_right = _halves(n)
    per_instance = 256 * (2**h_left + 2**h_right)
    check_memory(f"array subset sum for one instance of n={n}", per_instance, problem.budget)
    chunk = max(1, int(problem.budget // per_instance))
    pieces = []
    for start in range(0, rows, chunk):
        stop = min(rows, start + chunk)
        pieces.append(
            _array_chunk(
                xp, problem.targets[start:stop], problem.candidates[start:stop, :],
                problem.max_size, sparsest, tolerance,
            )
        )
    if pieces:
        errors, sizes, codes, values = (xp.concat([p[k] for p in pieces]) for k in range(4))
        within = xp.concat([p[4] for p in pieces]) if sparsest else None
    else:
        errors = values = xp.zeros((0,), dtype=xp.float64)
        sizes = codes = xp.zeros((0,), dtype=xp.int64)
        within = xp.zeros((0,), dtype=xp.bool)
    bits = xp.reshape(xp.arange(n, dtype=xp.int64), (1, n))
    mask = ((xp.reshape(codes, (-1, 1)) >> bits) & 1) == 1
    if sparsest:
        return SparsestResult(mask, values, errors, sizes, tolerance=tolerance, within=within)
    return SubsetSumResult(mask, values, errors, sizes)
