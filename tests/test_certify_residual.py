"""certify on networks with residual blocks: rigorous enclosures, reverse mode, the sandwich.

The "tickets" here are hand-made: the target with every weight perturbed (a stand-in that
does not depend on the residual construction), wrapped in the few attributes certify reads.
Soundness is what is tested: every certified bound must be at least the error at 10,000
sampled points and at the attack's best point, and the rigorous enclosure of each network
must contain its float forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from ltbounds.certify import certify
from ltbounds.certify._alignment import align
from ltbounds.certify._autodiff import Tape
from ltbounds.certify._bounds import Engine, RigorousNet
from ltbounds.errors import InvalidInput
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, ResidualBlock, TargetNet
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
        numeric = np.zeros_like(x)
        h = 1e-6
        for index in np.ndindex(x.shape[1:]):
            step = np.zeros_like(x)
            step[(slice(None), *index)] = h
            numeric[(slice(None), *index)] = ((net.forward(x + step) - net.forward(x - step)) * cotangent).sum(1) / (2 * h)
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
