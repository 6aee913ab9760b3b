"""Subset-sum concentration: Lueker's corollary, the usable width form, products of uniforms.

Sources (LEMMAS.md section 1):

* G. S. Lueker, *Exponentially small bounds on the expected optimum of the partition and
  subset sum problems*, Random Structures & Algorithms 12 (1998), Corollary 2.5, as quoted by
  Pensia et al. 2020 (arXiv 2006.07990) [VERBATIM as quoted];
* the usable form ``n >= C log(1/min(eps, delta))`` of Pensia et al. and the Burkholz papers
  [RECONSTRUCTED wording];
* the product-of-uniforms law (Pensia et al. 2020): the density of ``a·b`` for independent
  ``a, b ~ U[-1, 1]`` is ``log(1/|x|)/2``, which dominates ``(log 2)/2`` times the uniform
  density on ``[-1/2, 1/2]`` [RECONSTRUCTED attribution; the calculus is checked here];
* the empirical constants of the authors' code (``main_ssa_stats.py::expC``), LEMMAS.md 1.3
  [CODE; numbers computed from the stored pickles, not quoted from a paper].

The universal constant ``C`` is kept a symbol: no paper gives a value. Tables use either the
code-derived values below or a constant fitted by ltbounds' own concentration estimate
(``ltbounds.subsetsum``), and say which through :class:`SubsetSumConstant`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _provers
from ltbounds.lemmas._interval import exact_arb, working_precision
from ltbounds.lemmas.base import (
    CheckOptions,
    Lemma,
    Source,
    SourceStatus,
    integer,
    positive,
    probability,
    real,
)
from ltbounds.lemmas.registry import register
from ltbounds.validation import check_choice, check_open_unit, check_positive
from ltbounds.verdict import Status, Verdict

LUEKER = Source(
    "Lueker (1998)",
    "Corollary 2.5",
    "Random Structures & Algorithms 12; quoted by Pensia et al. 2020, arXiv 2006.07990",
    SourceStatus.VERBATIM,
    section="1.1",
    note="verbatim as quoted by Pensia et al.; targets in [-1/2, 1/2]; C is existential",
)
USABLE = Source(
    "Pensia et al. (2020); Burkholz et al. (2022)",
    "Corollary 3.3 (Pensia), subset-sum lemma (Burkholz)",
    "arXiv 2006.07990; arXiv 2111.11146; arXiv 2205.02343; arXiv 2205.02321",
    SourceStatus.RECONSTRUCTED,
    section="1.2",
    note="wording reconstructed; targets z in [-1, 1] as in the authors' code",
)
DERIVED_FROM_LUEKER = Source(
    "ltbounds",
    "usable form from Lueker's corollary",
    "",
    SourceStatus.DERIVED,
    section="1.1, 1.2",
    note="shows which constant the usable form needs if Lueker's C is the only input",
)
PRODUCT = Source(
    "Pensia et al. (2020)",
    "products-of-uniforms corollary",
    "arXiv 2006.07990",
    SourceStatus.RECONSTRUCTED,
    section="1.2",
    note="attribution reconstructed; the density calculus is standard and checked here",
)
EMPIRICAL = Source(
    "Burkholz (2022), public code RelationalML/LT-existence",
    "main_ssa_stats.py::expC",
    "arXiv 2205.02343; arXiv 2205.02321",
    SourceStatus.CODE,
    section="1.3",
    note="C-hat = n / log(1/min(eps, delta-hat)); delta-hat from stored pickles (100000 trials)",
)


# --------------------------------------------------------------------------- constants


@dataclass(frozen=True)
class SubsetSumConstant:
    """A value for the subset-sum constant ``C`` and where it comes from.

    Attributes
    ----------
    value : float
        The constant.
    origin : str
        ``"code-derived"`` (LEMMAS.md 1.3), ``"fitted"`` (our concentration estimate),
        ``"user"`` (given on the command line). Never ``"paper"``: no paper states a value.
    law : str
        ``"uniform"`` (plain U[-1, 1] summands) or ``"product"`` (products of two uniforms).
    note : str
        How the value was obtained.
    """

    value: float
    origin: str
    law: str
    note: str = ""

    def __post_init__(self) -> None:
        check_positive("C", self.value)
        check_choice("law", self.law, ("uniform", "product"))


def empirical_constant(n: int, eps: float, delta_hat: float) -> float:
    """The authors' operational constant ``n / log(1/min(eps, delta_hat))`` (LEMMAS.md 1.3).

    ``main_ssa_stats.py::expC`` returns 1 when ``delta_hat = 0``; here ``delta_hat`` must be in
    (0, 1) (a zero estimate carries no information about C).
    """
    check_positive("n", n)
    check_open_unit("eps", eps)
    check_open_unit("delta_hat", delta_hat)
    return n / math.log(1 / min(eps, delta_hat))


CODE_DERIVED_UNIFORM = SubsetSumConstant(
    empirical_constant(15, 0.01, 0.00404),
    "code-derived",
    "uniform",
    "n = 15, eps = 0.01, delta-hat = 0.00404 (plain U[-1,1]; L+1 layers >= 2), LEMMAS.md 1.3",
)
CODE_DERIVED_PRODUCT = SubsetSumConstant(
    empirical_constant(15, 0.01, 0.0355),
    "code-derived",
    "product",
    "n = 15, eps = 0.01, delta-hat = 0.0355 (products; 2L and first layers), min(eps, delta) = eps, LEMMAS.md 1.3",
)
CODE_DERIVED_PRODUCT_DELTA_ONLY = SubsetSumConstant(
    15 / math.log(1 / 0.0355),
    "code-derived",
    "product",
    "as CODE_DERIVED_PRODUCT but with log(1/delta-hat) alone (LEMMAS.md 1.3: 4.49)",
)


def code_derived_constant(law: str) -> SubsetSumConstant:
    """The code-derived constant for ``law`` (``"uniform"`` or ``"product"``)."""
    check_choice("law", law, ("uniform", "product"))
    return CODE_DERIVED_UNIFORM if law == "uniform" else CODE_DERIVED_PRODUCT


def paper_constant(law: str) -> SubsetSumConstant:
    """Refuses: Lueker's C is existential and no paper gives a number (LEMMAS.md 1.1)."""
    check_choice("law", law, ("uniform", "product"))
    raise InvalidInput(
        "constant='paper': no paper states a value for the subset-sum constant C "
        "(Lueker 1998, Pensia et al. 2020: a universal constant); use 'code' or 'fitted'"
    )


# ---------------------------------------------------------------------------- symbols

_n = integer("n", "n", "number of random summands")
_C = positive("C", "C", "Lueker's universal constant")
_eps = probability("eps", "varepsilon", "approximation error")
_delta = probability("delta", "delta", "failure probability")


def lueker_failure_bound(n: int, eps: float, C: float) -> float:
    """Lueker's failure probability bound ``exp(-(n/2 - C log(1/eps))^2 / (2n))``.

    Valid (Lueker 1998, Corollary 2.5) only when ``eps >= exp(-n/(2C))``; refused otherwise.
    """
    n = _n.validate(n)
    eps = _eps.validate(eps)
    C = _C.validate(C)
    if eps < math.exp(-n / (2 * C)):
        raise InvalidInput(f"eps={eps!r} must be >= exp(-n/(2C)) = {math.exp(-n / (2 * C))!r} for Lueker's bound")
    return math.exp(-((n / 2 - C * math.log(1 / eps)) ** 2) / (2 * n))


@register("subsetsum.lueker_corollary", "subsetsum")
def lueker_corollary() -> Lemma:
    """Lueker (1998), Corollary 2.5, as quoted by Pensia et al. (2020) [VERBATIM as quoted].

    For ``X_1..X_n`` iid ``U[-1, 1]`` and ``eps >= exp(-n/(2C))``, with probability at least
    ``1 - exp(-(n/2 - C log(1/eps))^2/(2n))`` every ``x in [-1/2, 1/2]`` has a subset ``S``
    with ``|sum_S X_i - x| <= eps``. A probabilistic statement: recorded as a cited premise.
    """
    p_fail = real("p_fail", r"p_{\mathrm{fail}}", "probability that some x in [-1/2, 1/2] is missed", low=0.0, high=1.0, low_inclusive=True, high_inclusive=True)
    n, C, eps = _n.symbol, _C.symbol, _eps.symbol
    return Lemma(
        "subsetsum.lueker_corollary",
        "Lueker's subset-sum corollary",
        sp.Le(p_fail.symbol, sp.exp(-((n / 2 - C * sp.log(1 / eps)) ** 2) / (2 * n))),
        (p_fail, _n, _C, _eps),
        LUEKER,
        hypotheses=(sp.Ge(eps, sp.exp(-n / (2 * C))),),
        notes="X_i iid U[-1,1]; targets x in [-1/2, 1/2]; C universal and unspecified.",
        checker=lambda lemma, options: Verdict(
            Status.UNKNOWN, "cited", f"premise: {lemma.source.citation()}; probabilistic, not machine-checked"
        ),
    )


@register("subsetsum.usable_form", "subsetsum")
def usable_form() -> Lemma:
    """The usable form ``n >= C log(1/min(eps, delta))`` [RECONSTRUCTED], LEMMAS.md 1.2.

    With ``n`` such iid ``U[-1, 1]`` summands, with probability at least ``1 - delta`` every
    ``z in [-1, 1]`` is within ``eps`` of a subset sum. ``solve_for("n", C=..., eps=...,
    delta=...)`` gives the least integer ``n``. The probabilistic content is cited; which
    constant it needs if Lueker's corollary is the only input is
    ``subsetsum.usable_from_lueker_*`` (DERIVED, checked).
    """
    n, C, eps, delta = _n.symbol, _C.symbol, _eps.symbol, _delta.symbol
    return Lemma(
        "subsetsum.usable_form",
        "Subset-sum width, usable form",
        sp.Ge(n, C * sp.log(1 / sp.Min(eps, delta))),
        (_n, _C, _eps, _delta),
        USABLE,
        notes="Pensia's variant reads n >= C log(2/eps) with failure probability eps.",
        checker=lambda lemma, options: Verdict(
            Status.UNKNOWN, "cited", f"premise: {lemma.source.citation()}; probabilistic, not machine-checked"
        ),
    )


def least_width(eps: float, delta: float, C: float | SubsetSumConstant) -> int:
    """Least integer ``n`` with ``n >= C log(1/min(eps, delta))`` (usable form, rounded in arb)."""
    value = C.value if isinstance(C, SubsetSumConstant) else _C.validate(C)
    eps = _eps.validate(eps)
    delta = _delta.validate(delta)
    # Same answer as usable_form().solve_for("n", ...), without sympy's solver: the ceiling of
    # C·log(1/min(eps, delta)) decided in arb.
    with working_precision(256):
        needed = exact_arb(value) * exact_arb(1 / min(Fraction(eps), Fraction(delta))).log()
        n = max(int(math.floor(float(needed.lower()))), 1)
        while (needed <= n) is not True:
            n += 1
    return n


_ell = positive("ell", r"\ell", "log(1/min(eps, delta))")
_ell_eps = positive("ell_eps", r"\ell_{\varepsilon}", "log(1/eps)")
_ell_delta = positive("ell_delta", r"\ell_{\delta}", "log(1/delta)")
_K = positive("K", "K", "constant of the usable form")


def _usable_hypotheses() -> tuple[sp.Basic, ...]:
    n, C, K = _n.symbol, _C.symbol, _K.symbol
    ell, ell_eps, ell_delta = _ell.symbol, _ell_eps.symbol, _ell_delta.symbol
    return (
        sp.Ge(n, K * ell),
        sp.Ge(K, 4 * C),
        sp.Ge(K, 32),
        sp.Le(ell_eps, ell),
        sp.Le(ell_delta, ell),
    )


_USABLE_NOTE = (
    "Abstraction: ell_eps = log(1/eps), ell_delta = log(1/delta), ell = log(1/min(eps, delta)), "
    "so ell_eps <= ell and ell_delta <= ell; the obligation is then polynomial. It shows that "
    "n >= K log(1/min(eps, delta)) with K = max(4C, 32) puts Lueker's corollary in force "
    "(targets in [-1/2, 1/2]); the usable form's constant is therefore not Lueker's C itself."
)


@register("subsetsum.usable_from_lueker_hypothesis", "subsetsum")
def usable_from_lueker_hypothesis() -> Lemma:
    """If ``n >= K·ell`` with ``K >= max(4C, 32)`` then ``n >= 2C log(1/eps)``, i.e. Lueker's
    hypothesis ``eps >= exp(-n/(2C))`` holds [DERIVED]."""
    n, C = _n.symbol, _C.symbol
    return Lemma(
        "subsetsum.usable_from_lueker_hypothesis",
        "Usable form implies Lueker's hypothesis",
        sp.Ge(n, 2 * C * _ell_eps.symbol),
        (_n, _C, _K, _ell, _ell_eps, _ell_delta),
        DERIVED_FROM_LUEKER,
        hypotheses=_usable_hypotheses(),
        notes=_USABLE_NOTE,
    )


@register("subsetsum.usable_from_lueker_probability", "subsetsum")
def usable_from_lueker_probability() -> Lemma:
    """If ``n >= K·ell`` with ``K >= max(4C, 32)`` then ``(n/2 - C log(1/eps))^2 >= 2n log(1/delta)``,
    i.e. Lueker's failure bound is at most ``delta`` [DERIVED]."""
    n, C = _n.symbol, _C.symbol
    return Lemma(
        "subsetsum.usable_from_lueker_probability",
        "Usable form implies Lueker's failure bound <= delta",
        sp.Ge((n / 2 - C * _ell_eps.symbol) ** 2, 2 * n * _ell_delta.symbol),
        (_n, _C, _K, _ell, _ell_eps, _ell_delta),
        DERIVED_FROM_LUEKER,
        hypotheses=_usable_hypotheses(),
        notes=_USABLE_NOTE,
    )


_x = positive("x", "x", "a value of the product a·b (by symmetry, x > 0)")
_a = positive("a", "a", "integration variable")


def _integral_identity_checker(lemma: Lemma, options: CheckOptions) -> Verdict:
    _, lhs, rhs = lemma.sides()
    lhs, rhs = lhs.doit(), rhs.doit()
    method = _provers.prove_identity(lhs, rhs)
    if method is not None:
        return Verdict(Status.PROVED, f"sympy integrate + {method}", "integral evaluated in closed form")
    return Verdict(Status.UNKNOWN, "sympy integrate", "sympy did not reduce the difference to 0")


@register("subsetsum.product_density", "subsetsum", parameters=("first_factor",), examples=({"first_factor": "symmetric"}, {"first_factor": "positive"}))
def product_density(first_factor: str = "symmetric") -> Lemma:
    """Density of ``a·b`` for ``b ~ U[-1, 1]`` and ``a ~ U[-1, 1]`` (``first_factor="symmetric"``)
    or ``a ~ U[0, 1]`` (``"positive"``, positive first-layer weights): ``log(1/|x|)/2`` on
    ``0 < |x| < 1`` [Pensia et al. 2020, RECONSTRUCTED attribution]. By the product formula
    ``f(x) = ∫ f_a(a) f_b(x/a) / |a| da``; for ``x > 0`` (the law is symmetric) this is the
    integral below, evaluated by sympy."""
    check_choice("first_factor", first_factor, ("symmetric", "positive"))
    x, a = _x.symbol, _a.symbol
    if first_factor == "symmetric":
        # two half-lines a in (x, 1) and a in (-1, -x), each with densities 1/2 · 1/2
        density = 2 * sp.Integral(sp.Rational(1, 4) / a, (a, x, 1))
    else:
        density = sp.Integral(sp.Rational(1, 2) / a, (a, x, 1))
    f = sp.Symbol("f_{ab}(x)", positive=True)
    return Lemma(
        f"subsetsum.product_density[{first_factor}]",
        f"Density of a product of uniforms ({first_factor} first factor)",
        sp.Eq(f, sp.log(1 / x) / 2),
        (_x,),
        PRODUCT,
        hypotheses=(sp.Lt(x, 1),),
        definitions=((f, density),),
        notes="x in (0, 1); the density is even in x.",
        checker=_integral_identity_checker,
    )


@register("subsetsum.product_density_mass", "subsetsum")
def product_density_mass() -> Lemma:
    """``log(1/|x|)/2`` integrates to 1 over ``[-1, 1]``: it is a probability density [STANDARD]."""
    t = sp.Symbol("t", positive=True)
    mass = sp.Symbol("m", positive=True)
    return Lemma(
        "subsetsum.product_density_mass",
        "The product density has mass 1",
        sp.Eq(mass, 1),
        (),
        PRODUCT,
        definitions=((mass, 2 * sp.Integral(sp.log(1 / t) / 2, (t, 0, 1))),),
        checker=_integral_identity_checker,
    )


def _uniform_component_checker(lemma: Lemma, options: CheckOptions) -> Verdict:
    x = _x.symbol
    _, lhs, rhs = lemma.sides()
    gap = lhs - rhs
    derivative = sp.simplify(sp.diff(gap, x))
    at_end = sp.simplify(gap.subs(x, sp.Rational(1, 2)))
    if derivative.is_negative is True and at_end == 0:
        return Verdict(
            Status.PROVED,
            "sympy monotonicity",
            f"d/dx gap = {derivative}; gap(1/2) = 0",
        )
    return Verdict(Status.UNKNOWN, "sympy", "monotonicity argument did not go through")


@register("subsetsum.product_uniform_component", "subsetsum")
def product_uniform_component() -> Lemma:
    """``log(1/|x|)/2 >= (log 2)/2`` for ``0 < |x| <= 1/2``: the product law contains the
    uniform law on ``[-1/2, 1/2]`` with weight ``p = (log 2)/2 ≈ 0.347`` [Pensia et al. 2020,
    RECONSTRUCTED attribution]. So about ``p·n`` of ``n`` product summands behave as uniform
    ones and Lueker applies with a constant larger by about ``1/p`` (plus a Chernoff margin)."""
    x = _x.symbol
    return Lemma(
        "subsetsum.product_uniform_component",
        "Products of uniforms contain a uniform component",
        sp.Ge(sp.log(1 / x) / 2, sp.log(2) / 2),
        (_x,),
        PRODUCT,
        hypotheses=(sp.Le(x, sp.Rational(1, 2)),),
        notes="mixing weight p = (log 2)/2 = 0.3466 on U[-1/2, 1/2]",
        checker=_uniform_component_checker,
    )


_EMPIRICAL = {
    "uniform": (15, sp.Rational(1, 100), sp.Rational("0.00404"), sp.Rational("2.72")),
    "product": (15, sp.Rational(1, 100), sp.Rational("0.0355"), sp.Rational("3.26")),
    "product_delta_only": (15, sp.Rational(1, 1), sp.Rational("0.0355"), sp.Rational("4.49")),
}


@register(
    "subsetsum.empirical_constant",
    "subsetsum",
    parameters=("law",),
    examples=({"law": "uniform"}, {"law": "product"}),
)
def empirical_constant_lemma(law: str = "uniform") -> Lemma:
    """The code-derived constants of LEMMAS.md 1.3 recomputed: ``|n/log(1/min(eps, delta-hat))
    - C_reported| <= 0.005`` [CODE]. ``law`` is ``uniform`` (2.72), ``product`` (3.26) or
    ``product_delta_only`` (4.49)."""
    check_choice("law", law, tuple(_EMPIRICAL))
    n, eps, delta_hat, reported = _EMPIRICAL[law]
    value = n / sp.log(1 / sp.Min(eps, delta_hat))
    C_hat = sp.Symbol(r"\hat{C}", positive=True)
    return Lemma(
        f"subsetsum.empirical_constant[{law}]",
        f"Code-derived subset-sum constant ({law})",
        sp.Le(sp.Abs(C_hat - reported), sp.Rational(5, 1000)),
        (),
        EMPIRICAL,
        definitions=((C_hat, value),),
        notes=f"n = {n}, eps = {eps}, delta-hat = {delta_hat}; reported C = {reported}",
    )


__all__ = [
    "CODE_DERIVED_PRODUCT",
    "CODE_DERIVED_PRODUCT_DELTA_ONLY",
    "CODE_DERIVED_UNIFORM",
    "SubsetSumConstant",
    "code_derived_constant",
    "empirical_constant",
    "empirical_constant_lemma",
    "least_width",
    "lueker_corollary",
    "lueker_failure_bound",
    "paper_constant",
    "product_density",
    "product_density_mass",
    "product_uniform_component",
    "usable_form",
    "usable_from_lueker_hypothesis",
    "usable_from_lueker_probability",
]
