"""The error budget of residual targets, from the residual composition lemma.

A residual target (Burkholz, ICML 2022; :class:`~ltbounds.nets.residual.ResidualBlock`) is a
chain of units: plain linear layers, residual blocks ``y = φ_out(skip(x) + branch(x))`` and
structural layers (pooling, flatten: 1-Lipschitz in ∞-norm, so they pass errors unchanged).
The output error bound of the chain is the composition lemma of LEMMAS.md section 4, unit by
unit:

* a plain layer: :func:`~ltbounds.lemmas.composition.layer_step`,
  ``e_l ≤ λ_l (A_l e_{l−1} + ε'_l (F_l (M_{l−1} + e_{l−1}) + β_l))``;
* a block: :func:`~ltbounds.lemmas.composition.residual_error_bound` (lemma
  ``composition.residual_rule``), ``e_out ≤ λ_out (e_skip + e_branch)`` with ``e_skip = e_in``
  for an identity skip and one step of the recurrence for a projection.

:func:`allot_residual_tolerances` turns ``eps`` into one per-parameter tolerance per linear
site (branch layers and projections included) *before* anything is drawn: every site gets an
equal share of ``eps`` through its sensitivity (the chain bound with ε' = 1 at that site and 0
elsewhere, evaluated on the target's own norms ``A = ‖W‖_{∞→∞}``), and a common factor is
raised by bisection until the exact chain bound equals ``eps`` (it never exceeds it).

:func:`chain_bound` evaluated on the *realised* facts of a ticket (:func:`realised_facts`) is
the ticket's predicted bound. There ``A`` is the norm of the matrix that acts on the perturbed
input, Σ|v| over the kept source weights of a copy (at least the target's ``|w|``, often
more): the lemma is sound with that norm and *not* in general with the target's, because ρ
copies of one target unit carry different errors (LEMMAS.md 4, "A_l bounds either matrix").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ltbounds.errors import InvalidInput
from ltbounds.lemmas.composition import LayerFacts, layer_step, residual_error_bound
from ltbounds.nets import LinearLayer, TargetNet
from ltbounds.nets.residual import ResidualBlock


def site_lipschitz(target: TargetNet) -> list[float]:
    """λ after every linear site, as :attr:`TargetNet.linear_sites`.

    φ's constant after a hidden plain layer and inside a branch; 1 after the last branch
    layer (the block applies φ_out after the sum), after a projection and after the output.
    """
    lam = target.activation_function.lipschitz
    out = []
    for site in target.linear_sites:
        if site.role == "plain":
            out.append(lam if target.is_activated(site.index) else 1.0)
        elif site.role == "skip":
            out.append(1.0)
        else:
            block = target.layers[site.index]
            out.append(lam if site.position < len(block.branch) - 1 else 1.0)  # type: ignore[attr-defined]
    return out


def merged_bias_sites(target: TargetNet) -> list[bool]:
    """β per site: does the site carry a bias *in the ticket*?

    The construction realises a block's projection bias together with its last branch
    layer's bias (one subset sum per output copy: the bias is counted once), so a projection
    has β = 0 and the last branch layer β = 1 when either of the two has a bias.
    """
    out = []
    for site in target.linear_sites:
        if site.role == "skip":
            out.append(False)
        elif site.role == "branch":
            block = target.layers[site.index]
            last = site.position == len(block.branch) - 1  # type: ignore[attr-defined]
            skip = block.skip  # type: ignore[attr-defined]
            out.append(site.layer.bias is not None or (last and skip is not None and skip.bias is not None))
        else:
            out.append(site.layer.bias is not None)
    return out


def target_facts(target: TargetNet) -> list[LayerFacts]:
    """Lemma facts of every linear site on the target's own norms (the a-priori budget)."""
    magnitudes = target.input_norm_bounds()
    return [
        LayerFacts(site.layer.fan_in, site.layer.lipschitz_inf(), lam, m, beta)
        for site, lam, m, beta in zip(
            target.linear_sites, site_lipschitz(target), magnitudes, merged_bias_sites(target), strict=True
        )
    ]


def chain_bound(
    target: TargetNet, facts: Sequence[LayerFacts], errors: Sequence[float], input_error: float = 0.0
) -> float:
    """The composition lemma through the target's units (plain steps and residual rules).

    ``facts`` and ``errors`` (per-parameter errors ε') are aligned with
    :attr:`TargetNet.linear_sites`. Rigorous for the recurrence: exact rational arithmetic
    inside each lemma call, every result rounded up.
    """
    sites = target.linear_sites
    if len(facts) != len(sites) or len(errors) != len(sites):
        raise InvalidInput(
            f"facts ({len(facts)}) and errors ({len(errors)}) must have one entry per linear site ({len(sites)})"
        )
    lam = target.activation_function.lipschitz
    error = float(input_error)
    cursor = 0
    for layer in target.layers:
        if isinstance(layer, ResidualBlock):
            depth = len(layer.branch)
            branch = slice(cursor, cursor + depth)
            skip = None if layer.skip is None else facts[cursor + depth]
            skip_error = 0.0 if layer.skip is None else float(errors[cursor + depth])
            error = residual_error_bound(
                error,
                list(facts[branch]),
                [float(e) for e in errors[branch]],
                out_lipschitz=lam if layer.activation_out else 1.0,
                skip=skip,
                skip_param_error=skip_error,
            )
            cursor += depth + (0 if layer.skip is None else 1)
        elif layer.is_linear:
            error = layer_step(float(errors[cursor]), facts[cursor], error)
            cursor += 1
        # pooling and flatten are 1-Lipschitz in the ∞-norm: the error passes unchanged
    return error


def sensitivities(target: TargetNet, facts: Sequence[LayerFacts]) -> list[float]:
    """Per site, the chain bound with ε' = 1 there and 0 elsewhere (exactly linear in it)."""
    count = len(facts)
    return [chain_bound(target, facts, [1.0 if j == i else 0.0 for j in range(count)]) for i in range(count)]


def allot_residual_tolerances(target: TargetNet, eps: float) -> list[float]:
    """Per-site tolerances whose chain bound on the target's norms is at most ``eps``.

    Equal share: site ``l`` gets ``s·min(eps/(N·g_l), eps)`` with ``g_l`` its sensitivity and
    ``N`` the number of sites; the common factor ``s`` is the largest (bisection, 60 steps) at which the
    exact bound stays ``≤ eps`` (the bound is not linear in all ε' together: the
    ``ε' F e`` cross terms).
    """
    facts = target_facts(target)
    count = len(facts)
    gains = sensitivities(target, facts)
    # A site that barely contributes could take any error; its share is capped at eps.
    base = [min(eps / (count * g), eps) if g > 0 else eps for g in gains]

    def fits(scale: float) -> bool:
        return chain_bound(target, facts, [scale * b for b in base]) <= eps

    low, high = 0.0, 1.0
    while fits(high) and high < 2.0**20:
        low, high = high, 2 * high
    for _ in range(60):
        middle = (low + high) / 2
        if fits(middle):
            low = middle
        else:
            high = middle
    if low == 0.0:  # pragma: no cover - the bound is continuous and 0 at ε' = 0
        raise InvalidInput(f"could not allot eps={eps!r} over the residual target {target.name!r}")
    return [low * b for b in base]


@dataclass(frozen=True)
class SiteRealisation:
    """What the construction realised for one linear site (for :func:`realised_facts`).

    ``parameter_error``: the largest realised |subset sum − target parameter| of the site's
    instances in use; ``own_error``: the largest pre-activation error of a usable output copy
    that does not come from the input's error (parameter errors weighted by the input bounds,
    bias, offset and linearisation errors); ``weight_norm``: the largest Σ|v| over the kept
    weights of a usable copy (the matrix acting on the perturbed input).
    """

    parameter_error: float
    own_error: float
    weight_norm: float


def pruned_weight_error(layer: LinearLayer, tolerance: float) -> float:
    """Largest nonzero target weight at most ``tolerance`` (such weights are pruned to 0)."""
    weight = np.abs(layer.weight)
    small = weight[(weight <= tolerance) & (weight != 0)]
    return float(np.max(small, initial=0.0))


def realised_facts(
    target: TargetNet, realised: Sequence[SiteRealisation], tolerances: Sequence[float]
) -> tuple[list[LayerFacts], list[float]]:
    """Facts and per-parameter errors of a built ticket, for :func:`chain_bound`.

    Per site ``ε' = max(realised parameter error, pruned target weight, own_error/(F·M + β))``:
    the last term folds the errors the lemma has no slot for (the univariate block's Taylor
    remainder, its offset cancellations, both signs of the ReLU split) into an equivalent
    per-parameter error, so that the lemma's step bounds the realised pre-activation error.
    ``A`` is the realised Σ|v| (see the module docstring).
    """
    out_facts, out_errors = [], []
    for fact, site, real, tolerance in zip(
        target_facts(target), target.linear_sites, realised, tolerances, strict=True
    ):
        scale = fact.fan_in * fact.input_bound + (1.0 if fact.has_bias else 0.0)
        folded = real.own_error / scale if scale > 0 else 0.0
        error = max(real.parameter_error, pruned_weight_error(site.layer, tolerance), folded)
        out_facts.append(LayerFacts(fact.fan_in, real.weight_norm, fact.lipschitz, fact.input_bound, fact.has_bias))
        out_errors.append(error)
    return out_facts, out_errors


__all__ = [
    "SiteRealisation",
    "allot_residual_tolerances",
    "chain_bound",
    "merged_bias_sites",
    "realised_facts",
    "sensitivities",
    "site_lipschitz",
    "target_facts",
]
