"""Width theorems: how wide and deep a random source network must be, per paper.

Each theorem is a :class:`WidthTheorem` (name, citation, assumptions, :meth:`~WidthTheorem.applies`,
:meth:`~WidthTheorem.requirement`) that composes the lemma families: the subset-sum width
(``subsetsum.usable_form``), the activation lemmas (which decide ``ρ_1 = 2ρ`` for ReLU-like
activations) and the error allotment (``composition.allot_eps``). Lemmas know nothing of
networks: a target is described by a :class:`TargetShape` (widths, kernel sizes, activation,
biases, residual blocks, norms).

The formulas are LEMMAS.md sections 2 and 6, as written; all are [RECONSTRUCTED] (the full
texts of the two 2022 Burkholz papers were not available; Malach's and Orseau's widths are
reconstructed from Pensia et al.'s summary). Every :class:`WidthRequirement` says so in its
``status`` and ``notes``, and carries the constant ``C`` it used with its provenance.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import sympy as sp
from flint import arb

from ltbounds.activations import get_activation
from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _interval
from ltbounds.lemmas.base import (
    CheckOptions,
    Lemma,
    Source,
    SourceStatus,
    integer,
    positive,
    probability,
)
from ltbounds.lemmas.composition import LayerFacts, _check_spans, _exact_bound, allot_eps
from ltbounds.lemmas.registry import register
from ltbounds.lemmas.subsetsum import SubsetSumConstant, code_derived_constant
from ltbounds.validation import check_int, check_open_unit, check_positive, check_real
from ltbounds.verdict import Status, Verdict

# ------------------------------------------------------------------------------ shape


@dataclass(frozen=True)
class TargetShape:
    """The shape of a target network, all the width theorems need.

    Parameters
    ----------
    widths : tuple of int
        ``n_0..n_L``: input channels/features, then each layer's output channels/neurons.
    kernel_sizes : tuple of int, optional
        ``k_1..k_L``: kernel entries per layer (``k_h·k_w``), 1 for dense layers. Default all 1.
    activation : str
        Registry name (``ltbounds.activations``).
    has_bias : bool
        Whether the target layers have biases.
    residual_blocks : tuple of pairs
        1-based layer spans of residual branches with identity skips (the block's activation
        is layer ``last``'s, applied after the sum). Empty for a feed-forward target.
    input_bound : float
        ``M_0``: bound on ``||x||_∞`` over the input domain (1 for ``[-1, 1]^d``).
    weight_norms : tuple of float, optional
        ``A_l``: bounds on each layer's ``∞→∞`` operator norm. Default: the papers'
        normalisation, each ``<= 1`` (stated as an assumption in every requirement).
    bias_bound : float
        Bound on ``|b|`` entries, used for the layer-input bounds ``M_l``.
    """

    widths: tuple[int, ...]
    kernel_sizes: tuple[int, ...] | None = None
    activation: str = "relu"
    has_bias: bool = True
    residual_blocks: tuple[tuple[int, int], ...] = ()
    input_bound: float = 1.0
    weight_norms: tuple[float, ...] | None = None
    bias_bound: float = 1.0

    def __post_init__(self) -> None:
        widths = tuple(self.widths) if isinstance(self.widths, (list, tuple)) else None
        if widths is None or len(widths) < 2:
            raise InvalidInput(f"widths={self.widths!r} must list n_0..n_L with L >= 1")
        widths = tuple(check_int(f"widths[{i}]", w, minimum=1) for i, w in enumerate(widths))
        depth = len(widths) - 1
        kernels = (1,) * depth if self.kernel_sizes is None else tuple(self.kernel_sizes)
        if len(kernels) != depth:
            raise InvalidInput(f"kernel_sizes={self.kernel_sizes!r} must have {depth} entries (one per layer)")
        kernels = tuple(check_int(f"kernel_sizes[{i}]", k, minimum=1) for i, k in enumerate(kernels))
        get_activation(self.activation)
        if not isinstance(self.has_bias, bool):
            raise InvalidInput(f"has_bias={self.has_bias!r} must be a bool")
        spans = tuple(tuple(span) for span in self.residual_blocks)
        spans = tuple(_check_spans(spans, depth))
        for first, last in spans:
            if widths[first - 1] != widths[last]:
                raise InvalidInput(
                    f"residual block ({first}, {last}) adds n_{first - 1}={widths[first - 1]} to "
                    f"n_{last}={widths[last]}; an identity skip needs equal widths"
                )
        input_bound = check_positive("input_bound", self.input_bound)
        norms = None
        if self.weight_norms is not None:
            norms = tuple(self.weight_norms)
            if len(norms) != depth:
                raise InvalidInput(f"weight_norms={self.weight_norms!r} must have {depth} entries")
            for i, value in enumerate(norms):
                if check_real(f"weight_norms[{i}]", value) < 0:
                    raise InvalidInput(f"weight_norms[{i}]={value!r} must be >= 0")
            norms = tuple(float(v) for v in norms)
        bias_bound = check_real("bias_bound", self.bias_bound)
        if bias_bound < 0:
            raise InvalidInput(f"bias_bound={self.bias_bound!r} must be >= 0")
        object.__setattr__(self, "widths", widths)
        object.__setattr__(self, "kernel_sizes", kernels)
        object.__setattr__(self, "residual_blocks", spans)
        object.__setattr__(self, "input_bound", input_bound)
        object.__setattr__(self, "weight_norms", norms)
        object.__setattr__(self, "bias_bound", bias_bound)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetShape:
        """From a plain mapping (a proof file's ``shape`` table), refusing unknown keys."""
        known = {"widths", "kernel_sizes", "activation", "has_bias", "residual_blocks", "input_bound", "weight_norms", "bias_bound"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInput(f"shape has unknown field {unknown[0]!r}; known: {', '.join(sorted(known))}")
        if "widths" not in data:
            raise InvalidInput("shape needs 'widths'")
        return cls(**{key: (tuple(map(tuple, value)) if key == "residual_blocks" else value) for key, value in data.items()})

    @property
    def depth(self) -> int:
        """``L``, the number of layers."""
        return len(self.widths) - 1

    @property
    def target_params(self) -> int:
        """Weights ``Σ n_l n_{l-1} k_l`` plus biases ``Σ n_l`` when present."""
        weights = sum(self.widths[j] * self.widths[j - 1] * self.kernel_sizes[j - 1] for j in range(1, self.depth + 1))
        biases = sum(self.widths[1:]) if self.has_bias else 0
        return weights + biases

    def norms(self) -> tuple[float, ...]:
        """``A_l``, defaulting to 1 (the normalisation assumption)."""
        return self.weight_norms if self.weight_norms is not None else (1.0,) * self.depth

    def layer_input_bounds(self) -> tuple[float, ...]:
        """``M_0..M_{L-1}``: ``M_l <= |φ(0)| + λ(A_l M_{l-1} + β b_max)`` (plus ``λ M_{first-1}``
        at the end of a residual block), computed exactly and rounded up."""
        activation = get_activation(self.activation)
        ends = {last: first for first, last in self.residual_blocks}
        bounds = [Fraction(self.input_bound)]
        norms = self.norms()
        lam = Fraction(activation.lipschitz)
        phi0 = abs(Fraction(activation.value_at_zero))
        beta = Fraction(self.bias_bound) if self.has_bias else Fraction(0)
        for layer in range(1, self.depth):
            pre = Fraction(norms[layer - 1]) * bounds[-1] + beta
            if layer in ends:
                pre += bounds[ends[layer] - 1]
            # |φ(0)| is stated rounded outwards; one float step more covers its exact value.
            bounds.append(Fraction(math.nextafter(float(phi0), math.inf)) + lam * pre)
        result = []
        for value in bounds:
            number = float(value)
            result.append(number if Fraction(number) >= value else math.nextafter(number, math.inf))
        return tuple(result)

    def layer_facts(self) -> list[LayerFacts]:
        """One :class:`LayerFacts` per target layer (for the error allotment)."""
        activation = get_activation(self.activation)
        bounds = self.layer_input_bounds()
        return [
            LayerFacts(
                fan_in=self.widths[j - 1] * self.kernel_sizes[j - 1],
                weight_norm=self.norms()[j - 1],
                lipschitz=activation.lipschitz,
                input_bound=bounds[j - 1],
                has_bias=self.has_bias,
            )
            for j in range(1, self.depth + 1)
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "widths": list(self.widths),
            "kernel_sizes": list(self.kernel_sizes),
            "activation": self.activation,
            "has_bias": self.has_bias,
            "residual_blocks": [list(span) for span in self.residual_blocks],
            "input_bound": self.input_bound,
            "weight_norms": None if self.weight_norms is None else list(self.weight_norms),
            "bias_bound": self.bias_bound,
        }


# -------------------------------------------------------------------------- requirement


@dataclass(frozen=True)
class WidthRequirement:
    """What one theorem requires of the source network for one target, ``eps`` and ``delta``.

    Attributes
    ----------
    theorem, citation, status : str
        Theorem key, citation line, and source status (RECONSTRUCTED for all here).
    source_depth : int
        Number of source layers.
    widths : tuple of int
        Width (neurons or channels) of each source layer, input excluded.
    kernel_sizes : tuple of int
        Kernel entries of each source layer.
    source_params : int
        Weights of the dense source network plus the biases its initialisation draws.
    target_params : int
        The target's weights and biases.
    factor : float
        ``source_params / target_params``.
    constants : tuple
        ``(law, value, origin)`` triples: every constant C used, the subset-sum law it belongs
        to and where it comes from.
    rho : tuple of int
        Block multiplicities per target layer (the ``ρ`` of the construction), if any.
    per_layer_eps : tuple of float
        Per-parameter errors ``ε'_l`` from the allotment, if the theorem uses one.
    subset_sum_problems : int or None
        ``N`` in the union bound.
    assumptions, notes : tuple of str
        What the theorem assumes; what was reconstructed or adapted.
    """

    theorem: str
    citation: str
    status: str
    source_depth: int
    widths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    source_params: int
    target_params: int
    factor: float
    constants: tuple[tuple[str, float, str], ...]
    rho: tuple[int, ...] = ()
    per_layer_eps: tuple[float, ...] = ()
    subset_sum_problems: int | None = None
    assumptions: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def constant(self) -> float:
        """The (largest) constant C used."""
        return max(value for _, value, _ in self.constants)

    @property
    def constant_origin(self) -> str:
        """Origins of the constants, e.g. ``"code-derived"``."""
        return ", ".join(dict.fromkeys(origin for _, _, origin in self.constants))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "theorem": self.theorem,
            "citation": self.citation,
            "status": self.status,
            "source_depth": self.source_depth,
            "widths": list(self.widths),
            "kernel_sizes": list(self.kernel_sizes),
            "source_params": self.source_params,
            "target_params": self.target_params,
            "factor": self.factor,
            "constants": [{"law": law, "value": value, "origin": origin} for law, value, origin in self.constants],
            "rho": list(self.rho),
            "per_layer_eps": list(self.per_layer_eps),
            "subset_sum_problems": self.subset_sum_problems,
            "assumptions": list(self.assumptions),
            "notes": list(self.notes),
        }


def _source_params(input_width: int, widths: Sequence[int], kernels: Sequence[int], biased: Sequence[bool]) -> int:
    total = 0
    previous = input_width
    for width, kernel, bias in zip(widths, kernels, biased, strict=True):
        total += width * previous * kernel + (width if bias else 0)
        previous = width
    return total


def _constant(C: float | SubsetSumConstant | None, law: str) -> tuple[float, str]:
    if C is None:
        constant = code_derived_constant(law)
        return constant.value, constant.origin
    if isinstance(C, SubsetSumConstant):
        return C.value, C.origin
    return check_positive("C", C), "user"


def _log_ceiling(C: float, argument: Fraction) -> int:
    """``ceil(C·log(argument))`` computed in arb (never off by one through rounding)."""
    with _interval.working_precision(256):
        value = _interval.exact_arb(C) * _interval.exact_arb(argument).log()
        low = math.floor(float(value.lower()))
        candidate = max(low, 0)
        while (value <= candidate) is not True:
            candidate += 1
            if candidate > low + 3:
                raise InvalidInput(f"could not round C·log({float(argument):g}) to an integer")
    return max(int(candidate), 1)


def _smooth_or_relu_like(shape: TargetShape) -> str | None:
    activation = get_activation(shape.activation)
    if activation.relu_like:
        return None
    if activation.slope_at_zero == 0:
        return f"activation {shape.activation!r} has φ'(0) = 0; the linear regime (LEMMAS.md 3 (B)) needs φ'(0) != 0"
    if activation.second_derivative_bound is None:
        return f"activation {shape.activation!r} states no bound on φ''; LEMMAS.md 3 (B) needs φ twice differentiable near 0"
    return None


def _relu_only(shape: TargetShape, *, kernels: bool, biases: bool, residual: bool) -> str | None:
    if shape.activation != "relu":
        return f"stated for ReLU targets; activation is {shape.activation!r}"
    if shape.has_bias and not biases:
        return "stated for targets without biases"
    if not kernels and any(k != 1 for k in shape.kernel_sizes):
        return "stated for dense targets; kernel_sizes has entries > 1"
    if shape.residual_blocks and not residual:
        return "no residual blocks in the theorem"
    return None


@dataclass(frozen=True)
class WidthTheorem:
    """One paper's width theorem (see the module docstring).

    Attributes
    ----------
    key : str
        ``malach``, ``pensia``, ``orseau``, ``da_cunha``, ``burkholz_2l`` or ``burkholz_l_plus_1``.
    name : str
        Human name.
    source : Source
        Paper, result, arXiv id and status.
    assumptions : tuple of str
        What the theorem assumes of target and source.
    formula : str
        The width rule in LaTeX, as LEMMAS.md writes it.
    """

    key: str
    name: str
    source: Source
    assumptions: tuple[str, ...]
    formula: str
    _not_applicable: Callable[[TargetShape], str | None] = field(repr=False, compare=False)
    _requirement: Callable[..., WidthRequirement] = field(repr=False, compare=False)

    @property
    def citation(self) -> str:
        """One-line citation."""
        return self.source.citation()

    def applies(self, shape: TargetShape) -> tuple[bool, str]:
        """``(True, "")`` when the theorem covers ``shape``, else ``(False, reason)``."""
        reason = self._not_applicable(shape)
        return (reason is None, reason or "")

    def requirement(
        self,
        shape: TargetShape,
        eps: float,
        delta: float,
        C: float | SubsetSumConstant | None = None,
    ) -> WidthRequirement:
        """The source network this theorem requires.

        Parameters
        ----------
        shape : TargetShape
            The target.
        eps : float
            Approximation error, ``> 0`` (sup over the input domain, ``∞``-norm of outputs).
        delta : float
            Failure probability in (0, 1).
        C : float or SubsetSumConstant, optional
            The constant. Default: the code-derived value for the subset-sum law the theorem
            uses (LEMMAS.md 1.3; 1.0 for the non-subset-sum theorems, order of magnitude only).

        Raises
        ------
        InvalidInput
            Bad ``eps``/``delta``/``C``, or a shape the theorem does not cover (with the reason).
        """
        eps = check_positive("eps", eps)
        delta = check_open_unit("delta", delta)
        applicable, reason = self.applies(shape)
        if not applicable:
            raise InvalidInput(f"{self.key} does not apply: {reason}")
        return self._requirement(self, shape, eps, delta, C)


def _base_notes(theorem: WidthTheorem, shape: TargetShape) -> list[str]:
    notes = [f"{theorem.source.status.value}: {theorem.source.note}" if theorem.source.note else theorem.source.status.value]
    if shape.weight_norms is None:
        notes.append("weight norms not given: each ||W_l||_inf->inf <= 1 assumed (normalisation)")
    return notes


def _requirement_burkholz(theorem: WidthTheorem, shape: TargetShape, eps: float, delta: float, C: Any, *, double: bool) -> WidthRequirement:
    activation = get_activation(shape.activation)
    L = shape.depth
    n = shape.widths
    k = shape.kernel_sizes
    bias_block = 1 if shape.has_bias else 0
    layers = shape.layer_facts()
    eps_layers = allot_eps(eps, layers, residual_blocks=shape.residual_blocks)
    product_C, product_origin = _constant(C, "product")
    uniform_C, uniform_origin = _constant(C, "uniform")
    first_factor = 2 if activation.relu_like else 1
    notes = _base_notes(theorem, shape)
    if double:
        # 2L: per target layer a 1x1 univariate layer (products) and a layer with the target kernel.
        # ReLU-like: separate subset sums over positive and negative first-layer weights.
        problems = first_factor * sum(n[j] * (n[j - 1] * k[j - 1] + bias_block) for j in range(1, L + 1))
        rho = tuple(
            _log_ceiling(product_C, 1 / min(Fraction(eps_layers[j - 1]), Fraction(delta) / problems))
            for j in range(1, L + 1)
        )
        widths: list[int] = []
        kernels: list[int] = []
        biased: list[bool] = []
        for j in range(1, L + 1):
            widths += [first_factor * rho[j - 1] * (n[j - 1] + bias_block), n[j]]
            kernels += [1, k[j - 1]]
            biased += [shape.has_bias, False]
        constants: tuple[tuple[str, float, str], ...] = (("product", product_C, product_origin),)
        notes.append("rho_l >= C log(1/min(eps'_l, delta/N)), N = sum_l n_l (n_(l-1) k_l + [bias]); product subset sums")
        if shape.residual_blocks:
            notes.append("skip connections copied exactly (identity, no pruning error); eps' allotted with the residual rule")
    else:
        # L+1: copies of target neurons; copies_l = multiplicity of target layer j in source layer j+1.
        rho_list = [1] * L
        problems = 0
        for _ in range(50):
            # copies[j-1]: copies of target layer j's neurons (in source layer j+1); 1 at the output.
            copies = [rho_list[j] if j < L else 1 for j in range(1, L + 1)]
            problems = sum(
                copies[j - 1]
                * (n[j] * (n[j - 1] * k[j - 1] + bias_block) * (first_factor if j == 1 else 1) + (bias_block if j < L else 0))
                for j in range(1, L + 1)
            )
            new = []
            for j in range(1, L + 1):
                law_C = product_C if j == 1 else uniform_C
                new.append(_log_ceiling(law_C, 1 / min(Fraction(eps_layers[j - 1]), Fraction(delta) / problems)))
            # rho_list[j-1] is the multiplicity in source layer j (base set for target layer j).
            if new == rho_list:
                break
            rho_list = [max(a, b) for a, b in zip(rho_list, new, strict=True)]
        else:  # pragma: no cover - monotone and logarithmic, converges in a few rounds
            raise InvalidInput("the union-bound fixed point did not converge")
        rho = tuple(rho_list)
        widths = [first_factor * rho[0] * (n[0] + bias_block)]
        for j in range(1, L):
            widths.append(rho[j] * (n[j] + bias_block))
        widths.append(n[L])
        kernels = [1, *k]
        biased = [shape.has_bias] + [False] * L
        constants = (("product", product_C, product_origin), ("uniform", uniform_C, uniform_origin)) if L > 1 else (("product", product_C, product_origin),)
        notes.append(
            "rho_l >= C log(1/min(eps'_l, delta/N)) for the base set of target layer l (source layer l); "
            "layer 1 products, layers >= 2 plain uniforms; N counts copies (fixed point)"
        )
        notes.append("source biases in layers > 1 are zero (Figure-1 caption); only layer 1 draws biases")
    if activation.relu_like:
        notes.append("ReLU-like: first univariate layer doubled (positive and negative weights, LEMMAS.md 3 (A))")
    else:
        notes.append(
            "smooth activation: the first layer works in the linear regime (LEMMAS.md 3 (B)); its "
            "linearisation error is set by the weight scale and is not part of the rho count"
        )
    if not shape.has_bias:
        notes.append("target without biases: the '+1' bias/constant block is dropped")
    source_params = _source_params(n[0], widths, kernels, biased)
    return WidthRequirement(
        theorem=theorem.key,
        citation=theorem.citation,
        status=theorem.source.status.value,
        source_depth=len(widths),
        widths=tuple(widths),
        kernel_sizes=tuple(kernels),
        source_params=source_params,
        target_params=shape.target_params,
        factor=source_params / shape.target_params,
        constants=constants,
        rho=rho,
        per_layer_eps=tuple(eps_layers),
        subset_sum_problems=problems,
        assumptions=theorem.assumptions,
        notes=tuple(notes),
    )


def _requirement_pair(theorem: WidthTheorem, shape: TargetShape, eps: float, delta: float, C: Any, *, rule: str) -> WidthRequirement:
    L = shape.depth
    n = shape.widths
    k = shape.kernel_sizes
    m = min(Fraction(eps), Fraction(delta))
    notes = _base_notes(theorem, shape)
    if rule in ("pensia", "da_cunha"):
        value, origin = _constant(C, "product")
        law = "product"
    else:
        if C is None:
            value, origin = 1.0, "order only: the paper's O(.) constant is not given"
        else:
            value, origin = _constant(C, "uniform")
        law = "none"
    widths: list[int] = []
    kernels: list[int] = []
    for j in range(1, L + 1):
        if rule == "pensia":
            block = _log_ceiling(value * n[j - 1], Fraction(n[j - 1] * n[j] * L) / m)
            widths += [block, n[j]]
            kernels += [1, 1]
        elif rule == "da_cunha":
            per = _log_ceiling(value, Fraction(k[j - 1] * n[j - 1] * n[j] * L) / m)
            widths += [2 * per * n[j - 1], n[j]]
            kernels += [k[j - 1], 1]
        elif rule == "orseau":
            block = _log_ceiling(value * n[j - 1] * n[j], Fraction(n[j - 1] * n[j] * L) / m)
            widths += [block, n[j]]
            kernels += [1, 1]
        else:  # malach
            d = max(n)
            with _interval.working_precision(256):
                ball = _interval.exact_arb(value) * arb(d) ** 5 * arb(L) ** 2 / _interval.exact_arb(eps) ** 2 * (
                    _interval.exact_arb(Fraction(d * L) / Fraction(delta)).log()
                )
            block = max(int(math.ceil(float(ball.upper()))), 1)
            widths += [block, n[j]]
            kernels += [1, 1]
    if rule == "da_cunha":
        notes.append("which layer of each pair carries the spatial kernel is UNCERTAIN (LEMMAS.md 2.4); here the first")
    if rule == "malach":
        notes.append("width O(d^5 l^2 eps^-2 log(dl/delta)) with d = max width, from Pensia et al.'s Table 1 (reconstructed from memory)")
    if rule == "orseau":
        notes.append("hyperbolic weight law (density ~ 1/|w|); uniform init has worse constants")
    source_params = _source_params(n[0], widths, kernels, [False] * len(widths))
    return WidthRequirement(
        theorem=theorem.key,
        citation=theorem.citation,
        status=theorem.source.status.value,
        source_depth=len(widths),
        widths=tuple(widths),
        kernel_sizes=tuple(kernels),
        source_params=source_params,
        target_params=shape.target_params,
        factor=source_params / shape.target_params,
        constants=((law, value, origin),),
        assumptions=theorem.assumptions,
        notes=tuple(notes),
    )


THEOREMS: dict[str, WidthTheorem] = {
    theorem.key: theorem
    for theorem in (
        WidthTheorem(
            "malach",
            "Malach et al. 2020 (depth 2L, polynomial width)",
            Source("Malach, Yehudai, Shalev-Shwartz, Shamir (2020)", "Theorem 2.1", "arXiv 2002.00585", SourceStatus.RECONSTRUCTED, section="2.1", note="width from Pensia et al.'s summary"),
            ("ReLU", "no biases", "dense layers", "|w| <= 1/sqrt(n), spectral norm <= 1", "||x|| <= 1", "source weights iid U[-1,1]"),
            r"n^{(0)}_{2l-1} = C\,d^5 L^2 \varepsilon^{-2}\log\frac{dL}{\delta},\quad n^{(0)}_{2l} = n_l",
            lambda shape: _relu_only(shape, kernels=False, biases=False, residual=False),
            lambda theorem, shape, eps, delta, C: _requirement_pair(theorem, shape, eps, delta, C, rule="malach"),
        ),
        WidthTheorem(
            "pensia",
            "Pensia et al. 2020 (depth 2L, log factor)",
            Source("Pensia, Rajput, Nagle, Vishwakarma, Papailiopoulos (2020)", "Theorem 1", "arXiv 2006.07990", SourceStatus.RECONSTRUCTED, section="2.2", note="abstract verbatim; widths reconstructed"),
            ("ReLU", "no biases", "dense layers", "||W_l||_op <= 1", "||x|| <= 1", "source weights iid U[-1,1]", "l2 error over the unit ball"),
            r"n^{(0)}_{2l-1} = C\,n_{l-1}\log\frac{n_{l-1}n_l L}{\min(\varepsilon,\delta)},\quad n^{(0)}_{2l} = n_l",
            lambda shape: _relu_only(shape, kernels=False, biases=False, residual=False),
            lambda theorem, shape, eps, delta, C: _requirement_pair(theorem, shape, eps, delta, C, rule="pensia"),
        ),
        WidthTheorem(
            "orseau",
            "Orseau et al. 2020 (depth 2L, hyperbolic weights)",
            Source("Orseau, Hutter, Rivasplata (2020)", "", "arXiv 2006.12156", SourceStatus.RECONSTRUCTED, section="2.3", note="abstract verbatim; widths reconstructed"),
            ("ReLU", "no biases", "dense layers", "source weights from a hyperbolic law"),
            r"n^{(0)}_{2l-1} = C\,n_{l-1}n_l\log\frac{n_{l-1}n_l L}{\min(\varepsilon,\delta)},\quad n^{(0)}_{2l} = n_l",
            lambda shape: _relu_only(shape, kernels=False, biases=False, residual=False),
            lambda theorem, shape, eps, delta, C: _requirement_pair(theorem, shape, eps, delta, C, rule="orseau"),
        ),
        WidthTheorem(
            "da_cunha",
            "da Cunha et al. 2022 (CNN, depth 2L)",
            Source("da Cunha, Natale, Viennot (2022)", "main theorem", "ICLR 2022, OpenReview Vjki79-619-", SourceStatus.RECONSTRUCTED, section="2.4", note="abstract verbatim; widths reconstructed"),
            ("ReLU", "no biases", "convolutional or dense layers", "kernel norms <= 1", "||X||_max <= 1", "source weights iid U[-1,1]"),
            r"n_l = C\log\frac{k_l\,c_{l-1}c_l L}{\min(\varepsilon,\delta)};\ \text{channels } 2n_l c_{l-1}\ \text{then}\ c_l",
            lambda shape: _relu_only(shape, kernels=True, biases=False, residual=False),
            lambda theorem, shape, eps, delta, C: _requirement_pair(theorem, shape, eps, delta, C, rule="da_cunha"),
        ),
        WidthTheorem(
            "burkholz_2l",
            "Burkholz 2022, ICML (CNN/ResNet, depth 2L)",
            Source("Burkholz (2022)", "main theorem (CNN and residual, 2L)", "ICML 2022, arXiv 2205.02343", SourceStatus.RECONSTRUCTED, section="2.5", note="architecture bookkeeping confirmed in code; log argument reconstructed"),
            ("ReLU-like, or phi twice differentiable near 0 with phi'(0) != 0, Lipschitz", "conv or dense layers, biases allowed", "residual blocks with identity skips", "bounded inputs", "source weights iid U[-1,1]"),
            r"n^{(0)}_{2l-1} = \rho_l(n_{l-1}+1)\ (\times 2\ \text{ReLU-like}),\quad n^{(0)}_{2l} = n_l,\quad \rho_l \ge C\log\frac{1}{\min(\varepsilon'_l,\delta/N)}",
            _smooth_or_relu_like,
            lambda theorem, shape, eps, delta, C: _requirement_burkholz(theorem, shape, eps, delta, C, double=True),
        ),
        WidthTheorem(
            "burkholz_l_plus_1",
            "Burkholz 2022, NeurIPS (depth L+1)",
            Source("Burkholz (2022)", "Theorems 2.5/2.6 (depth L+1)", "NeurIPS 2022, arXiv 2205.02321", SourceStatus.RECONSTRUCTED, section="2.6", note="construction confirmed in code; theorem form reconstructed"),
            ("ReLU-like, or phi twice differentiable near 0 with phi'(0) != 0, Lipschitz", "conv or dense layers, biases allowed", "feed-forward targets", "bounded inputs", "source weights iid U[-1,1], biases in layers > 1 zero"),
            r"n^{(0)}_1 = \rho_1(n_0+1),\ n^{(0)}_{l+1} = \rho_{l+1}(n_l+1),\ n^{(0)}_{L+1} = n_L,\ \rho_1\in\{\rho,2\rho\},\ \rho_l \ge C\log\frac{1}{\min(\varepsilon'_l,\delta/N)}",
            lambda shape: (
                "the depth L+1 theorem is stated for feed-forward targets (LEMMAS.md 2.6); use burkholz_2l"
                if shape.residual_blocks
                else _smooth_or_relu_like(shape)
            ),
            lambda theorem, shape, eps, delta, C: _requirement_burkholz(theorem, shape, eps, delta, C, double=False),
        ),
    )
}


def get_theorem(key: str) -> WidthTheorem:
    """The width theorem called ``key`` (InvalidInput listing the known keys otherwise)."""
    try:
        return THEOREMS[key]
    except KeyError:
        raise InvalidInput(f"theorem={key!r} is not known; expected one of {', '.join(THEOREMS)}") from None


# ----------------------------------------------------------------------------- lemmas

_rho = integer("rho", "rho", "block multiplicity (subset-sum base set size)")
_C = positive("C", "C", "subset-sum constant")
_eps_layer = positive("eps_p", r"\varepsilon'_l", "per-parameter error of the layer")
_delta = probability("delta", "delta", "failure probability")
_N = integer("N", "N", "number of subset-sum problems")


@register("widths.multiplicity", "widths")
def multiplicity() -> Lemma:
    """``ρ_l >= C log(1/min(ε'_l, δ/N))``: each of the ``N`` subset-sum problems of the
    construction succeeds with probability ``1 - δ/N`` (usable form) and, by the union bound,
    all do with probability ``1 - δ`` [RECONSTRUCTED, LEMMAS.md 2.5/2.6].
    ``solve_for("rho", ...)`` gives the least integer multiplicity."""
    rho, C, eps_p, delta, N = (p.symbol for p in (_rho, _C, _eps_layer, _delta, _N))
    return Lemma(
        "widths.multiplicity",
        "Block multiplicity from the subset-sum width",
        sp.Ge(rho, C * sp.log(1 / sp.Min(eps_p, delta / N))),
        (_rho, _C, _eps_layer, _delta, _N),
        Source("Burkholz (2022)", "width requirement", "arXiv 2205.02343; arXiv 2205.02321", SourceStatus.RECONSTRUCTED, section="2.5, 2.6"),
        checker=lambda lemma, options: Verdict(Status.UNKNOWN, "cited", "premise: usable subset-sum form with the union bound"),
    )


def _requirement_checker(theorem: WidthTheorem, shape: TargetShape, eps: float, delta: float, C: Any):
    def checker(lemma: Lemma, options: CheckOptions) -> Verdict:
        applicable, reason = theorem.applies(shape)
        if not applicable:
            return Verdict(Status.UNKNOWN, "applicability", f"{theorem.key} does not apply: {reason}")
        requirement = theorem.requirement(shape, eps, delta, C)
        steps: list[str] = []
        status = Status.PROVED
        if requirement.per_layer_eps:
            layers = shape.layer_facts()
            exact = _exact_bound([Fraction(v) for v in requirement.per_layer_eps], layers, Fraction(0), shape.residual_blocks)
            if exact > Fraction(eps):
                return Verdict(Status.FALSIFIED, "exact rationals", f"allotment gives e_L <= {float(exact):.6g} > eps", counterexample={"per_layer_eps": list(requirement.per_layer_eps)})
            steps.append(f"allotment: e_L <= {float(exact):.4g} <= eps (exact)")
            N = requirement.subset_sum_problems
            constants = {law: value for law, value, _ in requirement.constants}
            with _interval.working_precision(256):
                for index, (rho, eps_l) in enumerate(zip(requirement.rho, requirement.per_layer_eps, strict=True)):
                    law = "product" if (theorem.key == "burkholz_2l" or index == 0) else "uniform"
                    needed = _interval.exact_arb(constants[law]) * _interval.exact_arb(
                        1 / min(Fraction(eps_l), Fraction(delta) / N)
                    ).log()
                    if (needed <= rho) is not True:
                        return Verdict(Status.FALSIFIED, "arb ball arithmetic", f"rho_{index + 1} = {rho} < C log(...) = {needed.str(8)}", counterexample={"layer": index + 1})
            status = Status.CERTIFIED
            steps.append(f"rho = {list(requirement.rho)} >= C log(1/min(eps'_l, delta/N)), N = {N} (arb)")
        else:
            status = Status.CERTIFIED
            steps.append("widths evaluated with the logarithm in arb, rounded up")
        steps.append(f"source widths {list(requirement.widths)}, depth {requirement.source_depth}, {requirement.source_params} params (x{requirement.factor:.3g})")
        return Verdict(status, "exact rationals + arb", "; ".join(steps), extra={"requirement": requirement.as_dict()})

    return checker


@register(
    "widths.requirement",
    "widths",
    parameters=("theorem", "shape", "eps", "delta", "C"),
    examples=tuple(
        {"theorem": key, "shape": shape, "eps": 0.01, "delta": 0.01}
        for key, shape in (
            ("malach", {"widths": (4, 8, 2), "has_bias": False}),
            ("pensia", {"widths": (4, 8, 2), "has_bias": False}),
            ("orseau", {"widths": (4, 8, 2), "has_bias": False}),
            ("da_cunha", {"widths": (1, 8, 2), "kernel_sizes": (9, 1), "has_bias": False}),
            ("burkholz_2l", {"widths": (1, 8, 8, 2), "kernel_sizes": (9, 9, 1), "residual_blocks": ((2, 2),)}),
            ("burkholz_l_plus_1", {"widths": (1, 8, 2), "kernel_sizes": (9, 1), "activation": "tanh"}),
        )
    ),
)
def requirement_lemma(
    theorem: str,
    shape: dict[str, Any] | TargetShape,
    eps: float,
    delta: float,
    C: float | None = None,
) -> Lemma:
    """A theorem's width requirement for one target, as a checkable obligation: the allotment
    meets ``eps`` (exact arithmetic), each ``ρ_l`` meets its subset-sum width (arb), and the
    widths follow the theorem's formula [RECONSTRUCTED]."""
    width_theorem = get_theorem(theorem)
    target = shape if isinstance(shape, TargetShape) else TargetShape.from_dict(dict(shape))
    eps = check_positive("eps", eps)
    delta = check_open_unit("delta", delta)
    statement_symbol = sp.Symbol(r"n^{(0)}", positive=True)
    formula_symbol = sp.Symbol(rf"\text{{{width_theorem.key}}}", positive=True)
    return Lemma(
        f"widths.requirement[{theorem}, widths={list(target.widths)}, eps={eps:g}, delta={delta:g}]",
        f"Width requirement: {width_theorem.name}",
        sp.Ge(statement_symbol, formula_symbol, evaluate=False),
        (),
        width_theorem.source,
        notes=f"$${width_theorem.formula}$$ target {target.as_dict()}",
        checker=_requirement_checker(width_theorem, target, eps, delta, C),
    )


__all__ = [
    "THEOREMS",
    "TargetShape",
    "WidthRequirement",
    "WidthTheorem",
    "get_theorem",
    "multiplicity",
    "requirement_lemma",
]
