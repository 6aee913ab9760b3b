"""The sympy → arb translator and branch and bound, checked against mpmath at high precision."""

from __future__ import annotations

import math

import mpmath
import pytest
import sympy as sp
from flint import arb
from hypothesis import given
from hypothesis import strategies as st

from ltbounds.lemmas._interval import (
    NotCompilable,
    certify_upper,
    compile_arb,
    critical_point_excluder,
    exact_arb,
    interval,
    working_precision,
)

x, y = sp.symbols("x y", real=True)

EXPRESSIONS = [
    sp.tanh(x) * sp.exp(-(y**2)) + x**3 - 2 * y,
    x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
    x / (1 + sp.exp(-x)),
    sp.log(1 + sp.exp(x)) - sp.Abs(y),
    sp.diff(sp.tanh(x), x, 3),
    sp.diff(x / (1 + sp.exp(-x)), x, 3),
    sp.Max(x, 0) + sp.Rational(1, 100) * sp.Min(x, 0) - sp.sqrt(1 + y**2),
    sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)) * y**2,
    (x**2 + 1) ** sp.Rational(3, 2) - sp.cosh(y) + sp.pi * sp.E,
    sp.sech(x) ** 2 + sp.atan(y) - sp.erfc(x),
]


# Tiny non-zero inputs are left out: the reference (sympy evalf) itself loses them to cancellation.
_coordinates = st.floats(-3, 3).filter(lambda v: v == 0 or abs(v) > 1e-30)


def _mp(expression: sp.Expr, values: dict) -> mpmath.mpf:
    with mpmath.workdps(100):
        return mpmath.mpf(sp.N(expression.subs(values), 90))


def _reference(truth: mpmath.mpf) -> arb:
    """A tiny ball around the 90-digit reference value (relative radius 1e-70)."""
    scale = max(abs(truth), mpmath.mpf(10) ** -300)
    return arb(mpmath.nstr(truth, 85), mpmath.nstr(scale * mpmath.mpf(10) ** -70, 5))


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[str(i) for i in range(len(EXPRESSIONS))])
@given(_coordinates, _coordinates)
def test_point_enclosure_contains_the_mpmath_value(expression, a, b) -> None:
    function = compile_arb(expression, [x, y])
    truth = _mp(expression, {x: sp.Rational(a), y: sp.Rational(b)})
    with working_precision(128):
        ball = function(exact_arb(a), exact_arb(b))
    with working_precision(300):
        assert ball.is_finite()
        assert ball.overlaps(_reference(truth))
    assert float(ball.rad()) < 1e-15 * max(1.0, abs(float(truth)))


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=[str(i) for i in range(len(EXPRESSIONS))])
@given(st.floats(-3, 3), st.floats(0, 1), st.floats(-3, 3), st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_box_enclosure_contains_values_inside(expression, a, da, b, db, s, t) -> None:
    function = compile_arb(expression, [x, y])
    box = ((a, a + da), (b, b + db))
    ball = function(*(interval(low, high) for low, high in box))
    point = {x: sp.Rational(a + s * da), y: sp.Rational(b + t * db)}
    truth = _mp(expression, point)
    if ball.is_finite():
        with working_precision(300):
            assert ball.overlaps(_reference(truth))


def test_even_power_of_a_signed_ball_is_nonnegative() -> None:
    square = compile_arb(x**2, [x])(interval(-1.0, 2.0))
    assert (square >= 0) is True
    assert (square <= 4.0000001) is True
    assert (compile_arb(sp.Max(x, 0), [x])(interval(-1.0, 2.0)) >= 0) is True
    assert (compile_arb(sp.Abs(x), [x])(interval(-1.0, 2.0)) >= 0) is True
    assert compile_arb(sp.sqrt(x**2), [x])(interval(-1.0, 2.0)).is_finite()


def test_unknown_function_is_refused() -> None:
    with pytest.raises(NotCompilable, match="gamma"):
        compile_arb(sp.gamma(x), [x])


def test_certify_upper_proves_and_falsifies() -> None:
    expression = sp.diff(sp.tanh(x), x, 2)
    function = compile_arb(expression, [x])
    gradient = [compile_arb(sp.diff(expression, x), [x])]
    proved = certify_upper(function, [(-4.0, 4.0)], exact_arb(0.7699), gradient=gradient)
    assert proved.proved and proved.max_upper <= 0.7699
    refuted = certify_upper(function, [(-4.0, 4.0)], exact_arb(0.7), gradient=gradient)
    assert not refuted.proved and refuted.counterexample is not None
    (point,) = refuted.counterexample
    assert float(sp.N(expression.subs(x, point))) > 0.7


def test_tight_maximum_needs_the_critical_point_argument() -> None:
    silu_second = sp.diff(x / (1 + sp.exp(-x)), x, 2)  # maximum exactly 1/2 at x = 0
    function = compile_arb(silu_second, [x])
    gradient = [compile_arb(sp.diff(silu_second, x), [x])]
    plain = certify_upper(function, [(-3.0, 3.0)], exact_arb(0.5), gradient=gradient, min_width=1e-7, max_boxes=5000)
    assert not plain.proved and plain.counterexample is None
    excluder = critical_point_excluder(silu_second, x, sp.Rational(1, 2), (-3.0, 3.0))
    tight = certify_upper(function, [(-3.0, 3.0)], exact_arb(0.5), gradient=gradient, min_width=1e-7, exclude=excluder)
    assert tight.proved


def test_excluder_refuses_a_point_above_the_bound() -> None:
    expression = 1 - x**2  # maximum 1 at 0
    excluder = critical_point_excluder(expression, x, sp.Rational(99, 100), (-1.0, 1.0))
    assert not excluder(((-1e-8, 1e-8),))


def test_exact_arb_is_exact_for_floats() -> None:
    value = 0.1
    ball = exact_arb(value)
    assert ball.is_exact()
    assert ball == arb(value)
    assert math.isclose(float(interval(0.25, 0.5).mid()), 0.375)
