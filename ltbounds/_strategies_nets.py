"""Hypothesis strategies for small random networks (re-exported by :mod:`ltbounds.strategies`).

Everything here imports hypothesis, a test dependency; ``import ltbounds`` never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ltbounds.activations import ACTIVATIONS
from ltbounds.nets._gather import window_output_shape
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.residual import ResidualBlock
from ltbounds.nets.source import SourceNet
from ltbounds.nets.target import TargetNet


def _weights(draw: Any, shape: tuple[int, ...], bound: float) -> np.ndarray:
    elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=64)
    return draw(hnp.arrays(np.float64, shape, elements=elements))


def _bias(draw: Any, size: int, bias: bool | None, bound: float) -> np.ndarray | None:
    use = draw(st.booleans()) if bias is None else bias
    return _weights(draw, (size,), bound) if use else None


@st.composite
def dense_target_nets(
    draw: Any,
    *,
    max_depth: int = 3,
    max_width: int = 5,
    activations: Sequence[str] | None = None,
    bias: bool | None = None,
    weight_bound: float = 1.0,
    input_domain: tuple[float, float] = (-1.0, 1.0),
) -> TargetNet:
    """Small fully connected targets: 1..``max_depth`` dense layers of width 1..``max_width``.

    Weights and biases lie in ``[-weight_bound, weight_bound]``; ``bias=None`` draws per layer.
    Shrinks towards one layer of width 1, zero weights, no bias and the first activation
    (``relu`` by default).
    """
    names = list(activations) if activations is not None else sorted(ACTIVATIONS, key=_relu_first)
    activation = draw(st.sampled_from(names))
    depth = draw(st.integers(1, max_depth))
    widths = [draw(st.integers(1, max_width)) for _ in range(depth + 1)]
    layers = [
        Dense(
            _weights(draw, (widths[i + 1], widths[i]), weight_bound),
            _bias(draw, widths[i + 1], bias, weight_bound),
        )
        for i in range(depth)
    ]
    return TargetNet(layers, (widths[0],), activation, input_domain)


@st.composite
def conv_target_nets(
    draw: Any,
    *,
    dims: int | None = None,
    max_conv_layers: int = 2,
    max_channels: int = 3,
    max_size: int = 6,
    activations: Sequence[str] | None = None,
    bias: bool | None = None,
    pooling: bool = True,
    weight_bound: float = 1.0,
    input_domain: tuple[float, float] = (-1.0, 1.0),
) -> TargetNet:
    """Small convolutional targets: convolutions (stride, padding), optional pooling, then
    flatten and a dense output layer.

    ``dims`` is 1 or 2 (drawn when None). Shrinks towards one 2-D convolution with one channel,
    a 1×1 kernel, stride 1, no padding, no pooling, zero weights and ``relu``.
    """
    names = list(activations) if activations is not None else sorted(ACTIVATIONS, key=_relu_first)
    activation = draw(st.sampled_from(names))
    dims = draw(st.sampled_from([2, 1])) if dims is None else dims
    channels = draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(dims))
    input_shape = (channels, *spatial)
    layers: list[Any] = []
    conv_cls = Conv2d if dims == 2 else Conv1d
    pools = (AvgPool2d, MaxPool2d) if dims == 2 else (AvgPool1d, MaxPool1d)
    for _ in range(draw(st.integers(1, max_conv_layers))):
        out_channels = draw(st.integers(1, max_channels))
        kernel = tuple(draw(st.integers(1, min(3, size + 2))) for size in spatial)
        # Any padding up to k // 2, but at least enough for the kernel to fit.
        padding = tuple(
            max(draw(st.integers(0, k // 2)), -(-(k - size) // 2))
            for k, size in zip(kernel, spatial, strict=True)
        )
        stride = tuple(draw(st.integers(1, 2)) for _ in spatial)
        weight = _weights(draw, (out_channels, channels, *kernel), weight_bound)
        layers.append(
            conv_cls(
                weight,
                _bias(draw, out_channels, bias, weight_bound),
                stride=stride,
                padding=padding,
            )
        )
        spatial = window_output_shape(spatial, kernel, stride, padding)
        channels = out_channels
        if pooling and min(spatial) >= 2 and draw(st.booleans()):
            pool = draw(st.sampled_from(pools))
            layers.append(pool(2))
            spatial = window_output_shape(spatial, (2,) * dims, (2,) * dims, (0,) * dims)
    layers.append(Flatten())
    features = channels * int(np.prod(spatial))
    outputs = draw(st.integers(1, max_channels))
    layers.append(
        Dense(
            _weights(draw, (outputs, features), weight_bound),
            _bias(draw, outputs, bias, weight_bound),
        )
    )
    return TargetNet(layers, input_shape, activation, input_domain)


@st.composite
def residual_target_nets(
    draw: Any,
    *,
    kind: str | None = None,
    max_blocks: int = 2,
    max_branch_depth: int = 2,
    max_channels: int = 3,
    max_size: int = 5,
    activations: Sequence[str] | None = None,
    bias: bool | None = None,
    projection: bool | None = None,
    weight_bound: float = 1.0,
    input_domain: tuple[float, float] = (-1.0, 1.0),
    stem: bool | None = None,
) -> TargetNet:
    """Small residual targets (Burkholz, ICML 2022): an optional linear stem, 1..``max_blocks``
    residual blocks, then a dense output layer (after flatten for convolutional targets).

    ``kind`` is ``"dense"``, ``"conv1d"`` or ``"conv2d"`` (drawn when None). Each block has
    1..``max_branch_depth`` branch layers; a convolutional branch opens with stride 1 or 2 and
    uses odd kernels with padding ``k // 2``. The skip is a projection (a dense layer, or a 1×1
    convolution with the branch's stride) whenever the shapes change, and otherwise the
    identity or a projection as ``projection`` says (drawn when None). ``activation_out`` is
    drawn per block. ``stem`` forces (True) or forbids (False) the linear stem (drawn when
    None; the L+1 construction needs one). Shrinks towards a dense target of width 1 with one
    block of one branch layer, identity skip, φ after the sum, no stem, zero weights, no bias
    and ``relu``.
    """
    names = list(activations) if activations is not None else sorted(ACTIVATIONS, key=_relu_first)
    activation = draw(st.sampled_from(names))
    kind = draw(st.sampled_from(["dense", "conv2d", "conv1d"])) if kind is None else kind
    if kind not in ("dense", "conv1d", "conv2d"):
        raise ValueError(f"kind={kind!r} must be 'dense', 'conv1d' or 'conv2d'")
    dims = {"dense": 0, "conv1d": 1, "conv2d": 2}[kind]
    conv_cls = Conv2d if dims == 2 else Conv1d
    channels = draw(st.integers(1, max_channels))
    spatial = tuple(draw(st.integers(1, max_size)) for _ in range(dims))
    input_shape = (channels, *spatial)

    def linear(cin: int, cout: int, kernel: int = 1, stride: int = 1, padding: int = 0) -> Any:
        use_bias = _bias(draw, cout, bias, weight_bound)
        if dims == 0:
            return Dense(_weights(draw, (cout, cin), weight_bound), use_bias)
        weight = _weights(draw, (cout, cin, *([kernel] * dims)), weight_bound)
        return conv_cls(weight, use_bias, stride=stride, padding=padding)

    layers: list[Any] = []
    if draw(st.booleans()) if stem is None else stem:
        out = draw(st.integers(1, max_channels))
        kernel = 1 if dims == 0 else draw(st.sampled_from([1, 3]))
        layers.append(linear(channels, out, kernel, 1, kernel // 2))
        channels = out
    for _ in range(draw(st.integers(1, max_blocks))):
        depth = draw(st.integers(1, max_branch_depth))
        stride = 1 if dims == 0 else draw(st.integers(1, 2))
        branch = []
        cin = channels
        for position in range(depth):
            cout = draw(st.integers(1, max_channels))
            kernel = 1 if dims == 0 else draw(st.sampled_from([1, 3]))
            branch.append(linear(cin, cout, kernel, stride if position == 0 else 1, kernel // 2))
            cin = cout
        spatial = tuple(-(-size // stride) for size in spatial)
        must_project = cin != channels or stride != 1
        use_projection = must_project or (
            draw(st.booleans()) if projection is None else projection
        )
        skip = linear(channels, cin, 1, stride, 0) if use_projection else None
        layers.append(ResidualBlock(tuple(branch), skip, draw(st.booleans().map(lambda b: not b))))
        channels = cin
    if dims:
        layers.append(Flatten())
    features = channels * int(np.prod(spatial)) if dims else channels
    outputs = draw(st.integers(1, max_channels))
    layers.append(
        Dense(_weights(draw, (outputs, features), weight_bound), _bias(draw, outputs, bias, weight_bound))
    )
    return TargetNet(layers, input_shape if dims else (input_shape[0],), activation, input_domain)


def target_nets(**kwargs: Any) -> st.SearchStrategy[TargetNet]:
    """Dense or convolutional small targets (see :func:`dense_target_nets` and
    :func:`conv_target_nets`; keyword arguments common to both are passed on).

    Shrinks towards a one-layer dense target.
    """
    common = {
        k: v
        for k, v in kwargs.items()
        if k in {"activations", "bias", "weight_bound", "input_domain"}
    }
    return st.one_of(dense_target_nets(**common), conv_target_nets(**common))


@st.composite
def source_nets(draw: Any, *, max_layers: int = 3, max_size: int = 6) -> SourceNet:
    """Small implicit source networks: random seed, 1..``max_layers`` weight shapes of 2 to 4
    axes, optional biases, ranges inside ``[-2, 2]``.

    Shrinks towards seed 0, one ``(1, 1)`` layer without bias and range ``[-1, 1)``-like ones.
    """
    seed = draw(st.integers(0, 2**64 - 1))
    count = draw(st.integers(1, max_layers))
    shapes, bias_shapes, ranges = [], [], []
    for _ in range(count):
        ndim = draw(st.integers(2, 4))
        shape = tuple(draw(st.integers(1, max_size)) for _ in range(ndim))
        shapes.append(shape)
        bias_shapes.append((shape[0],) if draw(st.booleans()) else None)
        low = draw(st.floats(-2, 1, allow_nan=False))
        high = draw(st.floats(low + 0.5, 2.5, allow_nan=False))
        ranges.append((low, high))
    return SourceNet(seed, shapes, bias_shapes, ranges)


def _relu_first(name: str) -> tuple[int, str]:
    return (0 if name == "relu" else 1, name)


__all__ = [
    "conv_target_nets",
    "dense_target_nets",
    "residual_target_nets",
    "source_nets",
    "target_nets",
]
