"""TargetNet: validation, the activation rule, forward, bounds and summaries."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from ltbounds.activations import ACTIVATIONS
from ltbounds.backend import to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, TargetNet
from ltbounds.strategies import conv_target_nets, dense_target_nets, target_nets


def small_cnn(activation: str = "relu") -> TargetNet:
    rng = np.random.default_rng(0)
    layers = [
        Conv2d(rng.uniform(-1, 1, (3, 1, 3, 3)), rng.uniform(-1, 1, 3), padding=1),
        AvgPool2d(2),
        Conv2d(rng.uniform(-1, 1, (2, 3, 3, 3)), None, padding=1),
        Flatten(),
        Dense(rng.uniform(-1, 1, (4, 2 * 3 * 3)), rng.uniform(-1, 1, 4)),
    ]
    return TargetNet(layers, (1, 6, 6), activation, (0.0, 1.0))


def manual_forward(net: TargetNet, x: np.ndarray) -> np.ndarray:
    """The activation rule written out: φ after every linear layer but the last."""
    linear = [i for i, layer in enumerate(net.layers) if layer.is_linear]
    phi = ACTIVATIONS[net.activation].forward
    for index, layer in enumerate(net.layers):
        x = layer.forward(x)
        if layer.is_linear and index != linear[-1]:
            x = phi(x)
    return x


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "gelu"])
def test_forward_follows_the_activation_rule(activation) -> None:
    net = small_cnn(activation)
    x = net.sample_inputs(5, seed=1)
    assert np.allclose(net.forward(x), manual_forward(net, x), atol=1e-14)
    assert [net.is_activated(i) for i in range(5)] == [True, False, True, False, False]
    # Pooling acts on post-activation values: with ReLU they are >= 0.
    if activation == "relu":
        assert np.all(net.forward_all(x)[1] >= 0)


def test_structure_and_summary() -> None:
    net = small_cnn()
    assert net.depth == 3
    assert [i for i, _ in net.linear_layers] == [0, 2, 4]
    assert net.shapes == ((1, 6, 6), (3, 6, 6), (3, 3, 3), (2, 3, 3), (18,), (4,))
    assert net.output_shape == (4,)
    summary = net.shape_summary()
    assert summary.widths == (1, 3, 2, 4)
    assert summary.kernel_sizes == (9, 9, 1)
    assert summary.kernel_shapes == ((3, 3), (3, 3), ())
    assert summary.has_bias == (True, False, True)
    assert summary.activation == "relu" and summary.depth == 3
    assert summary.to_dict()["widths"] == [1, 3, 2, 4]
    count = net.num_params
    assert count.total == 3 * 9 + 3 + 2 * 3 * 9 + 4 * 18 + 4
    assert count.nonzero == count.total  # uniform draws are never exactly 0
    assert len(net.lipschitz_inf()) == 3
    assert "relu" in net.describe() and "TargetNet" in repr(net)


def test_num_params_counts_zeros_separately() -> None:
    weight = np.array([[0.0, 1.0], [0.0, 0.0]])
    net = TargetNet([Dense(weight, np.zeros(2))], (2,), "relu")
    assert net.num_params == (1, 6)


def test_interval_is_sound_and_layer_bounds_cover_samples() -> None:
    net = small_cnn("gelu")
    bounds = net.layer_bounds()
    assert len(bounds) == len(net.layers)
    samples = net.sample_inputs(3000, seed=2)
    for (low, high), values in zip(bounds, net.forward_all(samples), strict=True):
        assert low.shape == values.shape[1:]
        assert np.all(values >= low - 1e-12) and np.all(values <= high + 1e-12)
    # Per-sample boxes too, with and without a batch axis.
    x = samples[:4]
    low, high = net.interval(x - 0.05, x + 0.05)
    assert low.shape == (4, 4)
    single_low, single_high = net.interval(x[0] - 0.05, x[0] + 0.05)
    assert np.allclose(single_low, low[0]) and np.allclose(single_high, high[0])


def test_input_norm_bounds() -> None:
    net = small_cnn("tanh")
    bounds = net.input_norm_bounds()
    assert len(bounds) == 3
    assert bounds[0] == 1.0
    assert all(0 < b <= 1.0 for b in bounds[1:])  # tanh outputs, averaged
    samples = net.sample_inputs(2000, seed=3)
    hidden = net.forward_all(samples)
    assert np.abs(hidden[1]).max() <= bounds[1] + 1e-12
    assert np.abs(hidden[3]).max() <= bounds[2] + 1e-12


def test_sample_inputs_are_reproducible_and_inside_the_domain(xp) -> None:
    net = TargetNet([Dense(np.ones((1, 3)))], (3,), "relu", (-2.0, 0.5))
    a = net.sample_inputs(100, seed=4)
    assert a.shape == (100, 3)
    assert np.all(a >= -2.0) and np.all(a < 0.5)
    assert np.array_equal(a, net.sample_inputs(100, seed=4))
    assert not np.array_equal(a, net.sample_inputs(100, seed=5))
    on_backend = net.sample_inputs(100, seed=4, xp=xp)
    assert np.array_equal(to_numpy(on_backend), a)


def test_refusals_name_layer_and_shapes() -> None:
    dense = Dense(np.ones((3, 5)))
    with pytest.raises(InvalidInput, match=r"layer 1 \(Dense 5→3, no bias\).*\(4,\)"):
        TargetNet([Dense(np.ones((4, 2))), dense], (2,), "relu")
    bad = np.ones((2, 2))
    bad[1, 0] = np.nan
    with pytest.raises(
        InvalidInput, match=r"layer 1 \(Dense 2→2, no bias\) weight holds nan at index \(1, 0\)"
    ):
        TargetNet([Dense(np.ones((2, 2))), Dense(bad)], (2,), "relu")
    with pytest.raises(InvalidInput, match="bias holds inf"):
        TargetNet([Dense(np.ones((2, 2)), np.array([0.0, np.inf]))], (2,), "relu")
    with pytest.raises(InvalidInput, match="activation='swish'"):
        TargetNet([dense], (5,), "swish")
    with pytest.raises(InvalidInput, match="low < high"):
        TargetNet([dense], (5,), "relu", (1.0, 1.0))
    with pytest.raises(InvalidInput, match="must be a pair"):
        TargetNet([dense], (5,), "relu", 1.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="no dense or convolution"):
        TargetNet([Flatten()], (5,), "relu")
    with pytest.raises(InvalidInput, match="x has shape"):
        TargetNet([dense], (5,), "relu").forward(np.ones((2, 4)))
    with pytest.raises(InvalidInput, match="lower > upper"):
        TargetNet([dense], (5,), "relu").interval(np.ones(5), np.zeros(5))


# The xp fixture is only a namespace (no state), so sharing it across examples is safe.
@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(net=target_nets())
def test_every_backend_agrees_with_numpy_on_random_nets(net, xp) -> None:
    x = net.sample_inputs(4, seed=0)
    on_numpy = net.forward(x)
    on_backend = net.forward(xp.asarray(x))
    assert np.allclose(to_numpy(on_backend), on_numpy, rtol=1e-12, atol=1e-12)


@settings(max_examples=30)
@given(net=target_nets())
def test_interval_bounds_random_nets(net) -> None:
    low, high = net.layer_bounds()[-1]
    out = net.forward(net.sample_inputs(300, seed=1))
    assert np.all(out >= low - 1e-9) and np.all(out <= high + 1e-9)


@settings(max_examples=20)
@given(net=dense_target_nets(activations=["relu"]))
def test_dense_nets_match_explicit_formula(net) -> None:
    x = net.sample_inputs(3, seed=2)
    h = x
    linear = [layer for _, layer in net.linear_layers]
    for k, layer in enumerate(linear):
        h = h @ layer.weight.T + (layer.bias if layer.bias is not None else 0.0)
        if k < len(linear) - 1:
            h = np.maximum(h, 0.0)
    assert np.allclose(net.forward(x), h, atol=1e-12)


@settings(max_examples=15)
@given(net=conv_target_nets())
def test_conv_strategy_nets_are_valid(net) -> None:
    summary = net.shape_summary()
    assert summary.kinds[-1] == "dense"
    assert net.forward(net.sample_inputs(2, seed=3)).shape == (2, *net.output_shape)
