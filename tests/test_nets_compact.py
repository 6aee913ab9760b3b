"""Dropping dead units: the compacted network computes the same function with fewer units."""

from __future__ import annotations

import numpy as np
import pytest

from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, TargetNet
from ltbounds.nets._compact import drop_dead_units
from ltbounds.nets.residual import ResidualBlock


def _chain(activation: str, pool: type) -> tuple[TargetNet, dict[str, list[int]]]:
    """conv 2→6 → pool → conv 6→5 → flatten → dense 20→4 → dense 4→3 with planted dead units."""
    rng = np.random.default_rng(0)
    first = rng.uniform(-1, 1, (6, 2, 3, 3))
    first[1] = 0.0  # no weights, no bias: exactly φ(0)
    first_bias = rng.uniform(-1, 1, 6)
    first_bias[1] = 0.0
    first[4] = 0.0  # no weights but a bias: a constant unit, read below
    second = rng.uniform(-1, 1, (5, 6, 3, 3))
    second[:, 3] = 0.0  # channel 3 of the first conv is never read
    second[2] = 0.0  # channel 2 of the second conv has no weights ...
    second_bias = rng.uniform(-1, 1, 5)
    third = rng.uniform(-1, 1, (4, 20))
    third[:, 4:8] = 0.0  # ... and channel 1 (features 4..7) is never read
    third[3] = 0.0
    fourth = rng.uniform(-1, 1, (3, 4))
    fourth[:, 3] = 0.0  # unit 3 of the third layer is never read
    layers = [
        Conv2d(first, first_bias, padding=1),
        pool(2),
        Conv2d(second, second_bias, padding=1),
        Flatten(),
        Dense(third, rng.uniform(-1, 1, 4)),
        Dense(fourth, rng.uniform(-1, 1, 3)),
    ]
    net = TargetNet(layers, (2, 4, 4), activation, (-1.0, 1.0), name="planted")
    dropped = {"first": [1, 3], "second": [1], "third": [3]}
    return net, dropped


@pytest.mark.parametrize("pool", [AvgPool2d, MaxPool2d])
def test_dead_units_are_dropped_and_outputs_kept(pool) -> None:
    net, dropped = _chain("relu", pool)
    small = drop_dead_units(net)
    assert small.output_shape == net.output_shape and small.input_shape == net.input_shape
    assert [s[0] for s in small.shapes] == [2, 4, 4, 4, 16, 3, 3]
    assert small.layers[0].weight.shape[0] == 6 - len(dropped["first"])
    assert small.layers[2].weight.shape[:2] == (4, 4)
    x = np.random.default_rng(1).uniform(-1, 1, (50, 2, 4, 4))
    assert np.allclose(small.forward(x), net.forward(x), rtol=0, atol=1e-13)


def test_silent_units_stay_when_phi_of_zero_is_not_zero() -> None:
    net, _ = _chain("sigmoid", AvgPool2d)
    small = drop_dead_units(net)
    assert small.layers[0].weight.shape[0] == 5  # unit 1 is φ(0) = 1/2, which is read
    x = np.random.default_rng(2).uniform(-1, 1, (50, 2, 4, 4))
    assert np.allclose(small.forward(x), net.forward(x), rtol=0, atol=1e-13)


def test_networks_that_are_not_chains_are_returned_unchanged() -> None:
    rng = np.random.default_rng(3)
    block = ResidualBlock((Dense(rng.uniform(-1, 1, (3, 3))), Dense(rng.uniform(-1, 1, (3, 3)))))
    net = TargetNet([Dense(rng.uniform(-1, 1, (3, 2))), block, Dense(rng.uniform(-1, 1, (1, 3)))], (2,), "relu")
    assert drop_dead_units(net) is net
