"""Activation lemmas: the ReLU identity, linear regime, symmetric difference, registry facts."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import sympy as sp
from _lemma_rederive import rederive
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS
from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _provers, get_lemma
from ltbounds.lemmas.activation import FACTS
from ltbounds.lemmas.registry import documented_lemmas
from ltbounds.strategies import activation_names
from ltbounds.verdict import Status

SMOOTH = ("tanh", "sigmoid", "gelu", "silu")


def _float(name: str):
    x = sp.Symbol("x", real=True)
    return sp.lambdify(x, ACTIVATIONS[name].symbolic(x), modules=[{"erf": np.vectorize(math.erf)}, "numpy"])


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("activation.relu_identity", {}),
        ("activation.relu_like_identity", {}),
        ("activation.relu_like_identity", {"activation": "leaky_relu"}),
        ("activation.positive_homogeneity", {"sign": "positive"}),
        ("activation.positive_homogeneity", {"activation": "relu", "sign": "negative"}),
        ("activation.symmetric_difference_derivation", {}),
        ("activation.symmetric_difference_bound", {}),
        ("activation.symmetric_difference_relu_like", {"derivative": "symmetric"}),
    ],
)
def test_identities_are_proved_and_hold_numerically(name, parameters) -> None:
    lemma = get_lemma(name, **parameters)
    verdict = lemma.check()
    assert verdict.status is Status.PROVED, verdict
    rederive(lemma, verdict, samples=40)


def test_relu_identity_on_random_floats() -> None:
    values = np.random.default_rng(0).normal(size=10000) * 10
    relu = ACTIVATIONS["relu"]
    assert np.array_equal(relu(values) - relu(-values), values)


@pytest.mark.parametrize("name", SMOOTH)
@pytest.mark.parametrize("lemma_name", ["activation.linear_regime", "activation.symmetric_difference"])
def test_taylor_bounds_are_certified_and_dense_samples_stay_below(name, lemma_name) -> None:
    lemma = get_lemma(lemma_name, activation=name, scale=1.0, input_bound=1.0)
    verdict = lemma.check()
    assert verdict.status in (Status.CERTIFIED, Status.PROVED), verdict
    assert "Taylor" in verdict.method
    activation = ACTIVATIONS[name]
    phi = _float(name)
    lam, u = np.meshgrid(np.linspace(1e-3, 1.0, 400), np.linspace(-1.0, 1.0, 401))
    t = lam * u
    if lemma_name == "activation.linear_regime":
        remainder = np.abs(phi(t) - activation.value_at_zero - activation.slope_at_zero * t)
        bound = activation.second_derivative_bound / 2 * t**2
        rounding = 1e-15
    else:
        remainder = np.abs((phi(t) - phi(-t)) / (2 * lam * activation.slope_at_zero) - u)
        bound = lam**2 * np.abs(u) ** 3 * activation.third_derivative_bound / (6 * activation.slope_at_zero)
        rounding = 1e-15 / lam  # float cancellation in phi(t) - phi(-t), divided by 2·lam·phi'(0)
    assert np.all(remainder <= bound * (1 + 1e-9) + rounding)


def test_a_too_small_second_derivative_bound_is_falsified_with_a_counterexample() -> None:
    lemma = get_lemma("activation.linear_regime", activation="tanh", second_derivative_bound=0.3)
    verdict = lemma.check()
    assert verdict.status is Status.FALSIFIED
    lam, u = verdict.counterexample["lam"], verdict.counterexample["u"]
    assert abs(math.tanh(lam * u) - lam * u) > 0.3 / 2 * (lam * u) ** 2
    rederive(lemma, verdict)


def test_lagrange_route_failing_without_counterexample_is_unknown() -> None:
    # sup|tanh''| = 0.7698 > 0.5, yet |tanh t - t| <= 0.477 t^2/2·... on |t| <= 1: not refuted.
    verdict = get_lemma("activation.linear_regime", activation="tanh", second_derivative_bound=0.5).check()
    assert verdict.status is Status.UNKNOWN


def test_finding_relu_symmetric_difference_needs_the_symmetric_derivative() -> None:
    literal = get_lemma("activation.symmetric_difference_relu_like", activation="relu", derivative="right")
    verdict = literal.check()
    assert verdict.status is Status.FALSIFIED
    point = verdict.counterexample
    relu = ACTIVATIONS["relu"]
    lam, x = point["lam"], point["x"]
    value = (relu(np.array(lam * x)) - relu(np.array(-lam * x))) / (2 * lam)
    assert not math.isclose(float(value), x)
    assert get_lemma("activation.symmetric_difference_relu_like", activation="relu").check().status is Status.PROVED


def test_smooth_lemmas_refuse_relu_like_activations() -> None:
    with pytest.raises(InvalidInput, match="states no second_derivative_bound"):
        get_lemma("activation.linear_regime", activation="relu")
    with pytest.raises(InvalidInput, match="is not ReLU-like"):
        get_lemma("activation.relu_like_identity", activation="tanh")


@pytest.mark.parametrize(
    ("activation", "fact"),
    [(name, fact) for name, act in ACTIVATIONS.items() for fact in FACTS if getattr(act, fact) is not None],
)
def test_every_stated_fact_holds_and_is_rederived(activation, fact) -> None:
    lemma = get_lemma("activation.fact", activation=activation, fact=fact)
    verdict = lemma.check()
    assert verdict.status in (Status.PROVED, Status.CERTIFIED), verdict
    rederive(lemma, verdict)


def test_whole_line_facts_survive_without_z3() -> None:
    with mock.patch.object(_provers, "z3_available", lambda: False):
        for name in ("tanh", "sigmoid", "silu"):
            verdict = get_lemma("activation.fact", activation=name, fact="second_derivative_bound").check()
            assert verdict.status is Status.CERTIFIED, verdict


def test_a_wrong_fact_would_be_falsified() -> None:
    from ltbounds.lemmas._sup import check_sup

    result = check_sup(ACTIVATIONS["gelu"], 3, 0.77)
    assert result.status is Status.FALSIFIED
    x = sp.Symbol("x", real=True)
    third = sp.diff(ACTIVATIONS["gelu"].symbolic(x), x, 3)
    assert abs(float(third.subs(x, result.counterexample))) > 0.77


@settings(max_examples=8, deadline=None)
@given(activation_names(smooth=True), st.floats(0.05, 2.0), st.floats(0.1, 2.0))
def test_linear_regime_on_random_boxes(name, scale, input_bound) -> None:
    lemma = get_lemma("activation.linear_regime", activation=name, scale=scale, input_bound=input_bound)
    verdict = lemma.check()
    assert verdict.status in (Status.PROVED, Status.CERTIFIED)
    rederive(lemma, verdict, samples=20)


@given(activation_names())
def test_forward_matches_the_symbolic_definition(name) -> None:
    values = np.linspace(-8, 8, 1601)
    assert np.allclose(ACTIVATIONS[name](values), _float(name)(values) * np.ones_like(values), rtol=1e-12, atol=1e-14)


def test_documented_examples_exist_for_every_activation_entry() -> None:
    names = {lemma.name for entry, lemma in documented_lemmas() if entry.family == "activation"}
    assert any(name.startswith("activation.fact[gelu") for name in names)
    assert "activation.relu_identity" in names
