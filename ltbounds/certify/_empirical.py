"""Empirical error of a ticket: the largest error seen at sampled and at attacked inputs.

Both numbers are *lower* bounds of the true supremum (statistical evidence, never a
certificate): the maximum over ``n`` points drawn uniformly from the domain box
(:meth:`~ltbounds.nets.target.TargetNet.sample_inputs`), and the best point found by projected
gradient ascent on the error, restarted from the best sampled points. Gradients come from
:mod:`._autodiff` (our own reverse mode); each step moves by the sign of the gradient and is
projected back onto the box.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds.certify._autodiff import Tape
from ltbounds.nets import TargetNet

#: Largest number of input entries processed in one forward chunk.
CHUNK_ENTRIES = 2**22


@dataclass(frozen=True)
class Witness:
    """An input and the error seen there (float64 forward passes).

    Attributes
    ----------
    linf, l2 : float
        ``‖f̂(x) − f(x)‖_∞`` and ``‖f̂(x) − f(x)‖_2`` at the best input found for each norm.
    input_linf, input_l2 : ndarray
        The inputs attaining them (shape ``input_shape``).
    """

    linf: float
    l2: float
    input_linf: np.ndarray
    input_l2: np.ndarray


def _errors(target: TargetNet, ticket_net: TargetNet, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    diff = ticket_net.forward(x) - target.forward(x)
    flat = diff.reshape(diff.shape[0], -1)
    return np.max(np.abs(flat), axis=1), np.sqrt(np.sum(flat * flat, axis=1))


def sample_errors(
    target: TargetNet,
    ticket_net: TargetNet,
    samples: int,
    seed: int,
    *,
    keep: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Witness, np.ndarray, np.ndarray]:
    """Errors at ``samples`` uniform points of the domain box.

    Returns the witness and the ``keep`` best inputs by ∞-norm and by 2-norm (for restarts).
    """
    entries = max(1, math.prod(target.input_shape))
    widest = max(entries, max(math.prod(s) for s in ticket_net.shapes))
    chunk = max(1, CHUNK_ENTRIES // widest)
    inputs = target.sample_inputs(samples, seed)
    linf = np.empty(samples)
    l2 = np.empty(samples)
    for start in range(0, samples, chunk):
        stop = min(start + chunk, samples)
        linf[start:stop], l2[start:stop] = _errors(target, ticket_net, inputs[start:stop])
        if progress is not None:
            progress("sampling", stop, samples)
    best_inf = np.argsort(-linf, kind="stable")[:keep]
    best_two = np.argsort(-l2, kind="stable")[:keep]
    witness = Witness(
        float(linf[best_inf[0]]), float(l2[best_two[0]]), inputs[best_inf[0]].copy(), inputs[best_two[0]].copy()
    )
    return witness, inputs[best_inf].copy(), inputs[best_two].copy()


def attack(
    target: TargetNet,
    ticket_net: TargetNet,
    starts_linf: np.ndarray,
    starts_l2: np.ndarray,
    *,
    steps: int,
    progress: Callable[[str, int, int], None] | None = None,
) -> Witness:
    """Projected sign-gradient ascent on ``‖f̂(x) − f(x)‖`` (∞- and 2-norm runs together).

    The ∞-norm runs ascend on ``|d_k(x)|`` for the currently largest output ``k``; the 2-norm
    runs on ``‖d(x)‖_2``. The step starts at a tenth of the box width and shrinks linearly to
    a thousandth; the best point of every run is kept.
    """
    low, high = target.input_domain
    x = np.concatenate([starts_linf, starts_l2], axis=0)
    runs_inf = starts_linf.shape[0]
    best_linf, best_l2 = -1.0, -1.0
    arg_linf = starts_linf[0] if runs_inf else starts_l2[0]
    arg_l2 = starts_l2[0] if starts_l2.shape[0] else arg_linf
    width = high - low
    for step in range(steps + 1):
        tape_hat = Tape(ticket_net, x)
        tape = Tape(target, x)
        diff = (tape_hat.output - tape.output).reshape(x.shape[0], -1)
        linf = np.max(np.abs(diff), axis=1)
        l2 = np.sqrt(np.sum(diff * diff, axis=1))
        k = int(np.argmax(linf))
        if linf[k] > best_linf:
            best_linf, arg_linf = float(linf[k]), x[k].copy()
        k = int(np.argmax(l2))
        if l2[k] > best_l2:
            best_l2, arg_l2 = float(l2[k]), x[k].copy()
        if step == steps:
            break
        cotangent = np.zeros_like(diff)
        top = np.argmax(np.abs(diff), axis=1)
        rows = np.arange(runs_inf)
        cotangent[rows, top[:runs_inf]] = np.sign(diff[rows, top[:runs_inf]])
        cotangent[runs_inf:] = diff[runs_inf:] / np.maximum(l2[runs_inf:, None], 1e-300)
        cotangent = cotangent.reshape(tape.output.shape)
        grad = tape_hat.vjp(cotangent) - tape.vjp(cotangent)
        size = width * (0.1 - (0.1 - 0.001) * step / max(steps - 1, 1))
        x = np.clip(x + size * np.sign(grad), low, high)
        if progress is not None:
            progress("attack", step + 1, steps)
    return Witness(best_linf, best_l2, arg_linf, arg_l2)


def evaluate(target: TargetNet, ticket_net: TargetNet, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(‖d‖_∞, ‖d‖_2)`` per input of the batch ``x`` (float64 forward passes)."""
    return _errors(target, ticket_net, np.asarray(x, dtype=np.float64))


__all__ = ["Witness", "attack", "evaluate", "sample_errors"]
