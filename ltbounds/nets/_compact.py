"""Drop the hidden units of a network that cannot affect its output (for fast evaluation).

A ticket is a pruned source network: many of its hidden units are *dead*. Some are never read
(no kept weight of the next linear layer reads them: copies pruned after a missed subset sum,
copies beyond the candidates a subset sum searched), and some read nothing (no kept incoming
weight and no bias), so that with φ(0) = 0 their value is exactly zero. :func:`drop_dead_units`
returns the network restricted to the other units. It computes the same function: a dropped
unit only ever contributed products with an exact zero, so every output is a sum of the same
nonzero terms (the order of summation of the matrix products may differ, as between any two
BLAS calls, about 1e-15 relative).

Only chains of dense, convolution, pooling and flatten layers are compacted; other networks
(residual blocks) are returned unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from ltbounds.nets._base import LinearLayer
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.target import TargetNet

_STRUCTURAL = (Flatten, AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d)


def _producers(network: TargetNet, linear: list[int]) -> list[np.ndarray | None]:
    """Per linear layer, the output channel of the previous linear layer behind each input unit.

    Pooling keeps channels; flattening ``(C, *S)`` maps feature ``f`` to channel ``f // |S|``.
    """
    producers: list[np.ndarray | None] = [None]
    for previous, current in zip(linear, linear[1:], strict=False):
        positions = 1
        for index in range(previous + 1, current):
            if isinstance(network.layers[index], Flatten):
                positions = math.prod(network.shapes[index][1:])
        units = int(network.shapes[current][0])
        producers.append(np.arange(units, dtype=np.int64) // positions)
    return producers


def _rebuild(layer: LinearLayer, rows: np.ndarray, columns: np.ndarray | None) -> LinearLayer:
    weight = layer.weight[rows] if columns is None else layer.weight[rows][:, columns]
    bias = None if layer.bias is None else layer.bias[rows]
    if isinstance(layer, Dense):
        return Dense(weight, bias)
    kind = Conv2d if isinstance(layer, Conv2d) else Conv1d
    return kind(weight, bias, stride=layer.stride, padding=layer.padding)  # type: ignore[attr-defined]


def drop_dead_units(network: TargetNet) -> TargetNet:
    """``network`` without the hidden units that cannot affect its output (see the module).

    Parameters
    ----------
    network : TargetNet
        A chain of dense, convolution, pooling and flatten layers (any other network is
        returned as it is).

    Returns
    -------
    TargetNet
        Same input and output shapes, activation and domain; hidden layers hold only the
        live units, in their original order.
    """
    layers = network.layers
    if not all(layer.is_linear or isinstance(layer, _STRUCTURAL) for layer in layers):
        return network
    if not all(isinstance(layer, (Dense, Conv1d, Conv2d)) for layer in layers if layer.is_linear):
        return network
    linear = [index for index, layer in enumerate(layers) if layer.is_linear]
    producers = _producers(network, linear)
    # Forward: hidden units with no weight and no bias are exactly φ(0); zero when φ(0) = 0.
    zero_at_zero = network.activation_function.value_at_zero == 0
    silent: list[np.ndarray] = []
    for index in linear[:-1]:
        layer = layers[index]
        matrix = layer.weight.reshape(layer.weight.shape[0], -1)  # type: ignore[attr-defined]
        quiet = ~np.any(matrix != 0, axis=1)
        if layer.bias is not None:  # type: ignore[attr-defined]
            quiet &= layer.bias == 0  # type: ignore[attr-defined]
        silent.append(quiet if zero_at_zero else np.zeros_like(quiet))
    # Backward: a hidden unit lives when a live unit of the next linear layer reads it.
    live: list[np.ndarray] = [np.zeros(0, np.int64)] * len(linear)
    live[-1] = np.arange(layers[linear[-1]].weight.shape[0], dtype=np.int64)  # type: ignore[attr-defined]
    for position in range(len(linear) - 1, 0, -1):
        layer = layers[linear[position]]
        weight = layer.weight[live[position]]  # type: ignore[attr-defined]
        read = np.any(weight.reshape(weight.shape[0], weight.shape[1], -1) != 0, axis=(0, 2))
        channel = producers[position]
        assert channel is not None
        read &= ~silent[position - 1][channel]
        used = np.unique(channel[read])
        live[position - 1] = used if used.size else np.zeros(1, np.int64)
    rebuilt = list(layers)
    for position, index in enumerate(linear):
        columns = None
        if position:
            channel = producers[position]
            assert channel is not None
            columns = np.flatnonzero(np.isin(channel, live[position - 1]))
        rebuilt[index] = _rebuild(layers[index], live[position], columns)  # type: ignore[arg-type]
    return TargetNet(
        rebuilt, network.input_shape, network.activation, network.input_domain, name=network.name
    )


__all__ = ["drop_dead_units"]
