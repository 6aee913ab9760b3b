"""Provers: sympy first, then an optional decision procedure, then interval arithmetic.

Each function here answers one narrow question and says how it answered, so that a verdict
can name its method:

* :func:`prove_identity`: ``lhs - rhs`` simplifies to 0 (sympy), with a sign case split
  ``x = p, 0, -p`` (``p > 0``) over real symbols when the difference holds ``Max``, ``Min``,
  ``Abs`` or ``Piecewise``; the three cases cover the real line, so zero in each is a proof.
* :func:`prove_by_slack`: an inequality ``a <= b`` under hypotheses ``v <= E`` (or ``v >= E``)
  is proved when, after writing each hypothesis as ``v = E - s`` with a fresh ``s >= 0``,
  every term of the expanded gap ``b - a`` is non-negative by sympy's assumptions on the
  symbols (products and quotients of non-negative quantities with positive coefficients).
* :func:`prove_z3`: a polynomial (or rational) inequality over the reals, with the parameter
  domains and hypotheses as constraints, is handed to z3's nonlinear real arithmetic (nlsat,
  a decision procedure): ``unsat`` of the negation is a proof, a model is a counterexample,
  which is then re-checked exactly in sympy before it is reported.
* :func:`violations_by_sampling`: random admissible points, evaluated in floats; any
  candidate violation is re-evaluated in arb and reported only if certainly a violation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from ltbounds.lemmas._interval import NotCompilable, compile_arb, exact_arb, working_precision

_CASE_SPLIT_TRIGGERS = (sp.Max, sp.Min, sp.Abs, sp.Piecewise, sp.Heaviside, sp.sign)


def _is_zero(expression: sp.Expr) -> bool:
    if expression == 0:
        return True
    try:
        simplified = sp.simplify(expression)
    except (TypeError, ValueError, NotImplementedError):  # pragma: no cover - sympy gave up
        return False
    if simplified == 0 or getattr(simplified, "is_zero_matrix", False):
        return True
    return bool(simplified.is_zero is True)


def prove_identity(lhs: sp.Expr, rhs: sp.Expr, *, max_split: int = 4) -> str | None:
    """Return the method that proved ``lhs == rhs`` identically, or None.

    Parameters
    ----------
    lhs, rhs : sympy.Expr
        Both sides; symbols carry their assumptions (real, positive ...).
    max_split : int
        At most this many real symbols are case split (3**max_split cases).

    Returns
    -------
    str or None
        ``"sympy.simplify"`` or ``"sympy sign case split + simplify (k symbols)"``; None when
        sympy could not reduce the difference to 0 (which is not a disproof).
    """
    difference = lhs - rhs
    if hasattr(difference, "doit") and difference.has(sp.Integral, sp.Sum, sp.Product, sp.Derivative):
        difference = difference.doit()
    if isinstance(difference, sp.MatrixExpr) or getattr(lhs, "is_Matrix", False):
        expanded = sp.expand(difference)
        if expanded == 0 or getattr(expanded, "is_ZeroMatrix", False) or isinstance(
            expanded, sp.ZeroMatrix
        ):
            return "sympy.expand (matrices)"
        return None
    if _is_zero(difference):
        return "sympy.simplify"
    if not difference.has(*_CASE_SPLIT_TRIGGERS):
        return None
    candidates = sorted(
        (
            symbol
            for symbol in difference.free_symbols
            if symbol.is_real and symbol.is_positive is not True and symbol.is_negative is not True
        ),
        key=lambda symbol: symbol.name,
    )
    if not candidates or len(candidates) > max_split:
        return None
    positives = {symbol: sp.Dummy(f"{symbol.name}_pos", positive=True) for symbol in candidates}
    # A non-negative symbol is never negative: split it into {p, 0} only (and dually).
    sign_sets = [
        (1, 0) if symbol.is_nonnegative else (0, -1) if symbol.is_nonpositive else (1, 0, -1)
        for symbol in candidates
    ]
    for signs in itertools.product(*sign_sets):
        substitution = {symbol: sign * positives[symbol] for symbol, sign in zip(candidates, signs, strict=True)}
        case = difference.subs(substitution)
        case = case.rewrite(sp.Piecewise) if case.has(sp.Heaviside, sp.sign) else case
        if not _is_zero(sp.piecewise_fold(case)):
            return None
    return "sympy sign case split"


def _relation_parts(relation: sp.Basic) -> tuple[sp.Expr, sp.Expr, bool]:
    """Return ``(small, large, strict)`` for ``small <= large`` (or ``<``)."""
    if isinstance(relation, (sp.LessThan, sp.StrictLessThan)):
        return relation.lhs, relation.rhs, isinstance(relation, sp.StrictLessThan)
    if isinstance(relation, (sp.GreaterThan, sp.StrictGreaterThan)):
        return relation.rhs, relation.lhs, isinstance(relation, sp.StrictGreaterThan)
    raise TypeError(f"{relation} is not an inequality")


def prove_by_slack(goal: sp.Basic, hypotheses: Sequence[sp.Basic] = ()) -> str | None:
    """Prove the inequality ``goal`` from hypotheses by slack substitution (see module doc).

    Hypotheses that are not of the form ``symbol <= E`` / ``symbol >= E`` are ignored here
    (z3 may use them). Returns the method string, or None.
    """
    small, large, strict = _relation_parts(goal)
    gap = large - small
    pending: list[tuple[sp.Symbol, sp.Expr, int]] = []
    for hypothesis in hypotheses:
        if isinstance(hypothesis, (sp.LessThan, sp.StrictLessThan)):
            variable, bound, sign = hypothesis.lhs, hypothesis.rhs, -1
        elif isinstance(hypothesis, (sp.GreaterThan, sp.StrictGreaterThan)):
            variable, bound, sign = hypothesis.lhs, hypothesis.rhs, 1
        else:
            continue
        if variable.is_Symbol and variable not in bound.free_symbols:
            pending.append((variable, bound, sign))
    # Each hypothesis v <= E (v >= E) reparametrises v as E - s (E + s), s >= 0; a hypothesis
    # is used once, when its variable occurs in the gap (earlier substitutions may bring it in).
    # Unused hypotheses only weaken the premise, so the result stays a proof.
    progress = True
    while progress and pending:
        progress = False
        for entry in list(pending):
            variable, bound, sign = entry
            if variable in gap.free_symbols:
                slack = sp.Dummy(f"s_{variable.name}", nonnegative=True)
                gap = gap.subs(variable, bound + sign * slack)
                pending.remove(entry)
                progress = True
    terms = sp.Add.make_args(sp.expand(gap))
    if strict:
        if not all(term.is_nonnegative is True for term in terms):
            return None
        if not any(term.is_positive is True for term in terms):
            return None
    elif not all(term.is_nonnegative is True for term in terms):
        return None
    return "sympy slack substitution"


def prove_nonnegative(expression: sp.Expr) -> str | None:
    """Prove ``expression >= 0`` from the symbols' assumptions alone (sympy)."""
    candidates = [expression, sp.simplify(expression), sp.factor(expression)]
    for candidate in candidates:
        if candidate.is_nonnegative is True:
            return "sympy assumptions"
    return None


# ----------------------------------------------------------------------------------------- z3


def z3_available() -> bool:
    """True when the optional z3-solver package can be imported (extra ``prove``)."""
    try:
        import z3  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


class _NotPolynomial(ValueError):
    pass


def _to_z3(expression: sp.Expr, variables: Mapping[sp.Symbol, Any]) -> Any:
    import z3  # noqa: PLC0415

    def walk(node: sp.Basic) -> Any:
        if node.is_Symbol:
            if node not in variables:
                raise _NotPolynomial(f"free symbol {node}")
            return variables[node]
        if node.is_Rational or node.is_Integer:
            rational = sp.Rational(node)
            return z3.RealVal(f"{rational.p}/{rational.q}")
        if node.is_Float:
            fraction = Fraction(float(node))
            return z3.RealVal(f"{fraction.numerator}/{fraction.denominator}")
        if node.is_Add:
            return z3.Sum(*[walk(arg) for arg in node.args])
        if node.is_Mul:
            return z3.Product(*[walk(arg) for arg in node.args])
        if node.is_Pow and node.exp.is_Integer:
            base = walk(node.base)
            power = int(node.exp)
            if power == 0:
                return z3.RealVal(1)
            result = base
            for _ in range(abs(power) - 1):
                result = result * base
            return result if power > 0 else 1 / result
        if isinstance(node, sp.Abs):
            inner = walk(node.args[0])
            return z3.If(inner >= 0, inner, -inner)
        if isinstance(node, (sp.Max, sp.Min)):
            values = [walk(arg) for arg in node.args]
            result = values[0]
            for value in values[1:]:
                result = z3.If(value > result, value, result) if isinstance(node, sp.Max) else z3.If(
                    value < result, value, result
                )
            return result
        raise _NotPolynomial(f"{node.func.__name__} is not polynomial arithmetic")

    return walk(expression)


def _z3_relation(relation: sp.Basic, variables: Mapping[sp.Symbol, Any]) -> Any:
    lhs = _to_z3(relation.lhs, variables)
    rhs = _to_z3(relation.rhs, variables)
    operators: dict[type, Callable[[Any, Any], Any]] = {
        sp.LessThan: lambda a, b: a <= b,
        sp.StrictLessThan: lambda a, b: a < b,
        sp.GreaterThan: lambda a, b: a >= b,
        sp.StrictGreaterThan: lambda a, b: a > b,
        sp.Equality: lambda a, b: a == b,
    }
    for kind, operator in operators.items():
        if isinstance(relation, kind):
            return operator(lhs, rhs)
    raise _NotPolynomial(f"{relation} is not a relation")


def is_polynomial_problem(relations: Iterable[sp.Basic]) -> bool:
    """True when every relation is built from + - * / and integer powers (z3-ready)."""
    for relation in relations:
        for node in sp.preorder_traversal(relation):
            if isinstance(node, sp.Function) and not isinstance(node, (sp.Abs, sp.Max, sp.Min)):
                return False
            if node.is_Pow and not node.exp.is_Integer:
                return False
            if node.is_Symbol and not node.is_real and not node.is_integer:
                return False
            if node in (sp.pi, sp.E) or isinstance(node, sp.NumberSymbol):
                return False
    return True


def prove_z3(
    goal: sp.Basic,
    constraints: Sequence[sp.Basic],
    *,
    timeout_ms: int = 5000,
) -> tuple[str, dict[str, Fraction] | None]:
    """Decide ``constraints ⇒ goal`` over the reals with z3.

    Returns
    -------
    (outcome, model)
        ``("proved", None)``: the negation is unsatisfiable. ``("falsified", model)``: a model
        of ``constraints ∧ ¬goal`` (exact rationals; the caller re-checks it).
        ``("unknown", None)``: timeout, an algebraic model that is not rational, or z3 missing.
        ``("not-applicable", None)``: not polynomial arithmetic.
    """
    if not z3_available():
        return "unknown", None
    import z3  # noqa: PLC0415

    if goal is sp.true:
        return "proved", None
    constraints = [c for c in constraints if c is not sp.true]
    if any(c is sp.false for c in constraints) or goal is sp.false:
        return "unknown", None

    symbols = set(goal.free_symbols)
    for constraint in constraints:
        symbols |= constraint.free_symbols
    variables = {
        symbol: (z3.Int(symbol.name) if symbol.is_integer else z3.Real(symbol.name))
        for symbol in sorted(symbols, key=lambda s: s.name)
    }
    # The symbols' sympy assumptions are constraints too (sympy already folded them away
    # from relations such as ``n > 0`` for a positive ``n``).
    assumption_constraints = []
    for symbol, variable in variables.items():
        if symbol.is_positive:
            assumption_constraints.append(variable > 0)
        elif symbol.is_nonnegative:
            assumption_constraints.append(variable >= 0)
        if symbol.is_negative:
            assumption_constraints.append(variable < 0)
        elif symbol.is_nonpositive:
            assumption_constraints.append(variable <= 0)
    try:
        solver = z3.SolverFor("QF_NRA") if not any(s.is_integer for s in symbols) else z3.Solver()
        solver.set("timeout", int(timeout_ms))
        for constraint in assumption_constraints:
            solver.add(constraint)
        for constraint in constraints:
            solver.add(_z3_relation(constraint, variables))
        solver.add(z3.Not(_z3_relation(goal, variables)))
    except _NotPolynomial:
        return "not-applicable", None
    answer = solver.check()
    if answer == z3.unsat:
        return "proved", None
    if answer == z3.sat:
        model = solver.model()
        values: dict[str, Fraction] = {}
        for symbol, variable in variables.items():
            value = model.eval(variable, model_completion=True)
            if z3.is_rational_value(value):
                values[symbol.name] = Fraction(value.numerator_as_long(), value.denominator_as_long())
            elif z3.is_int_value(value):
                values[symbol.name] = Fraction(value.as_long())
            else:
                approximation = value.approx(30) if z3.is_algebraic_value(value) else None
                if approximation is None:
                    return "unknown", None
                values[symbol.name] = Fraction(
                    approximation.numerator_as_long(), approximation.denominator_as_long()
                )
        return "falsified", values
    return "unknown", None


# ------------------------------------------------------------------------------- sampling


_FLOAT_MODULES = [{"erf": np.vectorize(math.erf, otypes=[float]), "erfc": np.vectorize(math.erfc, otypes=[float])}, "numpy"]


def float_function(expression: sp.Expr, symbols: Sequence[sp.Symbol]) -> Callable[..., np.ndarray]:
    """A vectorised float64 evaluation of ``expression`` (numpy; ``erf`` via ``math.erf``)."""
    function = sp.lambdify(list(symbols), expression, modules=_FLOAT_MODULES)

    def evaluate(*arrays: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            result = np.asarray(function(*arrays), dtype=float)
        if result.shape != np.shape(arrays[0]) and arrays:
            result = np.broadcast_to(result, np.shape(arrays[0]))
        return result

    return evaluate


def certified_gap_sign(gap: sp.Expr, symbols: Sequence[sp.Symbol], point: Sequence[float], *, precision: int = 128) -> int:
    """Sign of ``gap`` at ``point`` in arb: +1 or -1 when certain, 0 when undecided."""
    try:
        function = compile_arb(gap, symbols)
    except NotCompilable:
        return 0
    with working_precision(precision):
        value = function(*(exact_arb(float(v)) for v in point))
    if (value > 0) is True:
        return 1
    if (value < 0) is True:
        return -1
    return 0


def violations_by_sampling(
    gap: sp.Expr,
    symbols: Sequence[sp.Symbol],
    ranges: Sequence[tuple[float, float, bool]],
    *,
    samples: int,
    seed: int,
    identity: bool = False,
    admissible: Callable[..., np.ndarray] | None = None,
    confirm: Callable[[tuple[float, ...]], bool] | None = None,
) -> tuple[int, tuple[float, ...] | None]:
    """Sample ``gap`` (a violation is ``gap > 0``; for identities ``gap != 0``).

    Parameters
    ----------
    ranges : sequence of (low, high, integer)
        One sampling range per symbol (a symbol's admissible range, clipped to finite ends).
    admissible : callable, optional
        Float mask of samples that satisfy the hypotheses; the others are skipped.
    confirm : callable, optional
        Rigorous re-check that a candidate point is admissible (domains and hypotheses in
        exact or ball arithmetic); a candidate it rejects is not reported.

    Returns
    -------
    (checked, counterexample)
        How many admissible samples were checked, and a point where arb *certifies* the
        violation (or None). Float-only violations that arb does not confirm are not reported.
    """
    rng = np.random.default_rng(seed)
    columns = []
    for low, high, integer in ranges:
        if integer:
            columns.append(rng.integers(int(math.ceil(low)), int(math.floor(high)) + 1, size=samples).astype(float))
        else:
            column = rng.uniform(low, high, size=samples)
            # Rows 0-2 are the corners low, high and (clipped) 0, where bounds tend to break.
            column[: min(samples, 3)] = [low, high, min(max(0.0, low), high)][: min(samples, 3)]
            columns.append(column)
    function = float_function(gap, symbols)
    values = function(*columns) if symbols else np.full(samples, float(function()))
    mask = np.isfinite(values)
    if admissible is not None:
        with np.errstate(all="ignore"):
            mask &= np.asarray(admissible(*columns), dtype=bool)
    checked = int(mask.sum())
    scale = np.maximum(1.0, np.abs(values))
    if identity:
        suspicious = mask & (np.abs(values) > 1e-9 * scale)
    else:
        suspicious = mask & (values > 1e-12 * scale)
    order = np.argsort(-np.abs(values) * suspicious)
    for index in order[: min(20, int(suspicious.sum()))]:
        point = tuple(float(column[index]) for column in columns)
        sign = certified_gap_sign(gap, symbols, point)
        if (identity and sign != 0) or (not identity and sign > 0):
            if confirm is None or confirm(point):
                return checked, point
    return checked, None


__all__ = [
    "certified_gap_sign",
    "float_function",
    "is_polynomial_problem",
    "prove_by_slack",
    "prove_identity",
    "prove_nonnegative",
    "prove_z3",
    "violations_by_sampling",
    "z3_available",
]
