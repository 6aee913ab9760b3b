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

``construct(..., xp=...)`` draws the source weights on an array namespace (numpy, CuPy,
array-api-strict); the plan, the subset-sum solver and the bookkeeping stay on the host, so
the ticket is byte-identical on every backend (:func:`~ltbounds.construct.blocks.draw_source`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltbounds.activations import Activation
from ltbounds.construct.blocks import (
    LayerOutcome,
    SourceLayerSpec,
    UnivariateScale,
    build_copy_layer,
    build_univariate_pair,
    needs_offset_cancellation,
    offset_constant_units,
    univariate_bias_window,
    univariate_scale,
)
from ltbounds.construct.representation import Carrier
from ltbounds.construct.residual import (
    SiteRealisation,
    allot_residual_tolerances,
    chain_bound,
    realised_facts,
    target_facts,
)
from ltbounds.construct.solve import OBJECTIVES
from ltbounds.errors import InvalidInput, ResourceLimitError
from ltbounds.nets import Dense, Flatten, LinearLayer, SourceNet, TargetNet
from ltbounds.nets.residual import ResidualBlock
from ltbounds.validation import (
    check_choice,
    check_int,
    check_memory,
    check_open_unit,
    check_positive,
    memory_budget,
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
    #: Residual targets only: per target residual block, its source layers
    #: (``branch`` spec indices, ``skip`` spec index or None, ``activation_out``, ``target_layer``).
    residual: tuple[dict[str, Any], ...] = ()
    #: Residual targets only: the build steps (see :func:`_plan_residual`).
    steps: tuple[tuple[Any, ...], ...] = ()


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

    Residual targets get one tolerance per linear site (projections included) from the
    residual composition lemma instead
    (:func:`~ltbounds.construct.residual.allot_residual_tolerances`).
    """
    if target.residual_blocks:
        return allot_residual_tolerances(target, eps)
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
    if target.residual_blocks:
        if depth != "L+1":
            raise InvalidInput(
                f"depth={depth!r}: target {target.name!r} has residual blocks, which only the L+1 "
                "construction handles; use depth='L+1'"
            )
        return _plan_residual(target, rho=rho, tolerances=tolerances, max_candidates=max_candidates)
    activation = target.activation_function
    rho_first = 2 * rho if activation.relu_like else rho
    leading, segments = _segments(target)
    magnitudes = target.input_norm_bounds()
    univariate_constants = max(rho_first, univariate_bias_window(activation))
    # 2L with φ(0) ≠ 0: every layer's bias also cancels φ(0)·Σv, of order σ·fan-in, so its
    # univariate layer gets the constant units that reach needs (offset_constant_units).
    widen_constants = depth == "2L" and needs_offset_cancellation(activation)

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
            constants_here = (
                offset_constant_units(activation, layer.in_channels, univariate_constants)
                if widen_constants else univariate_constants
            )
            units = layer.in_channels * rho_first + constants_here
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
    #: Residual targets only: per block, which source layers realise it and its error pieces.
    residual: list[dict[str, Any]] = field(default_factory=list)
    #: Residual targets only: extra ticket metadata (lemma bounds, subset-sum time).
    extra: dict[str, Any] = field(default_factory=dict)


def _build(
    target: TargetNet,
    plan: Plan,
    source: SourceNet,
    *,
    objective: str,
    progress: Progress | None,
    xp: Any | None = None,
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
                spread_offset=plan.depth == "2L",
                xp=xp,
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
                xp=xp,
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


# -- residual targets (L+1) --------------------------------------------------------------------


def _with_bias(layer: LinearLayer, bias: np.ndarray | None) -> LinearLayer:
    """``layer`` with another bias (same weight, stride and padding)."""
    if isinstance(layer, Dense):
        return Dense(layer.weight, bias)
    return type(layer)(layer.weight, bias, layer.stride, layer.padding)  # type: ignore[call-arg]


def _block_biases(block: ResidualBlock) -> tuple[LinearLayer, LinearLayer | None]:
    """The block's last branch layer carrying the summed bias (branch + projection), and the
    projection without its bias: the sum's bias is realised once, in the branch."""
    last = block.branch[-1]
    if block.skip is None or block.skip.bias is None:
        return last, block.skip
    total = block.skip.bias if last.bias is None else last.bias + block.skip.bias
    return _with_bias(last, np.asarray(total)), _with_bias(block.skip, None)


def _plan_residual(
    target: TargetNet, *, rho: int, tolerances: list[float], max_candidates: int
) -> Plan:
    """The L+1 source of a residual target (Burkholz, ICML 2022 residual blocks, L+1 layers).

    Every main-path linear layer (plain or branch) gets one source layer holding ρ copies of
    each target unit plus ρ constant units (one copy and no constants for the output layer);
    the first one is preceded by the univariate layer. A target block becomes a source block
    whose branch is its branch layers' source layers and whose skip is the identity (aligned
    with the copy layout: unit ``j·ρ + k`` of the input feeds unit ``j·ρ + k`` of the sum,
    constants likewise) or a source projection with the target's kernel, stride and padding
    and the block's output width. Steps, in order, as tuples:
    ``("structural", target index)``, ``("first", site, univariate spec, spec, copies, constants)``,
    ``("copy", site, spec, copies, constants)`` and
    ``("block", target index, block number, [(site, spec, copies, constants), ...], skip site or None, skip spec or None)``.
    """
    activation = target.activation_function
    rho_first = 2 * rho if activation.relu_like else rho
    univariate_constants = max(rho_first, univariate_bias_window(activation))
    magnitudes = target.input_norm_bounds()
    depth = target.depth
    specs: list[SourceLayerSpec] = []
    scales: list[UnivariateScale] = []
    order: list[tuple[str, int]] = []
    steps: list[tuple[Any, ...]] = []
    residual: list[dict[str, Any]] = []
    source_shape = tuple(target.input_shape)
    aligned = False  # is the current source representation in the copy layout j·ρ + k (+ ρ constants)?
    site = 0
    main = 0

    def widths(last: bool) -> tuple[int, int]:
        return (1, 0) if last else (rho, rho)

    for index, layer in enumerate(target.layers):
        if isinstance(layer, ResidualBlock):
            if main == 0:
                raise InvalidInput(
                    f"layer {index} of target {target.name!r} is a residual block before any linear "
                    "layer; the L+1 construction needs a plain first layer (its univariate block "
                    "reads the raw input, which carries one copy per channel)"
                )
            block_number = len(residual)
            block_input_units = source_shape[0]
            branch_steps = []
            branch_specs = []
            in_units = block_input_units
            for part in layer.branch:
                last = main == depth - 1
                copies, constants = widths(last)
                out_units = part.out_channels * copies + constants
                specs.append(_implementing_spec(part, out_units, in_units, (-1.0, 1.0), f"target layer {main + 1}"))
                branch_steps.append((site, len(specs) - 1, copies, constants))
                branch_specs.append(len(specs) - 1)
                in_units = out_units
                site += 1
                main += 1
            copies, constants = branch_steps[-1][2], branch_steps[-1][3]
            out_units = layer.branch[-1].out_channels * copies + constants
            skip_site = skip_spec = None
            if layer.skip is None:
                if not aligned or copies != rho or block_input_units != out_units:
                    raise InvalidInput(
                        f"layer {index} of target {target.name!r}: its identity skip cannot be carried "
                        "in the copy layout here (it needs ρ copies per unit on both sides, e.g. not "
                        "after a flatten over several positions and not as the output layer); use "
                        "a projection skip"
                    )
            else:
                specs.append(
                    _implementing_spec(
                        layer.skip, out_units, block_input_units, (-1.0, 1.0),
                        f"skip of residual block {block_number + 1}",
                    )
                )
                skip_site, skip_spec = site, len(specs) - 1
                site += 1
            residual.append({
                "target_layer": index,
                "branch": branch_specs,
                "skip": skip_spec,
                "activation_out": bool(layer.activation_out),
            })
            order.append(("residual", block_number))
            steps.append(("block", index, block_number, branch_steps, skip_site, skip_spec))
            source_shape = (out_units, *target.shapes[index + 1][1:])
            aligned = copies == rho
        elif layer.is_linear:
            last = main == depth - 1
            copies, constants = widths(last)
            in_units, spatial_dims = source_shape[0], len(source_shape) - 1
            weight_range = (-1.0, 1.0)
            uni_spec = None
            if main == 0:
                scale = univariate_scale(activation, tolerances[site], magnitudes[site])
                scales.append(scale)
                units = layer.in_channels * rho_first + univariate_constants
                kind = "dense" if spatial_dims == 0 else f"conv{spatial_dims}d"
                specs.append(_univariate_spec(kind, units, in_units, scale, spatial_dims))
                order.append(("linear", len(specs) - 1))
                uni_spec = len(specs) - 1
                in_units = units
                weight_range = (-scale.sigma, scale.sigma)
            out_units = layer.out_channels * copies + constants
            specs.append(_implementing_spec(layer, out_units, in_units, weight_range, f"target layer {main + 1}"))
            order.append(("linear", len(specs) - 1))
            if uni_spec is None:
                steps.append(("copy", site, len(specs) - 1, copies, constants))
            else:
                steps.append(("first", site, uni_spec, len(specs) - 1, copies, constants))
            source_shape = (out_units, *target.shapes[index + 1][1:])
            aligned = copies == rho
            site += 1
            main += 1
        else:
            order.append(("structural", index))
            steps.append(("structural", index))
            before = source_shape
            source_shape = layer.output_shape(source_shape)
            if isinstance(layer, Flatten) and math.prod(before[1:]) > 1:
                aligned = False
    return Plan(
        "L+1", rho, rho_first, max_candidates, tuple(tolerances), tuple(scales), tuple(specs),
        tuple(order), residual=tuple(residual), steps=tuple(steps),
    )


def _site_bounds(target: TargetNet) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per linear site, per input unit bounds of the value entering it (spatial axes reduced)."""
    out = []
    for lower, upper in target.linear_input_bounds():
        axes = tuple(range(1, np.ndim(lower)))
        out.append((
            np.asarray(np.min(lower, axis=axes) if axes else lower, float),
            np.asarray(np.max(upper, axis=axes) if axes else upper, float),
        ))
    return out


def _build_residual(
    target: TargetNet,
    plan: Plan,
    source: SourceNet,
    *,
    objective: str,
    progress: Progress | None,
    xp: Any | None = None,
) -> BuildResult:
    """Build the L+1 ticket of a residual target (see :func:`_plan_residual`).

    A block's branch layers are copy layers. Its skip is built first: the identity carries the
    block input's copies and constants unchanged (error ``e_in``, exactly); a projection is a
    copy layer (kernel, stride as the target's) realising the projection's weights, whose
    output units are the block's. The last branch layer then realises its weights and the
    block's summed bias, only on output copies whose skip part is usable, and its constants
    take the skip's constant values before φ_out. Errors combine by the residual rule
    ``e_out = λ_out (e_skip + e_branch)`` (lemma ``composition.residual_rule``).
    """
    start = time.perf_counter()
    activation: Activation = target.activation_function
    sites = target.linear_sites
    bounds = _site_bounds(target)
    lam = activation.lipschitz
    carrier = Carrier.identity(tuple(target.input_shape))
    outcomes: list[LayerOutcome] = []
    layer_errors: list[float] = []
    matches: list[dict[str, Any]] = []
    residual: list[dict[str, Any]] = []
    realised: dict[int, SiteRealisation] = {}
    depth = target.depth
    done = 0

    def spatial_after(index: int) -> tuple[int, ...]:
        return tuple(target.shapes[index + 1][1:])

    def copy_layer(layer: LinearLayer, site: int, spec: int, copies: int, constants: int, input_carrier: Carrier, **extra: Any) -> tuple[LayerOutcome, np.ndarray, np.ndarray, np.ndarray]:
        lower, upper = bounds[site]
        result = build_copy_layer(
            target_layer=layer, input_carrier=input_carrier,
            input_magnitude=np.maximum(np.abs(lower), np.abs(upper)), output_copies=copies,
            output_constants=constants, source=source, layer_index=spec,
            tolerance=plan.tolerances[site], activation=activation, objective=objective,
            max_candidates=plan.max_candidates, xp=xp, **extra,
        )
        outcomes.append(result[0])
        return result

    def note(site: int, outcome: LayerOutcome) -> None:
        realised[site] = SiteRealisation(
            parameter_error=float(np.max(outcome.parameter_errors, initial=0.0)),
            own_error=float(outcome.stats.get("own_error", 0.0)),
            weight_norm=float(outcome.stats.get("weight_norm", 0.0)),
        )

    def match(spec: int, univariate: int | None, carried: Carrier, **keys: Any) -> dict[str, Any]:
        return {
            "source_layer": spec, "univariate_layer": univariate, "copies": carried.copies,
            "usable": carried.usable, "constants": carried.constants,
            "constant_values": carried.constant_values, "error": carried.error,
            "residual_block": None, "branch_position": None, **keys,
        }

    def carrier_of(out: tuple[Any, ...], layer: LinearLayer, copies: int, spatial: tuple[int, ...], error: float) -> Carrier:
        _, copies_array, usable, constant_values = out
        constants = len(constant_values)
        return Carrier(
            copies=copies_array,
            constants=layer.out_channels * copies + np.arange(constants, dtype=np.int64),
            constant_values=constant_values,
            source_shape=(layer.out_channels * copies + constants, *spatial),
            error=error,
            usable=usable,
        )

    for step in plan.steps:
        kind = step[0]
        if kind == "structural":
            carrier = carrier.through(target.layers[step[1]])
            continue
        if progress is not None:
            progress(f"target layer {done + 1}/{depth}", done, depth)
        if kind in ("first", "copy"):
            site = step[1]
            index, layer = sites[site].index, sites[site].layer
            last = done == depth - 1
            lipschitz = 1.0 if last else lam
            if kind == "first":
                _, _, uni_spec, spec, copies, constants = step
                lower, upper = bounds[site]
                first, second, copies_array, usable, constant_values = build_univariate_pair(
                    target_layer=layer, input_carrier=carrier, input_lower=lower, input_upper=upper,
                    rho_first=plan.rho_first,
                    constants=plan.specs[uni_spec].weight_shape[0] - layer.in_channels * plan.rho_first,
                    output_copies=copies, output_constants=constants, source=source,
                    univariate_index=uni_spec, tolerance=plan.tolerances[site], activation=activation,
                    scale=plan.scales[0], objective=objective, max_candidates=plan.max_candidates,
                    xp=xp,
                )
                outcomes.extend([first, second])
                out: tuple[Any, ...] = (second, copies_array, usable, constant_values)
                univariate: int | None = uni_spec
            else:
                _, _, spec, copies, constants = step
                out = copy_layer(layer, site, spec, copies, constants, carrier)
                univariate = None
            note(site, out[0])
            error = lipschitz * float(np.max(out[0].preactivation_error, initial=0.0))
            carrier = carrier_of(out, layer, copies, spatial_after(index), error)
            layer_errors.append(error)
            matches.append(match(spec, univariate, carrier))
            done += 1
            continue
        # a residual block
        _, index, number, branch_steps, skip_site, skip_spec = step
        block: ResidualBlock = target.layers[index]  # type: ignore[assignment]
        last_layer, projection = _block_biases(block)
        block_input = carrier
        copies, constants = branch_steps[-1][2], branch_steps[-1][3]
        n_out = block.branch[-1].out_channels
        if projection is None:
            skip_error = block_input.error
            available = block_input.usable
            skip_constants = block_input.constant_values
            skip_outcome = None
        else:
            skip_outcome, _, available, _ = copy_layer(projection, skip_site, skip_spec, copies, 0, block_input)
            note(skip_site, skip_outcome)
            skip_error = float(np.max(skip_outcome.preactivation_error, initial=0.0))
            skip_constants = np.zeros(constants)
        inner = block_input
        out_lipschitz = lam if block.activation_out else 1.0
        for position, (site, spec, step_copies, step_constants) in enumerate(branch_steps):
            layer = block.branch[position]
            if position < len(branch_steps) - 1:
                out = copy_layer(layer, site, spec, step_copies, step_constants, inner)
                note(site, out[0])
                error = lam * float(np.max(out[0].preactivation_error, initial=0.0))
                inner = carrier_of(out, layer, step_copies, tuple(block.branch_shapes(target.shapes[index])[position + 1][1:]), error)
                layer_errors.append(error)
                matches.append(match(spec, None, inner, residual_block=number, branch_position=position))
            else:
                out = copy_layer(
                    last_layer, site, spec, step_copies, step_constants, inner,
                    available=available, constant_offset=skip_constants,
                    constant_map=activation if block.activation_out else (lambda values: values),
                )
                note(site, out[0])
                branch_error = float(np.max(out[0].preactivation_error, initial=0.0))
                error = out_lipschitz * (skip_error + branch_error)
                carrier = carrier_of(out, layer, step_copies, spatial_after(index), error)
                layer_errors.append(error)
                matches.append(match(spec, None, carrier, residual_block=number, branch_position=position))
            done += 1
        if skip_outcome is not None:
            # Weights into copies the block output does not use are dropped (never read).
            units = skip_outcome.kept_weights // (block_input.source_shape[0] * math.prod(plan.specs[skip_spec].weight_shape[2:]))
            final = carrier.usable.reshape(-1)
            keep = final[np.minimum(units, n_out * copies - 1)] & (units < n_out * copies)
            skip_outcome.kept_weights = skip_outcome.kept_weights[keep]
        residual.append({
            "target_layer": index,
            "branch": [spec for _, spec, _, _ in branch_steps],
            "skip": skip_spec,
            "skip_kind": "identity" if block.skip is None else "projection",
            "activation_out": bool(block.activation_out),
            "input_error": float(block_input.error),
            "skip_error": float(skip_error),
            "branch_error": float(branch_error),
            "output_error": float(error),
        })
    if progress is not None:
        progress("done", depth, depth)
    facts, errors = realised_facts(target, [realised[i] for i in range(len(sites))], list(plan.tolerances))
    lemma_bound = chain_bound(target, facts, errors)
    allotted = chain_bound(target, target_facts(target), list(plan.tolerances))
    return BuildResult(
        plan=plan,
        outcomes=outcomes,
        layer_errors=layer_errors,
        predicted_error=lemma_bound,
        missed=sum(o.missed for o in outcomes),
        seconds=time.perf_counter() - start,
        matches=matches,
        residual=residual,
        extra={
            "predicted_by": "composition.residual_rule on realised per-parameter errors and norms",
            "bookkeeping_error": layer_errors[-1],
            "allotted_bound": allotted,
            "site_parameter_errors": errors,
            "site_weight_norms": [fact.weight_norm for fact in facts],
        },
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


#: Peak bytes of a construction per source weight (measured 35 to 63 on the digits targets).
BYTES_PER_SOURCE_WEIGHT = 64


def _check_plan_memory(plan: Plan, rho_origin: str) -> None:
    """Refuse, before any weight is drawn, a source too wide for memory or beyond ``MAX_RHO``."""
    weights = sum(math.prod(spec.weight_shape) for spec in plan.specs)
    need = float(BYTES_PER_SOURCE_WEIGHT) * weights
    what = f"the construction with rho={plan.rho} ({rho_origin}; a source of {weights:,} weights)"
    if plan.rho > MAX_RHO:
        raise ResourceLimitError(
            f"{what} needs about {need / 2**20:,.1f} MiB and rho is over the largest supported "
            f"width factor {MAX_RHO}; give a larger eps or delta, or a smaller --rho"
        )
    check_memory(what, need, memory_budget())


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
    xp: Any | None = None,
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
        Candidates one subset-sum instance searches at a time (windows of the usable ones of
        its block). Instances that every window missed get one more search over the first
        :data:`~ltbounds.construct.solve.REFINE_WINDOW` (28) candidates when that is wider;
        the ticket records both (``candidate_window``, ``refine_window``; None when unused).
    progress : callable, optional
        Called as ``progress(message, done, total)``.
    xp : array namespace, optional
        Where the source weights are drawn (:func:`ltbounds.backend.get_backend`: numpy,
        CuPy, array-api-strict; default numpy). The counter-based RNG gives the same bits on
        every namespace and the rest of the construction (target bounds, subset-sum solver,
        bookkeeping) runs on the host, so the ticket is byte-identical on every backend
        (:func:`~ltbounds.construct.blocks.draw_source`).

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
    if target.residual_blocks and depth != "L+1":
        raise InvalidInput(
            f"depth={depth!r}: target {target.name!r} has {len(target.residual_blocks)} residual "
            "block(s); only the L+1 construction handles residual targets (use depth='L+1')"
        )
    activation = target.activation_function
    if not activation.relu_like and activation.second_derivative_bound is None:
        raise InvalidInput(
            f"activation={activation.name!r} is neither ReLU-like nor twice differentiable; "
            "no construction here covers it"
        )
    if param_eps is not None:
        param_eps = check_positive("param_eps", param_eps)
        tolerances = [param_eps] * (len(target.linear_sites) if target.residual_blocks else target.depth)
    else:
        tolerances = allot_tolerances(target, eps)
    if not min(tolerances) > 0:
        raise InvalidInput(
            f"eps={eps!r} is too small: the per-parameter tolerance underflows to {min(tolerances)!r}"
        )
    if rho is None:
        rho = default_rho(target, min(tolerances), delta, depth=depth)
        rho_origin = "subset-sum lemma"
    else:
        rho_origin = "user"
    rho = check_int("rho", rho, minimum=1)
    max_candidates = check_int("max_candidates", max_candidates, minimum=1, maximum=40)

    plan = plan_source(target, depth=depth, rho=rho, tolerances=tolerances, max_candidates=max_candidates)
    _check_plan_memory(plan, rho_origin)
    source = source_network(plan, seed)
    if plan.residual:
        result = _build_residual(target, plan, source, objective=objective, progress=progress, xp=xp)
    else:
        result = _build(target, plan, source, objective=objective, progress=progress, xp=xp)
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
