"""Composition: per-parameter errors to output error, through depth and residual blocks.

LEMMAS.md section 4 [DERIVED here; consistent with Pensia et al. 2020 and Burkholz 2022, whose
constants are not verbatim]. Notation: target layer ``h_l = φ_l(W_l h_{l-1} + b_l)``, its
approximation ``ĥ_l = φ_l(Ŵ_l ĥ_{l-1} + b̂_l)`` with every parameter within ``ε'_l``
(``|Ŵ_l - W_l|_max <= ε'_l``, ``|b̂_l - b_l|_max <= ε'_l``), ``e_l = ||ĥ_l - h_l||_∞`` and
``M_{l-1} >= ||h_{l-1}||_∞`` on the input domain.

**The step used here** (:func:`layer_step`, lemma ``composition.layer_step``)::

    e_l <= λ_l (A_l e_{l-1} + ε'_l (F_l (M_{l-1} + e_{l-1}) + β_l))

with ``F_l`` the fan-in (inputs per output: ``n_{l-1}`` for a dense layer,
``n_{l-1}·k_l`` for a convolution with ``k_l`` kernel entries; padding only lowers it),
``β_l = 1`` with a bias and ``0`` without, and ``A_l`` an ``∞→∞`` operator-norm bound (max
row sum of ``|W|``; for a convolution the max over output channels of the sum over input
channels and kernel entries of ``|K|``). It is sound when ``A_l`` bounds **either** matrix:

* ``A_l >= ||W_l||`` (target): ``Ŵĥ - Wh = W(ĥ - h) + (Ŵ - W)ĥ`` and ``||ĥ||_∞ <= M + e``;
* ``A_l >= ||Ŵ_l||`` (the matrix acting on the perturbed input, e.g. the subset sums over
  neuron copies in the L+1 construction): ``Ŵĥ - Wh = Ŵ(ĥ - h) + (Ŵ - W)h``, which gives the
  same bound without the ``ε'_l F_l e_{l-1}`` term, so the step above holds a fortiori.

Both splits are PROVED as matrix identities (``composition.affine_split``), the step from them
by slack substitution, the unrolled form by an induction whose step is a symbolic identity
(``composition.unrolled_induction``), and the residual rule likewise.

Numbers: :func:`output_error_bound` runs the recurrence in exact rational arithmetic (every
float converts to a fraction exactly) and rounds the result up to a float, so its answer is
a rigorous upper bound of the recurrence; :func:`allot_eps` returns per-layer ``ε'_l`` whose
exact bound is at most ``eps`` (checked before returning).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp
from sympy.simplify.simplify import product_simplify

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _provers
from ltbounds.lemmas.base import (
    CheckOptions,
    Lemma,
    Source,
    SourceStatus,
    integer,
    nonnegative,
    positive,
    real,
)
from ltbounds.lemmas.registry import register
from ltbounds.validation import check_int, check_positive, check_real
from ltbounds.verdict import Status, Verdict

SOURCE_COMPOSITION = Source(
    "ltbounds (after Pensia et al. 2020; Burkholz 2022)",
    "error propagation, LEMMAS.md 4",
    "arXiv 2006.07990; arXiv 2205.02343",
    SourceStatus.DERIVED,
    section="4",
    note="constants derived here, not verbatim; the code fixes one per-parameter eps for all layers",
)
SOURCE_LEMMAS_MD = Source(
    "LEMMAS.md",
    "equal-share allotment as written",
    "",
    SourceStatus.DERIVED,
    section="4",
    note="uses e_l <= 1 to replace M + e by M + 1 and the target norm ||W||",
)
SOURCE_RESIDUAL = Source(
    "Burkholz (2022, ICML)",
    "residual block rule",
    "arXiv 2205.02343",
    SourceStatus.RECONSTRUCTED,
    section="4",
    note="standard; not read in the ICML text",
)


# ------------------------------------------------------------------------------ facts


@dataclass(frozen=True)
class LayerFacts:
    """What the error recurrence needs to know about one layer (no network objects).

    Parameters
    ----------
    fan_in : int
        ``F_l``: inputs per output, ``n_{l-1}·k_l`` (``k_l = 1`` for dense layers).
    weight_norm : float
        ``A_l``: a bound on the ``∞→∞`` operator norm of the target matrix or of the matrix
        that acts on the perturbed input (either is sound, see the module docstring).
    lipschitz : float
        ``λ_l``: Lipschitz constant of the activation after the layer (1.0 if none).
    input_bound : float
        ``M_{l-1}``: bound on ``||h_{l-1}||_∞`` of the target on the input domain.
    has_bias : bool
        Whether the layer has a bias (``β_l = 1``) or not (``β_l = 0``).
    """

    fan_in: int
    weight_norm: float
    lipschitz: float
    input_bound: float
    has_bias: bool = True

    def __post_init__(self) -> None:
        check_int("fan_in", self.fan_in, minimum=1)
        for name in ("weight_norm", "lipschitz", "input_bound"):
            value = check_real(name, getattr(self, name))
            if value < 0:
                raise InvalidInput(f"{name}={getattr(self, name)!r} must be >= 0")
        if not isinstance(self.has_bias, (bool, np.bool_)):
            raise InvalidInput(f"has_bias={self.has_bias!r} must be a bool")

    @classmethod
    def from_weights(
        cls,
        weight: Any,
        *,
        lipschitz: float,
        input_bound: float,
        has_bias: bool,
    ) -> LayerFacts:
        """Facts of a dense ``(out, in)`` or convolutional ``(out, in, *kernel)`` weight array.

        ``fan_in = in · prod(kernel)``; ``weight_norm`` = max over outputs of the sum of
        ``|w|``, rounded up to the next float so that it bounds the exact sum.
        """
        array = np.asarray(weight, dtype=np.float64)
        if array.ndim < 2:
            raise InvalidInput(f"weight has shape {array.shape}; expected (out, in) or (out, in, *kernel)")
        rows = np.abs(array.reshape(array.shape[0], -1))
        fan_in = int(rows.shape[1])
        norm = max((math.fsum(row) for row in rows), default=0.0)
        # fsum is correctly rounded; one step up bounds the exact sum.
        norm = math.nextafter(norm, math.inf) if norm > 0 else 0.0
        return cls(fan_in, norm, lipschitz, input_bound, bool(has_bias))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "fan_in": self.fan_in,
            "weight_norm": self.weight_norm,
            "lipschitz": self.lipschitz,
            "input_bound": self.input_bound,
            "has_bias": self.has_bias,
        }


def _fraction(name: str, value: Any) -> Fraction:
    number = check_real(name, value)
    if number < 0:
        raise InvalidInput(f"{name}={value!r} must be >= 0")
    return Fraction(number)


def _round_up(value: Fraction) -> float:
    result = float(value)
    if Fraction(result) < value:
        result = math.nextafter(result, math.inf)
    return result


def _step(layer: LayerFacts, param_error: Fraction, error_in: Fraction) -> Fraction:
    """The step ``λ (A e + ε'(F(M + e) + β))`` in exact arithmetic."""
    beta = 1 if layer.has_bias else 0
    return Fraction(layer.lipschitz) * (
        Fraction(layer.weight_norm) * error_in
        + param_error * (layer.fan_in * (Fraction(layer.input_bound) + error_in) + beta)
    )


def layer_step(param_error: float, layer: LayerFacts, input_error: float) -> float:
    """One step of the recurrence, rounded up: a bound on ``e_l`` from ``e_{l-1}``."""
    return _round_up(_step(layer, _fraction("param_error", param_error), _fraction("input_error", input_error)))


def _check_spans(spans: Sequence[tuple[int, int]], depth: int) -> list[tuple[int, int]]:
    checked = []
    previous_end = 0
    for index, span in enumerate(spans):
        if len(span) != 2:
            raise InvalidInput(f"residual_blocks[{index}]={span!r} must be a pair (first, last)")
        first = check_int(f"residual_blocks[{index}][0]", span[0], minimum=1, maximum=depth)
        last = check_int(f"residual_blocks[{index}][1]", span[1], minimum=first, maximum=depth)
        if first <= previous_end:
            raise InvalidInput(f"residual_blocks[{index}]={span!r} overlaps or precedes the previous block")
        checked.append((first, last))
        previous_end = last
    return checked


def _exact_bound(
    param_errors: Sequence[Fraction],
    layers: Sequence[LayerFacts],
    input_error: Fraction,
    spans: Sequence[tuple[int, int]],
) -> Fraction:
    errors = [input_error]  # errors[l] = bound on e_l, l = 0..L
    ends = {last: first for first, last in spans}
    for index, (layer, param_error) in enumerate(zip(layers, param_errors, strict=True), start=1):
        if index in ends:
            # Residual block: y = φ(x + W h_{l-1} + b) with x = h_{first-1} (identity skip):
            # e_l <= λ (e_{first-1} + A e_{l-1} + ε'(F(M + e_{l-1}) + β)).
            skip = errors[ends[index] - 1]
            branch = _step(
                LayerFacts(layer.fan_in, layer.weight_norm, 1.0, layer.input_bound, layer.has_bias),
                param_error,
                errors[-1],
            )
            errors.append(Fraction(layer.lipschitz) * (skip + branch))
        else:
            errors.append(_step(layer, param_error, errors[-1]))
    return errors[-1]


def output_error_bound(
    per_layer_param_errors: Sequence[float],
    layers: Sequence[LayerFacts],
    input_error: float = 0.0,
    *,
    residual_blocks: Sequence[tuple[int, int]] = (),
) -> float:
    """Bound on the output error ``e_L`` from per-layer parameter errors (rigorous).

    Parameters
    ----------
    per_layer_param_errors : sequence of float
        ``ε'_l`` for each layer, ``>= 0``.
    layers : sequence of LayerFacts
        One per layer, input to output.
    input_error : float
        ``e_0``, a bound on the input perturbation.
    residual_blocks : sequence of pairs
        1-based layer spans of residual branches with an identity skip: the output of layer
        ``last`` is ``φ_last(h_{first-1} + W_last h_{last-1} + b_last)`` (its ``lipschitz`` is the
        block's output activation, applied after the sum). Projection skips: see
        :func:`residual_error_bound`.

    Returns
    -------
    float
        The recurrence of the module docstring evaluated exactly, rounded up.
    """
    if len(per_layer_param_errors) != len(layers):
        raise InvalidInput(
            f"per_layer_param_errors has {len(per_layer_param_errors)} entries for {len(layers)} layers"
        )
    if not layers:
        raise InvalidInput("layers is empty; expected at least one layer")
    errors = [_fraction(f"per_layer_param_errors[{i}]", v) for i, v in enumerate(per_layer_param_errors)]
    spans = _check_spans(residual_blocks, len(layers))
    return _round_up(_exact_bound(errors, layers, _fraction("input_error", input_error), spans))


def allot_eps(
    eps: float,
    layers: Sequence[LayerFacts],
    input_error: float = 0.0,
    *,
    residual_blocks: Sequence[tuple[int, int]] = (),
) -> list[float]:
    """Per-layer parameter errors ``ε'_l`` whose output error bound is at most ``eps``.

    Equal share per layer (LEMMAS.md 4): going backwards from the output, ``ε'_l`` is chosen
    so that layer ``l``'s own contribution ``λ_l ε'_l (F_l M_{l-1} + β_l) Π_{k>l} b_k``, with
    ``b_k = λ_k (A_k + ε'_k F_k)`` the growth factor of later layers, equals ``B/L``; the
    budget ``B`` starts at ``eps`` minus the propagated input error and is shrunk until the
    exact bound (:func:`output_error_bound`) is ``<= eps``. With residual blocks the same
    shares are scaled by a common factor found by bisection on the exact bound.

    Raises
    ------
    InvalidInput
        ``eps <= 0``, empty ``layers``, or an input error that alone reaches ``eps``.
    """
    eps = check_positive("eps", eps)
    if not layers:
        raise InvalidInput("layers is empty; expected at least one layer")
    spans = _check_spans(residual_blocks, len(layers))
    e0 = _fraction("input_error", input_error)
    target = Fraction(eps)
    zero = [Fraction(0)] * len(layers)
    floor_bound = _exact_bound(zero, layers, e0, spans)
    if floor_bound >= target:
        raise InvalidInput(
            f"input_error={input_error!r} alone propagates to {float(floor_bound):.6g} >= eps={eps!r}"
        )
    depth = len(layers)

    def shares(budget: float) -> list[float]:
        chosen = [0.0] * depth
        growth = 1.0  # Π_{k>l} b_k with the already chosen ε'_k
        for index in range(depth - 1, -1, -1):
            layer = layers[index]
            beta = 1.0 if layer.has_bias else 0.0
            weight = layer.lipschitz * (layer.fan_in * layer.input_bound + beta) * growth
            # A layer that barely contributes could take any error; cap its share at the budget.
            chosen[index] = min(budget / depth / weight, budget) if weight > 0 else budget
            growth *= layer.lipschitz * (layer.weight_norm + chosen[index] * layer.fan_in)
            if spans:
                growth = max(growth, 1.0)
        return chosen

    def exact(values: list[float]) -> Fraction:
        return _exact_bound([Fraction(v) for v in values], layers, e0, spans)

    budget = float(target - floor_bound)
    candidate = shares(budget)
    for _ in range(200):
        bound = exact(candidate)
        if bound <= target:
            break
        budget *= min(float(target / bound), 1 - 1e-12)
        candidate = shares(budget)
    else:  # pragma: no cover - the bound is continuous in the shares, so this cannot happen
        raise InvalidInput(f"could not allot eps={eps!r} over {depth} layers")
    if spans:
        # Raise the common scale as far as the exact bound allows (bisection).
        low, high = 1.0, 2.0
        while exact([v * high for v in candidate]) <= target and high < 2.0**40:
            low, high = high, high * 2
        for _ in range(60):
            middle = (low + high) / 2
            if exact([v * middle for v in candidate]) <= target:
                low = middle
            else:
                high = middle
        candidate = [v * low for v in candidate]
    if exact(candidate) > target:  # pragma: no cover - guarded by the loops above
        raise ArithmeticError(f"allot_eps: exact bound exceeds eps={eps!r}")
    return candidate


def residual_error_bound(
    input_error: float,
    branch_layers: Sequence[LayerFacts],
    branch_param_errors: Sequence[float],
    *,
    out_lipschitz: float = 1.0,
    skip: LayerFacts | None = None,
    skip_param_error: float = 0.0,
) -> float:
    """Error bound at the output of a residual block ``y = φ_out(skip(x) + branch(x))``.

    ``e_out <= λ_out (e_skip + e_branch)`` (lemma ``composition.residual_rule``), where

    * ``e_skip = e_in`` for an identity skip (copied exactly, LEMMAS.md 2.5), or, for a
      projection ``P`` given as ``skip`` (its ``lipschitz`` must be 1: no activation),
      ``A_P e_in + ε'_P (F_P (M_in + e_in) + β_P)``;
    * ``e_branch`` is the recurrence through ``branch_layers`` started from ``e_in``: the
      propagation of the input error through the branch plus its own parameter errors. The
      last branch layer's ``lipschitz`` should be 1.0 (the block's activation is
      ``out_lipschitz``, applied after the sum).

    Returns the bound rounded up (exact rational arithmetic inside).
    """
    e_in = _fraction("input_error", input_error)
    lam_out = _fraction("out_lipschitz", out_lipschitz)
    if len(branch_param_errors) != len(branch_layers) or not branch_layers:
        raise InvalidInput(
            f"branch_param_errors has {len(branch_param_errors)} entries for {len(branch_layers)} branch layers"
        )
    branch = e_in
    for index, (layer, error) in enumerate(zip(branch_layers, branch_param_errors, strict=True)):
        branch = _step(layer, _fraction(f"branch_param_errors[{index}]", error), branch)
    if skip is None:
        skip_error = e_in
    else:
        if skip.lipschitz != 1.0:
            raise InvalidInput(f"skip.lipschitz={skip.lipschitz!r} must be 1.0 (a projection has no activation)")
        skip_error = _step(skip, _fraction("skip_param_error", skip_param_error), e_in)
    return _round_up(lam_out * (skip_error + branch))


# ----------------------------------------------------------------------------- lemmas


@register(
    "composition.affine_split",
    "composition",
    parameters=("form",),
    examples=({"form": "target"}, {"form": "source"}),
)
def affine_split(form: str = "target") -> Lemma:
    """``Ŵĥ + b̂ - (Wh + b) = W(ĥ - h) + (Ŵ - W)ĥ + (b̂ - b)`` (``form="target"``) or
    ``= Ŵ(ĥ - h) + (Ŵ - W)h + (b̂ - b)`` (``"source"``), as matrix identities [STANDARD]."""
    if form not in ("target", "source"):
        raise InvalidInput(f"form={form!r} must be 'target' or 'source'")
    m, n = sp.Symbol("m", integer=True, positive=True), sp.Symbol("n", integer=True, positive=True)
    W, W_hat = sp.MatrixSymbol("W", m, n), sp.MatrixSymbol(r"\hat{W}", m, n)
    h, h_hat = sp.MatrixSymbol("h", n, 1), sp.MatrixSymbol(r"\hat{h}", n, 1)
    b, b_hat = sp.MatrixSymbol("b", m, 1), sp.MatrixSymbol(r"\hat{b}", m, 1)
    lhs = W_hat * h_hat + b_hat - (W * h + b)
    if form == "target":
        rhs = W * (h_hat - h) + (W_hat - W) * h_hat + (b_hat - b)
    else:
        rhs = W_hat * (h_hat - h) + (W_hat - W) * h + (b_hat - b)

    def checker(lemma: Lemma, options: CheckOptions) -> Verdict:
        method = _provers.prove_identity(lhs, rhs)
        if method is None:
            return Verdict(Status.UNKNOWN, "sympy.expand (matrix symbols)", "did not reduce to 0")
        return Verdict(Status.PROVED, method, "noncommutative matrix expressions expand to the same sum")

    return Lemma(
        f"composition.affine_split[{form}]",
        f"Affine split ({form} matrix on the error)",
        sp.Eq(lhs, rhs, evaluate=False),
        (),
        Source("linear algebra", "", "", SourceStatus.STANDARD, section="4"),
        checker=checker,
    )


_e = nonnegative("e", "e_{l-1}", "error entering the layer")
_e_out = nonnegative("e_out", "e_l", "error leaving the layer")
_lam = nonnegative("lam", "lambda_l", "Lipschitz constant of the activation")
_A = nonnegative("A", "A_l", "operator norm bound")
_eps_p = nonnegative("eps_p", r"\varepsilon'_l", "per-parameter error")
_F = integer("F", "F_l", "fan-in")
_M = nonnegative("M", "M_{l-1}", "bound on the target's layer input")
_beta = real("beta", "beta_l", "1 with a bias, 0 without", low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
_t1 = nonnegative("t1", "t_1", "||W(ĥ - h)||_∞")
_t2 = nonnegative("t2", "t_2", "||(Ŵ - W)ĥ||_∞")
_t3 = nonnegative("t3", "t_3", "||b̂ - b||_∞")


@register("composition.layer_step", "composition")
def layer_step_lemma() -> Lemma:
    """The step ``e_l <= λ(A e + ε'(F(M + e) + β))`` [DERIVED, LEMMAS.md 4].

    Hypotheses (STANDARD facts): ``e_l <= λ(t₁ + t₂ + t₃)`` (φ is λ-Lipschitz, the affine split
    and the triangle inequality), ``t₁ <= A e`` (operator norm), ``t₂ <= ε'F(M + e)`` (at most
    ``F`` entries per row, each within ``ε'``, and ``||ĥ||_∞ <= M + e``), ``t₃ <= ε'β``.
    """
    e, e_out, lam, A, eps_p, F, M, beta = (p.symbol for p in (_e, _e_out, _lam, _A, _eps_p, _F, _M, _beta))
    t1, t2, t3 = _t1.symbol, _t2.symbol, _t3.symbol
    return Lemma(
        "composition.layer_step",
        "Error step through one layer",
        sp.Le(e_out, lam * (A * e + eps_p * (F * (M + e) + beta))),
        (_e, _e_out, _lam, _A, _eps_p, _F, _M, _beta, _t1, _t2, _t3),
        SOURCE_COMPOSITION,
        hypotheses=(
            sp.Le(e_out, lam * (t1 + t2 + t3)),
            sp.Le(t1, A * e),
            sp.Le(t2, eps_p * F * (M + e)),
            sp.Le(t3, eps_p * beta),
        ),
        notes="A may bound the target matrix or the matrix acting on the perturbed input.",
    )


_a_seq = sp.IndexedBase("a")
_b_seq = sp.IndexedBase("b")
_l = sp.Symbol("l", integer=True, positive=True)
_k = sp.Symbol("k", integer=True, positive=True)
_L = integer("L", "L", "depth reached so far")
_e0 = nonnegative("e0", "e_0", "input error")


def unrolled(depth: sp.Expr) -> sp.Expr:
    """``E(L) = (Π_{k=1}^{L} b_k) e_0 + Σ_{l=1}^{L} a_l Π_{k=l+1}^{L} b_k`` (sympy)."""
    return sp.Product(_b_seq[_k], (_k, 1, depth)) * _e0.symbol + sp.Sum(
        _a_seq[_l] * sp.Product(_b_seq[_k], (_k, _l + 1, depth)), (_l, 1, depth)
    )


def _peel_last_factor(expression: sp.Expr, last: sp.Expr) -> tuple[sp.Expr, list[str]]:
    """Rewrite every ``Π_{k=lo}^{last} b_k`` as ``b_last · Π_{k=lo}^{last-1} b_k``, each rewrite
    checked by ``product_simplify`` (which merges adjacent products)."""
    steps: list[str] = []

    def peel(product: sp.Product) -> sp.Expr:
        ((index, low, high),) = product.limits
        if high != last:
            return product
        shorter = sp.Product(product.function, (index, low, high - 1))
        rewritten = product.function.subs(index, high) * shorter
        merged = product_simplify(shorter * sp.Product(product.function, (index, high, high)))
        if merged != product:
            raise ValueError(f"could not verify the split of {product}")
        steps.append(f"{sp.sstr(product)} = {sp.sstr(rewritten)}")
        return rewritten

    return expression.replace(lambda node: isinstance(node, sp.Product), peel), steps


def _induction_checker(lemma: Lemma, options: CheckOptions) -> Verdict:
    L = _L.symbol
    _, lhs, rhs = lemma.sides()
    # Step 1: split off the last summand (sympy merges adjacent summation ranges).
    function = _a_seq[_l] * sp.Product(_b_seq[_k], (_k, _l + 1, L + 1))
    whole = sp.Sum(function, (_l, 1, L + 1))
    head, last = sp.Sum(function, (_l, 1, L)), sp.Sum(function, (_l, L + 1, L + 1))
    if sp.simplify(head + last - whole) != 0 or sp.simplify(last.doit() - _a_seq[L + 1]) != 0:
        return Verdict(Status.UNKNOWN, "sympy", "could not split the last summand")
    expanded = lhs.subs(whole, head + _a_seq[L + 1])
    # Step 2: peel b_{L+1} off every product ending at L+1 (checked by product_simplify).
    try:
        peeled, steps = _peel_last_factor(expanded, L + 1)
    except ValueError as error:
        return Verdict(Status.UNKNOWN, "sympy", str(error))
    # Step 3: pull b_{L+1} out of the sum and compare (sympy.simplify).
    difference = sp.simplify(sp.factor_terms(sp.expand(peeled - rhs)))
    if difference != 0:
        return Verdict(Status.UNKNOWN, "sympy", f"residual difference {difference}")
    base = sp.simplify(unrolled(sp.Integer(1)).doit() - (_b_seq[1] * _e0.symbol + _a_seq[1]))
    if base != 0:
        return Verdict(Status.UNKNOWN, "sympy", "base case failed")
    return Verdict(
        Status.PROVED,
        "sympy derivation (Sum, Product)",
        f"E(L+1) = b_(L+1) E(L) + a_(L+1) for symbolic L; base case E(1) = b_1 e_0 + a_1; {len(steps)} product splits checked",
    )


@register("composition.unrolled_induction", "composition")
def unrolled_induction() -> Lemma:
    """Induction step as a symbolic identity: ``E(L+1) = b_{L+1} E(L) + a_{L+1}`` with
    ``E(L) = (Π_{k<=L} b_k) e_0 + Σ_{l<=L} a_l Π_{l<k<=L} b_k`` [DERIVED, LEMMAS.md 4]. With
    ``b_l = λ_l(A_l + ε'_l F_l)`` and ``a_l = λ_l ε'_l (F_l M_{l-1} + β_l)`` the step reads
    ``e_l <= b_l e_{l-1} + a_l``, so ``e_L <= E(L)`` by induction (``composition.unrolled_bound``)."""
    L = _L.symbol
    return Lemma(
        "composition.unrolled_induction",
        "Unrolled error bound: induction step",
        sp.Eq(unrolled(L + 1), _b_seq[L + 1] * unrolled(L) + _a_seq[L + 1], evaluate=False),
        (_L, _e0),
        SOURCE_COMPOSITION,
        checker=_induction_checker,
    )


@register("composition.unrolled_bound", "composition")
def unrolled_bound() -> Lemma:
    """``e_{L+1} <= b e_L + a``, ``e_L <= E(L)``, ``b >= 0`` give ``e_{L+1} <= b E(L) + a``
    (= ``E(L+1)`` by ``composition.unrolled_induction``) [DERIVED]."""
    e_next = nonnegative("e_next", "e_{L+1}", "error after the next layer")
    e_now = nonnegative("e_now", "e_L", "error after layer L")
    E_now = nonnegative("E_now", "E(L)", "unrolled bound at L")
    b = nonnegative("b", "b_{L+1}", "growth factor")
    a = nonnegative("a", "a_{L+1}", "own contribution")
    return Lemma(
        "composition.unrolled_bound",
        "Unrolled error bound: the inequality",
        sp.Le(e_next.symbol, b.symbol * E_now.symbol + a.symbol),
        (e_next, e_now, E_now, b, a),
        SOURCE_COMPOSITION,
        hypotheses=(
            sp.Le(e_next.symbol, b.symbol * e_now.symbol + a.symbol),
            sp.Le(e_now.symbol, E_now.symbol),
        ),
    )


@register("composition.equal_share", "composition")
def equal_share() -> Lemma:
    """With ``ε'_l = (B/L) / (λ_l (F_l M_{l-1} + β_l) P_l)``, ``P_l = Π_{k>l} b_k``, layer ``l``
    contributes exactly ``B/L``; the ``L`` contributions sum to ``B`` (:func:`allot_eps`)
    [DERIVED, LEMMAS.md 4]."""
    B = positive("B", "B", "error budget")
    L = integer("L", "L", "depth")
    lam = positive("lam", "lambda_l", "Lipschitz constant")
    F = integer("F", "F_l", "fan-in")
    M = nonnegative("M", "M_{l-1}", "input bound")
    beta = real("beta", "beta_l", "bias indicator", low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
    P = positive("P", "P_l", "growth of later layers")
    eps_p = sp.Symbol(r"\varepsilon'_l", positive=True)
    share = (B.symbol / L.symbol) / (lam.symbol * (F.symbol * M.symbol + beta.symbol) * P.symbol)
    return Lemma(
        "composition.equal_share",
        "Equal share per layer",
        sp.Eq(lam.symbol * eps_p * (F.symbol * M.symbol + beta.symbol) * P.symbol, B.symbol / L.symbol),
        (B, L, lam, F, M, beta, P),
        SOURCE_COMPOSITION,
        definitions=((eps_p, share),),
        notes="F·M + β > 0 is assumed (else the layer contributes nothing for any ε').",
    )


@register("composition.lemmas_md_allotment", "composition")
def lemmas_md_allotment() -> Lemma:
    """LEMMAS.md 4's allotment as written: ``ε'_l = ε / (L λ (F(M+1) + β) Q_l)`` with
    ``Q_l = Π_{k>l} max{1, λ‖W_k‖} >= P_l = Π_{k>l} λ‖W_k‖`` makes each term of LEMMAS.md's
    unrolled sum at most ``ε/L`` [DERIVED]. That sum bounds ``e_L`` when every ``e_l <= 1``,
    which holds when ``ε <= 1`` (partial sums are at most ``lε/L``); see
    ``composition.lemmas_md_step`` for the replacement of ``M + e`` by ``M + 1``."""
    eps = positive("eps", "varepsilon", "target error")
    L = integer("L", "L", "depth")
    lam = positive("lam", "lambda", "Lipschitz constant")
    F = integer("F", "F_l", "fan-in")
    M = nonnegative("M", "M_{l-1}", "input bound")
    beta = real("beta", "beta_l", "bias indicator", low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
    P = nonnegative("P", "P_l", "Π_{k>l} λ‖W_k‖")
    Q = positive("Q", "Q_l", "Π_{k>l} max{1, λ‖W_k‖}")
    eps_p = sp.Symbol(r"\varepsilon'_l", positive=True)
    share = eps.symbol / (L.symbol * lam.symbol * (F.symbol * (M.symbol + 1) + beta.symbol) * Q.symbol)
    return Lemma(
        "composition.lemmas_md_allotment",
        "LEMMAS.md equal-share allotment",
        sp.Le(lam.symbol * eps_p * (F.symbol * (M.symbol + 1) + beta.symbol) * P.symbol, eps.symbol / L.symbol),
        (eps, L, lam, F, M, beta, P, Q),
        SOURCE_LEMMAS_MD,
        hypotheses=(sp.Le(P.symbol, Q.symbol),),
        definitions=((eps_p, share),),
    )


@register("composition.lemmas_md_step", "composition")
def lemmas_md_step() -> Lemma:
    """If ``e <= 1`` the step used here is at most LEMMAS.md's ``λ(A e + ε'(F(M+1) + β))``
    [DERIVED]: the two forms agree up to replacing ``M + e`` by ``M + 1``."""
    e, lam, A, eps_p, F, M, beta = (p.symbol for p in (_e, _lam, _A, _eps_p, _F, _M, _beta))
    ours = lam * (A * e + eps_p * (F * (M + e) + beta))
    return Lemma(
        "composition.lemmas_md_step",
        "Our step is within LEMMAS.md's when e <= 1",
        sp.Le(ours, lam * (A * e + eps_p * (F * (M + 1) + beta))),
        (_e, _lam, _A, _eps_p, _F, _M, _beta),
        SOURCE_LEMMAS_MD,
        hypotheses=(sp.Le(e, 1),),
    )


@register("composition.residual_rule", "composition")
def residual_rule() -> Lemma:
    """``y = φ_out(skip(x) + branch(x))``: ``e_out <= λ_out (e_skip + e_branch)`` [RECONSTRUCTED,
    LEMMAS.md 4]. Hypotheses: ``e_out <= λ_out (u + v)`` (Lipschitz, triangle inequality on
    ``(skip(x̂) - skip(x)) + (branch(x̂) - branch(x))``), ``u <= e_skip``, ``v <= e_branch``."""
    e_out = nonnegative("e_out", r"e_{\mathrm{out}}", "error at the block output")
    lam = nonnegative("lam_out", r"\lambda_{\mathrm{out}}", "Lipschitz constant of the block's activation")
    u = nonnegative("u", "u", "||skip(x̂) - skip(x)||_∞")
    v = nonnegative("v", "v", "||branch(x̂) - branch(x)||_∞")
    e_skip = nonnegative("e_skip", r"e_{\mathrm{skip}}", "skip-path bound (identity: e_in)")
    e_branch = nonnegative("e_branch", r"e_{\mathrm{branch}}", "branch bound from the recurrence started at e_in")
    return Lemma(
        "composition.residual_rule",
        "Residual block rule",
        sp.Le(e_out.symbol, lam.symbol * (e_skip.symbol + e_branch.symbol)),
        (e_out, lam, u, v, e_skip, e_branch),
        SOURCE_RESIDUAL,
        hypotheses=(
            sp.Le(e_out.symbol, lam.symbol * (u.symbol + v.symbol)),
            sp.Le(u.symbol, e_skip.symbol),
            sp.Le(v.symbol, e_branch.symbol),
        ),
    )


@register("composition.residual_rule_lipschitz", "composition")
def residual_rule_lipschitz() -> Lemma:
    """LEMMAS.md's form for ``y = x + g(x)``: ``||ŷ - y|| <= e_in (1 + Lip(g)) + e_g`` with
    ``e_g`` the branch's own error on the perturbed input [RECONSTRUCTED]. Hypotheses: the
    split ``ŷ - y = (x̂ - x) + (ĝ(x̂) - g(x̂)) + (g(x̂) - g(x))`` and the triangle inequality."""
    d = nonnegative("d", "d", "||ŷ - y||")
    e_in = nonnegative("e_in", r"e_{\mathrm{in}}", "||x̂ - x||")
    p = nonnegative("p", "p", "||ĝ(x̂) - g(x̂)||")
    q = nonnegative("q", "q", "||g(x̂) - g(x)||")
    e_g = nonnegative("e_g", "e_g", "the branch's own error")
    lip = nonnegative("Lip_g", r"\mathrm{Lip}(g)", "Lipschitz constant of the branch")
    return Lemma(
        "composition.residual_rule_lipschitz",
        "Residual block rule (LEMMAS.md form)",
        sp.Le(d.symbol, e_in.symbol * (1 + lip.symbol) + e_g.symbol),
        (d, e_in, p, q, e_g, lip),
        SOURCE_RESIDUAL,
        hypotheses=(
            sp.Le(d.symbol, e_in.symbol + p.symbol + q.symbol),
            sp.Le(p.symbol, e_g.symbol),
            sp.Le(q.symbol, lip.symbol * e_in.symbol),
        ),
    )


@register("composition.union_bound", "composition")
def union_bound() -> Lemma:
    """``N`` subset-sum problems failing with probability at most ``δ/N`` each fail together
    with probability at most ``N·δ/N = δ`` (union bound) [STANDARD]."""
    N = integer("N", "N", "number of subset-sum problems")
    delta = positive("delta", "delta", "total failure probability")
    p_fail = nonnegative("p_fail", r"p_{\mathrm{fail}}", "probability that some problem fails")
    p_each = nonnegative("p_each", "p_i", "failure probability of one problem")
    return Lemma(
        "composition.union_bound",
        "Union bound over subset-sum problems",
        sp.Le(p_fail.symbol, delta.symbol),
        (N, delta, p_fail, p_each),
        Source("probability", "union bound", "", SourceStatus.STANDARD, section="4"),
        hypotheses=(sp.Le(p_fail.symbol, N.symbol * p_each.symbol), sp.Le(p_each.symbol, delta.symbol / N.symbol)),
    )


def _layers_from(specification: Sequence[Any]) -> list[LayerFacts]:
    layers = []
    for index, entry in enumerate(specification):
        if isinstance(entry, LayerFacts):
            layers.append(entry)
            continue
        if not isinstance(entry, dict):
            raise InvalidInput(f"layers[{index}]={entry!r} must be a table of LayerFacts fields")
        unknown = set(entry) - {"fan_in", "weight_norm", "lipschitz", "input_bound", "has_bias"}
        if unknown:
            raise InvalidInput(f"layers[{index}] has unknown field {sorted(unknown)[0]!r}")
        try:
            layers.append(LayerFacts(**entry))
        except TypeError as error:
            raise InvalidInput(f"layers[{index}]: {error}") from None
    return layers


@register(
    "composition.allotment_instance",
    "composition",
    parameters=("eps", "layers", "input_error", "residual_blocks"),
    examples=(
        {
            "eps": 0.01,
            "layers": (
                {"fan_in": 9, "weight_norm": 1.0, "lipschitz": 1.0, "input_bound": 1.0, "has_bias": True},
                {"fan_in": 288, "weight_norm": 2.0, "lipschitz": 1.0, "input_bound": 2.0, "has_bias": True},
                {"fan_in": 64, "weight_norm": 1.0, "lipschitz": 1.0, "input_bound": 5.0, "has_bias": True},
            ),
        },
    ),
)
def allotment_instance(
    eps: float,
    layers: Sequence[Any],
    input_error: float = 0.0,
    residual_blocks: Sequence[Sequence[int]] = (),
) -> Lemma:
    """For a concrete network: ``output_error_bound(allot_eps(eps, layers), layers) <= eps``,
    decided in exact rational arithmetic [DERIVED]."""
    facts = _layers_from(layers)
    spans = [tuple(span) for span in residual_blocks]
    allotted = allot_eps(eps, facts, input_error, residual_blocks=spans)
    bound_symbol = sp.Symbol("e_L", nonnegative=True)

    def checker(lemma: Lemma, options: CheckOptions) -> Verdict:
        exact = _exact_bound([Fraction(v) for v in allotted], facts, Fraction(input_error), _check_spans(spans, len(facts)))
        holds = exact <= Fraction(eps)
        return Verdict(
            Status.PROVED if holds else Status.FALSIFIED,
            "exact rationals",
            f"{len(facts)} layers: eps'_l = {', '.join(f'{v:.3g}' for v in allotted)}; "
            f"e_L <= {float(exact):.6g} {'<=' if holds else '>'} eps = {eps:g}",
            counterexample=None if holds else {"eps_prime": allotted},
        )

    return Lemma(
        f"composition.allotment_instance[{len(facts)} layers, eps={eps:g}]",
        "Allotment for a concrete network",
        sp.Le(bound_symbol, sp.Rational(Fraction(eps)), evaluate=False),
        (),
        SOURCE_COMPOSITION,
        notes="layers: " + "; ".join(str(layer.as_dict()) for layer in facts),
        checker=checker,
    )


__all__ = [
    "LayerFacts",
    "affine_split",
    "allot_eps",
    "allotment_instance",
    "equal_share",
    "layer_step",
    "layer_step_lemma",
    "lemmas_md_allotment",
    "lemmas_md_step",
    "output_error_bound",
    "residual_error_bound",
    "residual_rule",
    "residual_rule_lipschitz",
    "union_bound",
    "unrolled",
    "unrolled_bound",
    "unrolled_induction",
]
