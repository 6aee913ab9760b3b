"""Drivers of the L+1 and 2L constructions: target in, :class:`~ltbounds.ticket.Ticket` out.

* ``depth="L+1"`` (Burkholz, NeurIPS 2022, "Most activation functions can win the lottery
  without excessive depth"; LEMMAS.md 2.6): a univariate source layer of ρ₁(n₀+1) units
  (ρ₁ = 2ρ for ReLU-like φ), then one source layer per target linear layer holding ρ copies of
  each target unit plus ρ constant units; the last source layer has the target's outputs.
* ``depth="2L"`` (Burkholz, ICML 2022; Pensia et al. 2020; LEMMAS.md 2.5): every target linear
  layer becomes a univariate layer of ρ₁(n_{l−1}+1) units followed by a layer with the
  target's n_l units.

The source network is fixed by ``seed`` and the laws recorded in the ticket (``λ`` and ``σ``
of every univariate block are chosen from the tolerances *before* any weight is drawn). The
per-parameter tolerances come from the composition lemma's a-priori allotment of ``eps`` over
the layers (target weight norms); the ticket then reports the composition bound evaluated on
the *realised* pruned weights, which is larger because a weight realised by a subset sum
over copies carries Σ|v| ≥ |w| (measured, not hidden: re-pruning with tighter tolerances was
tried and only added misses).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds.activations import Activation
from ltbounds.construct.blocks import (
    LayerOutcome,
    SourceLayerSpec,
    UnivariateScale,
    build_copy_layer,
    build_univariate_pair,
    univariate_bias_window,
    univariate_scale,
)
from ltbounds.construct.representation import Carrier
from ltbounds.construct.solve import OBJECTIVES
from ltbounds.errors import InvalidInput
from ltbounds.nets import LinearLayer, SourceNet, TargetNet
from ltbounds.validation import (
    check_choice,
    check_int,
    check_open_unit,
    check_positive,
)

DEPTHS = ("L+1", "2L")
#: Largest width factor accepted (memory grows linearly in it).
MAX_RHO = 256
#: Default number of candidates one subset-sum instance searches (the exact solver's time
#: grows as 2^(n/2); the source may be wider, the extra units are simply pruned).
MAX_CANDIDATES = 24

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Plan:
    """Everything fixed before the source is drawn."""

    depth: str
    rho: int
    rho_first: int
    max_candidates: int
    tolerances: tuple[float, ...]
    scales: tuple[UnivariateScale, ...]
    specs: tuple[SourceLayerSpec, ...]
    order: tuple[tuple[str, int], ...]


def _segments(target: TargetNet) -> tuple[list[Any], list[tuple[LinearLayer, list[Any]]]]:
    """Split the target into (structural layers before the first linear layer, [(linear, structural after)])."""
    leading: list[Any] = []
    segments: list[tuple[LinearLayer, list[Any]]] = []
    for layer in target.layers:
        if layer.is_linear:
            segments.append((layer, []))
        elif segments:
            segments[-1][1].append(layer)
        else:
            leading.append(layer)
    return leading, segments


def _input_bounds(target: TargetNet) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per input unit (channel or feature) bounds of the value entering each linear layer."""
    bounds = target.layer_bounds()
    low, high = target.input_domain
    out = []
    for index, _ in target.linear_layers:
        if index == 0:
            channels = target.input_shape[0]
            lower, upper = np.full(channels, low), np.full(channels, high)
        else:
            a, b = bounds[index - 1]
            axes = tuple(range(1, a.ndim))
            lower = np.min(a, axis=axes) if axes else a
            upper = np.max(b, axis=axes) if axes else b
        out.append((np.asarray(lower, float), np.asarray(upper, float)))
    return out


def allot_tolerances(target: TargetNet, eps: float) -> list[float]:
    """Equal share of ``eps`` per layer through the composition bound (LEMMAS.md section 4).

    t_l = ε / (L·λ_l·(F_l(M_{l−1}+1)+1)·Π_{k>l} max(1, λ_k A_k)), with F_l the fan-in,
    M_{l−1} the bound on the layer's input, λ_l the Lipschitz constant of φ after layer l
    (1 after the last layer) and A_k = ‖W_k‖_{∞→∞}, the target's norm (the allotment is made
    before any weight is drawn).
    """
    linear = [layer for _, layer in target.linear_layers]
    depth = len(linear)
    norms = [layer.lipschitz_inf() for layer in linear]
    magnitudes = target.input_norm_bounds()
    lipschitz = [target.activation_function.lipschitz] * (depth - 1) + [1.0]
    tolerances = []
    for position, layer in enumerate(linear):
        downstream = math.prod(
            max(1.0, lipschitz[k] * norms[k]) for k in range(position + 1, depth)
        )
        fan = layer.fan_in * (magnitudes[position] + 1.0) + 1.0
        tolerances.append(eps / (depth * lipschitz[position] * fan * downstream))
    return tolerances


def _univariate_spec(
    kind: str, units: int, in_units: int, scale: UnivariateScale, spatial_dims: int
) -> SourceLayerSpec:
    ones = (1,) * spatial_dims
    return SourceLayerSpec(
        kind=kind,
        weight_shape=(units, in_units, *ones),
        bias_shape=(units,),
        stride=ones,
        padding=(0,) * spatial_dims,
        weight_range=(-scale.lam, scale.lam),
        bias_range=scale.bias_range,
        role="univariate",
    )


def _implementing_spec(
    layer: LinearLayer, out_units: int, in_units: int, weight_range: tuple[float, float], role: str
) -> SourceLayerSpec:
    kernel = tuple(int(k) for k in layer.weight.shape[2:])
    return SourceLayerSpec(
        kind=layer.kind,
        weight_shape=(out_units, in_units, *kernel),
        bias_shape=None,
        stride=tuple(getattr(layer, "stride", ())),
        padding=tuple(getattr(layer, "padding", ())),
        weight_range=weight_range,
        bias_range=None,
        role=role,
    )


def plan_source(
    target: TargetNet,
    *,
    depth: str,
    rho: int,
    tolerances: list[float],
    max_candidates: int = MAX_CANDIDATES,
) -> Plan:
    """Fix the source architecture and its laws (before any weight is drawn)."""
    activation = target.activation_function
    rho_first = 2 * rho if activation.relu_like else rho
    leading, segments = _segments(target)
    magnitudes = target.input_norm_bounds()
    univariate_constants = max(rho_first, univariate_bias_window(activation))

    specs: list[SourceLayerSpec] = []
    scales: list[UnivariateScale] = []
    order: list[tuple[str, int]] = [("structural", target.layers.index(s)) for s in leading]
    source_shape = tuple(target.input_shape)
    for layer in leading:
        source_shape = layer.output_shape(source_shape)
    n_layers = len(segments)
    for position, (layer, after) in enumerate(segments):
        last = position == n_layers - 1
        in_units, spatial_dims = source_shape[0], len(source_shape) - 1
        next_has_bias = not last and segments[position + 1][0].bias is not None
        if depth == "2L" or position == 0:
            scale = univariate_scale(activation, tolerances[position], magnitudes[position])
            scales.append(scale)
            units = layer.in_channels * rho_first + univariate_constants
            kind = "dense" if spatial_dims == 0 else f"conv{spatial_dims}d"
            specs.append(_univariate_spec(kind, units, in_units, scale, spatial_dims))
            order.append(("linear", len(specs) - 1))
            in_units = units
            weight_range = (-scale.sigma, scale.sigma)
        else:
            weight_range = (-1.0, 1.0)
        copies = 1 if (last or depth == "2L") else rho
        constants = rho if (depth == "L+1" and next_has_bias) else 0
        out_units = layer.out_channels * copies + constants
        specs.append(_implementing_spec(layer, out_units, in_units, weight_range, f"target layer {position + 1}"))
        order.append(("linear", len(specs) - 1))
        index = target.layers.index(layer)
        source_shape = (out_units, *target.shapes[index + 1][1:])
        for structural in after:
            order.append(("structural", target.layers.index(structural)))
            source_shape = structural.output_shape(source_shape)
    return Plan(
        depth, rho, rho_first, max_candidates, tuple(tolerances), tuple(scales), tuple(specs), tuple(order)
    )


@dataclass
class BuildResult:
    """A pruned source: per-layer outcomes, the final bound and the plan."""

    plan: Plan
    outcomes: list[LayerOutcome]
    layer_errors: list[float]
    predicted_error: float
    missed: int
    seconds: float
    matches: list[dict[str, Any]]


def _build(
    target: TargetNet,
    plan: Plan,
    source: SourceNet,
    *,
    objective: str,
    progress: Progress | None,
) -> BuildResult:
    start = time.perf_counter()
    activation: Activation = target.activation_function
    leading, segments = _segments(target)
    bounds = _input_bounds(target)
    carrier = Carrier.identity(tuple(target.input_shape))
    for layer in leading:
        carrier = carrier.through(layer)
    outcomes: list[LayerOutcome] = []
    layer_errors: list[float] = []
    matches: list[dict[str, Any]] = []
    source_index = 0
    n_layers = len(segments)
    rho = plan.rho
    scale_index = 0
    for position, (layer, after) in enumerate(segments):
        if progress is not None:
            progress(f"target layer {position + 1}/{n_layers}: {layer.describe()}", position, n_layers)
        last = position == n_layers - 1
        lipschitz = 1.0 if last else activation.lipschitz
        spec = plan.specs[source_index + (1 if (plan.depth == "2L" or position == 0) else 0)]
        copies = 1 if (last or plan.depth == "2L") else rho
        out_units = spec.weight_shape[0]
        constants = out_units - layer.out_channels * copies
        lower, upper = bounds[position]
        tolerance = plan.tolerances[position]
        if plan.depth == "2L" or position == 0:
            uni_spec = plan.specs[source_index]
            uni_constants = uni_spec.weight_shape[0] - layer.in_channels * plan.rho_first
            first, second, copies_array, usable, constant_values = build_univariate_pair(
                target_layer=layer,
                input_carrier=carrier,
                input_lower=lower,
                input_upper=upper,
                rho_first=plan.rho_first,
                constants=uni_constants,
                output_copies=copies,
                output_constants=constants,
                source=source,
                univariate_index=source_index,
                tolerance=tolerance,
                activation=activation,
                scale=plan.scales[scale_index],
                objective=objective,
                max_candidates=plan.max_candidates,
            )
            scale_index += 1
            univariate_layer: int | None = first.layer
            outcomes.extend([first, second])
            source_index += 2
            outcome = second
        else:
            magnitude = np.maximum(np.abs(lower), np.abs(upper))
            outcome, copies_array, usable, constant_values = build_copy_layer(
                target_layer=layer,
                input_carrier=carrier,
                input_magnitude=magnitude,
                output_copies=copies,
                output_constants=constants,
                source=source,
                layer_index=source_index,
                tolerance=tolerance,
                activation=activation,
                objective=objective,
                max_candidates=plan.max_candidates,
            )
            univariate_layer = None
            outcomes.append(outcome)
            source_index += 1
        error = lipschitz * float(np.max(outcome.preactivation_error, initial=0.0))
        layer_errors.append(error)
        index = target.layers.index(layer)
        spatial = tuple(target.shapes[index + 1][1:])
        carrier = Carrier(
            copies=copies_array,
            constants=layer.out_channels * copies + np.arange(constants, dtype=np.int64),
            constant_values=constant_values,
            source_shape=(out_units, *spatial),
            error=error,
            usable=usable,
        )
        matches.append({
            "source_layer": outcome.layer,
            "univariate_layer": univariate_layer,
            "copies": carrier.copies,
            "usable": carrier.usable,
            "constants": carrier.constants,
            "constant_values": carrier.constant_values,
            "error": error,
        })
        for structural in after:
            carrier = carrier.through(structural)
    if progress is not None:
        progress("done", n_layers, n_layers)
    return BuildResult(
        plan=plan,
        outcomes=outcomes,
        layer_errors=layer_errors,
        predicted_error=layer_errors[-1],
        missed=sum(o.missed for o in outcomes),
        seconds=time.perf_counter() - start,
        matches=matches,
    )


def source_network(plan: Plan, seed: int) -> SourceNet:
    """The implicit random source network of ``plan`` drawn with ``seed``."""
    return SourceNet(
        seed,
        [spec.weight_shape for spec in plan.specs],
        [spec.bias_shape for spec in plan.specs],
        [spec.weight_range for spec in plan.specs],
        [spec.bias_range for spec in plan.specs],
    )


def construct(
    target: TargetNet,
    *,
    eps: float,
    delta: float = 0.05,
    depth: str = "L+1",
    rho: int | None = None,
    param_eps: float | None = None,
    seed: int = 0,
    objective: str = "sparse",
    max_candidates: int = MAX_CANDIDATES,
    progress: Progress | None = None,
) -> Any:
    """Prune a random source network into a ticket approximating ``target`` within ``eps``.

    Parameters
    ----------
    target : TargetNet
        The network to approximate, on its stated input domain.
    eps : float
        Requested sup-norm output error on the domain (> 0).
    delta : float
        Allowed failure probability of the theorem (0 < δ < 1); used for the default ρ.
    depth : {"L+1", "2L"}
        Which construction (Burkholz NeurIPS 2022, resp. ICML 2022).
    rho : int, optional
        Width factor ρ (copies per target unit, candidates per subset sum). Default: the
        least ρ the subset-sum lemma demands for the smallest per-parameter tolerance, with
        δ split over all subset-sum instances (union bound).
    param_eps : float, optional
        Per-parameter tolerance for every layer, overriding the composition allotment.
    seed : int
        Seed of the source network.
    objective : {"sparse", "closest"}
        Sparsest subset within tolerance, or closest subset.
    max_candidates : int
        Candidates one subset-sum instance searches (the first usable ones of its block).
    progress : callable, optional
        Called as ``progress(message, done, total)``.

    Returns
    -------
    Ticket
    """
    from ltbounds.construct.width import default_rho  # noqa: PLC0415
    from ltbounds.ticket import Ticket  # noqa: PLC0415

    eps = check_positive("eps", eps)
    delta = check_open_unit("delta", delta)
    depth = check_choice("depth", depth, DEPTHS)
    objective = check_choice("objective", objective, OBJECTIVES)
    seed = check_int("seed", seed, minimum=0, maximum=2**64 - 1)
    if getattr(target, "residual_blocks", None):
        raise InvalidInput(
            f"target {target.name!r} has {len(target.residual_blocks)} residual block(s); the "
            "residual construction is not implemented yet (only plain dense/conv targets)"
        )
    activation = target.activation_function
    if not activation.relu_like and activation.second_derivative_bound is None:
        raise InvalidInput(
            f"activation={activation.name!r} is neither ReLU-like nor twice differentiable; "
            "no construction here covers it"
        )
    if param_eps is not None:
        param_eps = check_positive("param_eps", param_eps)
        tolerances = [param_eps] * target.depth
    else:
        tolerances = allot_tolerances(target, eps)
    if rho is None:
        rho = default_rho(target, min(tolerances), delta, depth=depth)
        rho_origin = "subset-sum lemma"
    else:
        rho_origin = "user"
    rho = check_int("rho", rho, minimum=1, maximum=MAX_RHO)
    max_candidates = check_int("max_candidates", max_candidates, minimum=1, maximum=40)

    plan = plan_source(target, depth=depth, rho=rho, tolerances=tolerances, max_candidates=max_candidates)
    source = source_network(plan, seed)
    result = _build(target, plan, source, objective=objective, progress=progress)
    return Ticket.from_build(
        target=target,
        result=result,
        source=source,
        eps=eps,
        delta=delta,
        seed=seed,
        objective=objective,
        rho_origin=rho_origin,
    )


__all__ = ["DEPTHS", "MAX_CANDIDATES", "Plan", "allot_tolerances", "construct", "plan_source", "source_network"]
