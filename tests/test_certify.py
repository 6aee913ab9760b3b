"""Certified error bounds: soundness on random networks, the sandwich check, bad pairs.

The fast paths (outward-rounded IBP, differential and symbolic propagation, our reverse mode)
each have a slow, obvious twin here: exact rational arithmetic, sampled inputs, sympy/arb
definitions, central finite differences.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from _finite_differences import central_vjp
from _small_nets import small_conv
from flint import arb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS
from ltbounds.certify import CertificationReport, MethodBound, certify
from ltbounds.certify._activation import activation_image, slope_range, smooth_rule
from ltbounds.certify._alignment import align
from ltbounds.certify._autodiff import Tape, activation_derivative
from ltbounds.certify._bounds import Engine, branch_and_bound, norms_of, point_enclosure
from ltbounds.certify._rigorous import LinearOp, enclose_linear
from ltbounds.construct import construct
from ltbounds.errors import BoundViolation, InvalidInput
from ltbounds.lemmas._interval import compile_arb, working_precision
from ltbounds.nets import AvgPool2d, Conv1d, Conv2d, Dense, Flatten, MaxPool1d, MaxPool2d, TargetNet
from ltbounds.nets.resolve import resolve_target
from ltbounds.strategies import target_nets
from ltbounds.verdict import Status

SMOOTH = ("tanh", "sigmoid", "gelu", "silu", "softplus")
CONSTRUCTIBLE = ("relu", "leaky_relu", *SMOOTH)


def small_dense(activation: str = "relu", seed: int = 0) -> TargetNet:
    rng = np.random.default_rng(seed)
    layers = [
        Dense(rng.uniform(-1, 1, (4, 3)), rng.uniform(-0.5, 0.5, 4)),
        Dense(rng.uniform(-1, 1, (2, 4)), rng.uniform(-0.5, 0.5, 2)),
    ]
    return TargetNet(layers, (3,), activation, (-1.0, 1.0), name="smalldense")


@pytest.fixture(scope="module")
def conv_pair():
    target = small_conv()
    return target, construct(target, eps=0.5, rho=6, seed=2, param_eps=0.02)


# ------------------------------------------------------------------- rigorous arithmetic
def test_linear_enclosure_contains_exact_rational_values() -> None:
    rng = np.random.default_rng(0)
    weight = rng.uniform(-1, 1, (3, 5)) * 10.0 ** rng.integers(-8, 8, (3, 5))
    lo = rng.uniform(-2, 1, (4, 5))
    hi = lo + rng.uniform(0, 3, (4, 5))
    bias = rng.uniform(-1, 1, 3)
    low, high = enclose_linear(LinearOp(weight, "dense"), (lo, hi), bias=bias)
    for b in range(4):
        for corner in range(32):
            x = np.where([(corner >> k) & 1 for k in range(5)], hi[b], lo[b])
            for j in range(3):
                exact = sum(Fraction(weight[j, k]) * Fraction(x[k]) for k in range(5)) + Fraction(bias[j])
                assert Fraction(low[b, j]) <= exact <= Fraction(high[b, j])


def test_conv_enclosure_contains_sampled_points() -> None:
    rng = np.random.default_rng(3)
    layer = Conv2d(rng.uniform(-1, 1, (3, 2, 3, 2)), None, stride=(2, 1), padding=(1, 0))
    lo = rng.uniform(-1, 0, (2, 2, 5, 4))
    hi = lo + rng.uniform(0, 1, lo.shape)
    low, high = enclose_linear(LinearOp.like(layer, layer.weight), (lo, hi))
    points = lo[None] + (hi - lo)[None] * rng.uniform(0, 1, (200, *lo.shape))
    values = np.stack([layer.forward(p) for p in points])
    assert np.all(values >= low) and np.all(values <= high)


@pytest.mark.parametrize("name", SMOOTH + ("elu",))
def test_direct_arb_formulas_match_the_registry_definitions(name: str) -> None:
    import sympy as sp

    activation = ACTIVATIONS[name]
    rule = smooth_rule(activation)
    x = sp.Symbol("x", real=True)
    expression = activation.symbolic(x)
    references = [compile_arb(sp.diff(expression, x, k), [x]) for k in range(3)]
    for t in (-7.5, -1.3, -0.2, 0.4, 2.9, 11.0):
        for mine, reference in zip((rule.phi, rule.slope, rule.curvature), references, strict=True):
            assert mine(arb(t)).overlaps(reference(arb(t)))


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_and_slope_enclosures_contain_samples(name: str) -> None:
    activation = ACTIVATIONS[name]
    rng = np.random.default_rng(4)
    lo = rng.uniform(-6, 4, 60)
    hi = lo + rng.uniform(0, 3, 60)
    image = activation_image(activation, (lo, hi))
    slopes = slope_range(activation, (lo, hi))
    t = np.clip(lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 21)[None], lo[:, None], hi[:, None])
    if activation.relu_like:
        values = activation.forward(t)  # exact in float
        assert np.all(values >= image[0][:, None]) and np.all(values <= image[1][:, None])
    else:  # the exact values, enclosed in arb balls
        rule = smooth_rule(activation)
        with working_precision(200):  # tiny balls: fail only where φ is certainly outside
            for row in range(t.shape[0]):
                for value in t[row]:
                    for ball, (low, high) in (
                        (rule.phi(arb(float(value))), (image[0][row], image[1][row])),
                        (rule.slope(arb(float(value))), (slopes[0][row], slopes[1][row])),
                    ):
                        assert not ball < arb(float(low)) and not ball > arb(float(high))
    s, u = t[:, :-1], t[:, 1:]
    quotient = (activation.forward(u) - activation.forward(s)) / np.where(u > s, u - s, 1.0)
    ok = (u - s) > 1e-3
    assert np.all((quotient >= slopes[0][:, None] - 1e-9) | ~ok)
    assert np.all((quotient <= slopes[1][:, None] + 1e-9) | ~ok)


# ------------------------------------------------------------------------ reverse mode
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_finite_differences(name: str) -> None:
    activation = ACTIVATIONS[name]
    z = np.random.default_rng(5).normal(size=400) * 3
    z = z[np.abs(z) > 1e-3]  # away from kinks
    h = 1e-6
    numeric = (activation.forward(z + h) - activation.forward(z - h)) / (2 * h)
    assert np.allclose(activation_derivative(activation, z), numeric, atol=1e-7)


@pytest.mark.parametrize("name", ["relu", "tanh", "gelu"])
def test_backward_matches_finite_differences(name: str) -> None:
    rng = np.random.default_rng(6)
    layers = [
        Conv2d(rng.normal(size=(3, 2, 3, 2)), rng.normal(size=3), stride=(2, 1), padding=(1, 1)),
        MaxPool2d(2),
        Conv2d(rng.normal(size=(2, 3, 2, 2)), None, 1, 1),
        AvgPool2d((2, 1), (1, 1)),
        Flatten(),
        Dense(rng.normal(size=(4, 16)), rng.normal(size=4)),
    ]
    net = TargetNet(layers, (2, 9, 6), name)
    x = rng.uniform(-1, 1, (3, 2, 9, 6))
    cotangent = rng.normal(size=(3, 4))
    gradient = Tape(net, x).vjp(cotangent)
    numeric = central_vjp(net, x, cotangent)
    assert np.allclose(gradient, numeric, atol=1e-6 * (1 + np.abs(numeric).max()))


def test_backward_conv1d_and_maxpool1d() -> None:
    rng = np.random.default_rng(7)
    net = TargetNet(
        [Conv1d(rng.normal(size=(2, 1, 3)), rng.normal(size=2), stride=2, padding=1), MaxPool1d(2), Flatten(), Dense(rng.normal(size=(2, 8)))],
        (1, 15),
        "softplus",
    )
    x = rng.uniform(-1, 1, (2, 1, 15))
    cotangent = rng.normal(size=(2, 2))
    gradient = Tape(net, x).vjp(cotangent)
    h = 1e-6
    for k in range(15):
        step = np.zeros_like(x)
        step[:, 0, k] = h
        numeric = ((net.forward(x + step) - net.forward(x - step)) * cotangent).sum(1) / (2 * h)
        assert np.allclose(gradient[:, 0, k], numeric, atol=1e-6)


# ------------------------------------------------------------------------- soundness
def _check_enclosure(target: TargetNet, ticket, points: np.ndarray, *, symbolic: bool) -> None:
    engine = Engine.build(align(target, ticket))
    low, high = target.input_domain
    box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
    diff, separate = engine.differential(box, symbolic=symbolic)
    seen = ticket.network().forward(points) - target.forward(points)
    slack = 1e-12 * (1 + np.abs(seen))
    for enclosure in (diff, separate):
        assert np.all(seen >= enclosure[0] - slack) and np.all(seen <= enclosure[1] + slack)
    composition = engine.composition()
    assert np.all(np.abs(seen) <= composition + slack)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    target=target_nets(activations=CONSTRUCTIBLE, bias=True),
    rho=st.integers(3, 5),
    depth=st.sampled_from(["L+1", "2L"]),
    seed=st.integers(0, 2**32),
)
def test_certified_bounds_hold_at_random_points_and_attack(target, rho, depth, seed) -> None:
    ticket = construct(target, eps=0.5, rho=rho, seed=seed % 1000, param_eps=0.05, depth=depth)
    report = certify(target, ticket, samples=10_000, seed=seed % 7, restarts=2, steps=8, budget=2)
    assert report.verdict.status is not Status.FALSIFIED, report.verdict.detail
    for bound in report.methods.values():
        assert bound.linf >= report.sampled.linf and bound.linf >= report.attacked.linf
        assert bound.l2 >= report.sampled.l2 and bound.l2 >= report.attacked.l2
    points = target.sample_inputs(2000, seed % 11)
    _check_enclosure(target, ticket, points, symbolic=True)


def test_the_2l_relu_cnn_ticket_meets_the_tightness_goal() -> None:
    """Issue 8's goal, certified/attacked below 10 on the small ReLU CNN, at the theorem's settings.

    The 2L ticket (Burkholz, ICML 2022) holds one unit per target unit, so its differences pass
    the target's own weights (univariate pairs, LEMMAS.md 3) and no per-copy ReLU slack builds
    up; the L+1 ticket of the same target is at about 37 (docs/certify.md). Measured 5.61
    (7.75 before back-substitution walked through univariate layers after the first).
    """
    target = resolve_target("digits_cnn_relu")
    ticket = construct(target, eps=0.01, seed=0, depth="2L")
    report = certify(target, ticket)
    assert report.verdict.status is Status.CERTIFIED, report.verdict.detail
    assert report.sampled.linf <= report.attacked.linf <= report.certified <= 0.01
    assert report.certified < 10 * report.attacked.linf


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "gelu"])
def test_differential_enclosure_holds_per_output(activation: str) -> None:
    target = small_conv(activation, domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.5, rho=5, seed=1, param_eps=0.03)
    points = target.sample_inputs(3000, 1)
    _check_enclosure(target, ticket, points, symbolic=False)
    _check_enclosure(target, ticket, points, symbolic=True)


def test_fusion_falls_back_when_its_matrix_would_be_too_large(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_FUSION_ENTRIES the smooth transition is left unfused, and still sound."""
    import ltbounds.certify._bounds as bounds  # noqa: PLC0415

    target = small_conv("tanh", domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.5, rho=5, seed=1, param_eps=0.03)
    assert Engine.build(align(target, ticket))._fusion(0) is not None
    monkeypatch.setattr(bounds, "MAX_FUSION_ENTRIES", 0)
    assert Engine.build(align(target, ticket))._fusion(0) is None
    _check_enclosure(target, ticket, target.sample_inputs(2000, 4), symbolic=True)


def test_symbolic_is_never_looser_and_branching_never_hurts(conv_pair) -> None:
    target, ticket = conv_pair
    engine = Engine.build(align(target, ticket))
    box = (np.zeros((1, 1, 4, 4)), np.ones((1, 1, 4, 4)))
    plain = norms_of(engine.differential(box)[0])[0][0]
    symbolic = norms_of(engine.differential(box, symbolic=True)[0])[0][0]
    assert symbolic <= plain * (1 + 1e-9)
    one = branch_and_bound(engine, budget=1, symbolic=True)
    many = branch_and_bound(engine, budget=8, symbolic=True)
    assert many.boxes == 8 and many.linf <= one.linf * (1 + 1e-9)


def test_point_enclosure_brackets_the_float_error(conv_pair) -> None:
    target, ticket = conv_pair
    engine = Engine.build(align(target, ticket))
    points = target.sample_inputs(50, 3)
    low, high = point_enclosure(engine, points)
    seen = ticket.network().forward(points) - target.forward(points)
    assert np.all(high - low <= 1e-12 * (1 + np.abs(seen)))
    assert np.all(seen >= low - 1e-13) and np.all(seen <= high + 1e-13)


# ---------------------------------------------------------------------- the sandwich
def test_report_has_the_three_numbers(conv_pair) -> None:
    target, ticket = conv_pair
    report = certify(target, ticket, samples=500, restarts=2, steps=5, budget=2)
    assert isinstance(report, CertificationReport)
    assert set(report.methods) == {"composition", "ibp", "separate"}
    assert report.certified == min(m.linf for m in report.methods.values())
    assert report.empirical <= report.certified
    assert report.margin == report.eps - report.certified
    document = report.to_dict()
    for key in ("target", "eps", "sampled_error", "attacked_error", "certified_error", "certified_by", "margin", "verdict", "samples", "seconds"):
        assert key in document
    assert report.verdict.status in (Status.CERTIFIED, Status.TESTED, Status.UNKNOWN)
    if report.verdict.status is Status.CERTIFIED:
        assert report.certified <= report.eps


def test_certified_verdict_when_eps_is_generous(conv_pair) -> None:
    target, ticket = conv_pair
    report = certify(target, ticket, eps=1e6, samples=200, restarts=1, steps=2, budget=1, methods=("separate",))
    assert report.verdict.status is Status.CERTIFIED and report.verdict.rigorous
    report = certify(target, ticket, eps=1e-9, samples=200, restarts=1, steps=2, budget=1, methods=("separate",))
    assert report.verdict.status is Status.UNKNOWN and report.verdict.extra["eps_status"] == "exceeded"


def test_an_injected_wrong_bound_is_falsified(conv_pair) -> None:
    target, ticket = conv_pair

    def wrong(context) -> MethodBound:
        return MethodBound("wrong", 1e-6, 1e-6)

    report = certify(target, ticket, samples=300, restarts=1, steps=3, budget=1, methods=("separate", wrong))
    assert report.verdict.status is Status.FALSIFIED
    counterexample = report.verdict.counterexample
    assert counterexample["method"] == "wrong"
    x = np.asarray(counterexample["input"])[None]
    error = np.abs(ticket.network().forward(x) - target.forward(x))
    assert error.max() > 1e-6 if counterexample["norm"] == "∞" else np.sqrt((error**2).sum()) > 1e-6
    with pytest.raises(BoundViolation, match="FALSIFIED"):
        report.raise_if_falsified()
    assert report.to_dict()["verdict"] == "FALSIFIED"


# ----------------------------------------------------------------------- bad pairs
def test_a_ticket_for_another_architecture_is_refused(conv_pair) -> None:
    _, ticket = conv_pair
    with pytest.raises(InvalidInput, match="do not belong together"):
        certify(small_dense(), ticket, samples=10)


def test_a_ticket_for_another_activation_is_refused(conv_pair) -> None:
    _, ticket = conv_pair
    with pytest.raises(InvalidInput, match="activation 'relu'.*'tanh'"):
        certify(small_conv("tanh"), ticket, samples=10)


def test_a_ticket_for_other_weights_is_refused(conv_pair) -> None:
    _, ticket = conv_pair
    with pytest.raises(InvalidInput, match="fingerprint"):
        certify(small_conv(seed=5), ticket, samples=10)


def test_bad_arguments_are_refused(conv_pair) -> None:
    target, ticket = conv_pair
    with pytest.raises(InvalidInput, match="samples=0"):
        certify(target, ticket, samples=0)
    with pytest.raises(InvalidInput, match="budget"):
        certify(target, ticket, budget=0)
    with pytest.raises(InvalidInput, match="method='magic'"):
        certify(target, ticket, methods=("magic",))
    with pytest.raises(InvalidInput, match="expected a Ticket"):
        certify(target, object())
