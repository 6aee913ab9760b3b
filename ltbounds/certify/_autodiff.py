"""Forward passes that remember what the backward pass needs, and vector-Jacobian products.

Our own reverse mode for the layers of :mod:`ltbounds.nets` (no autodiff library): dense
(``g ↦ g W``), convolution (the transpose of the im2col gather of
:mod:`ltbounds.nets._gather` is again a gather, through the inverse index map; for numpy
inputs to a wide, mostly-zero layer, whose forward pass already runs through its nonzero
weights, the transpose does too: :func:`~ltbounds.nets._sparse.conv_transpose` and
:func:`~ltbounds.nets._sparse.dense_transpose`, with the same
:func:`~ltbounds.nets._sparse.is_sparse` rule; other namespaces keep the dense transposes,
since the sparse kernels are numpy/numba only), average and
max pooling (through the same inverse map), flatten (a reshape), residual blocks (the
cotangent splits into the skip, identity or projection, and the branch, and adds back) and
every registry activation (its derivative in the array namespace). Batch-first and vectorised; the tests
compare every product with central finite differences, and the sparse transposes with the
dense ones (``Tape.vjp(..., sparse=False)``). On the MNIST CNN ticket at ρ = 64 the dense
transposes of its 2112-channel source convolutions build 19 008 × 784 window gradients
(119 MB) per input, of weights 99 % zero; ``benchmarks/bench_attack.py`` compares both.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np

from ltbounds.activations import Activation, erf
from ltbounds.backend import is_numpy, namespace
from ltbounds.nets import (
    AvgPool1d,
    AvgPool2d,
    Dense,
    Flatten,
    LinearLayer,
    MaxPool1d,
    MaxPool2d,
    ResidualBlock,
    TargetNet,
)
from ltbounds.nets._gather import window_indices, window_output_shape
from ltbounds.nets._sparse import (
    cached_conv_transpose_plan,
    cached_dense_plan,
    conv_transpose,
    dense_transpose,
    is_sparse,
)


def _erf(xp: Any, values: Any) -> Any:
    return erf(values)


def activation_derivative(activation: Activation, z: Any) -> Any:
    """φ'(z) elementwise (the right derivative at kinks), in the namespace of ``z``."""
    xp = namespace(z)
    name = activation.name
    if activation.relu_like:
        a = float(activation.relu_like_negative_slope or 0.0)
        return xp.where(z > 0, xp.ones_like(z), a * xp.ones_like(z))
    if name == "tanh":
        t = xp.tanh(z)
        return 1.0 - t * t
    if name in ("sigmoid", "silu", "softplus"):
        s = 1.0 / (1.0 + xp.exp(-xp.abs(z)))
        s = xp.where(z >= 0, s, 1.0 - s)
        if name == "silu":
            return s * (1.0 + z * (1.0 - s))
        return s * (1.0 - s) if name == "sigmoid" else s
    if name == "gelu":
        cdf = 0.5 * (1.0 + _erf(xp, z / math.sqrt(2.0)))
        return cdf + z * xp.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)
    if name == "elu":
        return xp.where(z > 0, xp.ones_like(z), xp.exp(xp.minimum(z, xp.zeros_like(z))))
    raise NotImplementedError(f"no derivative for activation {name!r}")


@lru_cache(maxsize=64)
def inverse_window_indices(
    spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
) -> np.ndarray:
    """``inv[r·S + s]`` = output position ``o`` with ``idx[r, o] = s``, else ``P`` (a zero slot).

    For one kernel entry ``r`` distinct output positions read distinct inputs, so the map is
    well defined; the transpose of the im2col gather is then the gather
    ``grad_x[c, s] = Σ_r cols[c, r, inv[r, s]]``.
    """
    indices = window_indices(spatial, kernel, stride, padding)
    entries = math.prod(kernel)
    positions = math.prod(window_output_shape(spatial, kernel, stride, padding))
    size = math.prod(spatial)
    table = indices.reshape(entries, positions)
    inverse = np.full((entries, size + 1), positions, dtype=np.int64)
    rows = np.repeat(np.arange(entries), positions)
    inverse[rows, table.reshape(-1)] = np.tile(np.arange(positions), entries)
    inverse = inverse[:, :size]
    flat = (inverse + np.arange(entries)[:, None] * (positions + 1)).reshape(-1)
    flat.setflags(write=False)
    return flat


def _transpose_gather(cols: Any, spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]) -> Any:
    """``(batch, C, K, P)`` window gradients to ``(batch, C, *spatial)`` input gradients."""
    xp = namespace(cols)
    batch, channels, entries, positions = (int(s) for s in cols.shape)
    zeros = xp.zeros((batch, channels, entries, 1), dtype=cols.dtype)
    padded = xp.reshape(xp.concat([cols, zeros], axis=3), (batch, channels, entries * (positions + 1)))
    index = inverse_window_indices(spatial, kernel, stride, padding)
    take = index if is_numpy(xp) else xp.asarray(index)
    gathered = xp.reshape(xp.take(padded, take, axis=2), (batch, channels, entries, math.prod(spatial)))
    return xp.reshape(xp.sum(gathered, axis=2), (batch, channels, *spatial))


def _linear_vjp(layer: LinearLayer, x: Any, grad: Any, *, sparse: bool = True) -> Any:
    """``grad · ∂(layer)/∂x``: through the nonzero weights when the forward pass of ``layer``
    takes the sparse path (numpy, :func:`~ltbounds.nets._sparse.is_sparse`) and ``sparse``,
    else the dense transpose (any namespace)."""
    xp = namespace(grad)
    if sparse and is_numpy(xp) and is_sparse(layer):
        if isinstance(layer, Dense):
            return dense_transpose(cached_dense_plan(layer), grad, layer.in_channels)
        spatial = tuple(int(s) for s in x.shape[2:])
        plan = cached_conv_transpose_plan(layer, spatial)
        return conv_transpose(
            plan, grad, layer.in_channels, spatial, layer.kernel_shape, layer.stride, layer.padding
        )
    if isinstance(layer, Dense):
        return xp.matmul(grad, layer.on(xp, "matrix"))
    batch = int(grad.shape[0])
    spatial = tuple(int(s) for s in x.shape[2:])
    out_positions = math.prod(int(s) for s in grad.shape[2:])
    g = xp.reshape(grad, (batch, layer.out_channels, out_positions))
    cols = xp.matmul(layer.on(xp, "matrix_t"), g)  # (batch, C·K, P)
    cols = xp.reshape(cols, (batch, layer.in_channels, layer.kernel_size, out_positions))
    return _transpose_gather(cols, spatial, layer.kernel_shape, layer.stride, layer.padding)


def _pool_vjp(layer: Any, x: Any, grad: Any) -> Any:
    xp = namespace(grad)
    batch, channels = int(x.shape[0]), int(x.shape[1])
    spatial = tuple(int(s) for s in x.shape[2:])
    padding = (0,) * layer.dims
    out_spatial = window_output_shape(spatial, layer.kernel, layer.stride, padding)
    entries, positions = math.prod(layer.kernel), math.prod(out_spatial)
    g = xp.reshape(grad, (batch, channels, 1, positions))
    if isinstance(layer, (AvgPool1d, AvgPool2d)):
        cols = xp.broadcast_to(g / entries, (batch, channels, entries, positions))
    else:
        indices = window_indices(spatial, layer.kernel, layer.stride, padding)
        take = indices if is_numpy(xp) else xp.asarray(indices)
        flat = xp.reshape(x, (batch, channels, math.prod(spatial)))
        windows = xp.reshape(xp.take(flat, take, axis=2), (batch, channels, entries, positions))
        winner = xp.argmax(windows, axis=2)  # first maximiser: a subgradient
        onehot = xp.astype(xp.arange(entries)[None, None, :, None] == winner[:, :, None, :], grad.dtype)
        cols = onehot * g
    return _transpose_gather(cols, spatial, layer.kernel, layer.stride, padding)


class _BlockTape:
    """What the backward pass of one residual block needs: branch inputs and pre-activations."""

    def __init__(self, block: ResidualBlock, activation: Activation, x: Any):
        self.block = block
        self.inputs: list[Any] = []
        self.pre: list[Any] = []
        h = x
        last = len(block.branch) - 1
        for position, layer in enumerate(block.branch):
            self.inputs.append(h)
            h = layer.forward(h)
            self.pre.append(h)
            if position < last:
                h = activation.forward(h)
        self.total = block.skip_forward(x) + h
        self.output = activation.forward(self.total) if block.activation_out else self.total

    def vjp(self, activation: Activation, x: Any, grad: Any, *, sparse: bool = True) -> Any:
        """Cotangent of the block input from the cotangent of its output."""
        if self.block.activation_out:
            grad = grad * activation_derivative(activation, self.total)
        skip = grad if self.block.skip is None else _linear_vjp(self.block.skip, x, grad, sparse=sparse)
        branch = grad
        for position in range(len(self.block.branch) - 1, -1, -1):
            if position < len(self.block.branch) - 1:
                branch = branch * activation_derivative(activation, self.pre[position])
            branch = _linear_vjp(self.block.branch[position], self.inputs[position], branch, sparse=sparse)
        return skip + branch


class Tape:
    """The forward pass of a network on a batch, kept for :meth:`vjp`.

    ``pre[i]`` is layer ``i``'s output before φ (for a residual block: its output, φ_out
    included; the block's own record is in ``blocks[i]``).
    """

    def __init__(self, net: TargetNet, x: Any):
        self.net = net
        self.inputs: list[Any] = []
        self.pre: list[Any] = []
        self.blocks: dict[int, _BlockTape] = {}
        activation = net.activation_function
        h = x
        for index, layer in enumerate(net.layers):
            self.inputs.append(h)
            if isinstance(layer, ResidualBlock):
                self.blocks[index] = _BlockTape(layer, activation, h)
                h = self.blocks[index].output
            else:
                h = layer.forward(h)
            self.pre.append(h)
            if net.is_activated(index):
                h = activation.forward(h)
        self.output = h

    def vjp(self, cotangent: Any, *, sparse: bool = True) -> Any:
        """``cotangentᵀ · ∂f/∂x`` per batch row (same shape as the input batch).

        Numpy products through wide, mostly-zero layers (those whose forward pass is sparse)
        run through their nonzero weights; ``sparse=False`` forces the dense transposes
        everywhere (the baseline the tests and benchmarks compare with).
        """
        grad = cotangent
        activation = self.net.activation_function
        for index in range(len(self.net.layers) - 1, -1, -1):
            layer = self.net.layers[index]
            if self.net.is_activated(index):
                grad = grad * activation_derivative(activation, self.pre[index])
            x = self.inputs[index]
            if isinstance(layer, LinearLayer):
                grad = _linear_vjp(layer, x, grad, sparse=sparse)
            elif isinstance(layer, ResidualBlock):
                grad = self.blocks[index].vjp(activation, x, grad, sparse=sparse)
            elif isinstance(layer, Flatten):
                grad = namespace(grad).reshape(grad, tuple(int(s) for s in x.shape))
            elif isinstance(layer, (AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d)):
                grad = _pool_vjp(layer, x, grad)
            else:  # pragma: no cover - every layer kind is handled above
                raise NotImplementedError(layer.describe())
        return grad


__all__ = ["Tape", "activation_derivative", "inverse_window_indices"]
