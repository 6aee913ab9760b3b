"""The activation registry: array implementations agree with their sympy definitions."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS, erf, get_activation
from ltbounds.backend import to_numpy
from ltbounds.errors import InvalidInput

GRID = np.concatenate([np.linspace(-40.0, 40.0, 801), [-1e-300, 0.0, 1e-300, 700.0, -700.0]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_matches_the_symbolic_definition(name: str) -> None:
    """The fast array path (numpy) against the sympy expression at 400 digits.

    So many digits because the definitions cancel catastrophically in their tails (GELU
    near x = -40 subtracts numbers that agree to ~350 digits); the array paths must not.
    """
    activation = ACTIVATIONS[name]
    x = sp.Symbol("x", real=True)
    reference = sp.lambdify(x, activation.expression, modules="mpmath")
    with mpmath.workdps(400):
        expected = np.array([float(reference(mpmath.mpf(v))) for v in GRID])
    got = activation(GRID)
    assert np.all(np.isfinite(got))
    # 1e-12: deep in the GELU tail the rounding of x / sqrt 2 alone is amplified x^2-fold.
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_stated_values_at_zero(name: str) -> None:
    activation = ACTIVATIONS[name]
    assert float(activation(np.array([0.0]))[0]) == pytest.approx(activation.value_at_zero, abs=1e-15)


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=20))
def test_erf_matches_math_erf(values: list[float]) -> None:
    got = erf(np.asarray(values))
    expected = np.array([math.erf(v) for v in values])
    np.testing.assert_allclose(got, expected, rtol=4e-16, atol=1e-300)


def test_erf_without_a_native_erf_keeps_the_namespace() -> None:
    """array-api-strict has no erf: the host fallback must hand back its own array type."""
    strict = pytest.importorskip("array_api_strict")
    values = strict.asarray([-1.0, 0.0, 0.5])
    out = ACTIVATIONS["gelu"](values)
    assert type(out) is type(values)
    expected = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in (-1.0, 0.0, 0.5)]
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-15)


def test_unknown_activation_names_the_value_and_the_choices() -> None:
    with pytest.raises(InvalidInput, match=r"activation='swish'.*relu"):
        get_activation("swish")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_namespace_computes_the_same_values(name: str, xp) -> None:
    """The array path keeps its input's namespace and gives numpy's values, tails included."""
    activation = ACTIVATIONS[name]
    grid = np.linspace(-40.0, 40.0, 801)
    out = activation(xp.asarray(grid))
    assert type(out) is type(xp.asarray(grid))
    np.testing.assert_allclose(to_numpy(out), np.asarray(activation(grid)), rtol=1e-15, atol=1e-300)
