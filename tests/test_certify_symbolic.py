"""Symbolic (affine-in-the-input) bounds, :mod:`ltbounds.certify._symbolic`.

The slow twin of :meth:`Sym.scale` is exact rational arithmetic: an affine quantity ``t(x)``
strictly between its bounds, pushed through exact lines, evaluated at rational points.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from ltbounds.certify._symbolic import InputBox, Sym, product_relaxation


def _affine(coef: np.ndarray, const: np.ndarray, x: np.ndarray) -> list[Fraction]:
    """``coef[0, :, j] · x + const[0, j]`` per entry j, exactly."""
    return [
        sum((Fraction(c) * Fraction(v) for c, v in zip(coef[0, :, j], x, strict=True)), Fraction(const[0, j]))
        for j in range(coef.shape[2])
    ]


@pytest.mark.parametrize("sign", ["positive", "negative", "mixed"])
def test_scale_composes_lines_of_either_sign_with_the_right_bound(sign: str) -> None:
    """Lines of slope < 0 must take the *other* side's bound (``s·t >= s·upper``); a version
    that multiplied each side by its own slope fails the negative and mixed cases."""
    rng = np.random.default_rng({"positive": 0, "negative": 1, "mixed": 2}[sign])
    dims, n = 3, 40
    low, high = np.zeros((1, dims)), np.ones((1, dims))
    box = InputBox.of((low, high))
    t_coef = rng.uniform(-1, 1, (1, dims, n))
    t_const = rng.uniform(-1, 1, (1, n))
    # Bounds of t: t − a(x) and t + b(x) with a, b >= 0 on the box (nonnegative coefficients).
    below = Sym(t_coef - rng.uniform(0, 0.5, (1, dims, n)), t_const - rng.uniform(0, 0.5, (1, n)),
                t_coef + rng.uniform(0, 0.5, (1, dims, n)), t_const + rng.uniform(0, 0.5, (1, n)))
    slope = {"positive": rng.uniform(0, 2, (1, n)), "negative": -rng.uniform(0, 2, (1, n)),
             "mixed": rng.uniform(-2, 2, (1, n))}[sign]
    zero = np.zeros((1, n))
    scaled = below.scale(slope, zero, slope, zero, box)  # the function is exactly s·t
    for x in rng.uniform(0, 1, (25, dims)):
        t = _affine(t_coef, t_const, x)
        lower = _affine(scaled.lo_coef, scaled.lo_const, x)
        upper = _affine(scaled.hi_coef, scaled.hi_const, x)
        for j in range(n):
            value = Fraction(slope[0, j]) * t[j]
            assert lower[j] <= value <= upper[j], (sign, j)


def test_product_relaxation_lines_hold_for_slope_ranges_of_either_sign() -> None:
    """``g·δ`` for every g in ``[g_lo, g_hi]`` and δ in ``[dl, du]`` lies between the lines,
    at exact rational points, also where ``g_lo < 0 < g_hi``."""
    rng = np.random.default_rng(5)
    n = 200
    gl = rng.uniform(-1, 1, n)
    gh = gl + rng.uniform(0, 1, n)
    dl = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-6, 0, n)
    du = dl + rng.uniform(0, 1, n) * 10.0 ** rng.integers(-6, 0, n)
    lo_s, lo_c, hi_s, hi_c = product_relaxation((dl, du), (gl, gh))
    for j in range(n):
        for d in (dl[j], du[j], 0.0, *rng.uniform(dl[j], du[j], 4)):
            if not dl[j] <= d <= du[j]:
                continue
            for g in (gl[j], gh[j], *rng.uniform(gl[j], gh[j], 3)):
                value = Fraction(g) * Fraction(d)
                assert Fraction(lo_s[j]) * Fraction(d) + Fraction(lo_c[j]) <= value
                assert value <= Fraction(hi_s[j]) * Fraction(d) + Fraction(hi_c[j])
