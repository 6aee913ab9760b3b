"""The :class:`Lemma` value object: a stated result as sympy, with its source and its verbs.

A lemma holds its statement as a sympy relation (``Eq``, ``Le``, ``Lt``, ``Ge``, ``Gt``),
optional hypotheses, the parameters (symbols with their domains: positivity, integrality,
intervals) and the paper and result it comes from, marked VERBATIM, CODE, RECONSTRUCTED,
DERIVED or STANDARD exactly as LEMMAS.md marks it. Its verbs:

* :meth:`Lemma.evaluate`: both sides in mpmath at a chosen precision (numeric, not a verdict);
* :meth:`Lemma.solve_for`: the extreme admissible value of one parameter (for instance the
  least integer width ``n`` with ``n >= C log(1/min(eps, delta))``);
* :meth:`Lemma.check`: a :class:`~ltbounds.verdict.Verdict` from the strongest method that
  settles it (sympy, then z3, then arb branch and bound over a stated box, then sampling);
* :meth:`Lemma.latex`: the statement for documents.

Inadmissible parameter values (``eps <= 0``, ``delta`` outside (0, 1), a non-integer width)
are refused with :class:`~ltbounds.errors.InvalidInput` naming the value.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from ltbounds.errors import InvalidInput
from ltbounds.lemmas import _interval, _provers
from ltbounds.validation import check_int, check_real
from ltbounds.verdict import Status, Verdict

METHODS = ("auto", "sympy", "z3", "interval", "sample", "cited")


class SourceStatus(str, enum.Enum):
    """How a statement is known, in LEMMAS.md's words."""

    VERBATIM = "VERBATIM"
    """Read in a published text."""
    CODE = "CODE"
    """Confirmed in the authors' public code (RelationalML/LT-existence)."""
    RECONSTRUCTED = "RECONSTRUCTED"
    """Our best reconstruction; the full text was not available."""
    DERIVED = "DERIVED"
    """Derived here (LEMMAS.md section 4, the additions of ours)."""
    STANDARD = "STANDARD"
    """Textbook mathematics (Taylor's theorem, the triangle inequality)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Source:
    """Where a lemma comes from.

    Parameters
    ----------
    paper : str
        Authors and year, e.g. ``"Lueker (1998)"``.
    result : str
        The numbered result, e.g. ``"Corollary 2.5"``; ``""`` when the number is unknown.
    reference : str
        arXiv identifier, DOI or journal reference.
    status : SourceStatus
        VERBATIM, CODE, RECONSTRUCTED, DERIVED or STANDARD.
    section : str
        The section of LEMMAS.md that records it.
    note : str
        What is uncertain or adapted.
    """

    paper: str
    result: str
    reference: str
    status: SourceStatus
    section: str = ""
    note: str = ""

    def citation(self) -> str:
        """One line: paper, result, reference and status."""
        parts = [self.paper]
        if self.result:
            parts.append(self.result)
        text = ", ".join(parts)
        if self.reference:
            text += f" ({self.reference})"
        text += f" [{self.status.value}]"
        if self.section:
            text += f"; LEMMAS.md {self.section}"
        return text


def _format_number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


@dataclass(frozen=True)
class Parameter:
    """A symbol of a lemma and its domain.

    Parameters
    ----------
    name : str
        The keyword used in Python calls and proof files (``eps``, ``delta``, ``n``).
    symbol : sympy.Symbol
        The symbol in the statement, with matching sympy assumptions.
    description : str
        What it is, in the paper's words.
    low, high : float, optional
        Domain ends (None: unbounded).
    low_inclusive, high_inclusive : bool
        Whether the ends belong to the domain.
    integer : bool
        Integer-valued (widths, depths, counts).
    """

    name: str
    symbol: sp.Symbol
    description: str
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = False
    high_inclusive: bool = False
    integer: bool = False

    def validate(self, value: Any) -> float | int:
        """Return ``value`` if admissible, else raise :class:`InvalidInput` naming it."""
        if self.integer:
            minimum = None
            if self.low is not None:
                minimum = math.ceil(self.low) if self.low_inclusive else math.floor(self.low) + 1
            maximum = None
            if self.high is not None:
                maximum = math.floor(self.high) if self.high_inclusive else math.ceil(self.high) - 1
            return check_int(self.name, value, minimum=minimum, maximum=maximum)
        number = check_real(self.name, value)
        low_ok = self.low is None or (number >= self.low if self.low_inclusive else number > self.low)
        high_ok = self.high is None or (number <= self.high if self.high_inclusive else number < self.high)
        if not (low_ok and high_ok):
            raise InvalidInput(f"{self.name}={value!r} must be {self.domain_text()}")
        return number

    def domain_text(self) -> str:
        """The domain in words, e.g. ``in (0, 1)`` or ``> 0``."""
        kind = "an integer " if self.integer else ""
        if self.low is not None and self.high is not None:
            left = "[" if self.low_inclusive else "("
            right = "]" if self.high_inclusive else ")"
            return f"{kind}in {left}{_format_number(self.low)}, {_format_number(self.high)}{right}"
        if self.low is not None:
            return f"{kind}{'>=' if self.low_inclusive else '>'} {_format_number(self.low)}"
        if self.high is not None:
            return f"{kind}{'<=' if self.high_inclusive else '<'} {_format_number(self.high)}"
        return f"{kind}real".strip()

    def domain_latex(self) -> str:
        """The domain as LaTeX, e.g. ``\\varepsilon \\in (0, 1)``."""
        symbol = sp.latex(self.symbol)
        field_name = r"\mathbb{Z}" if self.integer else r"\mathbb{R}"
        if self.low is not None and self.high is not None:
            left = "[" if self.low_inclusive else "("
            right = "]" if self.high_inclusive else ")"
            text = f"{symbol} \\in {left}{_format_number(self.low)}, {_format_number(self.high)}{right}"
            return text + (r" \cap \mathbb{Z}" if self.integer else "")
        if self.low is not None:
            relation = r"\ge" if self.low_inclusive else ">"
            return f"{symbol} \\in {field_name},\\ {symbol} {relation} {_format_number(self.low)}"
        if self.high is not None:
            relation = r"\le" if self.high_inclusive else "<"
            return f"{symbol} \\in {field_name},\\ {symbol} {relation} {_format_number(self.high)}"
        return f"{symbol} \\in {field_name}"

    def constraints(self) -> list[sp.Basic]:
        """The domain as sympy relations (for z3)."""
        relations: list[sp.Basic] = []
        if self.low is not None:
            low = sp.Rational(Fraction(self.low))
            relations.append(self.symbol >= low if self.low_inclusive else self.symbol > low)
        if self.high is not None:
            high = sp.Rational(Fraction(self.high))
            relations.append(self.symbol <= high if self.high_inclusive else self.symbol < high)
        return relations

    def sampling_range(self) -> tuple[float, float, bool]:
        """A finite range to draw samples from: the domain, with infinite ends cut at ±10
        (or 1e3 for integers), open ends moved inwards by a hair."""
        far = 1e3 if self.integer else 10.0
        low = self.low if self.low is not None else -far
        high = self.high if self.high is not None else max(low + far, far)
        if self.low is not None and not self.low_inclusive and not self.integer:
            low = low + max(abs(low), 1.0) * 1e-9
        if self.high is not None and not self.high_inclusive and not self.integer:
            high = high - max(abs(high), 1.0) * 1e-9
        return float(low), float(high), self.integer


def real(
    name: str,
    latex_name: str,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = False,
) -> Parameter:
    """A real parameter; sympy assumptions follow the domain (positive, nonnegative ...)."""
    assumptions: dict[str, bool] = {"real": True}
    if low is not None and (low > 0 or (low == 0 and not low_inclusive)):
        assumptions["positive"] = True
    elif low is not None and low >= 0:
        assumptions["nonnegative"] = True
    if high is not None and (high < 0 or (high == 0 and not high_inclusive)):
        assumptions["negative"] = True
    return Parameter(
        name,
        sp.Symbol(latex_name, **assumptions),
        description,
        low=low,
        high=high,
        low_inclusive=low_inclusive,
        high_inclusive=high_inclusive,
    )


def integer(name: str, latex_name: str, description: str, *, low: int = 1) -> Parameter:
    """An integer parameter ``>= low`` (widths, depths, counts)."""
    assumptions: dict[str, bool] = {"integer": True}
    if low >= 1:
        assumptions["positive"] = True
    elif low >= 0:
        assumptions["nonnegative"] = True
    return Parameter(
        name, sp.Symbol(latex_name, **assumptions), description, low=low, low_inclusive=True, integer=True
    )


def positive(name: str, latex_name: str, description: str) -> Parameter:
    """A real parameter ``> 0``."""
    return real(name, latex_name, description, low=0.0)


def nonnegative(name: str, latex_name: str, description: str) -> Parameter:
    """A real parameter ``>= 0``."""
    return real(name, latex_name, description, low=0.0, low_inclusive=True)


def probability(name: str, latex_name: str, description: str) -> Parameter:
    """A real parameter in the open interval (0, 1) (``delta``, a small ``eps``)."""
    return real(name, latex_name, description, low=0.0, high=1.0)


@dataclass(frozen=True)
class Evaluation:
    """Both sides of a statement at given values (mpmath numbers; numeric, not a verdict)."""

    lhs: mpmath.mpf
    rhs: mpmath.mpf
    holds: bool
    precision: int


@dataclass(frozen=True)
class CheckOptions:
    """How :meth:`Lemma.check` may work.

    Attributes
    ----------
    method : str
        ``auto`` (strongest first), ``sympy``, ``z3``, ``interval``, ``sample`` or ``cited``.
    box : tuple
        ``(name, low, high)`` triples: the stated box for interval arithmetic and sampling;
        overrides the lemma's own box.
    samples : int
        Sample count for the sampling fallback (TESTED).
    seed : int
        Seed of the sampler.
    """

    method: str = "auto"
    box: tuple[tuple[str, float, float], ...] = ()
    samples: int = 2000
    seed: int = 0
    max_boxes: int = 20000


Checker = Callable[["Lemma", CheckOptions], Verdict]


@dataclass(frozen=True)
class Lemma:
    """One stated result (see the module docstring).

    Parameters
    ----------
    name : str
        Registry name with its instance parameters, e.g. ``"activation.taylor_remainder[tanh]"``.
    title : str
        A short human title.
    statement : sympy relation
        ``Eq``, ``Le``, ``Lt``, ``Ge`` or ``Gt`` between sympy expressions.
    parameters : tuple of Parameter
        Every free symbol of the statement, with its domain.
    source : Source
        Paper, result and status.
    hypotheses : tuple of sympy relations
        Side conditions under which the statement is claimed.
    definitions : tuple of (symbol, expression)
        Abbreviations used in the statement (shown as "where ..."; substituted for checks).
    box : tuple
        ``(name, low, high)`` triples: the stated box on which interval checks run (a bounded
        domain, stated in the verdict).
    notes : str
        Proof sketch, caveats, what was adapted.
    checker : callable, optional
        A specialised check (for instance Taylor–Lagrange plus a certified sup); the generic
        chain (sympy → z3 → interval → sampling) is used otherwise.
    """

    name: str
    title: str
    statement: sp.Basic
    parameters: tuple[Parameter, ...]
    source: Source
    hypotheses: tuple[sp.Basic, ...] = ()
    definitions: tuple[tuple[sp.Symbol, sp.Expr], ...] = ()
    box: tuple[tuple[str, float, float], ...] = ()
    notes: str = ""
    checker: Checker | None = field(default=None, compare=False, repr=False)

    # ------------------------------------------------------------------ accessors

    @property
    def symbols(self) -> dict[str, sp.Symbol]:
        """Parameter name → sympy symbol (with its assumptions)."""
        return {parameter.name: parameter.symbol for parameter in self.parameters}

    def parameter(self, name: str) -> Parameter:
        """The parameter called ``name`` (InvalidInput if there is none)."""
        for candidate in self.parameters:
            if candidate.name == name:
                return candidate
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise InvalidInput(f"{self.name} has no parameter {name!r}; its parameters are: {known}")

    def sides(self) -> tuple[type, sp.Expr, sp.Expr]:
        """``(relation class, lhs, rhs)`` with every definition substituted.

        Working with the sides keeps sympy from folding a relation between numbers into
        ``True``/``False`` by floating-point evaluation: numeric decisions are made in arb.
        """
        lhs, rhs = self.statement.lhs, self.statement.rhs
        for symbol, expression in reversed(self.definitions):
            lhs = lhs.subs(symbol, expression)
            rhs = rhs.subs(symbol, expression)
        return type(self.statement), lhs, rhs

    def expanded_hypotheses(self) -> tuple[sp.Basic, ...]:
        """The hypotheses with every definition substituted."""
        result = []
        for hypothesis in self.hypotheses:
            for symbol, expression in reversed(self.definitions):
                hypothesis = hypothesis.subs(symbol, expression)
            result.append(hypothesis)
        return tuple(result)

    def _validated(self, values: Mapping[str, Any], *, require_all: bool) -> dict[sp.Symbol, Any]:
        known = {parameter.name: parameter for parameter in self.parameters}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidInput(
                f"{self.name} has no parameter {unknown[0]!r}; its parameters are: {', '.join(known) or 'none'}"
            )
        if require_all:
            missing = [name for name in known if name not in values]
            if missing:
                raise InvalidInput(f"{self.name} needs a value for {missing[0]!r}")
        return {known[name].symbol: known[name].validate(value) for name, value in values.items()}

    # ------------------------------------------------------------------ verbs

    def evaluate(self, precision: int = 53, **values: Any) -> Evaluation:
        """Evaluate both sides with mpmath at ``precision`` bits.

        Parameters
        ----------
        precision : int
            mpmath working precision in bits.
        **values
            One admissible value per parameter (InvalidInput otherwise).

        Returns
        -------
        Evaluation
            ``lhs``, ``rhs`` and whether the relation holds at this precision. Numeric only: a
            verdict comes from :meth:`check`.
        """
        check_int("precision", precision, minimum=10)
        substitution = self._validated(values, require_all=True)
        kind, lhs_expression, rhs_expression = self.sides()
        lhs_expression = lhs_expression.subs(substitution)
        rhs_expression = rhs_expression.subs(substitution)
        leftover = lhs_expression.free_symbols | rhs_expression.free_symbols
        if leftover:
            raise InvalidInput(
                f"{self.name} has no numeric value for {sorted(map(str, leftover))[0]} "
                "(a supremum or an abstract quantity); use check()"
            )
        with mpmath.workprec(precision):
            lhs = mpmath.mpf(sp.N(lhs_expression, mpmath.mp.dps + 5))
            rhs = mpmath.mpf(sp.N(rhs_expression, mpmath.mp.dps + 5))
            tolerance = mpmath.mpf(2) ** (8 - precision)
            comparisons = {
                sp.Equality: lambda a, b: mpmath.almosteq(a, b, rel_eps=tolerance, abs_eps=tolerance),
                sp.LessThan: lambda a, b: a <= b,
                sp.StrictLessThan: lambda a, b: a < b,
                sp.GreaterThan: lambda a, b: a >= b,
                sp.StrictGreaterThan: lambda a, b: a > b,
            }
            holds = bool(comparisons[kind](lhs, rhs))
        return Evaluation(lhs=lhs, rhs=rhs, holds=holds, precision=precision)

    def solve_for(self, symbol: str, **values: Any) -> int | float:
        """The extreme value of one parameter that makes the statement hold.

        For ``n >= f(...)`` with ``n`` an integer, the least integer ``n``; for a real
        parameter, the boundary value (the root of ``lhs = rhs``). The value is computed in
        arb, so a ceiling is never off by one because of rounding.

        Parameters
        ----------
        symbol : str
            The parameter to solve for.
        **values
            Admissible values for every other parameter.

        Raises
        ------
        InvalidInput
            Unknown parameter, a missing value, or no admissible solution.
        """
        target = self.parameter(symbol)
        others = {name: value for name, value in values.items() if name != symbol}
        substitution = self._validated(others, require_all=False)
        missing = [p.name for p in self.parameters if p.name != symbol and p.symbol not in substitution]
        if missing:
            raise InvalidInput(f"{self.name}.solve_for({symbol!r}) needs a value for {missing[0]!r}")
        kind, lhs, rhs = self.sides()
        lhs, rhs = lhs.subs(substitution), rhs.subs(substitution)
        # Solve over the reals (an integer symbol would make sympy drop non-integer roots).
        unknown = sp.Dummy(symbol, real=True)
        roots = sp.solve(sp.Eq(lhs.subs(target.symbol, unknown), rhs.subs(target.symbol, unknown)), unknown)
        candidates = []
        for root in roots:
            try:
                with _interval.working_precision(128):
                    ball = _interval.compile_arb(root, [])()
            except _interval.NotCompilable:
                continue
            if ball.is_finite():
                candidates.append((root, ball))
        if not candidates:
            raise InvalidInput(f"{self.name}: no admissible value of {symbol!r} solves the statement")
        root, ball = candidates[0]
        if not target.integer:
            return target.validate(float(ball.mid()))
        # The least (or greatest) integer for which the statement certainly holds, decided in
        # arb at each candidate so that rounding cannot move the answer by one.
        low = math.floor(float(ball.lower())) - 1
        high = math.ceil(float(ball.upper())) + 1
        holds = {n: _certainly_holds(kind, lhs - rhs, target.symbol, n) for n in range(low, high + 1)}
        if holds[high] and not holds[low]:
            answer = min(n for n in holds if holds[n] and all(holds[m] for m in range(n, high + 1)))
        elif holds[low] and not holds[high]:
            answer = max(n for n in holds if holds[n] and all(holds[m] for m in range(low, n + 1)))
        else:
            raise InvalidInput(f"{self.name}: {symbol!r} is not bounded on one side by the statement")
        return target.validate(answer)

    def check(
        self,
        method: str = "auto",
        box: Mapping[str, tuple[float, float]] | None = None,
        samples: int = 2000,
        seed: int = 0,
        max_boxes: int = 20000,
    ) -> Verdict:
        """Check the statement and return a verdict.

        Parameters
        ----------
        method : str
            ``auto`` tries, in order, sympy (PROVED), z3 for polynomial arithmetic (PROVED,
            method names z3), arb branch and bound over the stated box (CERTIFIED) and
            sampling (TESTED); ``sympy``, ``z3``, ``interval``, ``sample`` run one of them;
            ``cited`` records a cited premise (UNKNOWN: not machine-checked).
        box : mapping name -> (low, high), optional
            The box for interval checks and sampling; defaults to the lemma's stated box.
        samples : int
            Samples for the TESTED fallback.
        seed : int
            Sampler seed.

        Returns
        -------
        Verdict
            PROVED and CERTIFIED only from symbolic or interval results; a sampled check is
            TESTED at most; FALSIFIED carries a counterexample certified in arb or exactly.
        """
        if method not in METHODS:
            raise InvalidInput(f"method={method!r} must be one of {', '.join(map(repr, METHODS))}")
        check_int("samples", samples, minimum=1)
        stated_box = self.box
        if box is not None:
            entries = []
            for name, (low, high) in box.items():
                self.parameter(name)
                entries.append((name, float(low), float(high)))
            stated_box = tuple(entries)
        options = CheckOptions(method=method, box=stated_box, samples=samples, seed=seed, max_boxes=max_boxes)
        if method == "cited":
            return cited_verdict(self)
        if self.checker is not None:
            return self.checker(self, options)
        return check_relation(self, options)

    def latex(self) -> str:
        """The statement, its hypotheses and definitions as one LaTeX string."""
        text = sp.latex(self.statement)
        if self.hypotheses:
            text += r"\quad\text{if } " + r",\ ".join(sp.latex(h) for h in self.hypotheses)
        if self.definitions:
            text += r",\quad\text{where } " + r",\ ".join(
                f"{sp.latex(symbol)} = {sp.latex(expression)}" for symbol, expression in self.definitions
            )
        return text

    def with_checker(self, checker: Checker) -> Lemma:
        """A copy with a specialised checker."""
        return replace(self, checker=checker)


# ---------------------------------------------------------------------------- checking


def _certainly_holds(kind: type, gap: sp.Expr, symbol: sp.Symbol, value: int) -> bool:
    """Whether ``gap (kind) 0`` certainly holds at ``symbol = value`` (arb, 256 bits)."""
    with _interval.working_precision(256):
        ball = _interval.compile_arb(gap.subs(symbol, value), [])()
    tests = {
        sp.GreaterThan: lambda b: b >= 0,
        sp.StrictGreaterThan: lambda b: b > 0,
        sp.LessThan: lambda b: b <= 0,
        sp.StrictLessThan: lambda b: b < 0,
        sp.Equality: lambda b: b == 0,
    }
    return tests[kind](ball) is True


def cited_verdict(lemma: Lemma) -> Verdict:
    """UNKNOWN with a note: a cited premise that the tool does not re-prove."""
    return Verdict(
        Status.UNKNOWN,
        "cited",
        f"premise taken from {lemma.source.citation()}; not machine-checked here",
    )


def _counterexample(lemma: Lemma, symbols: Sequence[sp.Symbol], point: Sequence[Any]) -> dict[str, Any]:
    names = {parameter.symbol: parameter.name for parameter in lemma.parameters}
    result: dict[str, Any] = {}
    for symbol, value in zip(symbols, point, strict=True):
        if isinstance(value, Fraction):
            value = float(value) if value.denominator != 1 else int(value)
        result[names.get(symbol, symbol.name)] = value
    return result


def _box_for(lemma: Lemma, options: CheckOptions, symbols: Sequence[sp.Symbol]) -> list[tuple[float, float]] | None:
    by_name = {name: (low, high) for name, low, high in options.box}
    box = []
    for symbol in symbols:
        parameter = next(p for p in lemma.parameters if p.symbol == symbol)
        if parameter.name in by_name:
            box.append(by_name[parameter.name])
        elif parameter.low is not None and parameter.high is not None and not parameter.integer:
            box.append((parameter.low, parameter.high))
        else:
            return None
    return box


def _box_text(lemma: Lemma, symbols: Sequence[sp.Symbol], box: Sequence[tuple[float, float]]) -> str:
    names = {parameter.symbol: parameter.name for parameter in lemma.parameters}
    return " × ".join(f"{names[s]} ∈ [{low:g}, {high:g}]" for s, (low, high) in zip(symbols, box, strict=True))


_LESS = (sp.LessThan, sp.StrictLessThan)
_GREATER = (sp.GreaterThan, sp.StrictGreaterThan)
_STRICT = (sp.StrictLessThan, sp.StrictGreaterThan)


def _gap_form(kind: type, lhs: sp.Expr, rhs: sp.Expr) -> tuple[sp.Expr, bool]:
    """``(g, strict)`` with the claim equivalent to ``g <= 0`` (``g < 0`` when strict)."""
    if kind in _LESS:
        return lhs - rhs, kind in _STRICT
    if kind in _GREATER:
        return rhs - lhs, kind in _STRICT
    raise TypeError(f"{kind.__name__} is not an inequality")


def _parameter_of(lemma: Lemma, symbol: sp.Symbol) -> Parameter:
    return next(p for p in lemma.parameters if p.symbol == symbol)


def _admissible_point(lemma: Lemma, symbols: Sequence[sp.Symbol], point: Sequence[Any], hypotheses: Sequence[sp.Basic]) -> bool:
    """Whether ``point`` lies in every parameter's domain and certainly meets every hypothesis."""
    values = {}
    for symbol, value in zip(symbols, point, strict=True):
        parameter = _parameter_of(lemma, symbol)
        number = float(value)
        if parameter.integer:
            if number != int(number):
                return False
            number = int(number)
        try:
            parameter.validate(number)
        except InvalidInput:
            return False
        values[symbol] = sp.Rational(Fraction(value)) if not isinstance(value, Fraction) else sp.Rational(value.numerator, value.denominator)
    for hypothesis in hypotheses:
        gap = hypothesis.lhs - hypothesis.rhs
        try:
            with _interval.working_precision(256):
                ball = _interval.compile_arb(gap.subs(values), [])()
        except _interval.NotCompilable:
            return False
        tests = {
            sp.LessThan: lambda b: b <= 0,
            sp.StrictLessThan: lambda b: b < 0,
            sp.GreaterThan: lambda b: b >= 0,
            sp.StrictGreaterThan: lambda b: b > 0,
            sp.Equality: lambda b: b == 0,
        }
        if tests[type(hypothesis)](ball) is not True:
            return False
    return True


def check_relation(lemma: Lemma, options: CheckOptions) -> Verdict:
    """The generic chain: sympy, z3, arb branch and bound, sampling (see :meth:`Lemma.check`)."""
    from flint import arb  # noqa: PLC0415

    started = time.perf_counter()
    kind, lhs, rhs = lemma.sides()
    hypotheses = lemma.expanded_hypotheses()
    method = options.method
    equality = kind is sp.Equality
    free = lhs.free_symbols | rhs.free_symbols
    for hypothesis in hypotheses:
        free |= hypothesis.free_symbols
    symbols = sorted(free, key=lambda s: s.name)
    declared = {p.symbol for p in lemma.parameters}
    undeclared = [s for s in symbols if s not in declared]
    if undeclared:
        raise InvalidInput(f"{lemma.name}: symbol {undeclared[0]} is not a declared parameter")

    if not symbols:
        # A closed statement between numbers: exact when rational, else decided in arb.
        difference = sp.nsimplify(lhs - rhs) if (lhs - rhs).is_Rational else lhs - rhs
        if difference.is_Rational:
            holds = bool(kind(difference, 0))
            return Verdict(
                Status.PROVED if holds else Status.FALSIFIED,
                "sympy exact rationals",
                f"lhs - rhs = {difference}",
                counterexample=None if holds else {},
            )
        with _interval.working_precision(256):
            ball = _interval.compile_arb(difference, [])()
        tests = {
            sp.Equality: (lambda b: b == 0, lambda b: b != 0),
            sp.LessThan: (lambda b: b <= 0, lambda b: b > 0),
            sp.StrictLessThan: (lambda b: b < 0, lambda b: b >= 0),
            sp.GreaterThan: (lambda b: b >= 0, lambda b: b < 0),
            sp.StrictGreaterThan: (lambda b: b > 0, lambda b: b <= 0),
        }
        certainly, certainly_not = tests[kind]
        if certainly(ball) is True:
            return Verdict(Status.CERTIFIED, "arb ball arithmetic", f"lhs - rhs ∈ {ball.str(10)}")
        if certainly_not(ball) is True:
            return Verdict(
                Status.FALSIFIED, "arb ball arithmetic", f"lhs - rhs ∈ {ball.str(10)}", counterexample={}
            )
        return Verdict(Status.UNKNOWN, "arb ball arithmetic", f"undecided: lhs - rhs ∈ {ball.str(10)}")

    if method in ("auto", "sympy"):
        proof = None
        if equality:
            proof = _provers.prove_identity(lhs, rhs)
        else:
            gap, _ = _gap_form(kind, lhs, rhs)
            goal = kind(lhs, rhs, evaluate=False)
            proof = _provers.prove_by_slack(goal, hypotheses)
            if proof is None and not hypotheses:
                proof = _provers.prove_nonnegative(-gap)
        if proof is not None:
            return Verdict(Status.PROVED, proof, f"reduced to True symbolically in {time.perf_counter() - started:.2f} s")

    constraints = [c for p in lemma.parameters if p.symbol in free for c in p.constraints()] + list(hypotheses)
    box = _box_for(lemma, options, symbols)
    where = f" on {_box_text(lemma, symbols, box)}" if box is not None else ""
    if box is not None:
        for symbol, (low, high) in zip(symbols, box, strict=True):
            constraints += [symbol >= sp.Rational(Fraction(low)), symbol <= sp.Rational(Fraction(high))]
    statement = kind(lhs, rhs, evaluate=False)
    if method in ("auto", "z3") and _provers.is_polynomial_problem([statement, *constraints]):
        outcome, model = _provers.prove_z3(statement, constraints)
        if outcome == "proved":
            return Verdict(Status.PROVED, "z3 nlsat", f"negation unsatisfiable{where}")
        if outcome == "falsified" and model is not None:
            point = {s: sp.Rational(model.get(s.name, Fraction(0))) for s in symbols}
            admissible = _admissible_point(lemma, symbols, [model.get(s.name, Fraction(0)) for s in symbols], hypotheses)
            if admissible and kind(lhs.subs(point), rhs.subs(point)) is sp.false:
                return Verdict(
                    Status.FALSIFIED,
                    "z3 nlsat (model re-checked in sympy)",
                    f"the statement fails at the model{where}",
                    counterexample=_counterexample(lemma, symbols, [model.get(s.name, Fraction(0)) for s in symbols]),
                )

    if method in ("auto", "interval") and not equality and box is not None and not hypotheses:
        gap, strict = _gap_form(kind, lhs, rhs)
        try:
            function = _interval.compile_arb(gap, symbols)
            gradient = [_interval.compile_arb(sp.diff(gap, s), symbols) for s in symbols]
        except _interval.NotCompilable as error:
            if method == "interval":
                return Verdict(Status.UNKNOWN, "arb branch and bound", f"not evaluable in arb: {error}")
        else:
            result = _interval.certify_upper(function, box, arb(0), gradient=gradient, max_boxes=options.max_boxes)
            if result.counterexample is not None and _admissible_point(lemma, symbols, result.counterexample, hypotheses):
                return Verdict(
                    Status.FALSIFIED,
                    "arb branch and bound",
                    f"certified violation{where}: (claimed-small side) - (claimed-large side) = {result.counterexample_value:.6g} > 0",
                    counterexample=_counterexample(lemma, symbols, result.counterexample),
                )
            if result.proved and (not strict or result.max_upper < 0):
                return Verdict(
                    Status.CERTIFIED,
                    "arb branch and bound",
                    f"holds{where}; {result.boxes} boxes, max gap <= {result.max_upper:.3g}",
                )

    if method in ("auto", "sample"):
        gap = lhs - rhs if equality else _gap_form(kind, lhs, rhs)[0]
        if box is not None:
            ranges = [
                (low, high, _parameter_of(lemma, symbol).integer)
                for symbol, (low, high) in zip(symbols, box, strict=True)
            ]
        else:
            ranges = [_parameter_of(lemma, symbol).sampling_range() for symbol in symbols]
        admissible = _hypothesis_mask(hypotheses, symbols) if hypotheses else None
        checked, point = _provers.violations_by_sampling(
            gap,
            symbols,
            ranges,
            samples=options.samples,
            seed=options.seed,
            identity=equality,
            admissible=admissible,
            confirm=lambda candidate: _admissible_point(lemma, symbols, candidate, hypotheses),
        )
        region = where or " on the admissible ranges"
        if point is not None:
            return Verdict(
                Status.FALSIFIED,
                "sampling + arb",
                f"counterexample among {options.samples} samples{region}",
                counterexample=_counterexample(lemma, symbols, point),
            )
        if checked > 0:
            return Verdict(
                Status.TESTED,
                "monte-carlo",
                f"{checked} admissible samples{region}, none failed (statistical, not a proof)",
                samples=checked,
            )
    return Verdict(Status.UNKNOWN, method, "no method settled the statement")


def _hypothesis_mask(hypotheses: Sequence[sp.Basic], symbols: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """Float mask of samples that satisfy every hypothesis."""
    tests = []
    for hypothesis in hypotheses:
        evaluate = _provers.float_function(hypothesis.lhs - hypothesis.rhs, symbols)
        tests.append((evaluate, type(hypothesis)))

    def admissible(*columns: np.ndarray) -> np.ndarray:
        mask = np.ones(np.shape(columns[0]), dtype=bool)
        for evaluate, kind in tests:
            value = evaluate(*columns)
            if kind in _LESS:
                mask &= value <= 0
            elif kind in _GREATER:
                mask &= value >= 0
            else:
                mask &= np.abs(value) <= 1e-12
        return mask

    return admissible


__all__ = [
    "CheckOptions",
    "Evaluation",
    "Lemma",
    "METHODS",
    "Parameter",
    "Source",
    "SourceStatus",
    "check_relation",
    "cited_verdict",
    "integer",
    "nonnegative",
    "positive",
    "probability",
    "real",
]
