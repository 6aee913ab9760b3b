"""Outward-rounded evaluation of sympy expressions in arb balls, and branch and bound.

This is the only place where a CERTIFIED verdict is produced. DESIGN.md fixes the arithmetic:
python-flint's ``arb`` balls (FLINT/Arb, rigorous error bounds for every elementary function,
``exp``, ``log``, ``tanh``, ``erf`` ...), never mpmath's ``iv`` for transcendental functions
(mpmath issue #1181). A sympy expression is compiled once into a tree of Python closures that
take and return ``arb`` balls; whatever a closure returns *contains* the exact value of its
sub-expression for every point of its argument balls.

:func:`certify_upper` proves ``f(x) <= bound`` for every ``x`` in a box by branch and bound:
a box is settled when the upper end of an enclosure of ``f`` over it is at most the lower end
of the bound (``enclosure <= bound`` in arb's "certainly" semantics), split otherwise, and a
point where ``f`` is certainly above the bound is a certified counterexample. Enclosures use
the natural interval extension and, where gradients are supplied, the mean-value form
``f(m) + grad f(X)·(X - m)``, whichever settles the box.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction

import sympy as sp
from flint import arb, ctx, fmpq, fmpz

ArbFunction = Callable[..., arb]


class NotCompilable(NotImplementedError):
    """The expression holds a function the arb translator does not know."""


@contextmanager
def working_precision(bits: int) -> Iterator[None]:
    """Run a block with arb's working precision set to ``bits`` (restored afterwards)."""
    previous = ctx.prec
    ctx.prec = int(bits)
    try:
        yield
    finally:
        ctx.prec = previous


def exact_arb(value: float | int | Fraction | sp.Rational) -> arb:
    """A ball around ``value``: exact for binary floats and integers, tight for rationals."""
    if isinstance(value, bool):
        raise TypeError("a bool is not a number here")
    if isinstance(value, int):
        return arb(fmpz(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"value={value!r} must be finite")
        numerator, denominator = value.as_integer_ratio()
        return arb(fmpq(numerator, denominator))
    if isinstance(value, Fraction):
        return arb(fmpq(value.numerator, value.denominator))
    rational = sp.Rational(value)
    return arb(fmpq(int(rational.p), int(rational.q)))


def hull(low: arb, high: arb) -> arb:
    """A ball that contains both balls and everything between them.

    When ``low`` is exactly 0 the result is cut at 0 (``nonnegative_part``): a plain union
    rounds its radius up and dips below 0, which would spoil ``sqrt`` and sign tests on
    quantities known to be non-negative (even powers, ``Abs``, ``Max(x, 0)``).
    """
    if low.is_exact() and high.is_exact() and low == high:
        return low
    ball = low.union(high)
    if low.is_exact() and low == 0 and (high >= 0) is True:
        return ball.nonnegative_part()
    return ball


def interval(low: float | Fraction, high: float | Fraction) -> arb:
    """A ball containing the closed interval ``[low, high]``."""
    return hull(exact_arb(low), exact_arb(high))


def _power(base: arb, exponent: int) -> arb:
    """``base**exponent`` for an integer exponent, tight for even powers of signed balls."""
    if exponent == 0:
        return arb(1)
    if exponent < 0:
        return 1 / _power(base, -exponent)
    low, high = base.lower(), base.upper()
    low_power = low ** fmpz(exponent)
    high_power = high ** fmpz(exponent)
    if exponent % 2 == 0 and (low < 0) is not False and (high > 0) is not False:
        # The ball may straddle 0: the even power ranges over [0, max(|low|, |high|)^n].
        top = abs(low_power).union(abs(high_power)).upper()
        return hull(arb(0), top)  # exact lower end 0
    return hull(low_power, high_power)


def _maximum(*values: arb) -> arb:
    low = values[0].lower()
    high = values[0].upper()
    for value in values[1:]:
        low = low.max(value.lower())
        high = high.max(value.upper())
    return hull(low, high)


def _minimum(*values: arb) -> arb:
    low = values[0].lower()
    high = values[0].upper()
    for value in values[1:]:
        low = low.min(value.lower())
        high = high.min(value.upper())
    return hull(low, high)


def _absolute(value: arb) -> arb:
    low, high = value.lower(), value.upper()
    if (low >= 0) is True:
        return value
    if (high <= 0) is True:
        return -value
    top = abs(low).max(abs(high))
    return hull(arb(0), top)


def _sqrt(value: arb) -> arb:
    # A ball reaching below 0 gives NaN (undecided), never a silently clipped enclosure.
    return value.sqrt()


_UNARY: dict[type, Callable[[arb], arb]] = {
    sp.exp: lambda v: v.exp(),
    sp.log: lambda v: v.log(),
    sp.tanh: lambda v: v.tanh(),
    sp.sinh: lambda v: v.sinh(),
    sp.cosh: lambda v: v.cosh(),
    sp.sech: lambda v: v.sech(),
    sp.sin: lambda v: v.sin(),
    sp.cos: lambda v: v.cos(),
    sp.atan: lambda v: v.atan(),
    sp.erf: lambda v: v.erf(),
    sp.erfc: lambda v: v.erfc(),
    sp.Abs: _absolute,
}


def _condition_truth(condition: sp.Basic, compile_child: Callable[[sp.Basic], ArbFunction]):
    """Compile a Piecewise condition into a function returning True, False or None (undecided)."""
    if condition is sp.true:
        return lambda *_: True
    if condition is sp.false:
        return lambda *_: False
    relations = {
        sp.StrictGreaterThan: (lambda v: v > 0, lambda v: v <= 0),
        sp.GreaterThan: (lambda v: v >= 0, lambda v: v < 0),
        sp.StrictLessThan: (lambda v: v < 0, lambda v: v >= 0),
        sp.LessThan: (lambda v: v <= 0, lambda v: v > 0),
    }
    if type(condition) in relations:
        difference = compile_child(condition.lhs - condition.rhs)
        certainly_true, certainly_false = relations[type(condition)]

        def truth(*args: arb) -> bool | None:
            value = difference(*args)
            if certainly_true(value) is True:
                return True
            if certainly_false(value) is True:
                return False
            return None

        return truth
    raise NotCompilable(f"condition {condition} is not supported in interval arithmetic")


def compile_arb(expression: sp.Basic, symbols: Sequence[sp.Symbol]) -> ArbFunction:
    """Translate ``expression`` into a function of arb balls, one per symbol.

    Parameters
    ----------
    expression : sympy.Expr
        Built from numbers, the symbols, ``+ - * /``, integer and rational powers, ``exp``,
        ``log``, ``tanh``, ``sinh``, ``cosh``, ``sech``, ``sin``, ``cos``, ``atan``, ``erf``,
        ``erfc``, ``Abs``, ``Max``, ``Min``, ``Piecewise`` and the constants π and e.
    symbols : sequence of sympy.Symbol
        The argument order of the returned function.

    Returns
    -------
    callable
        ``f(*balls) -> arb``; the result contains the exact value for every point of the balls
        (rigorous: Arb's outward rounding).

    Raises
    ------
    NotCompilable
        For any other function (the caller then reports UNKNOWN rather than guessing).
    """
    positions = {symbol: index for index, symbol in enumerate(symbols)}
    cache: dict[sp.Basic, ArbFunction] = {}

    def build(node: sp.Basic) -> ArbFunction:
        if node in cache:
            return cache[node]
        function = _build(node)
        cache[node] = function
        return function

    def _build(node: sp.Basic) -> ArbFunction:
        if node.is_Symbol:
            if node not in positions:
                raise NotCompilable(f"free symbol {node} has no value")
            index = positions[node]
            return lambda *args: args[index]
        if node.is_Integer or node.is_Rational:
            constant = exact_arb(sp.Rational(node))
            return lambda *_: constant
        if node.is_Float:
            constant = exact_arb(sp.Rational(node))
            return lambda *_: constant
        if node is sp.pi:
            return lambda *_: arb.pi()
        if node is sp.E:
            return lambda *_: arb(1).exp()
        if node.is_Add:
            parts = [build(term) for term in node.args]

            def add(*args: arb) -> arb:
                total = parts[0](*args)
                for part in parts[1:]:
                    total = total + part(*args)
                return total

            return add
        if node.is_Mul:
            parts = [build(term) for term in node.args]

            def multiply(*args: arb) -> arb:
                total = parts[0](*args)
                for part in parts[1:]:
                    total = total * part(*args)
                return total

            return multiply
        if node.is_Pow:
            base = build(node.base)
            exponent = node.exp
            if exponent.is_Integer:
                power = int(exponent)
                return lambda *args: _power(base(*args), power)
            if exponent == sp.Rational(1, 2):
                return lambda *args: _sqrt(base(*args))
            if exponent == sp.Rational(-1, 2):
                return lambda *args: 1 / _sqrt(base(*args))
            if node.base is sp.E:
                exponent_function = build(exponent)
                return lambda *args: exponent_function(*args).exp()
            exponent_function = build(exponent)
            return lambda *args: (exponent_function(*args) * base(*args).log()).exp()
        if isinstance(node, sp.Max):
            parts = [build(term) for term in node.args]
            return lambda *args: _maximum(*(part(*args) for part in parts))
        if isinstance(node, sp.Min):
            parts = [build(term) for term in node.args]
            return lambda *args: _minimum(*(part(*args) for part in parts))
        if isinstance(node, sp.Piecewise):
            pieces = [(build(piece.expr), _condition_truth(piece.cond, build)) for piece in node.args]

            def piecewise(*args: arb) -> arb:
                result: arb | None = None
                for value, condition in pieces:
                    truth = condition(*args)
                    if truth is False:
                        continue
                    candidate = value(*args)
                    result = candidate if result is None else result.union(candidate)
                    if truth is True:
                        return result
                if result is None:
                    return arb.nan()
                return result

            return piecewise
        function = _UNARY.get(type(node)) or _UNARY.get(node.func)
        if function is not None and len(node.args) == 1:
            argument = build(node.args[0])
            return lambda *args: function(argument(*args))
        raise NotCompilable(f"{node.func.__name__} is not supported in interval arithmetic")

    return build(sp.sympify(expression))


def box_balls(box: Sequence[tuple[float, float]]) -> list[arb]:
    """One ball per coordinate interval of ``box``."""
    return [interval(low, high) for low, high in box]


@dataclass
class BranchAndBoundResult:
    """What :func:`certify_upper` established.

    Attributes
    ----------
    proved : bool
        True when every box was settled: ``f <= bound`` on the whole box (rigorous).
    counterexample : tuple of float, optional
        A point where ``f`` is certainly above the bound (rigorous, evaluated in arb).
    boxes : int
        Boxes examined.
    max_upper : float
        The largest upper end of the settled enclosures, rounded up: an upper bound of
        ``sup f`` over the box when ``proved``.
    unresolved : list of boxes
        Boxes left when the budget ran out.
    """

    proved: bool
    counterexample: tuple[float, ...] | None = None
    counterexample_value: float | None = None
    boxes: int = 0
    max_upper: float = -math.inf
    unresolved: list[tuple[tuple[float, float], ...]] = field(default_factory=list)


def _upper_float(value: arb) -> float:
    """A float at least as large as every point of ``value``."""
    upper = value.upper()
    result = float(upper)
    if (arb(result) < upper) is not False:
        result = math.nextafter(result, math.inf)
    return result


def _lower_float(value: arb) -> float:
    lower = value.lower()
    result = float(lower)
    if (arb(result) > lower) is not False:
        result = math.nextafter(result, -math.inf)
    return result


def certify_upper(
    function: ArbFunction,
    box: Sequence[tuple[float, float]],
    bound: arb,
    *,
    gradient: Sequence[ArbFunction] | None = None,
    max_boxes: int = 20000,
    min_width: float = 1e-12,
    exclude: Callable[[tuple[tuple[float, float], ...]], bool] | None = None,
    precision: int = 64,
) -> BranchAndBoundResult:
    """Prove ``function(x) <= bound`` for all ``x`` in ``box``, or find a point where it fails.

    Parameters
    ----------
    function : callable
        From :func:`compile_arb`.
    box : sequence of (low, high)
        The closed box, one interval per argument.
    bound : arb
        The claimed upper bound (a ball: the comparison uses its lower end).
    gradient : sequence of callable, optional
        Partial derivatives, enabling the mean-value form.
    max_boxes : int
        Budget; when exhausted the result is not proved and lists the open boxes.
    min_width : float
        Boxes narrower than this (relative to the original) are not split further; they are
        passed to ``exclude`` if given, else left unresolved.
    exclude : callable, optional
        ``exclude(box) -> bool``: a rigorous side argument that settles a tiny box (for example
        a maximum attained exactly at a critical point, see :func:`critical_point_excluder`).
    precision : int
        Arb working precision in bits.

    Returns
    -------
    BranchAndBoundResult
        ``proved`` is True only when every part of the box was settled by interval results
        (or by ``exclude``): a CERTIFIED claim. A counterexample is certified too.
    """
    box = tuple((float(low), float(high)) for low, high in box)
    widths0 = [max(high - low, 0.0) for low, high in box]
    result = BranchAndBoundResult(proved=False)
    with working_precision(precision):
        heap: list[tuple[float, int, tuple[tuple[float, float], ...]]] = []
        counter = 0

        def enclosure(current: tuple[tuple[float, float], ...]) -> arb:
            balls = box_balls(current)
            natural = function(*balls)
            if gradient is None:
                return natural
            middle = [exact_arb((low + high) / 2) for low, high in current]
            centred = function(*middle)
            for partial, ball, centre in zip(gradient, balls, middle, strict=True):
                centred = centred + partial(*balls) * (ball - centre)
            if not natural.is_finite():
                return centred
            if not centred.is_finite():
                return natural
            both = natural.intersection(centred) if natural.overlaps(centred) else centred
            return both

        def push(current: tuple[tuple[float, float], ...]) -> bool:
            nonlocal counter
            value = enclosure(current)
            result.boxes += 1
            if value.is_finite() and (value <= bound) is True:
                result.max_upper = max(result.max_upper, _upper_float(value))
                return False
            # Not settled: is the midpoint a certified counterexample?
            middle = tuple((low + high) / 2 for low, high in current)
            point_value = function(*(exact_arb(m) for m in middle))
            if point_value.is_finite() and (point_value > bound) is True:
                result.counterexample = middle
                result.counterexample_value = float(point_value.mid())
                return True
            priority = -_upper_float(value) if value.is_finite() else -math.inf
            counter += 1
            heapq.heappush(heap, (priority, counter, current))
            return False

        if push(box):
            return result
        while heap:
            if result.boxes >= max_boxes:
                result.unresolved = [entry[2] for entry in heap]
                return result
            _, _, current = heapq.heappop(heap)
            relative = [
                (high - low) / width0 if width0 > 0 else 0.0
                for (low, high), width0 in zip(current, widths0, strict=True)
            ]
            widest = max(range(len(current)), key=lambda i: relative[i])
            if relative[widest] <= min_width:
                if exclude is not None and exclude(current):
                    continue
                result.unresolved = [current, *(entry[2] for entry in heap)]
                return result
            low, high = current[widest]
            middle = (low + high) / 2
            if not low < middle < high:
                if exclude is not None and exclude(current):
                    continue
                result.unresolved = [current, *(entry[2] for entry in heap)]
                return result
            for part in ((low, middle), (middle, high)):
                child = current[:widest] + (part,) + current[widest + 1 :]
                if push(child):
                    return result
        result.proved = True
        return result


def critical_point_excluder(
    expression: sp.Expr,
    variable: sp.Symbol,
    bound: sp.Rational,
    domain: tuple[float, float],
    *,
    precision: int = 64,
) -> Callable[[tuple[tuple[float, float], ...]], bool]:
    """A side argument for tight one-dimensional maxima (``sup f`` equal to the bound).

    Branch and bound cannot settle ``f <= B`` near a point where ``f`` attains ``B``: every
    enclosure there pokes above ``B``. This excluder settles a tiny box ``X`` when an exact
    point ``c`` (found by ``sympy.nsimplify`` of the box midpoint, or an end of the domain)
    satisfies, with ``H`` the hull of ``X`` and ``c``:

    * ``f(c) <= B``, decided exactly by sympy (or by arb with a strict margin), and either
    * ``f'(c) = 0`` exactly (sympy) and ``f'' <= 0`` on ``H`` (arb): then
      ``f(x) = f(c) + f''(ξ)(x-c)²/2 <= f(c)`` (Taylor–Lagrange), or
    * ``c`` is the right end of ``H`` and ``f' >= 0`` on ``H``, or the left end and
      ``f' <= 0`` on ``H`` (arb): ``f`` rises towards ``c``.

    Every step is exact or outward rounded, so a settled box keeps the verdict CERTIFIED.
    """
    first = sp.diff(expression, variable)
    second = sp.diff(first, variable)
    first_arb = compile_arb(first, [variable])
    second_arb = compile_arb(second, [variable])

    def value_at_most_bound(point: sp.Expr) -> bool:
        gap = sp.nsimplify(bound) - expression.subs(variable, point)
        gap = sp.simplify(gap)
        if gap.is_zero:
            return True
        if gap.is_nonnegative is True:
            return True
        try:
            with working_precision(precision):
                value = compile_arb(gap, [])()
        except NotCompilable:
            return False
        return (value >= 0) is True

    def exclude(current: tuple[tuple[float, float], ...]) -> bool:
        ((low, high),) = current
        middle = (low + high) / 2
        tolerance = max(high - low, 1e-15) * 4
        candidates: list[sp.Expr] = [sp.Integer(0)] if abs(middle) <= tolerance else []
        candidates.append(sp.Rational(Fraction(middle).limit_denominator(1000)))
        try:
            candidates.append(sp.nsimplify(middle, [sp.pi, sp.E], tolerance=tolerance))
        except (ValueError, TypeError):  # pragma: no cover - nsimplify gave up
            pass
        candidates += [sp.Rational(Fraction(domain[0])), sp.Rational(Fraction(domain[1]))]
        for point in candidates:
            try:
                point_value = float(point)
            except TypeError:
                continue
            if not domain[0] <= point_value <= domain[1]:
                continue
            hull_low, hull_high = min(low, point_value), max(high, point_value)
            if hull_high - hull_low > 1e-3 * max(1.0, domain[1] - domain[0]):
                continue
            if not value_at_most_bound(point):
                continue
            with working_precision(precision):
                region = interval(hull_low, hull_high)
                if sp.simplify(first.subs(variable, point)) == 0:
                    if (second_arb(region) <= 0) is True:
                        return True
                slope = first_arb(region)
                if point_value >= hull_high and (slope >= 0) is True:
                    return True
                if point_value <= hull_low and (slope <= 0) is True:
                    return True
        return False

    return exclude


__all__ = [
    "BranchAndBoundResult",
    "NotCompilable",
    "certify_upper",
    "compile_arb",
    "critical_point_excluder",
    "exact_arb",
    "hull",
    "interval",
    "working_precision",
]
