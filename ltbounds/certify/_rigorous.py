"""Outward-rounded interval arrays in float64, for everything the certify step calls certified.

An *enclosure* is a pair ``(lo, hi)`` of float64 arrays such that the exact real value of the
quantity lies in ``[lo, hi]`` elementwise. Two tools keep float64 rigorous here:

* **One operation, one step outwards.** IEEE 754 rounds every ``+ − × ÷`` to the nearest
  float; the exact result then lies strictly between the two floats neighbouring the rounded
  one, so ``nextafter(fl(a ∘ b), −∞) <= a ∘ b <= nextafter(fl(a ∘ b), +∞)`` (:func:`down`,
  :func:`up`). This holds with gradual underflow too.
* **Dot products through BLAS.** For ``s = Σ_{k<=n} a_k b_k`` evaluated in any order (blocked,
  pairwise, with or without FMA), ``|fl(s) − s| <= γ_n Σ|a_k b_k| + n·η`` with
  ``γ_n = n·u/(1 − n·u)``, ``u = 2^-53`` and ``η = 2^-1074`` covering underflow (Higham,
  *Accuracy and Stability of Numerical Algorithms*, 2nd ed., section 3.1, eq. (3.5)). A sum of
  nonnegative terms therefore satisfies ``s <= fl(s)/(1 − γ_n) + n·η``. :func:`enclose_linear`
  evaluates ``W c``, ``|W| r`` and ``|W| (|c| + r)`` with BLAS and widens by that bound.

Elementary functions (tanh, exp, erf, log) are never taken from libm: :mod:`._activation`
evaluates them in python-flint's arb balls (DESIGN.md: mpmath's ``iv`` only for ``+ − × ÷``,
mpmath issue #1181).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np

from ltbounds.nets import (
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Dense,
    Flatten,
    Layer,
    MaxPool1d,
    MaxPool2d,
)
from ltbounds.nets._gather import window_indices, window_output_shape

#: Unit roundoff of float64 (round to nearest).
UNIT_ROUNDOFF = 2.0**-53
#: Smallest positive subnormal float64: the absolute error unit below the normal range.
ETA = 2.0**-1074

Interval = tuple[np.ndarray, np.ndarray]


def down(values: Any) -> np.ndarray:
    """The next float towards −∞ (a lower bound of any real that rounds to ``values``)."""
    return np.nextafter(values, -np.inf)


def up(values: Any) -> np.ndarray:
    """The next float towards +∞ (an upper bound of any real that rounds to ``values``)."""
    return np.nextafter(values, np.inf)


def float_up(value: Fraction) -> float:
    """The least float >= the exact rational ``value`` (or one above it)."""
    result = float(value)
    if Fraction(result) < value:
        result = math.nextafter(result, math.inf)
    return result


def growth(terms: int) -> float:
    """``κ_n >= γ_n/(1 − γ_n)`` rounded up: ``s <= fl(s)(1 + κ_n)`` for n nonnegative terms.

    Also bounds ``|fl(s) − s| <= κ_n · fl(Σ|terms|)`` for mixed signs (``γ_n <= κ_n (1 − γ_n)``).
    Raises ``OverflowError`` for sums too long for float64 to bound (n·u >= 1/4).
    """
    n = max(int(terms), 1)
    nu = Fraction(n, 2**53)
    if nu >= Fraction(1, 4):
        raise OverflowError(f"a sum of {n} terms is too long to bound in float64")
    gamma = nu / (1 - nu)
    return float_up(gamma / (1 - gamma))


def absolute_slack(terms: int) -> float:
    """``n·η`` (underflow allowance of an n-term dot product), rounded up."""
    return float(max(int(terms), 1)) * ETA * 2.0


# -------------------------------------------------------------------- interval arithmetic
def add(a: Interval, b: Interval) -> Interval:
    """``a + b`` outward rounded."""
    return down(a[0] + b[0]), up(a[1] + b[1])


def negate(a: Interval) -> Interval:
    """``−a`` (exact)."""
    return -a[1], -a[0]


def subtract(a: Interval, b: Interval) -> Interval:
    """``a − b`` outward rounded."""
    return down(a[0] - b[1]), up(a[1] - b[0])


def intersect(a: Interval, b: Interval) -> Interval:
    """``a ∩ b`` (both enclose the same quantity, so the intersection does too)."""
    lo = np.maximum(a[0], b[0])
    hi = np.minimum(a[1], b[1])
    # Both enclose the same exact value, so lo <= hi; guard against inconsistent inputs.
    bad = lo > hi
    if np.any(bad):
        lo = np.where(bad, np.minimum(a[0], b[0]), lo)
        hi = np.where(bad, np.maximum(a[1], b[1]), hi)
    return lo, hi


def multiply(a: Interval, b: Interval) -> Interval:
    """``a × b`` for intervals, outward rounded (min/max over the four endpoint products)."""
    products = np.stack([a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]])
    return down(products.min(axis=0)), up(products.max(axis=0))


def scale(a: Interval, factor: Interval) -> Interval:
    """``a × factor`` with ``factor`` a scalar interval (broadcast)."""
    lo, hi = factor
    return multiply(a, (np.full_like(a[0], lo), np.full_like(a[0], hi)))


def square(a: Interval) -> Interval:
    """``{x² : x ∈ a}`` outward rounded (0 when the interval straddles 0)."""
    low_abs = np.where((a[0] <= 0) & (a[1] >= 0), 0.0, np.minimum(np.abs(a[0]), np.abs(a[1])))
    high_abs = np.maximum(np.abs(a[0]), np.abs(a[1]))
    return down(low_abs * low_abs), up(high_abs * high_abs)


def magnitude(a: Interval) -> np.ndarray:
    """``max |x|`` over the interval (exact)."""
    return np.maximum(np.abs(a[0]), np.abs(a[1]))


def power_up(values: np.ndarray, exponent: int) -> np.ndarray:
    """``values**exponent`` rounded up for ``values >= 0`` (one step per multiplication)."""
    result = values
    for _ in range(exponent - 1):
        result = up(result * values)
    return result


def hull(a: Interval, b: Interval) -> Interval:
    """Smallest interval containing both."""
    return np.minimum(a[0], b[0]), np.maximum(a[1], b[1])


def point(values: np.ndarray) -> Interval:
    """The degenerate enclosure of exactly known floats."""
    return values, values


# ------------------------------------------------------------------------- linear maps
class LinearOp:
    """The linear part ``x ↦ W x`` of a dense or convolutional layer, with its geometry.

    Parameters
    ----------
    weight : ndarray
        ``(out, in)`` for dense, ``(out, in, *kernel)`` for convolutions; floats taken as exact
        reals.
    kind : {"dense", "conv1d", "conv2d"}
    stride, padding : tuple of int
        Convolution geometry (ignored for dense).
    """

    def __init__(self, weight: np.ndarray, kind: str, stride: tuple[int, ...] = (), padding: tuple[int, ...] = ()):
        self.weight = np.ascontiguousarray(weight, dtype=np.float64)
        self.kind = kind
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.terms = int(math.prod(self.weight.shape[1:])) if self.weight.size else 1
        self._signed: Layer | None = None
        self._abs: Layer | None = None

    @classmethod
    def like(cls, layer: Any, weight: np.ndarray) -> LinearOp:
        """An operator with ``layer``'s kind and geometry but another weight array."""
        return cls(weight, layer.kind, tuple(getattr(layer, "stride", ())), tuple(getattr(layer, "padding", ())))

    def _layer(self, weight: np.ndarray) -> Layer:
        if self.kind == "dense":
            return Dense(weight)
        cls = Conv1d if self.kind == "conv1d" else Conv2d
        return cls(weight, None, self.stride, self.padding)

    @property
    def empty(self) -> bool:
        """True when the operator has no input (nothing to apply)."""
        return self.weight.size == 0

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``W x`` in float (batch-first)."""
        if self._signed is None:
            self._signed = self._layer(self.weight)
        return self._signed.forward(x)

    def apply_abs(self, x: np.ndarray) -> np.ndarray:
        """``|W| x`` in float (batch-first)."""
        if self._abs is None:
            self._abs = self._layer(np.abs(self.weight))
        return self._abs.forward(x)


def _centre_radius(x: Interval) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floats ``c, r, m`` with ``[lo, hi] ⊆ [c − r, c + r]`` and ``m >= |c| + r``."""
    lo, hi = x
    centre = 0.5 * lo + 0.5 * hi  # never overflows; rounding only moves the centre
    radius = np.maximum(up(hi - centre), up(centre - lo))
    bound = up(np.abs(centre) + radius)
    return centre, radius, bound


def enclose_linear(
    op: LinearOp,
    x: Interval,
    *,
    radius_op: LinearOp | None = None,
    bias: np.ndarray | None = None,
) -> Interval:
    """Enclosure of ``{(W + Δ) x + b : x ∈ [lo, hi], |Δ| <= R}`` (rigorous).

    ``op`` holds ``W``; ``radius_op`` (same geometry) holds ``R >= 0`` (an interval weight
    ``W ± R``); ``bias`` is added exactly as given (broadcast like the layer's bias: ``(out,)``
    for dense, ``(out, 1, ...)`` for convolutions). Cost: one signed and one (stacked) absolute
    application of ``W``, plus one of ``R``.
    """
    centre, radius, bound = _centre_radius(x)
    mid = op.apply(centre)
    stacked = op.apply_abs(np.concatenate([radius, bound], axis=0))
    spread, scale_sum = stacked[: radius.shape[0]], stacked[radius.shape[0]:]
    kappa = growth(op.terms + 1)
    slack = absolute_slack(op.terms)
    # |fl(W c) − W c| + |fl(|W| r) − |W| r| <= 2 γ_n |W| m <= 2 κ fl(|W| m) + 2 n η.
    error = up(up(2.0 * kappa * scale_sum) + 2.0 * slack)
    if radius_op is not None and not radius_op.empty:
        extra = radius_op.apply_abs(bound)
        error = up(error + up(up(extra * (1.0 + kappa)) + slack))
    if bias is not None:
        mid_lo, mid_hi = down(mid + bias), up(mid + bias)
    else:
        mid_lo, mid_hi = mid, mid
    lower = down(down(mid_lo - spread) - error)
    upper = up(up(mid_hi + spread) + error)
    return lower, upper


def sum_up(values: np.ndarray, axis: Any) -> np.ndarray:
    """Upper bound of the exact sum of nonnegative ``values`` along ``axis``."""
    terms = int(np.prod([values.shape[a] for a in np.atleast_1d(axis)])) if values.ndim else 1
    total = np.sum(values, axis=axis)
    return up(up(total * (1.0 + growth(terms))) + absolute_slack(terms))


def sum_interval(values: Interval, axis: Any) -> Interval:
    """Enclosure of the exact sum along ``axis`` of a quantity enclosed by ``values``."""
    lo, hi = values
    terms = int(np.prod([lo.shape[a] for a in np.atleast_1d(axis)]))
    kappa = growth(terms)
    slack = absolute_slack(terms)
    err_lo = up(up(kappa * np.sum(np.abs(lo), axis=axis)) + slack)
    err_hi = up(up(kappa * np.sum(np.abs(hi), axis=axis)) + slack)
    return down(np.sum(lo, axis=axis) - err_lo), up(np.sum(hi, axis=axis) + err_hi)


# ------------------------------------------------------------------- structural layers
def pool_windows(layer: Any, values: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """``(batch, channels, K, P)`` windows of a pooling layer and the output spatial shape."""
    batch, channels = values.shape[0], values.shape[1]
    spatial = tuple(int(s) for s in values.shape[2:])
    padding = (0,) * layer.dims
    out_spatial = window_output_shape(spatial, layer.kernel, layer.stride, padding)
    indices = window_indices(spatial, layer.kernel, layer.stride, padding)
    flat = values.reshape(batch, channels, math.prod(spatial))
    windows = np.take(flat, indices, axis=2).reshape(
        batch, channels, math.prod(layer.kernel), math.prod(out_spatial)
    )
    return windows, out_spatial


def enclose_structural(layer: Layer, x: Interval) -> Interval:
    """Image of an enclosure under flatten, average pooling or max pooling (rigorous)."""
    lo, hi = x
    if isinstance(layer, Flatten):
        return lo.reshape(lo.shape[0], -1), hi.reshape(hi.shape[0], -1)
    if isinstance(layer, (MaxPool1d, MaxPool2d)):
        wl, out_spatial = pool_windows(layer, lo)
        wh, _ = pool_windows(layer, hi)
        shape = (lo.shape[0], lo.shape[1], *out_spatial)
        return wl.max(axis=2).reshape(shape), wh.max(axis=2).reshape(shape)
    if isinstance(layer, (AvgPool1d, AvgPool2d)):
        wl, out_spatial = pool_windows(layer, lo)
        wh, _ = pool_windows(layer, hi)
        count = float(wl.shape[2])
        s_lo, s_hi = sum_interval((wl, wh), axis=2)
        shape = (lo.shape[0], lo.shape[1], *out_spatial)
        return down(s_lo / count).reshape(shape), up(s_hi / count).reshape(shape)
    raise TypeError(f"{layer.describe()} is not a structural layer")


def difference_through_structural(layer: Layer, d: Interval) -> Interval:
    """Enclosure of ``layer(x̂) − layer(x)`` from an enclosure ``d`` of ``x̂ − x`` (same shape).

    Flatten and average pooling are linear, so they map differences like values. For max
    pooling, ``max_k a_k − max_k b_k`` lies in ``[min_k (a_k − b_k), max_k (a_k − b_k)]``.
    """
    if isinstance(layer, (MaxPool1d, MaxPool2d)):
        wl, out_spatial = pool_windows(layer, d[0])
        wh, _ = pool_windows(layer, d[1])
        shape = (d[0].shape[0], d[0].shape[1], *out_spatial)
        return wl.min(axis=2).reshape(shape), wh.max(axis=2).reshape(shape)
    return enclose_structural(layer, d)


def apply_elementwise(values: np.ndarray, function: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``function`` on the distinct entries of ``values`` only, scattered back (arb is slow)."""
    flat = values.reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    return function(unique)[inverse].reshape(values.shape)


__all__ = [
    "ETA",
    "UNIT_ROUNDOFF",
    "Interval",
    "LinearOp",
    "add",
    "apply_elementwise",
    "difference_through_structural",
    "down",
    "enclose_linear",
    "enclose_structural",
    "float_up",
    "growth",
    "hull",
    "intersect",
    "magnitude",
    "multiply",
    "negate",
    "point",
    "power_up",
    "scale",
    "square",
    "subtract",
    "sum_interval",
    "sum_up",
    "up",
]
