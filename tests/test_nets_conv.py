"""The im2col forward path of :mod:`ltbounds.nets.conv`: bit for bit the code it replaced.

``reference_apply_dense`` is ``_ConvNd._apply_dense`` as it was before the window matrix was
gathered directly in the order of the matrix product (per-sample gather, then a transposed
copy). Forward outputs are compared across runs and backends, so the rewrite must give the
same bits, not merely close values: every comparison here is ``np.array_equal`` (and the same
memory layout, which elementwise ufuncs downstream may depend on).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _small_nets import small_conv, tiny_resnet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.backend import is_numpy, namespace, to_numpy
from ltbounds.nets import Conv1d, Conv2d, conv
from ltbounds.nets._gather import window_indices, window_output_shape
from ltbounds.strategies import conv_target_nets, residual_target_nets


def reference_apply_dense(self, x, matrix, bias):
    """The old ``_ConvNd._apply_dense``, verbatim (per-sample gather, then a transposed copy)."""
    xp = namespace(x)
    batch, channels = int(x.shape[0]), int(x.shape[1])
    spatial = tuple(int(s) for s in x.shape[2:])
    out_spatial = window_output_shape(spatial, self.kernel_shape, self.stride, self.padding)
    indices = window_indices(spatial, self.kernel_shape, self.stride, self.padding)
    positions = math.prod(out_spatial)
    take = indices if is_numpy(xp) else xp.asarray(indices)
    per_sample = 8 * channels * self.kernel_size * positions
    chunk = max(1, conv.IM2COL_BUDGET_BYTES // max(per_sample, 1))
    outputs = []
    for start in range(0, batch, chunk):
        stop = min(start + chunk, batch)
        part = xp.reshape(x[start:stop, ...], (stop - start, channels, math.prod(spatial)))
        if any(self.padding):
            zeros = xp.zeros((stop - start, channels, 1), dtype=part.dtype)
            part = xp.concat([part, zeros], axis=2)
        cols = xp.take(part, take, axis=2)
        cols = xp.reshape(cols, (stop - start, channels * self.kernel_size, positions))
        cols = xp.reshape(
            xp.permute_dims(cols, (1, 0, 2)), (channels * self.kernel_size, (stop - start) * positions)
        )
        out = xp.matmul(matrix, cols)
        out = xp.permute_dims(xp.reshape(out, (self.out_channels, stop - start, positions)), (1, 0, 2))
        if bias is not None:
            out = out + bias
        outputs.append(out)
    if not outputs:
        out = xp.zeros((0, self.out_channels, positions), dtype=x.dtype)
    else:
        out = outputs[0] if len(outputs) == 1 else xp.concat(outputs, axis=0)
    return xp.reshape(out, (batch, self.out_channels, *out_spatial))


#: Thresholds of the direct gather: every layer direct, the default, every layer the old way.
THRESHOLDS = (1, conv.DIRECT_GATHER_MIN_CHANNELS, 10**9)


def assert_same_bits(new, old) -> None:
    new_host, old_host = to_numpy(new), to_numpy(old)
    assert new_host.shape == old_host.shape
    assert np.array_equal(new_host, old_host)
    if isinstance(new, np.ndarray):
        assert new.strides == old.strides


def both_ways(layer, x, what: str, with_bias: bool):
    xp = namespace(x)
    matrix = layer.on(xp, what)
    bias = layer.on(xp, "bias") if with_bias and layer.bias is not None else None
    return layer._apply_dense(x, matrix, bias), reference_apply_dense(layer, x, matrix, bias)


@st.composite
def conv_cases(draw):
    """A conv layer (1-D or 2-D, 1 to 12 channels: both sides of the direct-gather threshold,
    stride, padding, optional bias) and an input batch of 1 or many samples."""
    dims = draw(st.sampled_from([1, 2]))
    channels = draw(st.integers(1, 12))
    out_channels = draw(st.integers(1, 6))
    size = tuple(draw(st.integers(1, 7)) for _ in range(dims))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(dims))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    padding = tuple(
        max(draw(st.integers(0, 2)), -(-(k - s) // 2)) for k, s in zip(kernel, size, strict=True)
    )
    batch = draw(st.sampled_from([1, 2, 17]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    weight = rng.normal(size=(out_channels, channels, *kernel))
    weight[rng.random(weight.shape) < 0.3] = 0.0
    bias = rng.normal(size=out_channels) if draw(st.booleans()) else None
    cls = Conv2d if dims == 2 else Conv1d
    layer = cls(weight, bias, stride=stride, padding=padding)
    return layer, rng.normal(size=(batch, channels, *size))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_cases(), budget=st.sampled_from([conv.IM2COL_BUDGET_BYTES, 1, 4096]))
def test_dense_path_is_bit_identical_to_the_old_gather(monkeypatch, case, budget) -> None:
    layer, x = case
    monkeypatch.setattr(conv, "IM2COL_BUDGET_BYTES", budget)  # 1: one sample per chunk
    for threshold in THRESHOLDS:
        monkeypatch.setattr(conv, "DIRECT_GATHER_MIN_CHANNELS", threshold)
        for what, with_bias in (("matrix", True), ("matrix", False), ("abs_matrix", False)):
            assert_same_bits(*both_ways(layer, x, what, with_bias))
        assert_same_bits(*both_ways(layer, x[:0], "matrix", True))


def test_wide_layer_with_many_chunks_is_bit_identical(monkeypatch) -> None:
    """A ticket-like layer (48 channels, 8×8, stride 2) whose batch splits into uneven chunks."""
    rng = np.random.default_rng(5)
    weight = rng.normal(size=(20, 48, 3, 3))
    weight[rng.random(weight.shape) < 0.8] = 0.0
    layer = Conv2d(weight, rng.normal(size=20), stride=2, padding=1)
    x = rng.normal(size=(53, 48, 8, 8))
    assert 48 >= conv.DIRECT_GATHER_MIN_CHANNELS  # the direct gather is on by default here
    for budget in (conv.IM2COL_BUDGET_BYTES, 8 * 48 * 9 * 16 * 7):  # one chunk; 7 per chunk
        monkeypatch.setattr(conv, "IM2COL_BUDGET_BYTES", budget)
        new, old = both_ways(layer, x, "matrix", True)
        assert_same_bits(new, old)
        assert_same_bits(layer.forward(x), old)


def test_both_gathers_build_the_same_window_matrix(monkeypatch) -> None:
    """The window matrix itself (not only the product): same values, same strides (C order,
    except the Fortran-ordered view the old gather gives for one output position)."""
    rng = np.random.default_rng(6)
    cases = (((7, 6), (3, 2), (2, 1), (1, 0)), ((9,), (4,), (3,), (2,)), ((3, 3), (3, 3), (1, 1), (0, 0)))
    for spatial, kernel, stride, padding in cases:
        channels, n = 9, 4
        indices = window_indices(spatial, kernel, stride, padding)
        positions = math.prod(window_output_shape(spatial, kernel, stride, padding))
        part = rng.normal(size=(n, channels, math.prod(spatial)))
        mats = []
        for threshold in (1, 10**9):
            monkeypatch.setattr(conv, "DIRECT_GATHER_MIN_CHANNELS", threshold)
            mats.append(
                conv._window_matrix(np, part, indices, math.prod(kernel), positions, any(padding))
            )
        assert mats[0].strides == mats[1].strides
        assert mats[0].flags.c_contiguous == (positions > 1)
        assert np.array_equal(mats[0], mats[1])


def _forward_both_ways(monkeypatch, net, x):
    new = net.forward(x)
    with monkeypatch.context() as patch:
        patch.setattr(conv._ConvNd, "_apply_dense", reference_apply_dense)
        old = net.forward(x)
    return new, old


@pytest.mark.parametrize("threshold", THRESHOLDS)
@pytest.mark.parametrize("batch", [1, 33])
def test_small_nets_forward_bit_identical(monkeypatch, threshold, batch) -> None:
    monkeypatch.setattr(conv, "DIRECT_GATHER_MIN_CHANNELS", threshold)
    for net in (small_conv("tanh"), tiny_resnet("tanh"), tiny_resnet("relu")):
        x = net.sample_inputs(batch, 7)
        assert_same_bits(*_forward_both_ways(monkeypatch, net, x))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    net=st.one_of(
        conv_target_nets(max_channels=10),
        residual_target_nets(kind="conv2d", max_channels=10),
        residual_target_nets(kind="conv1d", max_channels=10),
    ),
    batch=st.sampled_from([1, 9]),
    threshold=st.sampled_from(THRESHOLDS),
)
def test_random_nets_forward_bit_identical(monkeypatch, net, batch, threshold) -> None:
    monkeypatch.setattr(conv, "DIRECT_GATHER_MIN_CHANNELS", threshold)
    x = net.sample_inputs(batch, 3)
    assert_same_bits(*_forward_both_ways(monkeypatch, net, x))


def test_other_namespaces_get_the_old_bits(monkeypatch, xp) -> None:
    rng = np.random.default_rng(8)
    layer = Conv2d(rng.normal(size=(5, 10, 3, 3)), rng.normal(size=5), stride=(1, 2), padding=1)
    x = xp.asarray(rng.normal(size=(6, 10, 7, 8)))
    for threshold in THRESHOLDS:
        monkeypatch.setattr(conv, "DIRECT_GATHER_MIN_CHANNELS", threshold)
        assert_same_bits(*both_ways(layer, x, "matrix", True))
