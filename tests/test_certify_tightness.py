"""Tightness guards of the certified bounds (soundness is tested in test_certify*.py).

The composition bound and the construction's ``predicted_error`` evaluate the same lemma
(LEMMAS.md 4) on the same realised quantities; certify's version is per copy, so it may only
be tighter, up to the input bounds each side uses. Before the univariate ReLU layer bounded
``E⁻·φ(−x̂)`` by ``sup|x̂|`` instead of ``sup φ(−x̂)`` (which is 0 on a nonnegative box, where the
construction leaves ``E⁻ = w`` unrealised), the two differed by a factor of about 10⁶.
"""

from __future__ import annotations

import numpy as np
import pytest

from ltbounds.certify._alignment import align
from ltbounds.certify._bounds import Engine
from ltbounds.construct import construct
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet


def small_conv(activation: str, domain: tuple[float, float]) -> TargetNet:
    rng = np.random.default_rng(4)
    layers = [
        Conv2d(rng.uniform(-1, 1, (2, 1, 3, 3)), rng.uniform(-0.3, 0.3, 2), padding=1),
        AvgPool2d(2),
        Flatten(),
        Dense(rng.uniform(-1, 1, (3, 8)), rng.uniform(-0.3, 0.3, 3)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, domain, name="smallconv")


@pytest.mark.parametrize(
    ("activation", "domain"),
    [("relu", (0.0, 1.0)), ("relu", (-1.0, 1.0)), ("leaky_relu", (0.0, 1.0)), ("tanh", (0.0, 1.0))],
)
def test_composition_is_not_looser_than_the_constructions_prediction(activation, domain) -> None:
    target = small_conv(activation, domain)
    ticket = construct(target, eps=0.5, rho=6, seed=3, param_eps=0.01)
    composition = float(np.max(Engine.build(align(target, ticket)).composition()))
    predicted = float(ticket.metadata["predicted_error"])
    assert composition <= 2.0 * predicted, (composition, predicted)
    sampled = np.abs(ticket.network().forward(target.sample_inputs(2000, 1)) - target.forward(target.sample_inputs(2000, 1)))
    assert composition >= sampled.max()
