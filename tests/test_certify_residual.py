"""certify on networks with residual blocks: rigorous enclosures, reverse mode, the sandwich.

Two kinds of tickets. Real ones, built by the L+1 construction (``ltbounds.construct``) on
small residual targets with a small ρ (so subset sums miss and the errors are visible): the
differential bound and the composition bound go through their blocks copy by copy. And
hand-made stand-ins (the target with every weight perturbed, wrapped in the few attributes
certify reads) that record no copies: only the separate enclosure applies to them.
Soundness is what is tested: every certified bound must be at least the error at 10,000
sampled points and at the attack's best point, and the rigorous enclosure of each network
must contain its float forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from _finite_differences import central_vjp
from hypothesis import given, settings
from hypothesis import strategies as st

from ltbounds.certify import MethodBound, certify
from ltbounds.certify._alignment import BlockTransition, align
from ltbounds.certify._autodiff import Tape
from ltbounds.certify._bounds import Engine, RigorousNet, _take
from ltbounds.construct import construct
from ltbounds.errors import InvalidInput
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, ResidualBlock, TargetNet
from ltbounds.strategies import residual_target_nets
from ltbounds.verdict import Status


def residual_net(activation: str = "relu", seed: int = 0, *, activation_out: bool = True) -> TargetNet:
    """conv → block (identity skip) → block (1×1 stride-2 projection) → pool → dense."""
    rng = np.random.default_rng(seed)

    def conv(cout: int, cin: int, k: int = 3, stride: int = 1, padding: int = 1) -> Conv2d:
        return Conv2d(rng.uniform(-0.6, 0.6, (cout, cin, k, k)), rng.uniform(-0.2, 0.2, cout), stride, padding)

    layers = [
        conv(3, 1),
        ResidualBlock((conv(3, 3), conv(3, 3)), None, activation_out),
        ResidualBlock((conv(4, 3, stride=2), conv(4, 4)), conv(4, 3, k=1, stride=2, padding=0), True),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (3, 4)), rng.uniform(-0.3, 0.3, 3)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, (0.0, 1.0), name="smallres")


def _perturb(layer: Any, rng: np.random.Generator, scale: float) -> Any:
    if isinstance(layer, ResidualBlock):
        branch = tuple(_perturb(inner, rng, scale) for inner in layer.branch)
        skip = None if layer.skip is None else _perturb(layer.skip, rng, scale)
        return ResidualBlock(branch, skip, layer.activation_out)
    if isinstance(layer, Dense):
        return Dense(layer.weight + rng.normal(0, scale, layer.weight.shape), layer.bias + rng.normal(0, scale, layer.bias.shape))
    if isinstance(layer, Conv2d):
        return Conv2d(
            layer.weight + rng.normal(0, scale, layer.weight.shape),
            layer.bias + rng.normal(0, scale, layer.bias.shape),
            layer.stride,
            layer.padding,
        )
    return layer


@dataclass
class FakeTicket:
    """The attributes of :class:`ltbounds.ticket.Ticket` that certify reads."""

    net: TargetNet
    target: TargetNet
    eps: float = 0.05
    matches: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        outputs = int(np.prod(self.target.output_shape))
        self.matches = [{"copies": np.zeros((1, 1), np.int64)}] * (self.target.depth - 1)
        self.matches.append({"copies": np.arange(outputs).reshape(outputs, 1)})

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.net.input_shape

    @property
    def input_domain(self) -> tuple[float, float]:
        return self.net.input_domain

    @property
    def activation(self) -> str:
        return self.net.activation

    @property
    def metadata(self) -> dict[str, Any]:
        return {"eps": self.eps}

    def network(self) -> TargetNet:
        return self.net

    def check_target(self, target: TargetNet) -> None:
        if target is not self.target:
            raise InvalidInput("fake ticket: another target")


def perturbed(target: TargetNet, scale: float = 1e-3, seed: int = 1) -> FakeTicket:
    rng = np.random.default_rng(seed)
    layers = [_perturb(layer, rng, scale) for layer in target.layers]
    net = TargetNet(layers, target.input_shape, target.activation, target.input_domain, name="perturbed")
    return FakeTicket(net, target)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "gelu"])
def test_rigorous_enclosure_contains_the_forward_pass(activation: str) -> None:
    net = residual_net(activation, seed=3)
    rng = np.random.default_rng(0)
    lo = rng.uniform(0, 0.5, (4, 1, 4, 4))
    hi = lo + rng.uniform(0, 0.5, lo.shape)
    enclosures = RigorousNet(net).enclose((lo, hi))
    points = lo[None] + (hi - lo)[None] * rng.uniform(0, 1, (500, *lo.shape))
    for index, values in enumerate(net.forward_all(points.reshape(-1, 1, 4, 4))):
        values = values.reshape(500, 4, *values.shape[1:])
        low, high = enclosures[index][1]
        assert np.all(values >= low[None]) and np.all(values <= high[None]), index
    # A point box gives the float forward pass to within rounding.
    point = rng.uniform(0, 1, (2, 1, 4, 4))
    low, high = RigorousNet(net).enclose((point, point))[-1][1]
    exact = net.forward(point)
    assert np.all(low <= exact) and np.all(exact <= high) and np.all(high - low < 1e-9)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_backward_through_residual_blocks_matches_finite_differences(activation: str) -> None:
    for activation_out in (True, False):
        net = residual_net(activation, seed=5, activation_out=activation_out)
        rng = np.random.default_rng(2)
        x = rng.uniform(0, 1, (3, 1, 4, 4))
        cotangent = rng.normal(size=(3, 3))
        gradient = Tape(net, x).vjp(cotangent)
        numeric = central_vjp(net, x, cotangent)
        assert np.allclose(gradient, numeric, atol=1e-6 * (1 + np.abs(numeric).max()))
        assert np.allclose(Tape(net, x).output, net.forward(x))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_sandwich_holds_on_a_perturbed_residual_network(activation: str) -> None:
    target = residual_net(activation, seed=7)
    ticket = perturbed(target, scale=2e-3)
    report = certify(target, ticket, samples=10_000, seed=1, restarts=2, steps=10, budget=4)
    assert report.verdict.status is not Status.FALSIFIED, report.verdict.detail
    assert set(report.methods) == {"ibp", "separate"}
    assert report.sampled.linf > 0
    for bound in report.methods.values():
        assert bound.linf >= report.sampled.linf and bound.linf >= report.attacked.linf
        assert bound.l2 >= report.sampled.l2 and bound.l2 >= report.attacked.l2
    # Branch and bound of the separate enclosure never loses to the unsplit one.
    assert report.methods["ibp"].linf <= report.methods["separate"].linf
    # The attack climbs from the best sampled points, so it never ends below them.
    assert report.attacked.linf >= report.sampled.linf


def test_differential_on_residual_targets_is_the_separate_enclosure() -> None:
    target = residual_net("relu", seed=9)
    ticket = perturbed(target)
    engine = Engine.build(align(target, ticket))
    box = (np.zeros((1, 1, 4, 4)), np.ones((1, 1, 4, 4)))
    diff, separate = engine.differential(box, symbolic=True)
    seen = ticket.network().forward(target.sample_inputs(2000, 3)) - target.forward(target.sample_inputs(2000, 3))
    assert np.all(seen >= diff[0]) and np.all(seen <= diff[1])
    with pytest.raises(InvalidInput, match="residual"):
        engine.composition()


def test_a_residual_ticket_with_other_blocks_is_refused() -> None:
    target = residual_net("relu", seed=2)
    other = residual_net("relu", seed=2, activation_out=False)
    ticket = FakeTicket(other, target)
    with pytest.raises(InvalidInput, match="residual blocks"):
        align(target, ticket)
    plain = TargetNet(
        [Conv2d(np.ones((3, 1, 3, 3)), None, 1, 1), AvgPool2d(2), Flatten(), Dense(np.ones((3, 12)))],
        (1, 4, 4),
        "relu",
        (0.0, 1.0),
    )
    with pytest.raises(InvalidInput):
        align(target, FakeTicket(plain, target))


# ------------------------------------------------------- real tickets (L+1 construction)
def small_resnet(activation: str, activation_out: bool, seed: int = 0) -> TargetNet:
    """Stem conv → identity block → stride-2 projection block (biases on both paths) → head."""
    rng = np.random.default_rng(seed)

    def conv(cout: int, cin: int, k: int, stride: int = 1) -> Conv2d:
        return Conv2d(rng.uniform(-0.5, 0.5, (cout, cin, k, k)), rng.uniform(-0.2, 0.2, cout), stride, k // 2)

    layers = [
        conv(2, 1, 3),
        ResidualBlock((conv(2, 2, 3), conv(2, 2, 3)), None, activation_out),
        ResidualBlock((conv(3, 2, 3, stride=2), conv(3, 3, 3)), conv(3, 2, 1, stride=2), activation_out),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (2, 3)), rng.uniform(-0.2, 0.2, 2)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, (0.0, 1.0), name="small_resnet")


def domain_box(target: TargetNet) -> tuple[np.ndarray, np.ndarray]:
    low, high = target.input_domain
    return np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high)


def sampled_difference(target: TargetNet, ticket: Any, count: int, seed: int) -> np.ndarray:
    x = target.sample_inputs(count, seed)
    return ticket.network().forward(x) - target.forward(x)


@pytest.mark.parametrize(("activation", "activation_out"), [("relu", True), ("relu", False), ("gelu", False)])
def test_differential_through_blocks_encloses_sampled_errors(activation: str, activation_out: bool) -> None:
    target = small_resnet(activation, activation_out)
    ticket = construct(target, eps=0.05, rho=4, seed=1)
    assert ticket.metadata["missed_subset_sums"] > 0  # a small ρ: errors to see
    alignment = align(target, ticket)
    kinds = [(type(step).__name__, getattr(step, "skip", 0) is None) for step in alignment.steps]
    assert kinds == [("Transition", False), ("BlockTransition", True), ("BlockTransition", False), ("Transition", False)]
    engine = Engine.build(alignment)
    diff, separate = engine.differential(domain_box(target))
    seen = sampled_difference(target, ticket, 10_000, seed=3)
    assert np.abs(seen).max() > 1e-4
    assert np.all(seen >= diff[0]) and np.all(seen <= diff[1])
    assert np.all(diff[0] >= separate[0]) and np.all(diff[1] <= separate[1])
    composition = engine.composition()
    assert np.all(np.abs(seen).max(axis=0) <= composition)


@pytest.mark.parametrize(("activation", "activation_out"), [("relu", True), ("leaky_relu", False), ("tanh", True), ("gelu", False)])
def test_transitions_are_tight_at_points(activation: str, activation_out: bool) -> None:
    """On point boxes every pre-activation difference a transition computes (branch layers,
    block sums, plain layers), *before* it is intersected with the separate enclosure ``ẑ − z``,
    must be narrow and overlap ``ẑ − z`` (both enclose the same number): a missing skip part,
    a bias counted twice or a wrong copy would show here, where the loose bounds of whole boxes
    hide it."""
    target = small_resnet(activation, activation_out, seed=6)
    ticket = construct(target, eps=0.05, rho=4, seed=2)
    engine = Engine.build(align(target, ticket))
    calls: list[tuple[Any, Any, Any]] = []
    original = engine._through

    def spy(step: Any, delta: Any, target_pair: Any, source_pair: Any) -> Any:
        z = _take(target_pair[0], step.tracked_units)
        z_hat = _take(source_pair[0], step.tracked)
        calls.append((delta, z, z_hat))
        return original(step, delta, target_pair, source_pair)

    engine._through = spy  # type: ignore[method-assign]
    x = target.sample_inputs(64, 9)
    engine.differential((x, x))
    assert len(calls) == 1 + 3 + 3 + 1  # stem, two branch layers + sum per block, head
    for delta, z, z_hat in calls:
        low, high = z_hat[0] - z[1], z_hat[1] - z[0]
        assert np.max(delta[1] - delta[0]) <= 1e-6  # rounding; Taylor remainders for smooth φ
        assert np.all(delta[0] <= high + 1e-12) and np.all(low - 1e-12 <= delta[1])
    assert max(np.abs(delta[0]).max() for delta, _, _ in calls) > 1e-3


def test_every_carried_copy_stays_in_its_enclosure() -> None:
    """Per step, the enclosure of each tracked copy's difference holds at sampled inputs."""
    target = small_resnet("relu", True, seed=4)
    ticket = construct(target, eps=0.05, rho=4, seed=2)
    alignment = align(target, ticket)
    engine = Engine.build(alignment)
    seen_steps: list[Any] = []
    original = engine._after

    def spy(step: Any, d: Any, t_enc: list, s_enc: list) -> Any:
        result = original(step, d, t_enc, s_enc)
        seen_steps.append((step, (d[0].copy(), d[1].copy())))
        return result

    engine._after = spy  # type: ignore[method-assign]
    engine.differential(domain_box(target))
    x = target.sample_inputs(3000, 5)
    mine, theirs = alignment.ticket_net.forward_all(x), target.forward_all(x)
    assert len(seen_steps) == len(alignment.steps)
    for step, (lo, hi) in seen_steps:
        difference = mine[step.source_layer][:, step.tracked] - theirs[step.target_layer][:, step.tracked_units]
        assert np.all(difference >= lo) and np.all(difference <= hi), step.target_layer
    assert any(isinstance(step, BlockTransition) for step, _ in seen_steps)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_sandwich_holds_on_constructed_residual_tickets(activation: str) -> None:
    target = small_resnet(activation, True, seed=2)
    ticket = construct(target, eps=0.05, rho=5, seed=3)
    report = certify(target, ticket, samples=10_000, seed=1, restarts=2, steps=10, budget=4)
    assert report.verdict.status is not Status.FALSIFIED, report.verdict.detail
    assert set(report.methods) == {"composition", "ibp", "separate"}
    for bound in report.methods.values():
        assert bound.linf >= report.sampled.linf and bound.linf >= report.attacked.linf
        assert bound.l2 >= report.sampled.l2 and bound.l2 >= report.attacked.l2
    assert report.methods["ibp"].linf <= report.methods["separate"].linf


@settings(max_examples=10, deadline=None)
@given(
    target=residual_target_nets(
        stem=True, bias=True, max_channels=2, max_size=3, max_blocks=2,
        activations=["relu", "leaky_relu", "tanh", "sigmoid", "gelu"], input_domain=(0.0, 1.0),
    ),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_bounds_hold_on_random_residual_tickets(target: TargetNet, seed: int) -> None:
    ticket = construct(target, eps=0.05, rho=3, seed=seed)
    engine = Engine.build(align(target, ticket))
    diff, _ = engine.differential(domain_box(target))
    seen = sampled_difference(target, ticket, 10_000, seed=seed)
    assert np.all(seen >= diff[0]) and np.all(seen <= diff[1])
    assert np.all(np.abs(seen).max(axis=0) <= engine.composition())


def test_a_wrong_bound_on_a_residual_ticket_is_falsified() -> None:
    target = small_resnet("relu", True)
    ticket = construct(target, eps=0.05, rho=4, seed=1)

    def wrong(context: Any) -> MethodBound:
        return MethodBound("wrong", 1e-9, 1e-9)

    report = certify(target, ticket, samples=500, restarts=1, steps=3, budget=1, methods=("ibp", wrong))
    assert report.verdict.status is Status.FALSIFIED
    assert report.verdict.counterexample["method"] == "wrong"


def test_a_residual_ticket_whose_matches_disagree_is_refused() -> None:
    import dataclasses  # noqa: PLC0415

    target = small_resnet("relu", True)
    ticket = construct(target, eps=0.05, rho=3, seed=1)
    matches = [dict(match) for match in ticket.matches]
    matches[1]["branch_position"] = 1
    with pytest.raises(InvalidInput, match="branch layer"):
        align(target, dataclasses.replace(ticket, matches=tuple(matches)))
    residual = [dict(block) for block in ticket.residual]
    residual[0]["target_layer"] = 2
    with pytest.raises(InvalidInput, match="does not stand for"):
        align(target, dataclasses.replace(ticket, residual=tuple(residual)))
