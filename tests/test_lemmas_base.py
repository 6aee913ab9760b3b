"""The Lemma value object: parameters, refusals, evaluate, solve_for, check, latex."""

from __future__ import annotations

import dataclasses
import math

import pytest
import sympy as sp
from hypothesis import given

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import get_lemma, lemma_names
from ltbounds.lemmas.base import Lemma, Source, SourceStatus, integer, positive, probability, real
from ltbounds.strategies import (
    bad_delta_values,
    bad_eps_values,
    bad_widths,
    delta_values,
    eps_values,
)
from ltbounds.verdict import Status

SOURCE = Source("test", "", "", SourceStatus.DERIVED)


def _lemma(statement, *parameters, **kwargs) -> Lemma:
    return Lemma("test.lemma", "a test lemma", statement, tuple(parameters), SOURCE, **kwargs)


def test_parameter_domains_and_assumptions() -> None:
    eps = probability("eps", "varepsilon", "error")
    assert eps.symbol.is_positive and eps.validate(0.5) == 0.5
    assert eps.domain_text() == "in (0, 1)"
    width = integer("n", "n", "width")
    assert width.symbol.is_integer and width.symbol.is_positive
    assert width.validate(3) == 3
    with pytest.raises(InvalidInput, match=r"n=0 must be >= 1"):
        width.validate(0)
    box = real("u", "u", "input", low=-1.0, high=1.0, low_inclusive=True, high_inclusive=True)
    assert box.domain_text() == "in [-1, 1]"
    with pytest.raises(InvalidInput, match=r"u=1\.5 must be in \[-1, 1\]"):
        box.validate(1.5)


@given(bad_eps_values())
def test_bad_eps_is_refused_naming_the_value(value) -> None:
    lemma = get_lemma("subsetsum.usable_form")
    with pytest.raises(InvalidInput, match="eps="):
        lemma.evaluate(n=10, C=2.0, eps=value, delta=0.1)


@given(bad_delta_values())
def test_bad_delta_is_refused_naming_the_value(value) -> None:
    lemma = get_lemma("subsetsum.usable_form")
    with pytest.raises(InvalidInput, match="delta="):
        lemma.solve_for("n", C=2.0, eps=0.1, delta=value)


@given(bad_widths())
def test_bad_width_is_refused_naming_the_value(value) -> None:
    lemma = get_lemma("subsetsum.usable_form")
    with pytest.raises(InvalidInput, match="n="):
        lemma.evaluate(n=value, C=2.0, eps=0.1, delta=0.1)


@given(eps_values(), delta_values())
def test_solve_for_gives_the_least_integer_width(eps, delta) -> None:
    lemma = get_lemma("subsetsum.usable_form")
    n = lemma.solve_for("n", C=2.72, eps=eps, delta=delta)
    needed = 2.72 * math.log(1 / min(eps, delta))
    assert n >= needed - 1e-9
    assert n - 1 < needed + 1e-9
    assert lemma.evaluate(n=n, C=2.72, eps=eps, delta=delta).holds


def test_evaluate_reports_both_sides_at_a_precision() -> None:
    lemma = get_lemma("subsetsum.usable_form")
    result = lemma.evaluate(precision=200, n=13, C=2.72, eps=0.01, delta=0.01)
    assert result.precision == 200
    assert abs(float(result.rhs) - 2.72 * math.log(100)) < 1e-12
    assert result.holds
    assert not lemma.evaluate(n=12, C=2.72, eps=0.01, delta=0.01).holds


def test_unknown_parameter_and_missing_value_are_refused() -> None:
    lemma = get_lemma("subsetsum.usable_form")
    with pytest.raises(InvalidInput, match="no parameter 'width'"):
        lemma.evaluate(width=3)
    with pytest.raises(InvalidInput, match="needs a value for"):
        lemma.evaluate(n=3, C=1.0, eps=0.1)
    with pytest.raises(InvalidInput, match="method='magic'"):
        lemma.check(method="magic")


def test_unknown_lemma_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInput, match="activation.relu_identity"):
        get_lemma("no.such.lemma")
    assert "composition.residual_rule" in lemma_names()


def test_generic_chain_proves_certifies_tests_and_falsifies() -> None:
    x = real("x", "x", "input", low=0.0, high=2.0, low_inclusive=True, high_inclusive=True)
    y = positive("y", "y", "positive")
    identity = _lemma(sp.Eq((x.symbol + 1) ** 2, x.symbol**2 + 2 * x.symbol + 1), x)
    assert identity.check().status is Status.PROVED
    polynomial = _lemma(sp.Le(x.symbol**3 - x.symbol, 6), x)
    verdict = polynomial.check()
    assert verdict.status is Status.PROVED and "z3" in verdict.method
    transcendental = _lemma(sp.Le(sp.tanh(x.symbol), x.symbol + sp.Rational(1, 100)), x)
    verdict = transcendental.check()
    assert verdict.status is Status.CERTIFIED and "arb" in verdict.method
    wrong = _lemma(sp.Le(sp.exp(x.symbol), 1 + x.symbol), x)
    verdict = wrong.check()
    assert verdict.status is Status.FALSIFIED
    point = verdict.counterexample["x"]
    assert math.exp(point) > 1 + point
    sampled = _lemma(sp.Le(sp.asin(sp.tanh(y.symbol)), 2), y)
    verdict = sampled.check(samples=200)
    assert verdict.status is Status.TESTED and verdict.samples == 200
    assert not verdict.rigorous


def test_sampled_checks_never_claim_rigour() -> None:
    x = real("x", "x", "input", low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
    lemma = _lemma(sp.Le(sp.tanh(x.symbol), x.symbol), x)
    verdict = lemma.check(method="sample", samples=500)
    assert verdict.status is Status.TESTED
    assert verdict.samples == 500


def test_closed_statements_are_decided_exactly_or_in_arb() -> None:
    assert _lemma(sp.Le(sp.Rational(1, 3), sp.Rational(1, 2), evaluate=False)).check().status is Status.PROVED
    assert _lemma(sp.Le(sp.pi, sp.Rational(22, 7), evaluate=False)).check().status is Status.CERTIFIED
    verdict = _lemma(sp.Ge(sp.pi, sp.Rational(22, 7), evaluate=False)).check()
    assert verdict.status is Status.FALSIFIED


def test_lemma_is_immutable_and_renders_latex() -> None:
    lemma = get_lemma("activation.relu_identity")
    with pytest.raises(dataclasses.FrozenInstanceError):
        lemma.name = "x"  # type: ignore[misc]
    assert r"\max" in lemma.latex()
    assert "RECONSTRUCTED" in lemma.source.citation()
    linear = get_lemma("activation.linear_regime", activation="tanh")
    assert r"\text{where }" in linear.latex()
