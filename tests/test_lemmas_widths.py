"""Width theorems: applicability, requirements recomputed independently, provenance of C."""

from __future__ import annotations

import math

import pytest
from _lemma_rederive import rederive, rederive_requirement
from hypothesis import given, settings

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import THEOREMS, SubsetSumConstant, TargetShape, get_lemma, get_theorem
from ltbounds.lemmas.composition import output_error_bound
from ltbounds.strategies import bad_widths, delta_values, eps_values, target_shapes
from ltbounds.verdict import Status

MNIST = TargetShape((1, 32, 32, 10), kernel_sizes=(9, 9, 784), activation="relu", input_bound=2.83,
                    weight_norms=(4.9376, 16.3816, 542.29), bias_bound=0.627)
DENSE = TargetShape((784, 100, 10), has_bias=False)
RESNET = TargetShape((3, 16, 16, 16, 10), kernel_sizes=(9, 9, 9, 1), activation="gelu", residual_blocks=((2, 3),))


def test_shape_validation_names_the_bad_value() -> None:
    with pytest.raises(InvalidInput, match=r"widths\[1\]=0"):
        TargetShape((3, 0, 2))
    with pytest.raises(InvalidInput, match="kernel_sizes"):
        TargetShape((3, 4, 2), kernel_sizes=(1,))
    with pytest.raises(InvalidInput, match="identity skip needs equal widths"):
        TargetShape((3, 4, 5), residual_blocks=((1, 2),))
    with pytest.raises(InvalidInput, match="activation='swish'"):
        TargetShape((3, 4), activation="swish")
    with pytest.raises(InvalidInput, match="unknown field 'depth'"):
        TargetShape.from_dict({"widths": [1, 2], "depth": 1})


@given(bad_widths())
def test_bad_widths_are_refused(value) -> None:
    with pytest.raises(InvalidInput, match=r"widths\[1\]="):
        TargetShape((3, value, 2))


def test_target_params_and_layer_facts() -> None:
    assert MNIST.target_params == 32 * 9 + 32 * 32 * 9 + 10 * 32 * 784 + 32 + 32 + 10
    facts = MNIST.layer_facts()
    assert [f.fan_in for f in facts] == [9, 288, 25088]
    assert facts[0].input_bound == 2.83
    assert facts[1].input_bound >= 4.9376 * 2.83 + 0.627


@pytest.mark.parametrize(
    ("key", "shape", "applies", "reason"),
    [
        ("pensia", DENSE, True, ""),
        ("pensia", MNIST, False, "without biases"),
        ("da_cunha", TargetShape((1, 8, 2), kernel_sizes=(9, 1), has_bias=False), True, ""),
        ("malach", TargetShape((4, 8, 2), kernel_sizes=(9, 1), has_bias=False), False, "dense"),
        ("orseau", TargetShape((4, 8, 2), activation="tanh", has_bias=False), False, "ReLU"),
        ("burkholz_2l", RESNET, True, ""),
        ("burkholz_l_plus_1", RESNET, False, "feed-forward"),
        ("burkholz_l_plus_1", TargetShape((4, 4, 2), activation="elu"), False, "no bound on φ''"),
        ("burkholz_l_plus_1", TargetShape((4, 4, 2), activation="softplus"), True, ""),
    ],
)
def test_applies_says_why(key, shape, applies, reason) -> None:
    ok, why = get_theorem(key).applies(shape)
    assert ok is applies
    assert reason in why
    if not applies:
        with pytest.raises(InvalidInput, match=f"{key} does not apply"):
            get_theorem(key).requirement(shape, 0.01, 0.01)


def test_burkholz_widths_follow_the_reconstructed_formulas() -> None:
    plus = get_theorem("burkholz_l_plus_1").requirement(MNIST, 0.01, 0.01)
    rho = plus.rho
    assert plus.source_depth == 4
    assert plus.widths == (2 * rho[0] * 2, rho[1] * 33, rho[2] * 33, 10)
    assert plus.kernel_sizes == (1, 9, 9, 784)
    assert output_error_bound(plus.per_layer_eps, MNIST.layer_facts()) <= 0.01
    double = get_theorem("burkholz_2l").requirement(MNIST, 0.01, 0.01)
    assert double.source_depth == 6
    assert double.widths[1::2] == (32, 32, 10)
    assert all(w == 2 * r * (n + 1) for w, r, n in zip(double.widths[0::2], double.rho, (1, 32, 32), strict=True))
    assert double.subset_sum_problems == 2 * (32 * (9 + 1) + 32 * (288 + 1) + 10 * (25088 + 1))
    assert "RECONSTRUCTED" in double.status and any("RECONSTRUCTED" in note for note in double.notes)


def test_pensia_and_da_cunha_formulas() -> None:
    pensia = get_theorem("pensia").requirement(DENSE, 0.01, 0.01, C=2.0)
    assert pensia.widths[0] == math.ceil(2.0 * 784 * math.log(784 * 100 * 2 / 0.01))
    assert pensia.widths[1] == 100 and pensia.constants == (("product", 2.0, "user"),)
    cnn = TargetShape((1, 8, 2), kernel_sizes=(9, 1), has_bias=False)
    da_cunha = get_theorem("da_cunha").requirement(cnn, 0.01, 0.01, C=3.0)
    per = math.ceil(3.0 * math.log(9 * 1 * 8 * 2 / 0.01))
    assert da_cunha.widths[:2] == (2 * per * 1, 8)
    assert da_cunha.kernel_sizes[:2] == (9, 1)


def test_constant_provenance() -> None:
    default = get_theorem("burkholz_2l").requirement(RESNET, 0.01, 0.05)
    assert default.constant_origin == "code-derived"
    fitted = SubsetSumConstant(2.1, "fitted", "uniform", "our concentration estimate")
    requirement = get_theorem("burkholz_2l").requirement(RESNET, 0.01, 0.05, C=fitted)
    assert requirement.constants == (("product", 2.1, "fitted"),)
    order_only = get_theorem("malach").requirement(DENSE, 0.01, 0.01)
    assert "order only" in order_only.constant_origin


@settings(max_examples=25, deadline=None)
@given(target_shapes(max_depth=3, max_width=24), eps_values(1e-4, 0.5), delta_values(1e-4, 0.5))
def test_requirements_recomputed_independently(shape, eps, delta) -> None:
    for key, theorem in THEOREMS.items():
        if not theorem.applies(shape)[0]:
            continue
        lemma = get_lemma("widths.requirement", theorem=key, shape=shape, eps=eps, delta=delta)
        verdict = lemma.check()
        assert verdict.status is Status.CERTIFIED, verdict
        rederive_requirement(verdict.extra["requirement"], lemma)
        smaller = theorem.requirement(shape, eps / 10, delta)
        larger = theorem.requirement(shape, eps, delta)
        assert all(a >= b for a, b in zip(smaller.widths, larger.widths, strict=True))


@settings(max_examples=10, deadline=None)
@given(target_shapes(max_depth=4, max_width=16, residual=True))
def test_residual_targets_go_to_the_2l_theorem(shape) -> None:
    if shape.residual_blocks:
        assert not get_theorem("burkholz_l_plus_1").applies(shape)[0]
    if get_theorem("burkholz_2l").applies(shape)[0]:
        requirement = get_theorem("burkholz_2l").requirement(shape, 0.01, 0.1)
        assert requirement.source_depth == 2 * shape.depth


def test_requirement_lemma_verdict_is_rederived() -> None:
    lemma = get_lemma("widths.requirement", theorem="burkholz_l_plus_1", shape={"widths": [16, 32, 32, 4], "activation": "tanh"}, eps=0.01, delta=0.05)
    verdict = lemma.check()
    assert verdict.status is Status.CERTIFIED
    rederive(lemma, verdict)


def test_bad_eps_and_delta() -> None:
    theorem = get_theorem("burkholz_2l")
    with pytest.raises(InvalidInput, match="eps=0"):
        theorem.requirement(RESNET, 0, 0.1)
    with pytest.raises(InvalidInput, match="delta=1.0"):
        theorem.requirement(RESNET, 0.1, 1.0)
    with pytest.raises(InvalidInput, match="theorem='lottery'"):
        get_theorem("lottery")
