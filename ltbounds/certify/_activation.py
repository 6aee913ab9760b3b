"""Rigorous enclosures of activation values and slopes on intervals (arb balls).

For a smooth activation φ the image of an interval ``[l, u]`` under φ (or under φ') is the
hull of the values at ``l``, ``u`` and at the critical points of φ (resp. φ') inside: between
consecutive critical points the function is monotone. The critical points are listed below
per activation with the reason the list is complete; each is enclosed in a ball of radius
1e-9 on first use and *verified* in arb (the derivative has certainly opposite signs at the
two ends). Values come from arb balls of the sympy definition in the activation registry
(:func:`ltbounds.lemmas._interval.compile_arb`), never from libm, so every bound here is
rigorous (DESIGN.md; mpmath's interval ``exp`` is avoided, mpmath issue #1181).

ReLU-like activations (LEMMAS.md 3 (A)) are piecewise linear with the float slope ``a`` the
network code multiplies by; they are handled exactly, without arb.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
from flint import arb

from ltbounds.activations import Activation
from ltbounds.certify._rigorous import Interval, down, up
from ltbounds.errors import InvalidInput
from ltbounds.lemmas._interval import compile_arb, working_precision

_X = sp.Symbol("x", real=True)
#: Working precision (bits) of every arb evaluation here.
PRECISION = 64
#: Radius of the balls enclosing critical points.
_CRITICAL_RADIUS = 1e-9

# Approximate critical points: zeros of φ' (extrema of φ) and zeros of φ'' (extrema of φ').
# Completeness, by elementary calculus:
#  tanh:     φ' = sech² > 0;              φ'' = −2 tanh·sech² vanishes only at 0.
#  sigmoid:  φ' = σ(1−σ) > 0;             φ'' = σ'(1 − 2σ) vanishes only at 0.
#  gelu:     φ'' = ϕ(x)(2 − x²) vanishes at ±√2 only; φ' = Φ + xϕ rises on (−√2, √2) from
#            its minimum < 0 to its maximum, falls outside towards 0⁻ and 1⁺: one zero.
#  silu:     φ'' = σ'(x)(2 − x·tanh(x/2)); x·tanh(x/2) is even and increasing in |x|: two
#            zeros ±x_c; φ' has the same shape as GELU's: one zero.
#  elu:      φ' = 1 (x > 0), eˣ (x <= 0): positive and nondecreasing; no critical point.
#  softplus: φ' = σ > 0, φ'' = σ' > 0: none.
_CRITICAL: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "tanh": ((), (0.0,)),
    "sigmoid": ((), (0.0,)),
    "gelu": ((-0.7517915246935645,), (-math.sqrt(2.0), math.sqrt(2.0))),
    "silu": ((-1.278464542761074,), (-2.3993572805154676, 2.3993572805154676)),
    "elu": ((), ()),
    "softplus": ((), ()),
}


def _to_lower(ball: arb) -> float:
    """A float <= every point of ``ball`` (float() is faithful; one step down makes it safe)."""
    return math.nextafter(float(ball.lower()), -math.inf)


def _to_upper(ball: arb) -> float:
    return math.nextafter(float(ball.upper()), math.inf)


def _evaluate(function: Callable[[arb], arb], values: np.ndarray) -> Interval:
    """Float lower and upper ends of ``function`` at every entry (distinct entries once)."""
    flat = values.reshape(-1)
    unique, inverse = np.unique(flat, return_inverse=True)
    low = np.empty(unique.shape)
    high = np.empty(unique.shape)
    for k, t in enumerate(unique.tolist()):
        ball = function(arb(t))
        low[k] = float(ball.lower())
        high[k] = float(ball.upper())
    # float() of an arb end is faithful (one of the two neighbouring floats): step outwards.
    return down(low)[inverse].reshape(values.shape), up(high)[inverse].reshape(values.shape)


@dataclass(frozen=True)
class SmoothRule:
    """Compiled arb functions of one smooth activation, and its verified critical balls."""

    name: str
    phi: Callable[[arb], arb]
    slope: Callable[[arb], arb]
    curvature: Callable[[arb], arb]
    phi_critical: tuple[tuple[float, float], ...]
    slope_critical: tuple[tuple[float, float], ...]

    def _image(self, function: Callable[[arb], arb], critical: tuple[tuple[float, float], ...], x: Interval) -> Interval:
        lo, hi = x
        with working_precision(PRECISION):
            low_a, high_a = _evaluate(function, lo)
            low_b, high_b = _evaluate(function, hi)
            out_lo = np.minimum(low_a, low_b)
            out_hi = np.maximum(high_a, high_b)
            for c_lo, c_hi in critical:
                # The ball contains [c_lo, c_hi], hence the critical point.
                value = function(arb((c_lo + c_hi) / 2, c_hi - c_lo))
                inside = (lo <= c_hi) & (hi >= c_lo)
                out_lo = np.where(inside, np.minimum(out_lo, _to_lower(value)), out_lo)
                out_hi = np.where(inside, np.maximum(out_hi, _to_upper(value)), out_hi)
        return out_lo, out_hi

    def image(self, x: Interval) -> Interval:
        """Enclosure of ``{φ(t) : t ∈ [lo, hi]}``."""
        return self._image(self.phi, self.phi_critical, x)

    def slope_range(self, x: Interval) -> Interval:
        """Enclosure of ``{φ'(t) : t ∈ [lo, hi]}``."""
        return self._image(self.slope, self.slope_critical, x)


def _verify(derivative: Callable[[arb], arb], approx: float, name: str) -> tuple[float, float]:
    low, high = approx - _CRITICAL_RADIUS, approx + _CRITICAL_RADIUS
    with working_precision(PRECISION):
        left, right = derivative(arb(low)), derivative(arb(high))
        changes = (left < 0 and right > 0) or (left > 0 and right < 0)
    if not changes:
        raise ArithmeticError(f"critical point {approx!r} of {name} could not be verified in arb")
    return low, high


def _tanh_slope(x: arb) -> arb:
    # 1 − tanh² is tight near 0, sech² far from it (no cancellation); both enclose φ'.
    # (arb's ``**`` returns NaN on balls containing 0, so squares are products here.)
    t, s = x.tanh(), x.sech()
    return (1 - t * t).intersection(s * s)


def _sigmoid(x: arb) -> arb:
    return 1 / (1 + (-x).exp())


def _gauss(x: arb) -> arb:
    return (-(x * x) / 2).exp() / (2 * arb.pi()).sqrt()


def _std_normal_cdf(x: arb) -> arb:
    return (1 + (x / arb(2).sqrt()).erf()) / 2


def _piecewise(positive: Callable[[arb], arb], negative: Callable[[arb], arb]) -> Callable[[arb], arb]:
    def function(x: arb) -> arb:
        if x > 0:
            return positive(x)
        if x <= 0:
            return negative(x)
        return positive(x).union(negative(x))

    return function


# Direct arb formulas (several times faster than compiled sympy trees); tests check each
# against compile_arb of the registry's sympy definition and its derivatives.
_DIRECT: dict[str, tuple[Callable[[arb], arb], Callable[[arb], arb], Callable[[arb], arb]]] = {
    "tanh": (
        lambda x: x.tanh(),
        lambda x: _tanh_slope(x),
        lambda x: -2 * x.tanh() * _tanh_slope(x),
    ),
    "sigmoid": (
        _sigmoid,
        lambda x: _sigmoid(x) * _sigmoid(-x),
        lambda x: _sigmoid(x) * _sigmoid(-x) * (1 - 2 * _sigmoid(x)),
    ),
    "gelu": (
        lambda x: x * _std_normal_cdf(x),
        lambda x: _std_normal_cdf(x) + x * _gauss(x),
        lambda x: _gauss(x) * (2 - x * x),
    ),
    "silu": (
        lambda x: x * _sigmoid(x),
        lambda x: _sigmoid(x) * (1 + x * _sigmoid(-x)),
        lambda x: _sigmoid(x) * _sigmoid(-x) * (2 + x * (1 - 2 * _sigmoid(x))),
    ),
    "elu": (
        _piecewise(lambda x: x, lambda x: x.expm1()),
        _piecewise(lambda x: arb(1), lambda x: x.exp()),
        _piecewise(lambda x: arb(0), lambda x: x.exp()),
    ),
    "softplus": (
        lambda x: x.exp().log1p(),
        _sigmoid,
        lambda x: _sigmoid(x) * _sigmoid(-x),
    ),
}


@cache
def smooth_rule(activation: Activation) -> SmoothRule:
    """The verified :class:`SmoothRule` of a smooth registry activation."""
    if activation.name not in _CRITICAL:
        raise InvalidInput(
            f"activation={activation.name!r} has no certified enclosure rule; known: "
            f"relu, leaky_relu, {', '.join(sorted(_CRITICAL))}"
        )
    if activation.name in _DIRECT:
        phi, slope, curvature = _DIRECT[activation.name]
    else:  # pragma: no cover - every registry activation has a direct formula
        expression = activation.symbolic(_X)
        first = sp.diff(expression, _X)
        phi = compile_arb(expression, [_X])
        slope = compile_arb(first, [_X])
        curvature = compile_arb(sp.diff(first, _X), [_X])
    phi_points, slope_points = _CRITICAL[activation.name]
    phi_critical = tuple(_verify(slope, c, f"{activation.name}'") for c in phi_points)
    slope_critical = tuple(_verify(curvature, c, f"{activation.name}''") for c in slope_points)
    return SmoothRule(activation.name, phi, slope, curvature, phi_critical, slope_critical)


# ------------------------------------------------------------------------ public helpers
def activation_image(activation: Activation, x: Interval) -> Interval:
    """Enclosure of ``φ`` over the boxes ``[lo, hi]`` (rigorous)."""
    lo, hi = x
    if activation.relu_like:
        a = float(activation.relu_like_negative_slope or 0.0)
        if a == 0.0:
            return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
        # φ(t) = t (t > 0), a·t (t <= 0), with the float a the network multiplies by.
        low = np.where(lo > 0, lo, down(a * lo))
        high = np.where(hi > 0, hi, up(a * hi))
        return low, high
    return smooth_rule(activation).image(x)


def slope_range(activation: Activation, x: Interval) -> Interval:
    """Enclosure of the difference quotients of φ on ``[lo, hi]``.

    For every ``s != t`` in the interval, ``(φ(s) − φ(t))/(s − t)`` lies in the returned
    interval (mean value theorem; for ReLU-like φ the slopes of the pieces met).
    """
    lo, hi = x
    if activation.relu_like:
        a = float(activation.relu_like_negative_slope or 0.0)
        low = np.where(lo >= 0, 1.0, a)
        high = np.where(hi <= 0, a, 1.0)
        return low, high
    return smooth_rule(activation).slope_range(x)


def value_at_zero(activation: Activation) -> tuple[float, float]:
    """Enclosure of φ(0)."""
    if activation.relu_like:
        return 0.0, 0.0
    with working_precision(PRECISION):
        ball = smooth_rule(activation).phi(arb(0))
    return _to_lower(ball), _to_upper(ball)


def curvature_at_zero(activation: Activation) -> tuple[float, float]:
    """Enclosure of φ''(0) (smooth activations)."""
    with working_precision(PRECISION):
        ball = smooth_rule(activation).curvature(arb(0))
    return _to_lower(ball), _to_upper(ball)


def slope_at_zero(activation: Activation) -> tuple[float, float]:
    """Enclosure of φ'(0) (smooth activations; ReLU-like: the right slope 1)."""
    if activation.relu_like:
        return 1.0, 1.0
    with working_precision(PRECISION):
        ball = smooth_rule(activation).slope(arb(0))
    return _to_lower(ball), _to_upper(ball)


__all__ = [
    "PRECISION",
    "SmoothRule",
    "activation_image",
    "curvature_at_zero",
    "slope_at_zero",
    "slope_range",
    "smooth_rule",
    "value_at_zero",
]
