"""The two building blocks of every construction, as batched subset-sum problems.

* :func:`build_univariate_pair`: a *univariate* source layer (each unit reads one target
  input unit through one random weight u, plus a block of constant units with a kept random
  bias β) followed by a source layer that realises a whole target linear layer. Each target
  weight w is a subset sum of products v·u (LEMMAS.md 3 (A) for ReLU-like φ with the
  positive/negative split x = (φ(x) − φ(−x))/(1+a); 3 (B) and the Taylor remainder for smooth
  φ, where u ~ U[−λ, λ] is small and v ~ U[−1/(λφ'(0)), 1/(λφ'(0))]). The first layer of the
  L+1 construction (Burkholz, NeurIPS 2022) and every layer pair of the 2L construction
  (Burkholz, ICML 2022; Pensia et al. 2020) are this block.
* :func:`build_copy_layer`: a source layer that realises a target linear layer from ρ copies
  of each input unit: every target weight of every output copy is a plain subset sum of
  uniform weights over the copies of its input (LEMMAS.md 2.6, "why L+1 works").

Biases are subset sums over the constant units through kernel entries that never touch the
zero padding. Each block also returns the realised per-output error pieces from which
:mod:`ltbounds.construct.bound` evaluates the composition lemma (LEMMAS.md section 4).

Backends: every block takes ``xp``, the array namespace on which the source weights are drawn
(:func:`draw_source`: the counter-based Philox draw, the same bits on every backend). The
index bookkeeping, the subset-sum solver (numba) and everything computed from the drawn
values stay on the host, so a ticket is byte-identical whichever namespace drew its weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltbounds.activations import Activation
from ltbounds.backend import is_numpy, to_numpy
from ltbounds.construct.representation import Carrier, always_valid_kernel_positions
from ltbounds.construct.solve import SubsetSums, retry_spread, solve_problems, solve_spread
from ltbounds.errors import InvalidInput
from ltbounds.nets import LinearLayer, SourceNet

#: Target pre-activation of the constant units that carry biases to the next layer.
CONSTANT_PREACTIVATION = 1.0
#: Candidates one bias instance searches at a time (biases are few, so they get more).
BIAS_WINDOW = 28
#: The same for the first-layer biases of smooth φ with φ(0) ≠ 0 (sigmoid, softplus): there the
#: bias must also cancel the offset φ(0)·Σv of scale σ = 1/(λ|φ'(0)|), which needs more bits.
#: (In the 2L construction that offset grows with the fan-in; see :func:`offset_constant_units`.)
OFFSET_BIAS_WINDOW = 36


def needs_offset_cancellation(activation: Activation) -> bool:
    """True for smooth φ with φ(0) ≠ 0: univariate units then add φ(0)·v to every sum."""
    return not activation.relu_like and activation.value_at_zero != 0


def offset_constant_units(activation: Activation, in_units: int, base: int) -> int:
    """Constant units of a 2L univariate layer whose next layer must cancel φ(0)·Σv.

    The offset of one output is φ(0)·Σ over its terms (an input unit read through one kernel
    entry) of Σ_S v, the kept weights from that input's univariate units. The budget is one
    full-scale weight σ per term: |offset| ≤ |φ(0)|·σ·T for T terms. A constant unit read
    with v ~ U[−σ, σ] contributes, towards either sign, E[max(0, v·φ(β))] = σ·E|φ(β)|/4 on
    average (β ~ U[−1, 1], the law :func:`univariate_scale` gives such layers), so the reach
    takes ⌈4|φ(0)|·n_in / E|φ(β)|⌉ more units than the ``base`` ones (max(ρ₁, window),
    which keep the subset-sum lemma's precision): per kernel entry a term is one input unit,
    and a bias read through P always-valid entries has P·n_in terms and P·units candidates,
    so the same count serves both. For sigmoid that is 4·n_in. Measured on the digits CNN
    (seed 0, 2L) the largest offsets were 9.4σ over 32 terms, 4.1σ over 4 and 1.6σ over 1;
    the budget plus the base units' own reach (about base·σ/8 for sigmoid) covers each. An
    offset beyond it is not hidden: its bias misses and is reported.
    """
    phi0 = abs(float(activation.value_at_zero))
    if activation.relu_like or phi0 == 0:
        return int(base)
    grid = np.linspace(-1.0, 1.0, 4097)
    mean_abs = float(np.mean(np.abs(np.asarray(activation((grid[1:] + grid[:-1]) / 2), dtype=np.float64))))
    extra = math.ceil(round(4.0 * phi0 * int(in_units) / mean_abs, 9))
    return int(base) + extra


def draw_source(
    source: SourceNet, layer: int, flat: np.ndarray, xp: Any | None = None, *, bias: bool = False
) -> np.ndarray:
    """Source weights (``bias``: biases) of ``layer`` at the host indices ``flat``, drawn on ``xp``.

    The indices move to ``xp``, :meth:`~ltbounds.nets.SourceNet.weights` draws there (integer
    Philox rounds, one exact conversion to float64 and the affine map to the layer's range:
    exactly rounded operations only, so the same bits on every backend) and the values come
    back with :func:`~ltbounds.backend.to_numpy`, the construction's one host crossing: the
    subset-sum solver is a numba kernel. Nothing else is computed on ``xp`` here, because
    transcendental functions (φ of the constant units) and reductions may round differently
    on other backends and would then change the ticket. ``xp`` None or numpy: drawn in place,
    no copies.
    """
    draw = source.biases if bias else source.weights
    if xp is None or is_numpy(xp):
        return draw(layer, flat)
    return to_numpy(draw(layer, xp.asarray(flat), xp=xp))


def univariate_bias_window(activation: Activation) -> int:
    """Candidates per bias instance after a univariate layer (see :data:`OFFSET_BIAS_WINDOW`)."""
    return OFFSET_BIAS_WINDOW if needs_offset_cancellation(activation) else BIAS_WINDOW


@dataclass(frozen=True)
class SourceLayerSpec:
    """Architecture of one source linear layer (weights are implicit in the seed)."""

    kind: str
    weight_shape: tuple[int, ...]
    bias_shape: tuple[int, ...] | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    weight_range: tuple[float, float]
    bias_range: tuple[float, float] | None
    role: str

    def to_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "weight_shape": list(self.weight_shape),
            "bias_shape": None if self.bias_shape is None else list(self.bias_shape),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "weight_range": list(self.weight_range),
            "bias_range": None if self.bias_range is None else list(self.bias_range),
            "role": self.role,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SourceLayerSpec:
        return cls(
            kind=str(config["kind"]),
            weight_shape=tuple(int(s) for s in config["weight_shape"]),
            bias_shape=None if config["bias_shape"] is None else tuple(int(s) for s in config["bias_shape"]),
            stride=tuple(int(s) for s in config["stride"]),
            padding=tuple(int(s) for s in config["padding"]),
            weight_range=tuple(float(v) for v in config["weight_range"]),  # type: ignore[arg-type]
            bias_range=None if config["bias_range"] is None else tuple(float(v) for v in config["bias_range"]),  # type: ignore[arg-type]
            role=str(config["role"]),
        )


@dataclass
class LayerOutcome:
    """What building one source layer produced."""

    layer: int
    kept_weights: np.ndarray
    kept_biases: np.ndarray
    parameter_errors: np.ndarray
    missed: int
    preactivation_error: np.ndarray
    linearisation_error: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


def _kernel_geometry(layer: LinearLayer) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    kernel = tuple(int(k) for k in layer.weight.shape[2:])
    stride = tuple(getattr(layer, "stride", ()))
    padding = tuple(getattr(layer, "padding", ()))
    return kernel, stride, padding


def _bias_positions(layer: LinearLayer, input_spatial: tuple[int, ...]) -> np.ndarray:
    kernel, stride, padding = _kernel_geometry(layer)
    if not kernel:
        return np.zeros(1, dtype=np.int64)
    return always_valid_kernel_positions(input_spatial, kernel, stride, padding)


def _bias_candidate_units(
    carrier: Carrier, positions: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Constant units × always-valid kernel positions usable for biases (at most ``limit``).

    Units with value 0 are useless and skipped. Returns (unit, position, value) arrays.
    """
    useful = np.flatnonzero(carrier.constant_values != 0)
    units = np.repeat(carrier.constants[useful], len(positions))
    values = np.repeat(carrier.constant_values[useful], len(positions))
    where = np.tile(positions, len(useful))
    order = np.argsort(np.tile(np.arange(len(positions)), len(useful)), kind="stable")
    units, where, values = units[order][:limit], where[order][:limit], values[order][:limit]
    return units, where, values


def _flat_index(out_unit: Any, in_unit: Any, position: Any, in_units: int, kernel_entries: int) -> Any:
    return (out_unit * in_units + in_unit) * kernel_entries + position


def _solve_biases(
    source: SourceNet,
    layer_index: int,
    out_units: np.ndarray,
    targets: np.ndarray,
    bias_units: np.ndarray,
    bias_positions: np.ndarray,
    bias_values: np.ndarray,
    in_units: int,
    kernel_entries: int,
    tolerance: float,
    objective: str,
    window: int = BIAS_WINDOW,
    spread: bool = False,
    xp: Any | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Subset sums realising ``targets`` from constant units; returns kept, sums, errors, missed.

    With ``spread`` the subset may span every window (:func:`~ltbounds.construct.solve.solve_spread`,
    closest objective): for targets larger than one window reaches.
    """
    if len(out_units) == 0:
        return np.zeros(0, np.int64), np.zeros(0), np.zeros(0), 0
    if len(bias_units) == 0:
        errors = np.abs(targets)
        return np.zeros(0, np.int64), np.zeros(len(targets)), errors, int(np.sum(errors > tolerance))
    flat = _flat_index(
        out_units[:, None], bias_units[None, :], bias_positions[None, :], in_units, kernel_entries
    )
    candidates = draw_source(source, layer_index, flat, xp) * bias_values[None, :]
    if spread:
        result = solve_spread(targets, candidates, tolerance, window)
    else:
        result = solve_problems(targets, candidates, tolerance, objective, window)
    return flat[result.mask], result.value, result.error, result.missed


def _choose_copies(
    out_total: int,
    copies: int,
    out_unit: np.ndarray,
    missed: np.ndarray,
    score: np.ndarray,
    available: np.ndarray | None = None,
) -> np.ndarray:
    """Usable output copies: those none of whose subset sums missed its tolerance.

    Copies of a target unit are interchangeable, so a copy whose realisation failed is
    pruned (the next layer does not read it). So that failures cannot cascade, every target
    unit keeps at least half of its copies: where fewer are clean, the half with the smallest
    pre-activation error bound, and their misses are reported. Output layers (one copy) keep
    everything. ``available`` (residual blocks: the copies whose skip contribution is usable)
    restricts the choice to those copies; without it the rule above is unchanged.
    """
    if copies == 1 and available is None:
        return np.ones(out_total, dtype=bool)
    bad = np.zeros(out_total, dtype=bool)
    np.logical_or.at(bad, out_unit, missed)
    if available is None:
        usable = ~bad.reshape(-1, copies)
        floor = (copies + 1) // 2
        short = np.count_nonzero(usable, axis=1) < floor
        if short.any():
            ranks = np.argsort(np.argsort(score.reshape(-1, copies)[short], axis=1, kind="stable"), axis=1)
            usable[short] = ranks < floor
        return usable.reshape(-1)
    allowed = np.asarray(available, dtype=bool).reshape(-1, copies)
    if copies == 1:
        return allowed.reshape(-1).copy()
    usable = ~bad.reshape(-1, copies) & allowed
    floor = np.minimum((copies + 1) // 2, np.count_nonzero(allowed, axis=1))
    short = np.count_nonzero(usable, axis=1) < floor
    if short.any():
        masked = np.where(allowed[short], score.reshape(-1, copies)[short], np.inf)
        ranks = np.argsort(np.argsort(masked, axis=1, kind="stable"), axis=1)
        usable[short] = (ranks < floor[short][:, None]) & allowed[short]
    return usable.reshape(-1)


def _finish(
    *,
    layer_index: int,
    out_total: int,
    copies: int,
    kept: list[np.ndarray],
    unit_of_problem: np.ndarray,
    problem_errors: np.ndarray,
    tolerance: float,
    preactivation: np.ndarray,
    weight_abs: np.ndarray,
    in_units: int,
    kernel_entries: int,
    stats: dict[str, Any],
    available: np.ndarray | None = None,
) -> tuple[LayerOutcome, np.ndarray]:
    """Choose usable copies, drop what feeds unusable ones, and summarise the layer."""
    missed = problem_errors > tolerance
    usable = _choose_copies(out_total, copies, unit_of_problem, missed, preactivation, available)
    flat = np.concatenate(kept) if kept else np.zeros(0, np.int64)
    unit = flat // (in_units * kernel_entries)
    keep = (unit >= out_total) | usable[np.minimum(unit, out_total - 1)]
    in_use = usable[unit_of_problem]
    outcome = LayerOutcome(
        layer=layer_index,
        kept_weights=np.unique(flat[keep]),
        kept_biases=np.zeros(0, np.int64),
        parameter_errors=problem_errors[in_use],
        missed=int(np.count_nonzero(missed & in_use)),
        preactivation_error=preactivation[usable],
        stats={
            **stats,
            "dropped_copies": int(out_total - np.count_nonzero(usable)),
            "weight_norm": float(np.max(weight_abs[usable], initial=0.0)),
        },
    )
    return outcome, usable


def build_copy_layer(
    *,
    target_layer: LinearLayer,
    input_carrier: Carrier,
    input_magnitude: np.ndarray,
    output_copies: int,
    output_constants: int,
    source: SourceNet,
    layer_index: int,
    tolerance: float,
    activation: Activation,
    objective: str,
    max_candidates: int,
    available: np.ndarray | None = None,
    constant_offset: np.ndarray | None = None,
    constant_map: Callable[[np.ndarray], np.ndarray] | None = None,
    xp: Any | None = None,
) -> tuple[LayerOutcome, np.ndarray, np.ndarray, np.ndarray]:
    """Realise ``target_layer`` from ρ copies of its inputs (LEMMAS.md 2.6).

    Source output units: copy ``k`` of target unit ``j`` is ``j·output_copies + k``; the
    ``output_constants`` constant units follow. Each instance searches the usable copies of
    its input in windows of ``max_candidates``. Returns the outcome, the output ``copies``
    array, their usable mask and the exact values (after φ) of the new constant units.

    For the layer that closes a residual block (:mod:`ltbounds.construct.residual`):
    ``available`` (bool, ``(n_out, output_copies)``) limits the usable output copies to those
    whose skip contribution is usable; the new constants' values are
    ``constant_map(sums + constant_offset)`` (the skip's constant contribution added before
    the block's output activation; default map φ, default offset 0). ``xp``: the namespace
    the source weights are drawn on (:func:`draw_source`; default numpy).
    """
    weight = target_layer.weight.reshape(target_layer.out_channels, target_layer.in_channels, -1)
    n_out, _, kernel_entries = weight.shape
    in_units = int(input_carrier.source_shape[0])
    cand_units, cand_usable = input_carrier.candidates(input_carrier.n_copies)

    # One problem per nonzero target weight (j, i, r) per output copy k.
    j_idx, i_idx, r_idx = np.nonzero(np.abs(weight) > tolerance)
    k_idx = np.tile(np.arange(output_copies), len(j_idx))
    j_rep, i_rep, r_rep = (np.repeat(a, output_copies) for a in (j_idx, i_idx, r_idx))
    out_unit = j_rep * output_copies + k_idx
    flat = _flat_index(out_unit[:, None], cand_units[i_rep], r_rep[:, None], in_units, kernel_entries)
    usable_rep = cand_usable[i_rep]
    values = np.where(usable_rep, draw_source(source, layer_index, flat, xp), 0.0)
    result: SubsetSums = solve_problems(
        weight[j_rep, i_rep, r_rep], values, tolerance, objective, max_candidates
    )
    mask = result.mask & usable_rep
    kept = [flat[mask]]

    # Realised pre-activation error of every output copy, LEMMAS.md section 4:
    # |ẑ − z| ≤ Σ_{i,r} (Σ_{s∈S}|v_s|)·e_in + |Σ_S v − w|·M_i + |bias error|.
    out_total = n_out * output_copies
    weight_abs = np.zeros(out_total)
    np.add.at(weight_abs, out_unit, np.sum(np.abs(values) * mask, axis=1))
    parameter_error = np.zeros(out_total)
    np.add.at(parameter_error, out_unit, result.error * input_magnitude[i_rep])
    parameter_error += np.repeat(_pruned_error(weight, tolerance, input_magnitude), output_copies)

    positions = _bias_positions(target_layer, tuple(input_carrier.source_shape[1:]))
    bias_units, bias_where, bias_values = _bias_candidate_units(input_carrier, positions, 2 * BIAS_WINDOW)
    units = np.arange(out_total)
    problem_unit, problem_errors = [out_unit], [result.error]
    if target_layer.bias is not None:
        kept_b, _, bias_errors, _ = _solve_biases(
            source, layer_index, units, np.repeat(target_layer.bias, output_copies),
            bias_units, bias_where, bias_values, in_units, kernel_entries, tolerance, objective,
            xp=xp,
        )
        kept.append(kept_b)
        parameter_error += bias_errors
        problem_unit.append(units)
        problem_errors.append(bias_errors)

    constant_values = np.zeros(0)
    if output_constants:
        constant_units = out_total + np.arange(output_constants)
        kept_c, sums, _, _ = _solve_biases(
            source, layer_index, constant_units, np.full(output_constants, CONSTANT_PREACTIVATION),
            bias_units, bias_where, bias_values, in_units, kernel_entries, tolerance, objective,
            xp=xp,
        )
        kept.append(kept_c)
        if constant_offset is not None:
            sums = sums + constant_offset
        constant_values = np.asarray((constant_map or activation)(sums), dtype=np.float64)

    preactivation = weight_abs * input_carrier.error + parameter_error
    outcome, usable = _finish(
        layer_index=layer_index, out_total=out_total, copies=output_copies, kept=kept,
        unit_of_problem=np.concatenate(problem_unit), problem_errors=np.concatenate(problem_errors),
        tolerance=tolerance, preactivation=preactivation, weight_abs=weight_abs,
        in_units=in_units, kernel_entries=kernel_entries,
        stats={"problems": int(sum(e.size for e in problem_errors)), "candidates": int(max_candidates)},
        available=None if available is None else np.asarray(available, dtype=bool).reshape(-1),
    )
    outcome.stats["own_error"] = float(np.max(parameter_error[usable], initial=0.0))
    copies = (np.arange(n_out)[:, None] * output_copies + np.arange(output_copies)[None, :]).astype(np.int64)
    return outcome, copies, usable.reshape(n_out, output_copies), constant_values


def _pruned_error(weight: np.ndarray, tolerance: float, magnitude: np.ndarray) -> np.ndarray:
    """Per target output unit, Σ|w|·M_i over the nonzero weights at most ``tolerance`` (pruned to 0)."""
    small = (np.abs(weight) <= tolerance) & (weight != 0)
    contribution = np.abs(np.where(small, weight, 0.0)) * magnitude[None, :, None]
    return contribution.reshape(weight.shape[0], -1).sum(axis=1)


@dataclass(frozen=True)
class UnivariateScale:
    """The laws of a univariate block: u ~ U[−lam, lam], v ~ U[−sigma, sigma], β ~ U[bias_range]."""

    lam: float
    sigma: float
    bias_range: tuple[float, float] = (-1.0, 1.0)


def linearisation_remainder(activation: Activation, t: np.ndarray) -> np.ndarray:
    """Bound on |φ(y) − φ(0) − φ'(0)y| for |y| ≤ t (Taylor, LEMMAS.md 3 (B)).

    min(sup|φ''|·t²/2, |φ''(0)|·t²/2 + sup|φ'''|·t³/6), from the registry's stated (and
    lemma-checked) derivative bounds.
    """
    second = activation.second_derivative_bound
    third = activation.third_derivative_bound
    if second is None:
        raise InvalidInput(f"activation={activation.name!r} has no second-derivative bound; the linear regime needs one")
    bound = second * t**2 / 2
    if third is not None:
        curvature = abs(second_derivative_at_zero(activation))
        bound = np.minimum(bound, curvature * t**2 / 2 + third * t**3 / 6)
    return bound


def second_derivative_at_zero(activation: Activation) -> float:
    """φ''(0) from the sympy expression (0 for odd φ such as tanh)."""
    import sympy as sp  # noqa: PLC0415

    x = sp.Symbol("x", real=True)
    return float(sp.diff(activation.symbolic(x), x, 2).subs(x, 0))


def build_univariate_pair(
    *,
    target_layer: LinearLayer,
    input_carrier: Carrier,
    input_lower: np.ndarray,
    input_upper: np.ndarray,
    rho_first: int,
    constants: int,
    output_copies: int,
    output_constants: int,
    source: SourceNet,
    univariate_index: int,
    tolerance: float,
    activation: Activation,
    scale: UnivariateScale,
    objective: str,
    max_candidates: int,
    spread_offset: bool = False,
    xp: Any | None = None,
) -> tuple[LayerOutcome, LayerOutcome, np.ndarray, np.ndarray, np.ndarray]:
    """Realise ``target_layer`` through a univariate layer and the layer after it.

    Univariate units: unit ``i·rho_first + s`` reads one usable copy of target input unit
    ``i`` through weight u; units ``n_in·rho_first + c`` (c < ``constants``) are constants
    φ(β_c). The next layer (index ``univariate_index + 1``) has output copies and constants as
    in :func:`build_copy_layer`. ``input_lower``/``input_upper`` bound, per input unit, the
    target values entering the layer. Returns both outcomes, the output copies array, its
    usable mask and the new constants' exact values.

    ``spread_offset`` (the 2L construction, with ``constants`` from
    :func:`offset_constant_units`): when φ(0) ≠ 0 the offset-cancelling instances (bias and
    padded entries) search *all* constant units at once with
    :func:`~ltbounds.construct.solve.solve_spread`, since their targets are of order σ·fan-in,
    beyond one window, and weight instances that miss in their windows are retried across
    all their candidates (:func:`~ltbounds.construct.solve.retry_spread`). Without it (the
    L+1 construction's first layer) each instance searches at most ``2·OFFSET_BIAS_WINDOW``
    candidates, one window at a time. ``xp``: the namespace the source weights are drawn on
    (:func:`draw_source`; default numpy).
    """
    weight = target_layer.weight.reshape(target_layer.out_channels, target_layer.in_channels, -1)
    n_out, n_in, kernel_entries = weight.shape
    in_src = int(input_carrier.source_shape[0])
    uni_units = n_in * rho_first + constants
    next_index = univariate_index + 1

    uni_unit = np.arange(n_in * rho_first, dtype=np.int64).reshape(n_in, rho_first)
    read = input_carrier.candidates(1)[0][:, 0]
    u = draw_source(source, univariate_index, uni_unit * in_src + read[:, None], xp)
    const_units = n_in * rho_first + np.arange(constants, dtype=np.int64)
    const_values = np.asarray(
        activation(draw_source(source, univariate_index, const_units, xp, bias=True)), dtype=np.float64
    )

    magnitude = np.maximum(np.abs(input_lower), np.abs(input_upper))
    if activation.relu_like:
        slope = activation.relu_like_negative_slope or 0.0
        # w·x = (w/(1+a))·(φ(x) − φ(−x)); u>0 gives u·φ(x), u<0 gives |u|·φ(−x).
        signs = [(+1, np.maximum(input_upper, 0.0)), (-1, np.maximum(-input_lower, 0.0))]
        if slope == 0.0:  # ReLU: a side the inputs never reach contributes nothing
            signs = [(sign, reach) for sign, reach in signs if np.any(reach > 0)]
    else:
        slope = 0.0
        signs = [(0, magnitude)]

    j_idx, i_idx, r_idx = np.nonzero(np.abs(weight) > tolerance)
    k_idx = np.tile(np.arange(output_copies), len(j_idx))
    j_rep, i_rep, r_rep = (np.repeat(a, output_copies) for a in (j_idx, i_idx, r_idx))
    out_unit = j_rep * output_copies + k_idx
    out_total = n_out * output_copies

    spread = spread_offset and needs_offset_cancellation(activation)
    kept_next: list[np.ndarray] = []
    kept_uni: list[np.ndarray] = []
    problem_unit: list[np.ndarray] = []
    problem_errors: list[np.ndarray] = []
    parameter_error = np.zeros(out_total)
    weight_abs = np.zeros(out_total)
    linearisation = np.zeros(out_total)
    offset = np.zeros((out_total, kernel_entries))
    for sign, reach in signs:
        # Per input unit, the univariate units usable for this sign first (at most
        # max_candidates; slots without a usable unit hold a zero candidate).
        usable = np.ones_like(u, dtype=bool) if sign == 0 else ((u > 0) if sign > 0 else (u < 0))
        order = np.argsort(~usable, axis=1, kind="stable")
        usable_rep = np.take_along_axis(usable, order, axis=1)[i_rep]
        chosen_units = np.take_along_axis(uni_unit, order, axis=1)[i_rep]
        flat = _flat_index(out_unit[:, None], chosen_units, r_rep[:, None], uni_units, kernel_entries)
        v = draw_source(source, next_index, flat, xp)
        u_sel = np.take_along_axis(u, order, axis=1)[i_rep]
        if sign == 0:
            coefficient = v * u_sel * activation.slope_at_zero
            targets = weight[j_rep, i_rep, r_rep]
        else:
            coefficient = v * np.abs(u_sel)
            targets = sign * weight[j_rep, i_rep, r_rep] / (1.0 + slope)
        coefficient = np.where(usable_rep, coefficient, 0.0)
        result = solve_problems(targets, coefficient, tolerance, objective, max_candidates)
        if spread:  # misses may span windows (retry_spread); only where φ(0) ≠ 0 in 2L
            result = retry_spread(result, targets, coefficient, tolerance, max_candidates)
        mask = result.mask & usable_rep
        kept_next.append(flat[mask])
        kept_uni.append(np.stack([chosen_units[mask], np.broadcast_to(read[i_rep][:, None], mask.shape)[mask]]))
        problem_unit.append(out_unit)
        problem_errors.append(result.error)
        np.add.at(parameter_error, out_unit, result.error * reach[i_rep])
        np.add.at(weight_abs, out_unit, np.sum(np.abs(v * u_sel) * mask, axis=1))
        if sign == 0:
            remainder = linearisation_remainder(activation, np.abs(u_sel) * magnitude[i_rep][:, None])
            np.add.at(linearisation, out_unit, np.sum(np.abs(v) * remainder * mask, axis=1))
            np.add.at(offset, (out_unit, r_rep), activation.value_at_zero * np.sum(v * mask, axis=1))
    parameter_error += np.repeat(_pruned_error(weight, tolerance, magnitude), output_copies)

    # Biases and next constants from the univariate constants φ(β_c).
    const_carrier = Carrier(
        copies=uni_unit, constants=const_units, constant_values=const_values,
        source_shape=(uni_units, *input_carrier.source_shape[1:]), error=0.0,
    )
    positions = _bias_positions(target_layer, tuple(input_carrier.source_shape[1:]))
    window = univariate_bias_window(activation)
    bias_units, bias_where, bias_values = _bias_candidate_units(const_carrier, positions, 2 * window)
    # Spread instances read every constant unit through every always-valid entry (one more
    # list, so that the output constants below keep their candidates).
    if spread:
        o_units, o_where, o_values = _bias_candidate_units(
            const_carrier, positions, constants * max(len(positions), 1)
        )
    units = np.arange(out_total)
    # Smooth φ with φ(0) ≠ 0: every kept weight v adds φ(0)·v. Through kernel entries that can
    # touch the zero padding that offset vanishes where the input is padded, so it is
    # cancelled through the *same* entry by constant units (padded alike); through
    # always-valid entries it joins the bias instance.
    if np.any(offset != 0):
        for entry in np.setdiff1d(np.flatnonzero(np.any(offset != 0, axis=0)), positions):
            e_units, e_where, e_values = _bias_candidate_units(
                const_carrier, np.array([entry]), constants if spread else 2 * window
            )
            kept_o, _, offset_errors, _ = _solve_biases(
                source, next_index, units, -offset[:, entry], e_units, e_where, e_values,
                uni_units, kernel_entries, tolerance, "closest", window, spread, xp=xp,
            )
            kept_next.append(kept_o)
            parameter_error += offset_errors
            problem_unit.append(units)
            problem_errors.append(offset_errors)
        if target_layer.bias is None:
            raise InvalidInput(
                f"activation={activation.name!r} has φ(0)={activation.value_at_zero} ≠ 0, whose "
                "offset must be cancelled through a bias, but the target layer has none"
            )
    valid_offset = offset[:, positions].sum(axis=1) if positions.size else np.zeros(out_total)
    if target_layer.bias is not None:
        targets = np.repeat(target_layer.bias, output_copies) - valid_offset
        if spread:
            kept_b, _, bias_errors, _ = _solve_biases(
                source, next_index, units, targets, o_units, o_where, o_values, uni_units,
                kernel_entries, tolerance, "closest", window, True, xp=xp,
            )
        else:
            kept_b, _, bias_errors, _ = _solve_biases(
                source, next_index, units, targets, bias_units, bias_where, bias_values, uni_units,
                kernel_entries, tolerance, "closest" if np.any(valid_offset != 0) else objective, window,
                xp=xp,
            )
        kept_next.append(kept_b)
        parameter_error += bias_errors
        problem_unit.append(units)
        problem_errors.append(bias_errors)
    new_constant_values = np.zeros(0)
    if output_constants:
        constant_units = out_total + np.arange(output_constants)
        kept_c, sums, _, _ = _solve_biases(
            source, next_index, constant_units, np.full(output_constants, CONSTANT_PREACTIVATION),
            bias_units, bias_where, bias_values, uni_units, kernel_entries, tolerance, objective, window,
            xp=xp,
        )
        kept_next.append(kept_c)
        new_constant_values = np.asarray(activation(sums), dtype=np.float64)

    # Error through the univariate layer: |φ(u x̂) − φ(u x)| ≤ Lip·|u|·e_in.
    preactivation = (
        activation.lipschitz * weight_abs * input_carrier.error + parameter_error + linearisation
    )
    second, usable_out = _finish(
        layer_index=next_index, out_total=out_total, copies=output_copies, kept=kept_next,
        unit_of_problem=np.concatenate(problem_unit), problem_errors=np.concatenate(problem_errors),
        tolerance=tolerance, preactivation=preactivation, weight_abs=weight_abs,
        in_units=uni_units, kernel_entries=kernel_entries,
        stats={"problems": int(sum(e.size for e in problem_errors)),
               "candidates": int(max_candidates)},
    )
    second.linearisation_error = float(np.max(linearisation[usable_out], initial=0.0))
    second.stats["own_error"] = float(np.max((parameter_error + linearisation)[usable_out], initial=0.0))

    # Univariate units still read by a kept weight keep their input weight; constant units
    # still read keep their bias β.
    read_units = (second.kept_weights // kernel_entries) % uni_units
    used = np.unique(read_units)
    uni_pairs = np.concatenate(kept_uni, axis=1) if kept_uni else np.zeros((2, 0), np.int64)
    live = np.isin(uni_pairs[0], used)
    first = LayerOutcome(
        layer=univariate_index,
        kept_weights=np.unique(uni_pairs[0][live] * in_src + uni_pairs[1][live]),
        kept_biases=used[used >= n_in * rho_first],
        parameter_errors=np.zeros(0),
        missed=0,
        preactivation_error=np.zeros(0),
        stats={"units": uni_units, "lambda": scale.lam},
    )
    copies = (np.arange(n_out)[:, None] * output_copies + np.arange(output_copies)[None, :]).astype(np.int64)
    return first, second, copies, usable_out.reshape(n_out, output_copies), new_constant_values


def univariate_scale(activation: Activation, tolerance: float, magnitude: float) -> UnivariateScale:
    """Choose λ (scale of u) and σ = 1/(λ|φ'(0)|) (scale of v) for a univariate block.

    ReLU-like φ needs no small scale (positive homogeneity makes the identity exact), so
    λ = σ = 1 and constant units have biases β ~ U[−1, 1]. For smooth φ, λ is the largest
    power of two at which one selected term's Taylor remainder, scaled by σ, stays below a
    quarter of the per-parameter tolerance times the input magnitude:
    R(λM)/(λ|φ'(0)|) ≤ tolerance·M/4 (LEMMAS.md 3 (B)). When φ(0) = 0 the constant units get
    β ~ U[−λ, λ] too, so that their values φ(β) ≈ φ'(0)β times σ are of order one, like the
    weight candidates; when φ(0) ≠ 0 they keep β ~ U[−1, 1] and the bias instances cancel the
    offset with :data:`OFFSET_BIAS_WINDOW` candidates per window (in the 2L construction over
    all of :func:`offset_constant_units` constant units at once). λ is fixed *before* any weight is drawn
    and recorded in the ticket.
    """
    if activation.relu_like:
        return UnivariateScale(lam=1.0, sigma=1.0, bias_range=(-1.0, 1.0))
    slope = abs(activation.slope_at_zero)
    if slope == 0:
        raise InvalidInput(f"activation={activation.name!r} has φ'(0)=0; its linear regime cannot carry a weight")
    magnitude = max(magnitude, 1e-12)
    lam = 1.0
    for _ in range(200):
        remainder = float(linearisation_remainder(activation, np.asarray(lam * magnitude)))
        if remainder / (lam * slope) <= tolerance * magnitude / 4:
            break
        lam /= 2
    bias_range = (-1.0, 1.0) if needs_offset_cancellation(activation) else (-lam, lam)
    return UnivariateScale(lam=lam, sigma=1.0 / (lam * slope), bias_range=bias_range)


__all__ = [
    "CONSTANT_PREACTIVATION",
    "LayerOutcome",
    "SourceLayerSpec",
    "UnivariateScale",
    "build_copy_layer",
    "build_univariate_pair",
    "draw_source",
    "linearisation_remainder",
    "needs_offset_cancellation",
    "offset_constant_units",
    "univariate_scale",
]
