"""Measure a ticket against its target: sampled output error, accuracy, agreement.

These are *empirical* numbers (statistical, not rigorous): the maximum over ``samples``
inputs drawn uniformly from the target's domain box, and, for the embedded digits targets,
accuracy and prediction agreement on the held-out digits split. Certified bounds are the job
of :mod:`ltbounds.certify`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltbounds.backend import to_numpy
from ltbounds.nets import TargetNet
from ltbounds.nets.embedded import digits_test_split, list_embedded
from ltbounds.validation import check_int

#: Inputs evaluated per forward batch (bounds memory on large targets).
BATCH = 500


def _batched(network: TargetNet, inputs: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [to_numpy(network.forward(inputs[i : i + BATCH])) for i in range(0, len(inputs), BATCH)]
    )


def max_sampled_error(target: TargetNet, ticket: Any, samples: int, seed: int) -> float:
    """max over ``samples`` domain inputs of ‖f_ticket(x) − f_target(x)‖_∞."""
    samples = check_int("samples", samples, minimum=1)
    inputs = to_numpy(target.sample_inputs(samples, seed))
    network = ticket.network()
    worst = 0.0
    for start in range(0, samples, BATCH):
        chunk = inputs[start : start + BATCH]
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
    ticket_pred = np.argmax(_batched(ticket.network(), inputs), axis=1)
    return {
        "target_accuracy": float(np.mean(target_pred == labels)),
        "ticket_accuracy": float(np.mean(ticket_pred == labels)),
        "agreement": float(np.mean(target_pred == ticket_pred)),
    }


__all__ = ["digits_scores", "max_sampled_error"]
