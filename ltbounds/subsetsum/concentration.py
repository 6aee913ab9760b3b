"""How often does coverage fail? Monte Carlo estimates of δ(n, ε) and of Lueker's constant C.

δ(n, ε) is the probability that ``n`` random candidates fail to ε-cover the domain: that some
``z`` in ``[-1, 1]`` has no subset sum within ε (LEMMAS.md 1.1-1.2; Lueker 1998, as used by
Pensia et al. 2020, Corollary 3.3, and Burkholz 2022). Candidates are i.i.d. ``U[-1, 1]``
(``distribution="uniform"``, the L+1 construction) or products ``a_i b_i`` of two independent
``U[-1, 1]`` (``"product"``, the 2L construction, LEMMAS.md 1.2). Each trial is decided exactly
by :func:`ltbounds.subsetsum.covers`; the estimate is statistical: a failure count out of
``trials`` with an exact Clopper-Pearson interval.

Note the event: here a trial fails when *some* ``z`` is uncovered (the uniform statement of the
lemma). The authors' script ``main_ssa_stats.py`` counts a failure when one random target ``z``
is missed, a much more frequent success; its δ is smaller than ours at the same ``n``.

Randomness is addressed, not sequenced: trial ``k`` of size ``n`` lies in block
``k // BLOCK`` and is drawn from ``Philox(SeedSequence(seed, spawn_key=(n, block)))``, rows in
order. The same ``(seed, n, k)`` gives the same candidates however the trials are chunked,
ordered or distributed (every ε of a grid uses the same candidates, so δ is monotone in ε).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import mpmath
import numpy as np

from ltbounds.errors import InvalidInput
from ltbounds.subsetsum.coverage import _domain, covers
from ltbounds.validation import (
    check_choice,
    check_int,
    check_memory,
    check_open_unit,
    check_positive,
    memory_budget,
)

BLOCK = 1024
"""Trials per independently seeded block of random candidates."""

DISTRIBUTIONS = ("uniform", "product")

MAX_TRIALS = 10**9
"""Most trials per ``(n, eps)`` cell. 10^9 trials resolve δ down to about 3e-9 (the one-sided
95 % upper bound after no failure is ``-log(0.05) / trials``) and take about 10^6 s of one
core at the measured ~1,000 trials/s for n <= 24 (``benchmarks/results/parallel.json``);
larger counts are typing errors, refused before the work list is built (at 10^23 the run
would never finish). For more, pool the counts of several seeds."""

ITEM_BYTES = 1024
"""Memory per ``(n, block)`` work item of a grid: measured at about 580 bytes for the item and
its argument (tracemalloc), rounded up to 1 KiB for the runner's per-item bookkeeping
(results, keys, order); each ε adds 8."""


@dataclass(frozen=True)
class ConcentrationResult:
    """Monte Carlo estimate of δ(n, ε) = P(some z in the domain is not ε-approximable).

    Attributes
    ----------
    n, eps : int, float
        Number of candidates and tolerance.
    trials, failures : int
        Candidate sets drawn, and how many failed to ε-cover the domain (each decided exactly).
    delta : float
        ``failures / trials``.
    ci_low, ci_high : float
        Exact (Clopper-Pearson) two-sided interval for δ at level ``confidence``.
    confidence : float
        Level of the interval.
    distribution : str
        ``"uniform"`` or ``"product"``.
    seed : int
        Seed of the candidates (see the module notes for how trials are addressed).
    domain : tuple of float
        The interval of targets.
    """

    n: int
    eps: float
    trials: int
    failures: int
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    distribution: str
    seed: int
    domain: tuple[float, float] = (-1.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the domain as a list)."""
        row = asdict(self)
        row["domain"] = list(self.domain)
        return row


@dataclass(frozen=True)
class CellConstant:
    """The empirical constant of one grid cell: ``C = n / log(1 / min(eps, delta))``."""

    n: int
    eps: float
    failures: int
    trials: int
    C: float
    C_low: float
    C_high: float


@dataclass(frozen=True)
class ConstantFit:
    """The smallest C consistent with every cell of a grid, with a joint interval.

    Attributes
    ----------
    C : float
        ``max`` over cells of ``n / log(1 / min(eps, delta_hat))``; 0.0 when no cell saw a
        failure (nothing then forces C above zero).
    C_low, C_high : float
        Joint interval: the maxima over cells of the per-cell bounds, each taken from a
        Clopper-Pearson interval at level ``1 - (1 - confidence) / cells`` (Bonferroni), so
        that all cells hold together with probability at least ``confidence``.
    confidence : float
        Joint level.
    n, eps : int, float
        The cell that attains ``C`` (the one attaining ``C_high`` when ``C`` is 0).
    cells : tuple of CellConstant
        Per-cell values, with the Bonferroni-adjusted intervals.
    """

    C: float
    C_low: float
    C_high: float
    confidence: float
    n: int
    eps: float
    cells: tuple[CellConstant, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


# --------------------------------------------------------------------------- random candidates


def _block_generator(seed: int, n: int, block: int) -> np.random.Generator:
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=(n, block))))


def draw_candidates(
    n: int, trials: int, *, distribution: str = "uniform", seed: int, start: int = 0
) -> np.ndarray:
    """Candidate sets of trials ``start .. start + trials - 1`` for size ``n``, shape (trials, n).

    Trial ``k`` is row ``k % BLOCK`` of block ``k // BLOCK``, drawn from
    ``Philox(SeedSequence(seed, spawn_key=(n, block)))``: ``U[-1, 1]`` values, or for
    ``"product"`` the product of two consecutive ``U[-1, 1]`` draws per entry.
    """
    n = check_int("n", n, minimum=1)
    trials = check_int("trials", trials, minimum=0)
    seed = check_int("seed", seed, minimum=0)
    start = check_int("start", start, minimum=0)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    factors = 1 if distribution == "uniform" else 2
    pieces = [np.empty((0, n))]
    stop = start + trials
    for block in range(start // BLOCK, -(-stop // BLOCK)):
        first = block * BLOCK
        rows = min(stop, first + BLOCK) - first
        draw = _block_generator(seed, n, block).uniform(-1.0, 1.0, size=(rows, factors, n))
        values = draw[:, 0, :] if factors == 1 else draw[:, 0, :] * draw[:, 1, :]
        pieces.append(values[max(start - first, 0) :])
    return np.concatenate(pieces)


# --------------------------------------------------------------------------- Clopper-Pearson


def _beta_continued_fraction(a: Any, b: Any, x: Any) -> Any:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = mpmath.mpf(2) ** (-2 * mpmath.mp.prec)
    tolerance = mpmath.mpf(2) ** (-mpmath.mp.prec + 4)
    c = mpmath.mpf(1)
    d = 1 - (a + b) * x / (a + 1)
    d = 1 / (d if abs(d) > tiny else tiny)
    result = d
    limit = 100 + 20 * int(math.sqrt(float(max(a, b))))
    for m in range(1, limit):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            step = c * d
            result *= step
        if abs(step - 1) < tolerance:
            return result
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b})")


def _regularized_beta(a: Any, b: Any, x: Any) -> Any:
    """``I_x(a, b)`` in mpmath arithmetic, for ``a, b > 0`` and ``0 <= x <= 1``."""
    if x <= 0:
        return mpmath.mpf(0)
    if x >= 1:
        return mpmath.mpf(1)
    log_front = (
        mpmath.loggamma(a + b) - mpmath.loggamma(a) - mpmath.loggamma(b)
        + a * mpmath.log(x) + b * mpmath.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return mpmath.exp(log_front) * _beta_continued_fraction(a, b, x) / a
    return 1 - mpmath.exp(log_front) * _beta_continued_fraction(b, a, 1 - x) / b


def _beta_quantile(probability: float, a: int, b: int) -> tuple[float, float]:
    """Adjacent floats ``low < high`` with ``I_low(a, b) < probability <= I_high(a, b)``.

    The Beta(a, b) quantile lies in ``(low, high]``. Newton's method on the regularized
    incomplete beta function (mpmath, 40 digits) from a normal approximation, safeguarded by
    the bracket (a step that leaves it bisects it); once a step is within a few ulps, the next
    guess is placed just across the root so that both ends of the bracket close in.
    """
    with mpmath.workdps(40):
        target = mpmath.mpf(probability)
        a_mp, b_mp = mpmath.mpf(a), mpmath.mpf(b)
        log_beta = mpmath.loggamma(a_mp) + mpmath.loggamma(b_mp) - mpmath.loggamma(a_mp + b_mp)
        spread = math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        guess = a / (a + b) + NormalDist().inv_cdf(probability) * spread
        low, high = 0.0, 1.0
        newton_steps = 64  # then plain bisection, which always ends
        while np.nextafter(low, 1.0) < high:
            newton_steps -= 1
            if newton_steps < 0 or not low < guess < high:
                guess = 0.5 * (low + high)
            x = mpmath.mpf(guess)
            gap = _regularized_beta(a_mp, b_mp, x) - target
            if gap < 0:
                low = guess
            else:
                high = guess
            density = mpmath.exp(
                (a_mp - 1) * mpmath.log(x) + (b_mp - 1) * mpmath.log1p(-x) - log_beta
            )
            step = float(gap / density) if density > 0 else math.nan
            if not math.isfinite(step):
                guess = math.nan
                continue
            ulp = float(np.nextafter(guess, 1.0)) - guess
            guess -= step
            if abs(step) <= 2 * ulp:
                guess += 4 * ulp if gap < 0 else -4 * ulp
        return low, high


def clopper_pearson(failures: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact two-sided Clopper-Pearson interval for a binomial proportion.

    ``[B(α/2; k, N-k+1), B(1-α/2; k+1, N-k)]`` with ``B(p; a, b)`` the Beta quantile and
    ``α = 1 - confidence`` (lower end 0 when ``k = 0``, upper end 1 when ``k = N``). The
    quantiles come from a safeguarded Newton iteration on the regularized incomplete beta
    function evaluated with mpmath at 40 digits; the lower end is the largest float64 below
    its quantile and the upper end the smallest at or above its quantile, so rounding never
    shrinks the interval.

    Parameters
    ----------
    failures : int
        Observed count ``k``, ``0 <= k <= trials``.
    trials : int
        Number of trials ``N >= 1``.
    confidence : float
        Two-sided level in (0, 1).
    """
    trials = check_int("trials", trials, minimum=1)
    failures = check_int("failures", failures, minimum=0, maximum=trials)
    alpha = 1.0 - check_open_unit("confidence", confidence)
    low = 0.0 if failures == 0 else _beta_quantile(alpha / 2, failures, trials - failures + 1)[0]
    high = 1.0 if failures == trials else _beta_quantile(1 - alpha / 2, failures + 1, trials - failures)[1]
    return max(low, 0.0), min(high, 1.0)


# --------------------------------------------------------------------------- estimates


def block_failures(
    n: int,
    block: int,
    eps_values: Sequence[float],
    trials: int,
    *,
    distribution: str = "uniform",
    seed: int,
    domain: tuple[float, float] = (-1.0, 1.0),
    backend: str = "numpy",
) -> list[int]:
    """Failures among the trials of one block, for each ε: the unit of parallel work.

    Covers trials ``block * BLOCK`` up to ``min(trials, (block + 1) * BLOCK)`` (exclusive).
    The candidates are drawn on the host (they are defined by ``(seed, n, trial)``); on the
    ``"numpy"`` backend the numba kernel :func:`~ltbounds.subsetsum.covers` decides each set,
    on any other array namespace (``"cupy"``, ``"array-api-strict"``) its array twin
    :func:`covers_array` does.
    """
    first = block * BLOCK
    rows = min(trials, first + BLOCK) - first
    if rows <= 0:
        return [0 for _ in eps_values]
    candidates = draw_candidates(n, rows, distribution=distribution, seed=seed, start=first)
    if backend == "numpy":
        return [int(rows - np.count_nonzero(covers(candidates, eps, domain))) for eps in eps_values]
    from ltbounds.backend import get_backend  # noqa: PLC0415

    xp = get_backend(backend)
    on_device = xp.asarray(candidates)
    return [
        int(rows - int(xp.sum(xp.astype(covers_array(on_device, eps, domain), xp.int64))))
        for eps in eps_values
    ]


_TWIN_ELEMENTS = 1 << 22
"""Subset sums the array twin holds per chunk of rows (about 200 MB of temporaries)."""


def _half_sums(xp: Any, values: Any) -> Any:
    """All ``2**m`` subset sums of each row of ``values`` (unsorted), each accumulated from
    0.0 in increasing candidate order, as the kernels do."""
    sums = xp.zeros((values.shape[0], 1), dtype=xp.float64)
    for k in range(values.shape[1]):
        sums = xp.concat([sums, sums + values[:, k : k + 1]], axis=1)
    return sums


def covers_array(
    candidates: Any, eps: float, domain: tuple[float, float] = (-1.0, 1.0)
) -> Any:
    """:func:`ltbounds.subsetsum.covers` in plain array-API operations, on any namespace.

    The slow, obvious twin of the numba kernel and the path CuPy takes: every subset sum of
    a row is formed as ``left + right`` from the two halves' sums (the order the kernels add
    in), sorted, and the domain is uncovered exactly when some pair of neighbouring sums
    ``s < t`` (with ``-inf`` and ``inf`` at the ends) leaves a point of ``[low, high]`` more
    than ``eps`` from both: ``s + eps < t - eps``, ``s + eps < high`` and ``low < t - eps``.
    Memory is about ``48 * 2**n`` bytes per row, so rows are processed in chunks.

    Parameters
    ----------
    candidates : array of shape (T, n)
        One candidate set per row, in the namespace to compute in.
    eps : float
        Tolerance, ``> 0``.
    domain : (float, float)
        The interval of targets.

    Returns
    -------
    array of bool, shape (T,)
        In the namespace of ``candidates``.
    """
    from ltbounds.backend import namespace  # noqa: PLC0415
    from ltbounds.subsetsum.solver import DEFAULT_MEMORY_BUDGET, MAX_CANDIDATES  # noqa: PLC0415
    from ltbounds.validation import check_memory  # noqa: PLC0415

    eps = check_positive("eps", eps)
    low, high = _domain(domain)
    xp = namespace(candidates)
    if candidates.ndim != 2:
        raise InvalidInput(f"candidates has shape {tuple(candidates.shape)}; expected (T, n)")
    rows, n = candidates.shape
    check_int("n", n, minimum=1, maximum=MAX_CANDIDATES)
    check_memory(f"array coverage decision for n={n}", 48.0 * 2.0**n, DEFAULT_MEMORY_BUDGET)
    chunk = max(1, _TWIN_ELEMENTS >> n)
    half = (n + 1) // 2
    parts = []
    for start in range(0, rows, chunk):
        values = xp.astype(candidates[start : min(rows, start + chunk), :], xp.float64)
        count = values.shape[0]
        left = _half_sums(xp, values[:, :half])
        right = _half_sums(xp, values[:, half:])
        sums = xp.sort(xp.reshape(left[:, :, None] + right[:, None, :], (count, -1)), axis=1)
        ends = xp.full((count, 1), math.inf, dtype=xp.float64)
        padded = xp.concat([-ends, sums, ends], axis=1)
        above = padded[:, :-1] + eps
        below = padded[:, 1:] - eps
        gap = (above < below) & (above < high) & (below > low)
        parts.append(xp.logical_not(xp.any(gap, axis=1)))
    if not parts:
        return xp.zeros((0,), dtype=xp.bool)
    return parts[0] if len(parts) == 1 else xp.concat(parts)


def _block_item(argument: dict[str, Any]) -> list[int]:
    """Work item of the grid: :func:`block_failures` on one ``(n, block)`` (module level, so
    that a process pool or a Dask cluster can run it)."""
    return block_failures(**argument)


def _prefix(eps: float) -> int:
    low, high = 8, 20  # the default prefix rule of ltbounds.subsetsum.covers
    return min(max(math.ceil(math.log2(40.0 / eps)), low), high)


def _trial_cost(n: int, eps_values: Sequence[float]) -> float:
    """Relative cost of one trial: the prefix scan plus the half lists, per ε."""
    return float(sum(2.0 ** min(n, _prefix(eps)) + 2.0 ** ((n + 1) // 2) for eps in eps_values))


AUTO_POOL_SECONDS = 2.0
"""With ``workers=None`` a grid whose estimated serial time is below this runs in-process:
starting a pool of fresh processes costs about a second or two."""

_SECONDS_PER_COST = 5e-9


def check_grid_memory(sizes: int, tolerances: int, trials: int) -> None:
    """Refuse a grid whose list of work items (one per ``(n, block)``) would not fit in the
    memory budget (``LTBOUNDS_MEMORY_BUDGET``), before the list is built."""
    blocks = sizes * -(-trials // BLOCK)
    check_memory(
        f"the work list of {sizes} sizes x {trials:,} trials ({blocks:,} blocks of {BLOCK})",
        float(blocks) * (ITEM_BYTES + 8 * tolerances),
        memory_budget(),
    )


def concentration_items(
    ns: Sequence[int],
    eps_values: Sequence[float],
    trials: int,
    *,
    distribution: str,
    seed: int,
    domain: tuple[float, float],
    backend: str = "numpy",
) -> list[Any]:
    """The grid as independent :class:`~ltbounds.parallel.WorkItem` s, one per ``(n, block)``.

    Each carries its own ``(seed, n, block)``, so it draws the same candidates wherever it
    runs; keys are ``"n=N/block=B"``.
    """
    from ltbounds.parallel import WorkItem  # noqa: PLC0415

    items = []
    for n in ns:
        for block in range(-(-trials // BLOCK)):
            rows = min(BLOCK, trials - block * BLOCK)
            argument = {
                "n": n, "block": block, "eps_values": list(eps_values), "trials": trials,
                "distribution": distribution, "seed": seed, "domain": tuple(domain),
                "backend": backend,
            }
            items.append(
                WorkItem(f"n={n}/block={block}", argument, cost=rows * _trial_cost(n, eps_values))
            )
    return items


def concentration_job(
    ns: Sequence[int],
    eps_values: Sequence[float],
    trials: int,
    *,
    distribution: str,
    seed: int,
    domain: tuple[float, float],
) -> dict[str, Any]:
    """What a checkpoint of the grid records: everything that decides its items' results.

    The backend is not part of it: every backend decides coverage exactly for the same
    candidates, so a sweep may be resumed on another one.
    """
    return {
        "job": "ltbounds.subsetsum.concentration_grid",
        "ns": list(ns),
        "eps": list(eps_values),
        "trials": trials,
        "distribution": distribution,
        "seed": seed,
        "domain": list(domain),
        "block": BLOCK,
    }


def concentration_grid(
    ns: Iterable[int],
    eps_values: Iterable[float],
    trials: int,
    *,
    distribution: str = "uniform",
    seed: int,
    domain: tuple[float, float] = (-1.0, 1.0),
    confidence: float = 0.95,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
    scheduler: Any = None,
    checkpoint: str | Path | None = None,
    backend: str = "numpy",
) -> list[ConcentrationResult]:
    """:func:`concentration` for every ``(n, eps)`` of a grid, sharing candidates across ε.

    The trials split into blocks of :data:`BLOCK` per ``n``, each an independent work item
    with its own seed (:func:`concentration_items`), run by :func:`ltbounds.parallel.run_items`;
    the results are the same, bit for bit, serially, on a pool or on a Dask cluster.

    Parameters
    ----------
    ns, eps_values, trials, distribution, seed, domain, confidence
        As for :func:`concentration`. A grid whose work list (:data:`ITEM_BYTES` per block)
        would exceed the memory budget is refused before it is built.
    progress : callable, optional
        Called with the number of trials finished after each block of each ``n`` (blocks
        read from a checkpoint included), in completion order.
    workers : int, optional
        Local processes (``1``: in this process). Default: one per core, except that a grid
        estimated to take less than :data:`AUTO_POOL_SECONDS` runs in this process.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://HOST:PORT``) to run the blocks on instead.
    checkpoint : path, optional
        JSON-lines file of finished blocks: resumed from when it exists, appended to as
        blocks finish (:class:`ltbounds.parallel.Checkpoint`).
    backend : {"numpy", "cupy", "array-api-strict"}
        Array namespace deciding coverage (numpy: the numba kernel; others: the array twin
        :func:`covers_array`). Same counts on every backend.

    Returns
    -------
    list of ConcentrationResult
        Ordered by ``n``, then ``eps``, as given.
    """
    from ltbounds.backend import BACKENDS, get_backend  # noqa: PLC0415
    from ltbounds.parallel import check_workers, run_items  # noqa: PLC0415

    ns = [check_int("n", n, minimum=1) for n in ns]
    eps_values = [check_positive("eps", eps) for eps in eps_values]
    if not ns or not eps_values:
        raise InvalidInput("the grid needs at least one n and one eps")
    trials = check_int("trials", trials, minimum=1, maximum=MAX_TRIALS)
    seed = check_int("seed", seed, minimum=0)
    check_choice("distribution", distribution, DISTRIBUTIONS)
    domain = _domain(domain)
    check_open_unit("confidence", confidence)
    check_choice("backend", backend, BACKENDS)
    get_backend(backend)  # refuse an unusable backend before any work
    check_grid_memory(len(ns), len(eps_values), trials)
    items = concentration_items(
        ns, eps_values, trials, distribution=distribution, seed=seed, domain=domain,
        backend=backend,
    )
    if workers is None:
        estimate = _SECONDS_PER_COST * sum(item.cost for item in items)
        workers = 1 if estimate < AUTO_POOL_SECONDS else check_workers(None)
    job = concentration_job(
        ns, eps_values, trials, distribution=distribution, seed=seed, domain=domain
    )
    counts = run_items(
        _block_item, items, workers=workers, scheduler=scheduler, checkpoint=checkpoint,
        job=job,
        progress=None if progress is None else (
            lambda item, _: progress(min(BLOCK, trials - item.argument["block"] * BLOCK))
        ),
    )
    results = []
    for n in ns:
        failures = [0] * len(eps_values)
        for item, count in zip(items, counts, strict=True):
            if item.argument["n"] == n:
                failures = [total + c for total, c in zip(failures, count, strict=True)]
        for eps, count in zip(eps_values, failures, strict=True):
            low, high = clopper_pearson(count, trials, confidence)
            results.append(
                ConcentrationResult(
                    n=n, eps=eps, trials=trials, failures=count, delta=count / trials,
                    ci_low=low, ci_high=high, confidence=confidence,
                    distribution=distribution, seed=seed, domain=domain,
                )
            )
    return results


def concentration(
    n: int,
    eps: float,
    trials: int,
    *,
    distribution: str = "uniform",
    seed: int,
    domain: tuple[float, float] = (-1.0, 1.0),
    confidence: float = 0.95,
) -> ConcentrationResult:
    """Monte Carlo estimate of δ(n, ε), the probability that coverage fails.

    Draws ``trials`` candidate sets of size ``n`` (i.i.d. ``U[-1, 1]``, or products of two such
    for ``distribution="product"``), decides for each exactly whether every ``z`` in
    ``domain`` is within ``eps`` of a subset sum (:func:`ltbounds.subsetsum.covers`), and
    returns the failure fraction with its exact Clopper-Pearson interval. Statistical, not
    rigorous: a TESTED-level statement about Lueker's lemma (LEMMAS.md 1.1-1.2; Lueker 1998,
    Pensia et al. 2020 Corollary 3.3).

    Parameters
    ----------
    n : int
        Number of candidates, ``>= 1``.
    eps : float
        Tolerance, ``> 0``.
    trials : int
        Number of candidate sets, ``1 <= trials <=`` :data:`MAX_TRIALS` (10^9).
    distribution : {"uniform", "product"}
        Law of the candidates.
    seed : int
        Seed (``>= 0``); trials are addressed by ``(seed, n, trial)``.
    domain : (float, float)
        Targets to cover, default ``[-1, 1]``.
    confidence : float
        Level of the interval, default 0.95.
    """
    return concentration_grid(
        [n], [eps], trials, distribution=distribution, seed=seed, domain=domain,
        confidence=confidence,
    )[0]


def cell_constant(n: int, eps: float, delta: float) -> float:
    """``n / log(1 / min(eps, delta))`` for one cell, ``0 <= delta <= 1``, ``0 < eps < 1``.

    :func:`ltbounds.lemmas.subsetsum.empirical_constant` (LEMMAS.md 1.3), extended to
    ``delta = 0``, where the value is 0 (``log(1/0)`` is infinite): no failure seen, nothing
    forces C above zero.
    """
    if delta <= 0.0:
        return 0.0
    from ltbounds.lemmas.subsetsum import empirical_constant  # noqa: PLC0415  (loads sympy)

    return empirical_constant(n, eps, min(eps, delta))


def fit_constant(results: Sequence[ConcentrationResult], *, confidence: float = 0.95) -> ConstantFit:
    """The empirical constant C of ``n >= C log(1 / min(eps, delta))`` over a grid.

    Follows the operational definition of the authors' code (LEMMAS.md 1.3,
    ``main_ssa_stats.py::expC``): per cell ``C = n / log(1 / min(eps, delta_hat))``. The lemma
    with constant C claims ``delta(n, eps) <= d`` whenever ``n >= C log(1 / min(eps, d))``; a
    cell whose true failure probability is δ is consistent with it exactly when
    ``C >= n / log(1 / min(eps, δ))``. So the fitted C is the largest per-cell value: the
    smallest constant that no cell contradicts. That map is increasing in δ, so per-cell
    Clopper-Pearson bounds on δ give bounds on C; at the Bonferroni level
    ``1 - (1 - confidence) / cells`` they hold jointly, and the maxima of the bounds bracket
    the fitted C with probability at least ``confidence``.

    A cell with no failure gives ``C = 0`` (log(1/0) is infinite): it bounds C from above
    only, through ``C_high``. Unlike the authors' script we do not substitute C = 1 there.

    Parameters
    ----------
    results : sequence of ConcentrationResult
        The grid (cells with ``eps < 1``).
    confidence : float
        Joint level, default 0.95.
    """
    if not results:
        raise InvalidInput("fit_constant needs at least one ConcentrationResult")
    check_open_unit("confidence", confidence)
    for result in results:
        if not result.eps < 1:
            raise InvalidInput(f"eps={result.eps!r} must be < 1 for the constant fit")
    level = 1.0 - (1.0 - confidence) / len(results)
    cells = []
    for result in results:
        low, high = clopper_pearson(result.failures, result.trials, level)
        cells.append(
            CellConstant(
                n=result.n, eps=result.eps, failures=result.failures, trials=result.trials,
                C=cell_constant(result.n, result.eps, result.delta),
                C_low=cell_constant(result.n, result.eps, low),
                C_high=cell_constant(result.n, result.eps, high),
            )
        )
    best = max(cells, key=lambda cell: (cell.C, cell.C_high))
    return ConstantFit(
        C=best.C,
        C_low=max(cell.C_low for cell in cells),
        C_high=max(cell.C_high for cell in cells),
        confidence=confidence,
        n=best.n,
        eps=best.eps,
        cells=tuple(cells),
    )


__all__ = [
    "BLOCK",
    "DISTRIBUTIONS",
    "CellConstant",
    "cell_constant",
    "ConcentrationResult",
    "ConstantFit",
    "block_failures",
    "clopper_pearson",
    "concentration",
    "concentration_grid",
    "concentration_items",
    "concentration_job",
    "covers_array",
    "draw_candidates",
    "fit_constant",
]
