"""Activation approximation: the ReLU identity, the linear regime at 0, and activation facts.

Sources (LEMMAS.md section 3 and "additions of ours"):

* (A) ReLU-like activations, ``φ(x) = x`` for ``x > 0`` and ``a·x`` for ``x <= 0``: the exact
  identity ``x = (φ(x) - φ(-x))/(1 + a)`` and positive homogeneity ``φ(wx) = wφ(x)``
  (``w > 0``), ``φ(wx) = |w|φ(-x)`` (``w < 0``) — Pensia et al. 2020 and Burkholz, NeurIPS
  2022 (arXiv 2205.02321) [RECONSTRUCTED; mechanism CONFIRMED in the authors' code];
* (B) the linear regime of an activation twice differentiable at 0:
  ``φ(λu) = φ(0) + λφ'(0)u + R`` with ``|R| <= sup|φ''| λ²u²/2`` [RECONSTRUCTED], here with
  the supremum over the stated box ``|t| <= λ_max·U`` and certified;
* the symmetric difference ``(φ(λu) - φ(-λu))/(2λφ'(0)) = u + R``,
  ``|R| <= λ²|u|³ sup|φ'''|/(6|φ'(0)|)`` [DERIVED, LEMMAS.md "additions of ours"];
* the facts the activation registry states (``ltbounds.activations``): ``φ(0)``, ``φ'(0)``,
  Lipschitz constant, bounds on ``|φ''|`` and ``|φ'''|`` over the whole real line — each
  checked here, never trusted.

Finding recorded by these checks (LEMMAS.md, "additions of ours"): for ReLU-like φ the
symmetric difference is exact only when ``φ'(0)`` is read as the *symmetric* derivative
``(1 + a)/2``; with the right derivative ``φ'(0) = 1`` (the registry's ``slope_at_zero``)
the expression equals ``(1 + a)u/2``, not ``u``. Lemma
``activation.symmetric_difference_relu_like`` states the corrected form.
"""

from __future__ import annotations

from fractions import Fraction

import sympy as sp

from ltbounds.activations import ACTIVATIONS, Activation, get_activation
from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _provers, _sup
from ltbounds.lemmas.base import (
    CheckOptions,
    Lemma,
    Source,
    SourceStatus,
    check_relation,
    positive,
    real,
)
from ltbounds.lemmas.registry import register
from ltbounds.validation import check_choice, check_positive
from ltbounds.verdict import Status, Verdict

SOURCE_A = Source(
    "Pensia et al. (2020); Burkholz (2022, NeurIPS)",
    "activation lemma (A): ReLU identity",
    "arXiv 2006.07990; arXiv 2205.02321",
    SourceStatus.RECONSTRUCTED,
    section="3 (A)",
    note="mechanism confirmed in the authors' code (idact=False branch, wcandPos/wcandNeg)",
)
SOURCE_B = Source(
    "Burkholz (2022, NeurIPS)",
    "activation lemma (B): linear regime at 0",
    "arXiv 2205.02321",
    SourceStatus.RECONSTRUCTED,
    section="3 (B)",
    note="remainder via Taylor-Lagrange; the scale λ is not explicit in the authors' code",
)
SOURCE_SYMMETRIC = Source(
    "ltbounds",
    "symmetric difference for smooth activations",
    "",
    SourceStatus.DERIVED,
    section="additions of ours",
)
SOURCE_FACTS = Source(
    "ltbounds.activations",
    "stated activation facts",
    "",
    SourceStatus.STANDARD,
    section="3",
    note="elementary calculus stated in the registry, rounded outwards; checked here",
)

FACTS = (
    "value_at_zero",
    "slope_at_zero",
    "lipschitz",
    "second_derivative_bound",
    "third_derivative_bound",
    "relu_like_negative_slope",
)
_ORDERS = {"lipschitz": 1, "second_derivative_bound": 2, "third_derivative_bound": 3}

_x = real("x", "x", "input")
_w = positive("w", "w", "a positive weight")
_a = real("a", "a", "negative-side slope of a ReLU-like activation", low=0.0, high=1.0, low_inclusive=True)


def _relu_like(a: sp.Expr):
    return lambda t: sp.Max(t, 0) + a * sp.Min(t, 0)


def exact_value_at_zero(activation: Activation) -> sp.Expr:
    """``φ(0)`` exactly (sympy)."""
    return sp.simplify(activation.expression.subs(_sup.X, 0))


def exact_slope_at_zero(activation: Activation) -> sp.Expr:
    """``φ'(0)``, the right derivative for piecewise activations, exactly (sympy)."""
    for piece, region in _sup.pieces(activation.expression):
        if region.inf <= 0 < region.sup:
            return sp.simplify(sp.diff(piece, _sup.X).subs(_sup.X, 0))
    raise InvalidInput(f"activation={activation.name!r}: no piece to the right of 0")


def exact_negative_slope(activation: Activation) -> sp.Expr:
    """``a = -φ(-1)`` for a ReLU-like activation (exact)."""
    return sp.nsimplify(-activation.expression.subs(_sup.X, -1))


def _ulp_statement(exact: sp.Expr, stated: float) -> tuple[sp.Basic, sp.Expr]:
    """``|exact - stated| <= ulp(stated)``: the stated float is within one ulp of the truth."""
    value = sp.Rational(Fraction(stated))
    ulp = sp.Rational(Fraction(max(abs(stated), 2.0**-1022))) * sp.Rational(1, 2**52)
    return sp.Le(sp.Abs(exact - value), ulp, evaluate=False), value


# ------------------------------------------------------------------------------- (A)


@register("activation.relu_identity", "activation")
def relu_identity() -> Lemma:
    """``x = ReLU(x) - ReLU(-x)`` for every real ``x`` (LEMMAS.md 3 (A)) [RECONSTRUCTED]."""
    x = _x.symbol
    return Lemma(
        "activation.relu_identity",
        "ReLU identity",
        sp.Eq(x, sp.Max(x, 0) - sp.Max(-x, 0)),
        (_x,),
        SOURCE_A,
        notes="Why the first source layer of ReLU constructions carries 2ρ neurons (ρ_1 = 2ρ).",
    )


def _relu_like_activation(activation: str | None) -> tuple[sp.Expr, tuple, str]:
    if activation is None:
        return _a.symbol, (_a,), "a"
    act = get_activation(activation)
    if not act.relu_like:
        raise InvalidInput(f"activation={activation!r} is not ReLU-like; lemma (A) needs φ(x) = x (x > 0), a·x (x <= 0)")
    return exact_negative_slope(act), (), activation


@register(
    "activation.relu_like_identity",
    "activation",
    parameters=("activation",),
    examples=({}, {"activation": "leaky_relu"}),
)
def relu_like_identity(activation: str | None = None) -> Lemma:
    """``x = (φ(x) - φ(-x))/(1 + a)`` for ReLU-like φ with negative slope ``a`` (LEMMAS.md 3 (A))
    [RECONSTRUCTED]. Without ``activation`` the slope is a symbol ``a ∈ [0, 1)``; with one, the
    registry's own sympy expression is used (and ``a = -φ(-1)``)."""
    a, extra, label = _relu_like_activation(activation)
    x = _x.symbol
    phi = _relu_like(_a.symbol) if activation is None else (lambda t: get_activation(activation).symbolic(t))
    return Lemma(
        f"activation.relu_like_identity[{label}]",
        "ReLU-like identity",
        sp.Eq(x, (phi(x) - phi(-x)) / (1 + a)),
        (_x, *extra),
        SOURCE_A,
    )


@register(
    "activation.positive_homogeneity",
    "activation",
    parameters=("activation", "sign"),
    examples=({"sign": "positive"}, {"sign": "negative"}),
)
def positive_homogeneity(activation: str | None = None, sign: str = "positive") -> Lemma:
    """``φ(wx) = wφ(x)`` for ``w > 0`` and ``φ(wx) = |w|φ(-x)`` for ``w < 0`` (ReLU-like φ;
    LEMMAS.md 3 (A)) [RECONSTRUCTED]: a target weight is realised through positive or
    negative first-layer weights, which is why those are split (``wcandPos``/``wcandNeg``)."""
    check_choice("sign", sign, ("positive", "negative"))
    _, extra, label = _relu_like_activation(activation)
    phi = _relu_like(_a.symbol) if activation is None else (lambda t: get_activation(activation).symbolic(t))
    x, w = _x.symbol, _w.symbol
    if sign == "positive":
        statement = sp.Eq(phi(w * x), w * phi(x))
    else:
        statement = sp.Eq(phi(-w * x), w * phi(-x))
    return Lemma(
        f"activation.positive_homogeneity[{label},{sign}]",
        f"Positive homogeneity ({sign} weight)",
        statement,
        (_x, _w, *extra),
        SOURCE_A,
        notes="negative weight written as -w with w > 0, so |(-w)| = w",
    )


# ------------------------------------------------------------------------------- (B)


def _smooth(activation: str, needed: str) -> Activation:
    act = get_activation(activation)
    if getattr(act, needed) is None:
        raise InvalidInput(
            f"activation={activation!r} states no {needed}; lemma needs φ smooth at 0 "
            "(ReLU-like activations use the exact identity, activation.relu_like_identity)"
        )
    return act


def _box_parameters(scale: float, input_bound: float) -> tuple:
    scale = check_positive("scale", scale)
    input_bound = check_positive("input_bound", input_bound)
    lam = real("lam", "lambda", "scale of the first-layer weights", low=0.0, high=scale, high_inclusive=True)
    u = real("u", "u", "input value", low=-input_bound, high=input_bound, low_inclusive=True, high_inclusive=True)
    return scale, input_bound, lam, u


def _sup_based_checker(act: Activation, order: int, bound: sp.Rational, radius: float, derivation: str):
    def checker(lemma: Lemma, options: CheckOptions) -> Verdict:
        sup = _sup.check_sup(act, order, float(bound), radius=radius)
        if sup.status in (Status.PROVED, Status.CERTIFIED):
            return Verdict(
                sup.status,
                f"{derivation} + {sup.method}",
                f"sup_(|t|<={radius:g}) |φ^({order})(t)| <= {float(bound):g}: {sup.detail}",
            )
        # The sufficient route failed; look for a direct counterexample to the statement.
        direct = check_relation(lemma, CheckOptions(method="sample", box=lemma.box, samples=max(options.samples, 4000), seed=options.seed))
        if direct.status is Status.FALSIFIED:
            return direct
        return Verdict(
            Status.UNKNOWN,
            f"{derivation} + {sup.method}",
            f"the bound on |φ^({order})| over |t| <= {radius:g} did not go through ({sup.detail}); "
            f"no direct counterexample in {direct.samples or 0} samples",
        )

    return checker


@register(
    "activation.linear_regime",
    "activation",
    parameters=("activation", "scale", "input_bound", "second_derivative_bound"),
    examples=({"activation": "tanh", "scale": 1.0, "input_bound": 1.0},),
)
def linear_regime(
    activation: str,
    scale: float = 1.0,
    input_bound: float = 1.0,
    second_derivative_bound: float | None = None,
) -> Lemma:
    """Taylor remainder of the linear regime (LEMMAS.md 3 (B)) [RECONSTRUCTED].

    For ``0 < λ <= scale`` and ``|u| <= input_bound``:
    ``|φ(λu) - φ(0) - λφ'(0)u| <= S₂ λ²u²/2`` with ``S₂`` the registry's
    ``second_derivative_bound`` (or the one given). Checked as Taylor–Lagrange
    (``R = φ''(ξ)t²/2`` for some ``|ξ| <= |t|``, STANDARD) plus a rigorous bound
    ``sup_{|t| <= scale·input_bound} |φ''(t)| <= S₂`` (PROVED by z3 after a substitution, or
    CERTIFIED by arb); if that fails, a direct counterexample is searched for.
    """
    act = _smooth(activation, "second_derivative_bound")
    scale, input_bound, lam, u = _box_parameters(scale, input_bound)
    S2 = act.second_derivative_bound if second_derivative_bound is None else check_positive("second_derivative_bound", second_derivative_bound)
    bound = sp.Rational(Fraction(S2))
    t = lam.symbol * u.symbol
    R = sp.Symbol("R", real=True)
    remainder = act.symbolic(t) - exact_value_at_zero(act) - exact_slope_at_zero(act) * t
    radius = scale * input_bound
    return Lemma(
        f"activation.linear_regime[{activation},{scale:g},{input_bound:g},{S2:g}]",
        f"Linear regime of {activation} at 0",
        sp.Le(sp.Abs(R), bound / 2 * lam.symbol**2 * u.symbol**2),
        (lam, u),
        SOURCE_B,
        definitions=((R, remainder),),
        box=(("lam", 0.0, scale), ("u", -input_bound, input_bound)),
        notes=f"stated box: 0 < λ <= {scale:g}, |u| <= {input_bound:g} (|λu| <= {radius:g}); S₂ = {S2:g}",
        checker=_sup_based_checker(act, 2, bound, radius, "Taylor–Lagrange"),
    )


@register("activation.symmetric_difference_derivation", "activation")
def symmetric_difference_derivation() -> Lemma:
    """Inserting ``φ(±t) = φ(0) ± φ'(0)t + φ''(0)t²/2 ± φ'''(ξ±)t³/6`` (Taylor–Lagrange,
    ``t = λu``) into ``(φ(λu) - φ(-λu))/(2λφ'(0)) - u`` gives exactly
    ``(q₊ + q₋)λ²u³/(12φ'(0))`` with ``q± = φ'''(ξ±)``: the even part cancels [DERIVED]."""
    parameters = (
        real("lam", "lambda", "scale", low=0.0),
        real("u", "u", "input"),
        real("phi_0", r"\varphi(0)", "φ(0)"),
        positive("phi1_0", r"\varphi'(0)", "φ'(0) (positive for every registered activation)"),
        real("phi2_0", r"\varphi''(0)", "φ''(0)"),
        real("q_plus", "q_+", "φ'''(ξ₊)"),
        real("q_minus", "q_-", "φ'''(ξ₋)"),
    )
    lam, u, f0, f1, f2, q_plus, q_minus = (parameter.symbol for parameter in parameters)
    t = lam * u
    plus = f0 + f1 * t + f2 * t**2 / 2 + q_plus * t**3 / 6
    minus = f0 - f1 * t + f2 * t**2 / 2 - q_minus * t**3 / 6
    R = sp.Symbol("R", real=True)
    return Lemma(
        "activation.symmetric_difference_derivation",
        "Symmetric difference: the even part cancels",
        sp.Eq(R, (q_plus + q_minus) * lam**2 * u**3 / (12 * f1)),
        parameters,
        SOURCE_SYMMETRIC,
        definitions=((R, (plus - minus) / (2 * lam * f1) - u),),
    )


@register("activation.symmetric_difference_bound", "activation")
def symmetric_difference_bound() -> Lemma:
    """From the derivation: ``|q±| <= S₃`` gives ``|R| <= λ²|u|³S₃/(6φ'(0))`` [DERIVED]."""
    lam = real("lam", "lambda", "scale", low=0.0)
    u = real("u", "u", "input")
    slope = positive("phi1_0", r"\varphi'(0)", "φ'(0)")
    S3 = real("S3", "S_3", "bound on |φ'''| over the box", low=0.0, low_inclusive=True)
    q_plus, q_minus = real("q_plus", "q_+", "φ'''(ξ₊)"), real("q_minus", "q_-", "φ'''(ξ₋)")
    R = (q_plus.symbol + q_minus.symbol) * lam.symbol**2 * u.symbol**3 / (12 * slope.symbol)
    return Lemma(
        "activation.symmetric_difference_bound",
        "Symmetric difference: the remainder bound",
        sp.Le(sp.Abs(R), lam.symbol**2 * sp.Abs(u.symbol) ** 3 * S3.symbol / (6 * slope.symbol)),
        (lam, u, slope, S3, q_plus, q_minus),
        SOURCE_SYMMETRIC,
        hypotheses=(
            sp.Le(q_plus.symbol, S3.symbol),
            sp.Le(-q_plus.symbol, S3.symbol),
            sp.Le(q_minus.symbol, S3.symbol),
            sp.Le(-q_minus.symbol, S3.symbol),
        ),
    )


@register(
    "activation.symmetric_difference",
    "activation",
    parameters=("activation", "scale", "input_bound", "third_derivative_bound"),
    examples=({"activation": "tanh", "scale": 1.0, "input_bound": 1.0},),
)
def symmetric_difference(
    activation: str,
    scale: float = 1.0,
    input_bound: float = 1.0,
    third_derivative_bound: float | None = None,
) -> Lemma:
    """``|(φ(λu) - φ(-λu))/(2λφ'(0)) - u| <= λ²|u|³ S₃/(6|φ'(0)|)`` on the stated box
    [DERIVED, LEMMAS.md "additions of ours"], with ``S₃`` the registry's
    ``third_derivative_bound``. Checked via the derivation lemmas (PROVED) plus a rigorous
    ``sup_{|t| <= scale·input_bound} |φ'''| <= S₃``."""
    act = _smooth(activation, "third_derivative_bound")
    scale, input_bound, lam, u = _box_parameters(scale, input_bound)
    S3 = act.third_derivative_bound if third_derivative_bound is None else check_positive("third_derivative_bound", third_derivative_bound)
    bound = sp.Rational(Fraction(S3))
    slope = exact_slope_at_zero(act)
    if slope == 0:
        raise InvalidInput(f"activation={activation!r} has φ'(0) = 0; the symmetric difference needs φ'(0) != 0")
    t = lam.symbol * u.symbol
    R = sp.Symbol("R", real=True)
    remainder = (act.symbolic(t) - act.symbolic(-t)) / (2 * lam.symbol * slope) - u.symbol
    radius = scale * input_bound
    return Lemma(
        f"activation.symmetric_difference[{activation},{scale:g},{input_bound:g},{S3:g}]",
        f"Symmetric difference of {activation}",
        sp.Le(sp.Abs(R), lam.symbol**2 * sp.Abs(u.symbol) ** 3 * bound / (6 * sp.Abs(slope))),
        (lam, u),
        SOURCE_SYMMETRIC,
        definitions=((R, remainder),),
        box=(("lam", 0.0, scale), ("u", -input_bound, input_bound)),
        notes=f"stated box: 0 < λ <= {scale:g}, |u| <= {input_bound:g}; S₃ = {S3:g}; φ'(0) = {slope}",
        checker=_sup_based_checker(act, 3, bound, radius, "symmetric Taylor–Lagrange"),
    )


@register(
    "activation.symmetric_difference_relu_like",
    "activation",
    parameters=("activation", "derivative"),
    examples=({"derivative": "symmetric"},),
)
def symmetric_difference_relu_like(activation: str | None = None, derivative: str = "symmetric") -> Lemma:
    """For ReLU-like φ, ``(φ(λu) - φ(-λu))/(2λ·d) = u`` exactly when ``d`` is the symmetric
    derivative ``(1 + a)/2`` [DERIVED]. With ``derivative="right"`` (``d = φ'(0+) = 1``, as
    LEMMAS.md's wording reads with the registry's ``slope_at_zero``) the statement is false
    for ``a < 1``: the expression equals ``(1 + a)u/2``. Shipped proofs use the symmetric form."""
    check_choice("derivative", derivative, ("symmetric", "right"))
    a, extra, label = _relu_like_activation(activation)
    phi = _relu_like(_a.symbol) if activation is None else (lambda t: get_activation(activation).symbolic(t))
    lam = positive("lam", "lambda", "scale")
    x = _x.symbol
    d = (1 + a) / 2 if derivative == "symmetric" else sp.Integer(1)
    return Lemma(
        f"activation.symmetric_difference_relu_like[{label},{derivative}]",
        f"Symmetric difference of a ReLU-like activation ({derivative} derivative)",
        sp.Eq((phi(lam.symbol * x) - phi(-lam.symbol * x)) / (2 * lam.symbol * d), x),
        (_x, lam, *extra),
        SOURCE_SYMMETRIC,
    )


@register(
    "activation.symmetric_difference_exact",
    "activation",
    parameters=("activation",),
    examples=({"activation": "gelu"}, {"activation": "silu"}),
)
def symmetric_difference_exact(activation: str = "gelu") -> Lemma:
    """For a gate activation ``φ(x) = x·s(x)`` with ``s(-x) = 1 - s(x)`` (GELU: ``s = Φ``;
    SiLU: ``s = σ``) the symmetric difference is exact: ``φ(t) - φ(-t) = t``, so
    ``(φ(λu) - φ(-λu))/(2λφ'(0)) = u`` with ``φ'(0) = 1/2`` [DERIVED]. (``φ(x) - x/2`` is even.)"""
    act = get_activation(activation)
    if _sup.gate_of(act) is None:
        raise InvalidInput(f"activation={activation!r} is not a gate activation x·s(x) (expected 'gelu' or 'silu')")
    lam = positive("lam", "lambda", "scale")
    x = _x.symbol
    slope = exact_slope_at_zero(act)
    return Lemma(
        f"activation.symmetric_difference_exact[{activation}]",
        f"Symmetric difference of {activation} is exact",
        sp.Eq((act.symbolic(lam.symbol * x) - act.symbolic(-lam.symbol * x)) / (2 * lam.symbol * slope), x),
        (_x, lam),
        SOURCE_SYMMETRIC,
        notes="so the first univariate layer of the L+1 construction is exact for GELU and SiLU",
    )


# ---------------------------------------------------------------------------- facts


def _fact_checker(act: Activation, fact: str):
    def checker(lemma: Lemma, options: CheckOptions) -> Verdict:
        stated = getattr(act, fact)
        if fact in _ORDERS:
            sup = _sup.check_sup(act, _ORDERS[fact], stated)
            counterexample = None if sup.counterexample is None else {"x": sup.counterexample}
            return Verdict(sup.status, sup.method, f"over the whole real line: {sup.detail}", counterexample=counterexample)
        if fact == "relu_like_negative_slope":
            a = exact_negative_slope(act)
            x = _x.symbol
            linear = _provers.prove_identity(act.symbolic(x), sp.Max(x, 0) + a * sp.Min(x, 0))
            if linear is None:
                return Verdict(Status.UNKNOWN, "sympy", f"could not show φ(x) = x (x > 0), {a}·x (x <= 0)")
            closeness = check_relation(lemma, options)
            return Verdict(
                closeness.status,
                f"{linear} + {closeness.method}",
                f"φ is ReLU-like with a = {a}; stated {stated!r}: {closeness.detail}",
                counterexample=closeness.counterexample,
            )
        return check_relation(lemma, options)

    return checker


@register(
    "activation.fact",
    "activation",
    parameters=("activation", "fact"),
    examples=tuple(
        {"activation": name, "fact": fact}
        for name, act in ACTIVATIONS.items()
        for fact in FACTS
        if getattr(act, fact) is not None
    ),
)
def activation_fact(activation: str, fact: str) -> Lemma:
    """One stated fact of the activation registry, as a checkable statement [STANDARD].

    ``value_at_zero``, ``slope_at_zero`` (right derivative) and ``relu_like_negative_slope``:
    the stated float is within one ulp of the exact value (sympy; arb when irrational).
    ``lipschitz``, ``second_derivative_bound``, ``third_derivative_bound``:
    ``sup_{x ∈ ℝ} |φ^(k)(x)| <= stated`` over the whole real line (see ``ltbounds.lemmas._sup``
    for the methods: substitution + z3, arb branch and bound, checked tail envelopes).
    """
    act = get_activation(activation)
    check_choice("fact", fact, FACTS)
    stated = getattr(act, fact)
    if stated is None:
        raise InvalidInput(f"activation={activation!r} states no {fact} (None): nothing to check")
    if fact in _ORDERS:
        order = _ORDERS[fact]
        primes = "'" * order
        supremum = sp.Symbol(rf"\sup_{{x \in \mathbb{{R}}}} |{activation}^{{({order})}}(x)|", nonnegative=True)
        statement = sp.Le(supremum, sp.Rational(Fraction(stated)), evaluate=False)
        title = f"{activation}: sup |φ{primes}| <= {stated}"
    else:
        exact = {
            "value_at_zero": exact_value_at_zero,
            "slope_at_zero": exact_slope_at_zero,
            "relu_like_negative_slope": exact_negative_slope,
        }[fact](act)
        statement, _ = _ulp_statement(exact, stated)
        title = f"{activation}: {fact} = {stated!r}"
    return Lemma(
        f"activation.fact[{activation},{fact}]",
        title,
        statement,
        (),
        SOURCE_FACTS,
        notes=f"registry entry ltbounds.activations.ACTIVATIONS[{activation!r}].{fact} = {stated!r}",
        checker=_fact_checker(act, fact),
    )


__all__ = [
    "FACTS",
    "activation_fact",
    "exact_negative_slope",
    "exact_slope_at_zero",
    "exact_value_at_zero",
    "linear_regime",
    "positive_homogeneity",
    "relu_identity",
    "relu_like_identity",
    "symmetric_difference",
    "symmetric_difference_bound",
    "symmetric_difference_derivation",
    "symmetric_difference_exact",
    "symmetric_difference_relu_like",
]
