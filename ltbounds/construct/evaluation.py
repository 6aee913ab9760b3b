"""Measure a ticket against its target: sampled output error, accuracy, agreement.

These are *empirical* numbers (statistical, not rigorous): the maximum over ``samples``
inputs drawn uniformly from the target's domain box, and, for the embedded digits targets,
accuracy and prediction agreement on the held-out digits split. Certified bounds are the job
of :mod:`ltbounds.certify`. Tickets are evaluated without their dead units
(:func:`~ltbounds.nets._compact.drop_dead_units`: the same function, a fraction of the work).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ltbounds.backend import to_numpy
from ltbounds.nets import TargetNet
from ltbounds.nets._compact import drop_dead_units
from ltbounds.nets.embedded import digits_test_split, list_embedded
from ltbounds.validation import check_int

#: Most inputs evaluated per forward batch.
BATCH = 500
#: Memory (bytes) the layer outputs of one forward batch may take; wide tickets (thousands of
#: channels) get smaller batches so that their activations fit.
BATCH_BYTES = 512 * 2**20


def batch_size(*networks: TargetNet) -> int:
    """Inputs per forward batch: :data:`BATCH`, fewer where the layer outputs would exceed
    :data:`BATCH_BYTES` (a forward pass keeps every layer's output, float64)."""
    per_input = max(8 * sum(math.prod(shape) for shape in network.shapes) for network in networks)
    return int(max(1, min(BATCH, BATCH_BYTES // per_input)))


def _batched(network: TargetNet, inputs: np.ndarray) -> np.ndarray:
    batch = batch_size(network)
    return np.concatenate(
        [to_numpy(network.forward(inputs[i : i + batch])) for i in range(0, len(inputs), batch)]
    )


def max_sampled_error(target: TargetNet, ticket: Any, samples: int, seed: int) -> float:
    """max over ``samples`` domain inputs of ‖f_ticket(x) − f_target(x)‖_∞."""
    samples = check_int("samples", samples, minimum=1)
    inputs = to_numpy(target.sample_inputs(samples, seed))
    network = drop_dead_units(ticket.network())
    batch = batch_size(network, target)
    worst = 0.0
    for start in range(0, samples, batch):
        chunk = inputs[start : start + batch]
        difference = to_numpy(network.forward(chunk)) - to_numpy(target.forward(chunk))
        worst = max(worst, float(np.max(np.abs(difference))))
    return worst


def digits_scores(target: TargetNet, ticket: Any) -> dict[str, float | None]:
    """Target and ticket accuracy and their agreement on the digits test split.

    ``None`` for targets that are not embedded digits targets.
    """
    if target.name not in list_embedded() or not target.name.startswith("digits"):
        return {"target_accuracy": None, "ticket_accuracy": None, "agreement": None}
    inputs, labels = digits_test_split(target.input_shape)
    target_pred = np.argmax(_batched(target, inputs), axis=1)
    ticket_pred = np.argmax(_batched(drop_dead_units(ticket.network()), inputs), axis=1)
    return {
        "target_accuracy": float(np.mean(target_pred == labels)),
        "ticket_accuracy": float(np.mean(ticket_pred == labels)),
        "agreement": float(np.mean(target_pred == ticket_pred)),
    }


__all__ = ["BATCH", "BATCH_BYTES", "batch_size", "digits_scores", "max_sampled_error"]
