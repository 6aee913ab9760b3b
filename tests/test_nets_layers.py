"""Layer kinds: forward passes against literal loops, interval soundness, norms, backends."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS
from ltbounds.backend import namespace, to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.nets import AvgPool1d, AvgPool2d, Conv1d, Conv2d, Dense, Flatten, MaxPool1d, MaxPool2d
from ltbounds.nets._activation_bounds import activation_interval

# -- slow, obvious twins -----------------------------------------------------------------------


def dense_loop(x, weight, bias):
    out = np.zeros((x.shape[0], weight.shape[0]))
    for b in range(x.shape[0]):
        for j in range(weight.shape[0]):
            total = 0.0 if bias is None else bias[j]
            for i in range(weight.shape[1]):
                total += weight[j, i] * x[b, i]
            out[b, j] = total
    return out


def conv2d_loop(x, weight, bias, stride, padding):
    batch, channels, height, width = x.shape
    out_ch, _, kh, kw = weight.shape
    oh = (height + 2 * padding[0] - kh) // stride[0] + 1
    ow = (width + 2 * padding[1] - kw) // stride[1] + 1
    out = np.zeros((batch, out_ch, oh, ow))
    for b, o, i, j in itertools.product(range(batch), range(out_ch), range(oh), range(ow)):
        total = 0.0 if bias is None else bias[o]
        for c, u, v in itertools.product(range(channels), range(kh), range(kw)):
            row = i * stride[0] + u - padding[0]
            col = j * stride[1] + v - padding[1]
            if 0 <= row < height and 0 <= col < width:
                total += weight[o, c, u, v] * x[b, c, row, col]
        out[b, o, i, j] = total
    return out


def conv1d_loop(x, weight, bias, stride, padding):
    out = conv2d_loop(x[:, :, None, :], weight[:, :, None, :], bias, (1, stride), (0, padding))
    return out[:, :, 0, :]


def pool2d_loop(x, kernel, stride, reduce):
    batch, channels, height, width = x.shape
    oh = (height - kernel[0]) // stride[0] + 1
    ow = (width - kernel[1]) // stride[1] + 1
    out = np.zeros((batch, channels, oh, ow))
    for b, c, i, j in itertools.product(range(batch), range(channels), range(oh), range(ow)):
        window = [
            x[b, c, i * stride[0] + u, j * stride[1] + v]
            for u in range(kernel[0])
            for v in range(kernel[1])
        ]
        out[b, c, i, j] = np.mean(window) if reduce == "mean" else max(window)
    return out


# -- forward passes ---------------------------------------------------------------------------


@given(
    data=st.data(),
    batch=st.integers(1, 3),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 5),
    bias=st.booleans(),
)
def test_dense_matches_loop(data, batch, n_in, n_out, bias) -> None:
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    weight = rng.uniform(-1, 1, (n_out, n_in))
    b = rng.uniform(-1, 1, n_out) if bias else None
    x = rng.normal(size=(batch, n_in))
    layer = Dense(weight, b)
    assert np.allclose(layer.forward(x), dense_loop(x, weight, b), atol=1e-13)
    assert layer.output_shape((n_in,)) == (n_out,)
    assert layer.fan_in == n_in and layer.kernel_size == 1


@given(
    seed=st.integers(0, 2**32 - 1),
    channels=st.integers(1, 3),
    out_ch=st.integers(1, 3),
    size=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    bias=st.booleans(),
)
def test_conv2d_matches_loop(seed, channels, out_ch, size, kernel, stride, padding, bias) -> None:
    if any(s + 2 * p < k for s, p, k in zip(size, padding, kernel, strict=True)):
        return
    rng = np.random.default_rng(seed)
    weight = rng.uniform(-1, 1, (out_ch, channels, *kernel))
    b = rng.uniform(-1, 1, out_ch) if bias else None
    x = rng.normal(size=(2, channels, *size))
    layer = Conv2d(weight, b, stride=stride, padding=padding)
    expected = conv2d_loop(x, weight, b, stride, padding)
    assert layer.output_shape(x.shape[1:]) == expected.shape[1:]
    assert np.allclose(layer.forward(x), expected, atol=1e-12)
    assert layer.kernel_size == kernel[0] * kernel[1]
    assert layer.fan_in == channels * kernel[0] * kernel[1]


@given(
    seed=st.integers(0, 2**32 - 1),
    length=st.integers(1, 8),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
)
def test_conv1d_matches_loop(seed, length, kernel, stride, padding) -> None:
    if length + 2 * padding < kernel:
        return
    rng = np.random.default_rng(seed)
    weight = rng.uniform(-1, 1, (3, 2, kernel))
    bias = rng.uniform(-1, 1, 3)
    x = rng.normal(size=(2, 2, length))
    layer = Conv1d(weight, bias, stride=stride, padding=padding)
    assert np.allclose(layer.forward(x), conv1d_loop(x, weight, bias, stride, padding), atol=1e-12)


def test_conv_splits_large_batches_into_chunks(monkeypatch) -> None:
    from ltbounds.nets import conv

    rng = np.random.default_rng(0)
    layer = Conv2d(rng.uniform(-1, 1, (3, 2, 3, 3)), rng.uniform(-1, 1, 3), padding=1)
    x = rng.normal(size=(7, 2, 5, 5))
    whole = layer.forward(x)
    monkeypatch.setattr(conv, "IM2COL_BUDGET_BYTES", 1)  # one sample per chunk
    # BLAS may sum in another order for another matrix shape: equal to rounding, not bitwise.
    np.testing.assert_allclose(layer.forward(x), whole, rtol=1e-13, atol=1e-13)
    assert layer.forward(x[:0]).shape == (0, 3, 5, 5)


@pytest.mark.parametrize(
    ("cls", "reduce"), [(AvgPool2d, "mean"), (MaxPool2d, "max")], ids=["avg", "max"]
)
@pytest.mark.parametrize(("kernel", "stride"), [(2, None), ((2, 3), (1, 2)), (3, 1)])
def test_pool2d_matches_loop(cls, reduce, kernel, stride) -> None:
    x = np.random.default_rng(1).normal(size=(2, 3, 7, 6))
    layer = cls(kernel, stride)
    k = layer.kernel
    s = layer.stride
    expected = pool2d_loop(x, k, s, reduce)
    assert layer.output_shape(x.shape[1:]) == expected.shape[1:]
    assert np.allclose(layer.forward(x), expected, atol=1e-14)


@pytest.mark.parametrize(("cls", "reduce"), [(AvgPool1d, "mean"), (MaxPool1d, "max")])
def test_pool1d_matches_loop(cls, reduce) -> None:
    x = np.random.default_rng(2).normal(size=(2, 3, 9))
    layer = cls(3, 2)
    expected = pool2d_loop(x[:, :, None, :], (1, 3), (1, 2), reduce)[:, :, 0, :]
    assert np.allclose(layer.forward(x), expected, atol=1e-14)


def test_flatten_is_pytorch_row_major() -> None:
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    out = Flatten().forward(x)
    assert out.shape == (2, 60)
    assert out[1, 1 * 20 + 2 * 5 + 3] == x[1, 1, 2, 3]
    assert Flatten().output_shape((3, 4, 5)) == (60,)


# -- backends ---------------------------------------------------------------------------------


def _layers():
    rng = np.random.default_rng(3)
    return [
        (Dense(rng.uniform(-1, 1, (4, 6)), rng.uniform(-1, 1, 4)), (6,)),
        (Conv2d(rng.uniform(-1, 1, (4, 2, 3, 2)), None, stride=(2, 1), padding=1), (2, 6, 5)),
        (Conv1d(rng.uniform(-1, 1, (3, 2, 3)), rng.uniform(-1, 1, 3), padding=1), (2, 7)),
        (AvgPool2d(2), (3, 4, 5)),
        (MaxPool2d(2, 1), (3, 4, 5)),
        (AvgPool1d(2), (3, 5)),
        (MaxPool1d(3), (3, 7)),
        (Flatten(), (3, 4, 5)),
    ]


@pytest.mark.parametrize(("layer", "shape"), _layers(), ids=lambda v: getattr(v, "kind", ""))
def test_every_backend_agrees_with_numpy(layer, shape, xp) -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, *shape))
    on_numpy = layer.forward(x)
    on_backend = layer.forward(xp.asarray(x))
    assert namespace(on_backend) is xp
    assert np.allclose(to_numpy(on_backend), on_numpy, rtol=0, atol=1e-13)
    low, high = layer.interval(x - 0.1, x + 0.1)
    low_s, high_s = layer.interval(xp.asarray(x - 0.1), xp.asarray(x + 0.1))
    assert np.allclose(to_numpy(low_s), low, atol=1e-13)
    assert np.allclose(to_numpy(high_s), high, atol=1e-13)


# -- interval bound propagation -------------------------------------------------------------


@pytest.mark.parametrize(("layer", "shape"), _layers(), ids=lambda v: getattr(v, "kind", ""))
def test_interval_is_sound_on_dense_samples(layer, shape) -> None:
    rng = np.random.default_rng(5)
    center = rng.normal(size=(1, *shape))
    radius = rng.uniform(0, 0.5, size=(1, *shape))
    low, high = layer.interval(center - radius, center + radius)
    samples = center + radius * rng.uniform(-1, 1, size=(4000, *shape))
    corners = center + radius * rng.choice([-1.0, 1.0], size=(4000, *shape))
    for points in (samples, corners):
        out = layer.forward(points)
        assert np.all(out >= low - 1e-12) and np.all(out <= high + 1e-12)
    # Point intervals give the forward pass back.
    point_low, point_high = layer.interval(center, center)
    assert np.allclose(point_low, layer.forward(center), atol=1e-13)
    assert np.allclose(point_high, layer.forward(center), atol=1e-13)


def test_dense_interval_is_tight_at_extremes() -> None:
    layer = Dense(np.array([[1.0, -2.0]]), np.array([0.5]))
    low, high = layer.interval(np.array([[0.0, 0.0]]), np.array([[1.0, 1.0]]))
    assert low[0, 0] == pytest.approx(-1.5) and high[0, 0] == pytest.approx(1.5)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_interval_is_sound(name) -> None:
    activation = ACTIVATIONS[name]
    rng = np.random.default_rng(6)
    lower = rng.uniform(-4, 4, 300)
    upper = lower + rng.uniform(0, 3, 300)
    low, high = activation_interval(activation, lower, upper)
    points = lower[:, None] + (upper - lower)[:, None] * np.linspace(0, 1, 401)[None, :]
    values = activation.forward(points)
    assert np.all(values >= low[:, None] - 1e-15)
    assert np.all(values <= high[:, None] + 1e-15)


@pytest.mark.parametrize(
    ("name", "minimiser"), [("gelu", -0.7517915246935645), ("silu", -1.278464542761074)]
)
def test_nonmonotone_minimum_is_attained(name, minimiser) -> None:
    activation = ACTIVATIONS[name]
    low, _ = activation_interval(activation, np.array([-3.0]), np.array([1.0]))
    assert low[0] <= float(activation.forward(np.array([minimiser]))[0])
    assert low[0] > float(activation.forward(np.array([minimiser]))[0]) - 1e-12


# -- norms --------------------------------------------------------------------------------------


def test_lipschitz_inf_formulas() -> None:
    weight = np.array([[1.0, -2.0, 0.5], [0.1, 0.2, -0.3]])
    assert Dense(weight).lipschitz_inf() == pytest.approx(3.5)
    kernel = np.zeros((2, 3, 2, 2))
    kernel[1, :, :, :] = -0.5
    kernel[0, 0, 0, 0] = 4.0
    assert Conv2d(kernel).lipschitz_inf() == pytest.approx(6.0)
    assert AvgPool2d(2).lipschitz_inf() == 1.0
    assert MaxPool1d(2).lipschitz_inf() == 1.0
    assert Flatten().lipschitz_inf() == 1.0


@pytest.mark.parametrize(("layer", "shape"), _layers(), ids=lambda v: getattr(v, "kind", ""))
def test_lipschitz_inf_bounds_observed_ratios(layer, shape) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(500, *shape))
    y = x + rng.uniform(-1, 1, size=x.shape)
    numerator = np.abs(layer.forward(x) - layer.forward(y)).reshape(500, -1).max(axis=1)
    denominator = np.abs(x - y).reshape(500, -1).max(axis=1)
    assert np.all(numerator <= layer.lipschitz_inf() * denominator + 1e-12)


# -- refusals -----------------------------------------------------------------------------------


def test_shape_errors_name_layer_and_shapes() -> None:
    conv = Conv2d(np.ones((4, 3, 3, 3)))
    with pytest.raises(
        InvalidInput, match=r"layer 2 \(Conv2d 3→4, kernel 3×3, no bias\).*\(2, 8, 8\)"
    ):
        conv.output_shape((2, 8, 8), index=2)
    with pytest.raises(InvalidInput, match="smaller than the kernel"):
        conv.output_shape((3, 2, 2))
    with pytest.raises(InvalidInput, match="insert a Flatten"):
        Dense(np.ones((2, 12))).output_shape((3, 2, 2), index=1)
    with pytest.raises(InvalidInput, match="smaller than the pooling kernel"):
        AvgPool2d(3).output_shape((1, 2, 5))
    with pytest.raises(InvalidInput, match="expected 4 dimensions"):
        Conv2d(np.ones((2, 2, 3)))
    with pytest.raises(InvalidInput, match="Dense bias has shape"):
        Dense(np.ones((2, 3)), np.ones(3))
    with pytest.raises(InvalidInput, match="stride"):
        Conv2d(np.ones((1, 1, 1, 1)), stride=0)
    with pytest.raises(InvalidInput, match="padding"):
        Conv1d(np.ones((1, 1, 1)), padding=-1)
    with pytest.raises(InvalidInput, match="kernel"):
        MaxPool2d((2, 2, 2))


def test_layers_are_immutable() -> None:
    layer = Dense(np.ones((2, 2)))
    with pytest.raises(ValueError):
        layer.weight[0, 0] = 5.0
    with pytest.raises(AttributeError):
        layer.bias = np.ones(2)  # type: ignore[misc]


# -- sparse paths of wide pruned layers (tickets) ---------------------------------------------


def _sparse_weight(rng, shape, density):
    return rng.uniform(-1, 1, shape) * (rng.random(shape) < density)


@pytest.fixture
def always_sparse(monkeypatch):
    """Send every layer down the sparse numpy paths, however small or dense."""
    from ltbounds.nets import _base

    monkeypatch.setattr(_base, "SPARSE_MIN_ENTRIES", 0)
    monkeypatch.setattr(_base, "SPARSE_DENSITY", 1.0)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    bias=st.booleans(),
)
def test_sparse_conv2d_matches_dense_path_and_loop(
    always_sparse, seed, size, kernel, stride, padding, bias
) -> None:
    from ltbounds.nets._sparse import is_sparse

    if any(s + 2 * p < k for s, p, k in zip(size, padding, kernel, strict=True)):
        return
    rng = np.random.default_rng(seed)
    weight = _sparse_weight(rng, (int(rng.integers(1, 7)), int(rng.integers(1, 7)), *kernel), 0.2)
    b = rng.uniform(-1, 1, weight.shape[0]) if bias else None
    layer = Conv2d(weight, b, stride=stride, padding=padding)
    x = rng.normal(size=(2, weight.shape[1], *size))
    fast = layer.forward(x)
    low, high = layer.interval(x - 0.25, x + 0.25)
    assert is_sparse(layer)
    # The slow, obvious twins: the im2col path every namespace takes, and literal loops.
    dense = layer._apply_dense(x, layer.on(np, "matrix"), layer.on(np, "bias") if bias else None)
    spread = layer._apply_dense(np.full_like(x, 0.25), layer.on(np, "abs_matrix"), None)
    scale = 1.0 + np.abs(weight).sum(axis=(1, 2, 3)).max() * np.abs(x).max()
    assert fast.shape == dense.shape
    assert np.max(np.abs(fast - dense), initial=0.0) <= 1e-13 * scale
    assert np.max(np.abs((high - low) / 2 - spread), initial=0.0) <= 1e-13 * scale
    assert np.allclose(fast, conv2d_loop(x, weight, b, stride, padding), rtol=0, atol=1e-12 * scale)


def test_sparse_conv1d_matches_loop(always_sparse) -> None:
    rng = np.random.default_rng(11)
    for stride, padding in itertools.product((1, 2, 3), (0, 1, 2)):
        weight = _sparse_weight(rng, (9, 7, 3), 0.2)
        bias = rng.uniform(-1, 1, 9)
        layer = Conv1d(weight, bias, stride=stride, padding=padding)
        x = rng.normal(size=(2, 7, 11))
        expected = conv1d_loop(x, weight, bias, stride, padding)
        assert np.allclose(layer.forward(x), expected, rtol=0, atol=1e-13)


def test_sparse_conv_dead_units_hold_the_bias_and_chunks_agree(always_sparse, monkeypatch) -> None:
    from ltbounds.nets import _sparse

    rng = np.random.default_rng(12)
    weight = _sparse_weight(rng, (6, 5, 3, 3), 0.15)
    weight[[1, 4]] = 0.0  # two dead outputs
    weight[:, 2] = 0.0  # one input nobody reads
    bias = rng.uniform(-1, 1, 6)
    layer = Conv2d(weight, bias, stride=(2, 1), padding=1)
    x = rng.normal(size=(5, 5, 7, 6))
    whole = layer.forward(x)
    plan = _sparse.cached_conv_plan(layer, "matrix", (7, 6))
    assert plan.channels.tolist() == [c for c in range(5) if c != 2]
    assert 1 not in plan.outputs and 4 not in plan.outputs
    assert np.all(whole[:, [1, 4]] == bias[[1, 4], None, None])
    monkeypatch.setattr(_sparse, "PADDED_BUDGET_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(_sparse, "ACCUMULATOR_BYTES", 1)  # one output row per task
    layer_again = Conv2d(weight, bias, stride=(2, 1), padding=1)
    assert np.allclose(layer_again.forward(x), whole, rtol=0, atol=1e-13)
    x[:, 2] = np.nan  # an unread input channel is never touched
    assert np.all(np.isfinite(layer.forward(x)))


def test_sparse_dense_matches_loop(always_sparse) -> None:
    from ltbounds.nets import _sparse

    rng = np.random.default_rng(13)
    weight = _sparse_weight(rng, (12, 40), 0.05)
    weight[3] = 0.0
    bias = rng.uniform(-1, 1, 12)
    layer = Dense(weight, bias)
    x = rng.normal(size=(4, 40))
    out = layer.forward(x)
    plan = _sparse.cached_dense_plan(layer)
    assert plan.columns.tolist() == np.flatnonzero(np.any(weight != 0, axis=0)).tolist()
    assert np.allclose(out, dense_loop(x, weight, bias), rtol=0, atol=1e-13)
    assert np.all(out[:, 3] == bias[3])


def test_sparse_layers_keep_the_array_namespace_path(always_sparse, xp) -> None:
    rng = np.random.default_rng(14)
    conv = Conv2d(_sparse_weight(rng, (8, 6, 3, 3), 0.1), rng.uniform(-1, 1, 8), stride=2, padding=1)
    dense = Dense(_sparse_weight(rng, (5, 30), 0.1), rng.uniform(-1, 1, 5))
    for layer, shape in ((conv, (6, 7, 7)), (dense, (30,))):
        x = rng.normal(size=(3, *shape))
        on_numpy = layer.forward(x)
        on_backend = layer.forward(xp.asarray(x))
        assert namespace(on_backend) is xp
        assert np.allclose(to_numpy(on_backend), on_numpy, rtol=0, atol=1e-13)
        low, high = layer.interval(x - 0.1, x + 0.1)
        low_s, high_s = layer.interval(xp.asarray(x - 0.1), xp.asarray(x + 0.1))
        assert np.allclose(to_numpy(low_s), low, rtol=0, atol=1e-13)
        assert np.allclose(to_numpy(high_s), high, rtol=0, atol=1e-13)


def test_sparse_paths_give_the_bits_of_a_csr_product(always_sparse) -> None:
    """Both sparse paths sum in the order of a scipy CSR product over im2col columns (the path
    these layers took before), so they reproduce it bit for bit, stride and padding included."""
    from scipy import sparse

    from ltbounds.nets._gather import window_indices, window_output_shape

    rng = np.random.default_rng(15)
    for stride, padding in [((1, 1), (1, 1)), ((2, 3), (0, 2)), ((3, 1), (2, 0))]:
        weight = _sparse_weight(rng, (10, 8, 3, 4), 0.1)
        bias = rng.uniform(-1, 1, 10)
        layer = Conv2d(weight, bias, stride=stride, padding=padding)
        x = rng.normal(size=(3, 8, 9, 11))
        out_spatial = window_output_shape((9, 11), (3, 4), stride, padding)
        flat = np.concatenate([x.reshape(3, 8, -1), np.zeros((3, 8, 1))], axis=2)
        cols = np.take(flat, window_indices((9, 11), (3, 4), stride, padding), axis=2)
        cols = cols.reshape(3, 8 * 12, -1).transpose(1, 0, 2).reshape(8 * 12, -1)
        product = sparse.csr_array(weight.reshape(10, -1)) @ cols
        expected = product.reshape(10, 3, -1).transpose(1, 0, 2) + bias[:, None]
        assert np.array_equal(layer.forward(x).reshape(3, 10, -1), expected)
        assert layer.forward(x).shape == (3, 10, *out_spatial)
    dense = Dense(_sparse_weight(rng, (7, 50), 0.1), rng.uniform(-1, 1, 7))
    x = rng.normal(size=(4, 50))
    expected = (sparse.csr_array(dense.weight) @ x.T).T + dense.bias
    assert np.array_equal(dense.forward(x), expected)
