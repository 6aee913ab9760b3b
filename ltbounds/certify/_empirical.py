"""Empirical error of a ticket: the largest error seen at sampled and at attacked inputs.

Both numbers are *lower* bounds of the true supremum (statistical evidence, never a
certificate): the maximum over ``n`` points drawn uniformly from the domain box
(:meth:`~ltbounds.nets.target.TargetNet.sample_inputs`), and the best point found by projected
gradient ascent on the error, restarted from the best sampled points. Gradients come from
:mod:`._autodiff` (our own reverse mode); each step moves by the sign of the gradient and is
projected back onto the box.

Both run in any array namespace (``xp``: numpy by default, CuPy or array-api-strict on
request; the forward and backward passes take the namespace of their inputs and the layers
keep a copy of their weights per namespace), since they are the heavy part of certifying a
wide ticket. Inputs are drawn by the counter-based generator, so every namespace sees the same
points; witnesses come back to the host as numpy arrays.

On numpy, the backward passes through a wide pruned ticket's sparse layers run through their
nonzero weights (:meth:`~._autodiff.Tape.vjp`), and the attack runs its restarts in chunks
(:data:`ATTACK_CHUNK_ENTRIES`) so that the tapes of a wide ticket stay within a bounded
memory; neither changes the result.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds.backend import namespace, to_numpy
from ltbounds.certify._autodiff import Tape
from ltbounds.nets import TargetNet

#: Largest number of input entries processed in one forward chunk.
CHUNK_ENTRIES = 2**22
#: Largest number of entries of the widest layer output one chunk of attack runs may hold.
#: Its tapes keep several such arrays per network (about 80 MB a run on the MNIST CNN ticket
#: at ρ = 64), so a chunk takes a few times this many float64s; the runs are independent, so
#: chunking bounds the memory and changes no result. There, 2 runs a chunk (this value) were
#: measured as fast as 10 (2**24) and held the attack's peak to about 0.1 GB above the
#: resident ticket, against 1 GB.
ATTACK_CHUNK_ENTRIES = 2**22


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


def _norms(xp: Any, diff: Any) -> tuple[Any, Any]:
    """Per row of the batch ``diff``: (∞-norm, 2-norm), in ``diff``'s namespace."""
    flat = xp.reshape(diff, (diff.shape[0], -1))
    return xp.max(xp.abs(flat), axis=1), xp.sqrt(xp.sum(flat * flat, axis=1))


def _errors(target: TargetNet, ticket_net: TargetNet, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """(‖d‖_∞, ‖d‖_2) per input, computed in ``x``'s namespace and returned on the host."""
    linf, l2 = _norms(namespace(x), ticket_net.forward(x) - target.forward(x))
    return to_numpy(linf), to_numpy(l2)


def sample_errors(
    target: TargetNet,
    ticket_net: TargetNet,
    samples: int,
    seed: int,
    *,
    keep: int = 8,
    progress: Callable[[str, int, int], None] | None = None,
    xp: Any | None = None,
) -> tuple[Witness, Any, Any]:
    """Errors at ``samples`` uniform points of the domain box, computed in namespace ``xp``.

    Returns the witness (host arrays) and the ``keep`` best inputs by ∞-norm and by 2-norm
    (for restarts, in ``xp``).
    """
    entries = max(1, math.prod(target.input_shape))
    widest = max(entries, max(math.prod(s) for s in ticket_net.shapes))
    chunk = max(1, CHUNK_ENTRIES // widest)
    inputs = target.sample_inputs(samples, seed, xp=xp)
    linf = np.empty(samples)
    l2 = np.empty(samples)
    for start in range(0, samples, chunk):
        stop = min(start + chunk, samples)
        linf[start:stop], l2[start:stop] = _errors(target, ticket_net, inputs[start:stop, ...])
        if progress is not None:
            progress("sampling", stop, samples)
    best_inf = np.argsort(-linf, kind="stable")[:keep]
    best_two = np.argsort(-l2, kind="stable")[:keep]
    xp = namespace(inputs)
    starts_inf = xp.take(inputs, xp.asarray(best_inf), axis=0)
    starts_two = xp.take(inputs, xp.asarray(best_two), axis=0)
    witness = Witness(
        float(linf[best_inf[0]]), float(l2[best_two[0]]), to_numpy(starts_inf[0, ...]).copy(), to_numpy(starts_two[0, ...]).copy()
    )
    return witness, starts_inf, starts_two


def _step_chunk(
    target: TargetNet, ticket_net: TargetNet, x: Any, is_inf_run: Any, *, gradient: bool, sparse: bool
) -> tuple[Any, Any]:
    """Differences ``f̂(x) − f(x)`` (rows flattened) of a chunk of runs and, when
    ``gradient``, the ascent directions: the gradient of ``|d_k|`` for the currently largest
    output ``k`` (∞-norm runs) or of ``‖d‖₂`` (2-norm runs); else ``None``."""
    xp = namespace(x)
    tape_hat = Tape(ticket_net, x)
    tape = Tape(target, x)
    diff = xp.reshape(tape_hat.output - tape.output, (x.shape[0], -1))
    if not gradient:
        return diff, None
    _, l2 = _norms(xp, diff)
    # ∞-norm runs: the sign of the currently largest output; 2-norm runs: d/‖d‖₂.
    top = xp.argmax(xp.abs(diff), axis=1)
    one_hot = xp.reshape(xp.arange(diff.shape[1]), (1, -1)) == xp.reshape(top, (-1, 1))
    towards_inf = xp.where(one_hot, xp.sign(diff), xp.zeros_like(diff))
    towards_l2 = diff / xp.maximum(xp.reshape(l2, (-1, 1)), xp.asarray(1e-300))
    cotangent = xp.reshape(xp.where(is_inf_run, towards_inf, towards_l2), tape.output.shape)
    return diff, tape_hat.vjp(cotangent, sparse=sparse) - tape.vjp(cotangent, sparse=sparse)


def attack(
    target: TargetNet,
    ticket_net: TargetNet,
    starts_linf: Any,
    starts_l2: Any,
    *,
    steps: int,
    progress: Callable[[str, int, int], None] | None = None,
    sparse: bool = True,
) -> Witness:
    """Projected sign-gradient ascent on ``‖f̂(x) − f(x)‖`` (∞- and 2-norm runs together).

    The ∞-norm runs ascend on ``|d_k(x)|`` for the currently largest output ``k``; the 2-norm
    runs on ``‖d(x)‖_2``. The step starts at a tenth of the box width and shrinks linearly to
    a thousandth; the best point of every run is kept.

    Every step handles the runs in chunks of at most :data:`ATTACK_CHUNK_ENTRIES` entries of
    the widest layer, so that the tapes of a wide ticket fit in memory; runs never interact
    (the best point is picked over all of them, earliest run first on ties), so the result
    does not depend on the chunks. ``sparse=False`` takes the dense transposes in the
    backward pass (:meth:`~._autodiff.Tape.vjp`), the baseline of the benchmarks.
    """
    low, high = target.input_domain
    xp = namespace(starts_linf, starts_l2)
    x = xp.concat([starts_linf, starts_l2], axis=0)
    runs_inf = starts_linf.shape[0]
    runs = int(x.shape[0])
    best_linf, best_l2 = -1.0, -1.0
    arg_linf = starts_linf[0, ...] if runs_inf else starts_l2[0, ...]
    arg_l2 = starts_l2[0, ...] if starts_l2.shape[0] else arg_linf
    width = high - low
    is_inf_run = xp.reshape(xp.arange(runs) < runs_inf, (-1, 1))
    widest = max(math.prod(s) for s in (*ticket_net.shapes, *target.shapes))
    chunk = max(1, ATTACK_CHUNK_ENTRIES // max(widest, 1))
    for step in range(steps + 1):
        diffs, grads = [], []
        for start in range(0, runs, chunk):
            stop = min(start + chunk, runs)
            diff, grad = _step_chunk(
                target, ticket_net, x[start:stop, ...], is_inf_run[start:stop, ...],
                gradient=step < steps, sparse=sparse,
            )
            diffs.append(diff)
            grads.append(grad)
        diff = diffs[0] if len(diffs) == 1 else xp.concat(diffs, axis=0)
        linf, l2 = _norms(xp, diff)
        k = int(xp.argmax(linf))
        if float(linf[k]) > best_linf:
            best_linf, arg_linf = float(linf[k]), x[k, ...]
        k = int(xp.argmax(l2))
        if float(l2[k]) > best_l2:
            best_l2, arg_l2 = float(l2[k]), x[k, ...]
        if step == steps:
            break
        grad = grads[0] if len(grads) == 1 else xp.concat(grads, axis=0)
        size = width * (0.1 - (0.1 - 0.001) * step / max(steps - 1, 1))
        x = xp.clip(x + size * xp.sign(grad), low, high)
        if progress is not None:
            progress("attack", step + 1, steps)
    return Witness(best_linf, best_l2, to_numpy(arg_linf).copy(), to_numpy(arg_l2).copy())


def evaluate(target: TargetNet, ticket_net: TargetNet, x: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(‖d‖_∞, ‖d‖_2)`` per input of the batch ``x`` (float64 forward passes, in ``x``'s
    namespace; plain lists and numbers go to numpy); host arrays come back."""
    xp = namespace(x)
    return _errors(target, ticket_net, xp.astype(xp.asarray(x), xp.float64))


__all__ = ["Witness", "attack", "evaluate", "sample_errors"]
