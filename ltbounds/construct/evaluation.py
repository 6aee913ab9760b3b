"""Measure a ticket against its target: sampled output error, accuracy, agreement.

These are *empirical* numbers (statistical, not rigorous): the maximum over ``samples``
inputs drawn uniformly from the target's domain box, and, for the embedded digits targets,
accuracy and prediction agreement on the held-out digits split. Certified bounds are the job
of :mod:`ltbounds.certify`. Tickets are evaluated without their dead units
(:func:`compact`: the same function, a fraction of the work). The forward passes run on the
array namespace ``xp`` (default numpy); the inputs are drawn there too (counter-based, the
same inputs on every backend) and only the per-batch results cross back to the host.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ltbounds.backend import to_numpy
from ltbounds.nets import Dense, Flatten, LinearLayer, TargetNet
from ltbounds.nets._compact import drop_dead_units
from ltbounds.nets.embedded import digits_test_split, list_embedded
from ltbounds.nets.residual import ResidualBlock
from ltbounds.validation import check_int

#: Most inputs evaluated per forward batch.
BATCH = 500
#: Memory (bytes) the layer outputs of one forward batch may take; wide tickets (thousands of
#: channels) get smaller batches so that their activations fit.
BATCH_BYTES = 512 * 2**20


def _reads(layer: LinearLayer, rows: np.ndarray) -> np.ndarray:
    """Input units (channels or features) that the kept ``rows`` of ``layer`` read."""
    weight = layer.weight[rows]
    return np.any(weight.reshape(weight.shape[0], weight.shape[1], -1) != 0, axis=(0, 2))


def _rebuild(layer: LinearLayer, rows: np.ndarray, columns: np.ndarray) -> LinearLayer:
    weight = layer.weight[rows][:, columns]
    bias = None if layer.bias is None else layer.bias[rows]
    if isinstance(layer, Dense):
        return Dense(weight, bias)
    return type(layer)(weight, bias, layer.stride, layer.padding)  # type: ignore[call-arg,attr-defined]


def _branch_keep(block: ResidualBlock, rows: np.ndarray) -> list[np.ndarray]:
    """Kept units before every branch layer, the block input's part first (from ``rows``)."""
    keep = [rows]
    for layer in reversed(block.branch):
        keep.insert(0, _reads(layer, keep[0]))
    return keep


def drop_dead_residual_units(network: TargetNet) -> TargetNet:
    """A network with residual blocks restricted to the units that can affect its output.

    Liveness as :func:`~ltbounds.nets._compact.drop_dead_units` (a unit lives when a kept
    weight of a live unit reads it; inputs and outputs always live), on every point between
    top-level layers, with ties: pooling keeps the channel set, flattening keeps the features
    of the kept channels, and an identity skip makes a block's input and output sets equal
    (unit ``c`` feeds unit ``c``). Sets only grow, so the backward passes are repeated until
    nothing changes. The result computes the same function: every dropped unit is only ever
    multiplied by an exact zero (summation order aside, about 1e-15 relative).
    """
    layers = network.layers
    shapes = network.shapes
    keep = [np.zeros(int(shape[0]), dtype=bool) for shape in shapes]
    keep[-1][:] = True
    keep[0][:] = True
    changed = True
    while changed:
        before = [k.copy() for k in keep]
        for index in range(len(layers) - 1, -1, -1):
            layer, after = layers[index], keep[index + 1]
            if isinstance(layer, ResidualBlock):
                reads = _branch_keep(layer, after)[0]
                if layer.skip is None:
                    union = keep[index] | reads | after
                    keep[index], keep[index + 1] = union, union.copy()
                else:
                    keep[index] |= reads | _reads(layer.skip, after)
            elif layer.is_linear:
                keep[index] |= _reads(layer, after)  # type: ignore[arg-type]
            elif isinstance(layer, Flatten):
                positions = math.prod(shapes[index][1:])
                channels = keep[index] | after.reshape(-1, positions).any(axis=1)
                keep[index], keep[index + 1] = channels, np.repeat(channels, positions)
            else:  # pooling keeps channels
                union = keep[index] | after
                keep[index], keep[index + 1] = union, union.copy()
        changed = any(np.any(a != b) for a, b in zip(before, keep, strict=True))
    rebuilt: list[Any] = []
    for index, layer in enumerate(layers):
        rows, columns = np.flatnonzero(keep[index + 1]), np.flatnonzero(keep[index])
        if isinstance(layer, ResidualBlock):
            inner = [np.flatnonzero(k) for k in _branch_keep(layer, keep[index + 1])]
            inner[0], inner[-1] = columns, rows
            branch = tuple(_rebuild(part, inner[j + 1], inner[j]) for j, part in enumerate(layer.branch))
            skip = None if layer.skip is None else _rebuild(layer.skip, rows, columns)
            rebuilt.append(ResidualBlock(branch, skip, layer.activation_out))
        elif layer.is_linear:
            rebuilt.append(_rebuild(layer, rows, columns))  # type: ignore[arg-type]
        else:
            rebuilt.append(layer)
    return TargetNet(rebuilt, network.input_shape, network.activation, network.input_domain, name=network.name)


def compact(network: TargetNet) -> TargetNet:
    """``network`` without its dead units: :func:`~ltbounds.nets._compact.drop_dead_units` for
    plain chains, :func:`drop_dead_residual_units` for networks with residual blocks."""
    if any(isinstance(layer, ResidualBlock) for layer in network.layers):
        return drop_dead_residual_units(network)
    return drop_dead_units(network)


def batch_size(*networks: TargetNet) -> int:
    """Inputs per forward batch: :data:`BATCH`, fewer where the layer outputs would exceed
    :data:`BATCH_BYTES` (a forward pass keeps every layer's output, float64)."""
    per_input = max(8 * sum(math.prod(shape) for shape in network.shapes) for network in networks)
    return int(max(1, min(BATCH, BATCH_BYTES // per_input)))


def _batched(network: TargetNet, inputs: np.ndarray, xp: Any | None = None) -> np.ndarray:
    batch = batch_size(network)
    move = (lambda chunk: chunk) if xp is None else xp.asarray
    return np.concatenate(
        [to_numpy(network.forward(move(inputs[i : i + batch]))) for i in range(0, len(inputs), batch)]
    )


def max_sampled_error(
    target: TargetNet, ticket: Any, samples: int, seed: int, *, xp: Any | None = None
) -> float:
    """max over ``samples`` domain inputs of ‖f_ticket(x) − f_target(x)‖_∞.

    ``xp``: the array namespace of the inputs and the forward passes (default numpy).
    """
    samples = check_int("samples", samples, minimum=1)
    inputs = target.sample_inputs(samples, seed, xp=xp)
    network = compact(ticket.network())
    batch = batch_size(network, target)
    worst = 0.0
    for start in range(0, samples, batch):
        chunk = inputs[start : min(start + batch, samples), ...]
        difference = to_numpy(network.forward(chunk)) - to_numpy(target.forward(chunk))
        worst = max(worst, float(np.max(np.abs(difference))))
    return worst


def digits_scores(target: TargetNet, ticket: Any, *, xp: Any | None = None) -> dict[str, float | None]:
    """Target and ticket accuracy and their agreement on the digits test split.

    ``None`` for targets that are not embedded digits targets. ``xp``: the array namespace
    of the forward passes (default numpy).
    """
    if target.name not in list_embedded() or not target.name.startswith("digits"):
        return {"target_accuracy": None, "ticket_accuracy": None, "agreement": None}
    inputs, labels = digits_test_split(target.input_shape)
    target_pred = np.argmax(_batched(target, inputs, xp), axis=1)
    ticket_pred = np.argmax(_batched(compact(ticket.network()), inputs, xp), axis=1)
    return {
        "target_accuracy": float(np.mean(target_pred == labels)),
        "ticket_accuracy": float(np.mean(ticket_pred == labels)),
        "agreement": float(np.mean(target_pred == ticket_pred)),
    }


__all__ = ["BATCH", "BATCH_BYTES", "batch_size", "compact", "digits_scores", "drop_dead_residual_units", "max_sampled_error"]
