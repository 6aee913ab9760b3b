"""Composition: the error recurrence, the allotment, residual blocks — checked against
simulated perturbed networks (the slow, obvious twin)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _lemma_rederive import rederive
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import (
    LayerFacts,
    allot_eps,
    get_lemma,
    output_error_bound,
    residual_error_bound,
)
from ltbounds.lemmas.composition import layer_step
from ltbounds.strategies import eps_values, layer_facts
from ltbounds.verdict import Status


@pytest.mark.parametrize(
    ("name", "parameters"),
    [
        ("composition.affine_split", {"form": "target"}),
        ("composition.affine_split", {"form": "source"}),
        ("composition.layer_step", {}),
        ("composition.unrolled_induction", {}),
        ("composition.unrolled_bound", {}),
        ("composition.equal_share", {}),
        ("composition.lemmas_md_allotment", {}),
        ("composition.lemmas_md_step", {}),
        ("composition.residual_rule", {}),
        ("composition.residual_rule_lipschitz", {}),
        ("composition.union_bound", {}),
    ],
)
def test_composition_lemmas_are_proved_and_hold_numerically(name, parameters) -> None:
    lemma = get_lemma(name, **parameters)
    verdict = lemma.check()
    assert verdict.status is Status.PROVED, verdict
    rederive(lemma, verdict, samples=40)


def test_induction_checker_rejects_a_wrong_closed_form() -> None:
    lemma = get_lemma("composition.unrolled_induction")
    kind, lhs, rhs = lemma.sides()
    a = lhs.atoms(__import__("sympy").Indexed)
    wrong = dataclasses.replace(lemma, statement=type(lemma.statement)(lhs, 2 * rhs, evaluate=False))
    assert a and wrong.check().status is Status.UNKNOWN


@settings(max_examples=60, deadline=None)
@given(eps_values(1e-6, 1.0), st.lists(layer_facts(), min_size=1, max_size=6), st.floats(0, 1e-3))
def test_allotment_meets_eps(eps, layers, input_error) -> None:
    floor = output_error_bound([0.0] * len(layers), layers, input_error)
    if floor >= eps:
        with pytest.raises(InvalidInput, match="alone propagates"):
            allot_eps(eps, layers, input_error)
        return
    shares = allot_eps(eps, layers, input_error)
    assert all(share > 0 for share in shares)
    assert output_error_bound(shares, layers, input_error) <= eps


@settings(max_examples=40, deadline=None)
@given(eps_values(1e-6, 1.0), st.lists(layer_facts(), min_size=2, max_size=6), st.data())
def test_allotment_meets_eps_with_a_residual_block(eps, layers, data) -> None:
    first = data.draw(st.integers(1, len(layers)))
    last = data.draw(st.integers(first, len(layers)))
    shares = allot_eps(eps, layers, residual_blocks=[(first, last)])
    assert output_error_bound(shares, layers, residual_blocks=[(first, last)]) <= eps


def _random_dense(rng, widths):
    weights = [rng.uniform(-1, 1, size=(widths[i + 1], widths[i])) / np.sqrt(widths[i]) for i in range(len(widths) - 1)]
    biases = [rng.uniform(-0.5, 0.5, size=widths[i + 1]) for i in range(len(widths) - 1)]
    return weights, biases


def _forward(weights, biases, x, activation=np.tanh, last_linear=True):
    h = x
    for index, (W, b) in enumerate(zip(weights, biases, strict=True)):
        h = h @ W.T + b
        if not (last_linear and index == len(weights) - 1):
            h = activation(h)
    return h


@pytest.mark.parametrize("seed", range(5))
def test_bound_dominates_simulated_perturbations(seed) -> None:
    rng = np.random.default_rng(seed)
    widths = [5, 12, 9, 3]
    weights, biases = _random_dense(rng, widths)
    # M_l: bound on |h_l| over x in [-1, 1]^5 (tanh layers: <= 1; the input: 1).
    bounds = [1.0, 1.0, 1.0]
    layers = [
        LayerFacts.from_weights(W, lipschitz=1.0 if i < 2 else 1.0, input_bound=bounds[i], has_bias=True)
        for i, W in enumerate(weights)
    ]
    shares = allot_eps(0.05, layers)
    worst = 0.0
    x = rng.uniform(-1, 1, size=(4000, 5))
    target = _forward(weights, biases, x)
    for _ in range(20):
        perturbed_w = [W + rng.choice([-1, 1], size=W.shape) * share for W, share in zip(weights, shares, strict=True)]
        perturbed_b = [b + rng.choice([-1, 1], size=b.shape) * share for b, share in zip(biases, shares, strict=True)]
        worst = max(worst, float(np.abs(_forward(perturbed_w, perturbed_b, x) - target).max()))
    assert worst <= output_error_bound(shares, layers) <= 0.05


def test_residual_bound_dominates_a_simulated_block() -> None:
    rng = np.random.default_rng(7)
    (W1, W2), (b1, b2) = _random_dense(rng, [6, 8, 6])
    x = rng.uniform(-1, 1, size=(3000, 6))
    e_in, share = 1e-3, 1e-4

    def block(W1, b1, W2, b2, inputs):
        return np.tanh(inputs + np.tanh(inputs @ W1.T + b1) @ W2.T + b2)

    target = block(W1, b1, W2, b2, x)
    branch = [
        LayerFacts.from_weights(W1, lipschitz=1.0, input_bound=1.0, has_bias=True),
        LayerFacts.from_weights(W2, lipschitz=1.0, input_bound=1.0, has_bias=True),
    ]
    bound = residual_error_bound(e_in, branch, [share, share], out_lipschitz=1.0)
    worst = 0.0
    for _ in range(10):
        shifted = x + rng.choice([-1, 1], size=x.shape) * e_in
        noisy = [M + rng.choice([-1, 1], size=M.shape) * share for M in (W1, b1, W2, b2)]
        worst = max(worst, float(np.abs(block(*noisy, shifted) - target).max()))
    assert worst <= bound
    # identity skip versus a projection skip with no error and unit norm: same bound
    projection = LayerFacts(fan_in=1, weight_norm=1.0, lipschitz=1.0, input_bound=1.0, has_bias=False)
    assert residual_error_bound(e_in, branch, [share, share], skip=projection) == pytest.approx(bound)


def test_layer_step_matches_the_formula_and_rounds_up() -> None:
    layer = LayerFacts(fan_in=10, weight_norm=2.0, lipschitz=0.25, input_bound=3.0, has_bias=True)
    value = layer_step(0.001, layer, 0.01)
    assert value >= 0.25 * (2.0 * 0.01 + 0.001 * (10 * (3.0 + 0.01) + 1))
    assert value == pytest.approx(0.25 * (2.0 * 0.01 + 0.001 * (10 * 3.01 + 1)), rel=1e-15)


def test_layer_facts_refuse_bad_values() -> None:
    with pytest.raises(InvalidInput, match="fan_in=0"):
        LayerFacts(0, 1.0, 1.0, 1.0)
    with pytest.raises(InvalidInput, match="weight_norm=-1"):
        LayerFacts(3, -1.0, 1.0, 1.0)
    with pytest.raises(InvalidInput, match="residual_blocks"):
        output_error_bound([0.1, 0.1], [LayerFacts(1, 1.0, 1.0, 1.0)] * 2, residual_blocks=[(2, 1)])
    conv = LayerFacts.from_weights(np.ones((4, 3, 3, 3)), lipschitz=1.0, input_bound=1.0, has_bias=False)
    assert conv.fan_in == 27 and conv.weight_norm >= 27


def test_allotment_instance_lemma() -> None:
    layers = [{"fan_in": 9, "weight_norm": 1.0, "lipschitz": 1.0, "input_bound": 1.0, "has_bias": True}] * 3
    verdict = get_lemma("composition.allotment_instance", eps=0.01, layers=layers).check()
    assert verdict.status is Status.PROVED
    with pytest.raises(InvalidInput, match="unknown field 'size'"):
        get_lemma("composition.allotment_instance", eps=0.01, layers=[{"size": 3}])
