"""Subset-sum lemmas: Lueker's corollary, the usable form, products, the code-derived C."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _lemma_rederive import rederive
from hypothesis import given

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import get_lemma
from ltbounds.lemmas.subsetsum import (
    CODE_DERIVED_PRODUCT,
    CODE_DERIVED_UNIFORM,
    SubsetSumConstant,
    code_derived_constant,
    empirical_constant,
    least_width,
    lueker_failure_bound,
    paper_constant,
)
from ltbounds.strategies import delta_values, eps_values
from ltbounds.verdict import Status


def test_code_derived_constants_match_lemmas_md() -> None:
    assert round(CODE_DERIVED_UNIFORM.value, 2) == 2.72
    assert round(CODE_DERIVED_PRODUCT.value, 2) == 3.26
    assert CODE_DERIVED_UNIFORM.origin == "code-derived" and CODE_DERIVED_UNIFORM.law == "uniform"
    assert code_derived_constant("product") is CODE_DERIVED_PRODUCT
    assert math.isclose(empirical_constant(15, 0.01, 0.00404), 15 / math.log(1 / 0.00404))


def test_no_paper_constant_exists() -> None:
    with pytest.raises(InvalidInput, match="no paper states a value"):
        paper_constant("uniform")
    with pytest.raises(InvalidInput, match="C=-1"):
        SubsetSumConstant(-1.0, "user", "uniform")


@given(eps_values(), delta_values())
def test_least_width_is_least(eps, delta) -> None:
    n = least_width(eps, delta, CODE_DERIVED_UNIFORM)
    needed = CODE_DERIVED_UNIFORM.value * math.log(1 / min(eps, delta))
    assert n >= needed - 1e-9 and n - 1 < needed + 1e-9
    assert least_width(eps / 2, delta, 2.72) >= least_width(eps, delta, 2.72)


@pytest.mark.parametrize(("eps", "delta", "C"), [(0.01, 0.01, 2.72), (1e-6, 0.3, 3.26), (0.5, 0.49, 1.0)])
def test_least_width_agrees_with_solve_for(eps, delta, C) -> None:
    lemma = get_lemma("subsetsum.usable_form")
    assert least_width(eps, delta, C) == lemma.solve_for("n", C=C, eps=eps, delta=delta)


def test_lueker_failure_bound_refuses_outside_its_hypothesis() -> None:
    assert 0 < lueker_failure_bound(400, 0.01, 2.0) < 1
    with pytest.raises(InvalidInput, match="must be >= exp"):
        lueker_failure_bound(10, 1e-6, 2.0)


@pytest.mark.parametrize(
    ("name", "parameters", "expected"),
    [
        ("subsetsum.lueker_corollary", {}, Status.UNKNOWN),
        ("subsetsum.usable_form", {}, Status.UNKNOWN),
        ("subsetsum.usable_from_lueker_hypothesis", {}, Status.PROVED),
        ("subsetsum.usable_from_lueker_probability", {}, Status.PROVED),
        ("subsetsum.product_density", {"first_factor": "symmetric"}, Status.PROVED),
        ("subsetsum.product_density", {"first_factor": "positive"}, Status.PROVED),
        ("subsetsum.product_density_mass", {}, Status.PROVED),
        ("subsetsum.product_uniform_component", {}, Status.PROVED),
        ("subsetsum.empirical_constant", {"law": "uniform"}, Status.CERTIFIED),
        ("subsetsum.empirical_constant", {"law": "product"}, Status.CERTIFIED),
        ("subsetsum.empirical_constant", {"law": "product_delta_only"}, Status.CERTIFIED),
    ],
)
def test_verdicts_and_their_rederivation(name, parameters, expected) -> None:
    lemma = get_lemma(name, **parameters)
    verdict = lemma.check()
    assert verdict.status is expected, verdict
    if expected is Status.UNKNOWN:
        assert verdict.method == "cited"
    rederive(lemma, verdict)


def test_product_density_against_a_monte_carlo_histogram() -> None:
    rng = np.random.default_rng(0)
    products = rng.uniform(-1, 1, 400000) * rng.uniform(-1, 1, 400000)
    edges = np.linspace(0.05, 1.0, 20)
    counts, _ = np.histogram(np.abs(products), bins=edges)
    # mass of log(1/|x|)/2 on ±[a, b] is [x - x log x]_a^b
    primitive = edges - edges * np.log(edges)
    expected = np.diff(primitive) * len(products)
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected) + 5)


def test_derived_usable_form_holds_on_random_admissible_points() -> None:
    rng = np.random.default_rng(1)
    for _ in range(2000):
        C = rng.uniform(0.1, 10)
        eps, delta = 10 ** rng.uniform(-8, -0.5), 10 ** rng.uniform(-8, -0.5)
        K = max(4 * C, 32)
        n = math.ceil(K * math.log(1 / min(eps, delta)))
        assert eps >= math.exp(-n / (2 * C))
        assert lueker_failure_bound(n, eps, C) <= delta * (1 + 1e-12)
