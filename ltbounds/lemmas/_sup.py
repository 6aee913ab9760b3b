"""Rigorous bounds on ``sup |φ^(k)(x)|`` over an interval or the whole real line.

The activation facts (Lipschitz constants, bounds on φ'' and φ''') and the Taylor remainders
all reduce to one question: is ``|g(x)| <= B`` for every ``x`` in a region, where ``g`` is a
derivative of a registered activation? This module answers it with the strongest tool that
applies, piece by piece (ReLU, leaky ReLU and ELU are piecewise):

1. a constant piece is compared exactly (sympy);
2. a piece that depends on ``x`` only through ``tanh(x)`` or ``exp(±x)`` is rewritten in the
   saturating variable ``T = tanh(x) ∈ (-1, 1)`` or ``u = σ(x) = 1/(1 + e^{-x}) ∈ (0, 1)``
   (the identity ``g(x) = P(u)`` is checked by sympy); ``|P| <= B`` on the closed image
   interval is then a polynomial or rational inequality that z3 decides (PROVED) — this
   covers unbounded pieces too, since the image of the whole line is bounded;
3. otherwise, on a bounded interval: arb branch and bound with the mean-value form and, for
   maxima that touch the bound exactly, the critical-point side argument (CERTIFIED);
4. on an unbounded interval of a *gate* activation ``x·s(x)`` (SiLU with the logistic gate,
   GELU with the Gaussian gate): arb on ``[-R, R]`` plus a tail envelope for ``|x| >= R``
   whose ingredients are checked (sympy identities, z3 bounds, arb for the final number).

Every step states what it used; a verdict is PROVED only when no interval step was needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import sympy as sp
from flint import arb

from ltbounds.activations import Activation
from ltbounds.lemmas import _interval, _provers
from ltbounds.verdict import Status

X = sp.Symbol("x", real=True)
_T = sp.Symbol("T", real=True)
_U = sp.Symbol("u", positive=True)


@dataclass(frozen=True)
class SupCheck:
    """Outcome of :func:`check_sup`.

    Attributes
    ----------
    status : Status
        PROVED, CERTIFIED, FALSIFIED or UNKNOWN.
    method : str
        The methods used, joined by ``+``.
    detail : str
        One sentence per piece.
    counterexample : float, optional
        An ``x`` where ``|g(x)| > B`` certainly (FALSIFIED only).
    """

    status: Status
    method: str
    detail: str
    counterexample: float | None = None


def pieces(expression: sp.Expr, variable: sp.Symbol = X) -> list[tuple[sp.Expr, sp.Interval]]:
    """Split a piecewise expression into ``(expression, interval)`` pieces covering ℝ.

    ``Max``/``Min`` are rewritten as ``Piecewise`` first; a smooth expression is one piece.
    Degenerate pieces (single points) are dropped: they do not affect suprema of derivatives
    of continuous pieces over closures.
    """
    rewritten = expression
    if rewritten.has(sp.Max, sp.Min):
        rewritten = rewritten.rewrite(sp.Piecewise)
    rewritten = sp.piecewise_fold(rewritten)
    if not isinstance(rewritten, sp.Piecewise):
        return [(rewritten, sp.Interval(-sp.oo, sp.oo))]
    remaining: sp.Set = sp.S.Reals
    result: list[tuple[sp.Expr, sp.Interval]] = []
    for piece in rewritten.args:
        region = piece.cond.as_set() if piece.cond is not sp.true else sp.S.Reals
        region = sp.Intersection(region, remaining)
        remaining = sp.Complement(remaining, region)
        for part in (region.args if isinstance(region, sp.Union) else (region,)):
            if isinstance(part, sp.Interval) and part.measure > 0:
                result.append((piece.expr, part))
    return result


def _outer_rational(value: sp.Expr, direction: int) -> sp.Rational:
    """A rational ``<= value`` (direction -1) or ``>= value`` (+1), computed in arb."""
    if value.is_Rational:
        return sp.Rational(value)
    if value is sp.oo or value is -sp.oo:
        raise ValueError("infinite end")
    with _interval.working_precision(128):
        ball = _interval.compile_arb(value, [])()
    end = ball.lower() if direction < 0 else ball.upper()
    approx = float(end)
    while True:
        candidate = Fraction(approx)
        test = (arb(candidate.numerator) / candidate.denominator)
        if (test <= end) is True if direction < 0 else (test >= end) is True:
            return sp.Rational(candidate.numerator, candidate.denominator)
        approx = math.nextafter(approx, -math.inf if direction < 0 else math.inf)


def _image_end(value: sp.Expr, direction: int, infinite: int) -> tuple[sp.Rational, bool]:
    """An outward rational end of an image interval and whether arb was needed for it."""
    if value is sp.oo or value is -sp.oo:
        return sp.Integer(infinite), False
    return _outer_rational(value, direction), not value.is_Rational


def _saturating_form(derivative: sp.Expr, low: sp.Expr, high: sp.Expr):
    """``(P, variable, image_low, image_high, name, enclosed)`` when ``derivative`` depends on
    ``x`` only through ``tanh(x)`` or ``exp(±x)``; ``enclosed`` says that an end of the image
    interval is an outward rational enclosure computed in arb (not exact)."""
    if derivative.has(sp.tanh(X)):
        candidate = sp.expand(derivative.subs(sp.tanh(X), _T))
        if X not in candidate.free_symbols:
            if sp.simplify(candidate.subs(_T, sp.tanh(X)) - derivative) != 0:
                return None
            image_low, arb_low = _image_end(sp.tanh(low) if low.is_finite else low, -1, -1)
            image_high, arb_high = _image_end(sp.tanh(high) if high.is_finite else high, +1, 1)
            return candidate, _T, image_low, image_high, "T = tanh(x)", arb_low or arb_high
    if derivative.has(sp.exp):
        candidate = sp.cancel(sp.together(sp.simplify(derivative.subs(X, sp.log(_U / (1 - _U))))))
        if X not in candidate.free_symbols and not candidate.has(sp.exp, sp.log):
            back = sp.simplify(candidate.subs(_U, 1 / (1 + sp.exp(-X))) - derivative)
            if back != 0:
                return None
            sigma = 1 / (1 + sp.exp(-X))
            image_low, arb_low = _image_end(sigma.subs(X, low) if low.is_finite else low, -1, 0)
            image_high, arb_high = _image_end(sigma.subs(X, high) if high.is_finite else high, +1, 1)
            _, denominator = sp.fraction(candidate)
            if denominator.free_symbols:
                # The rational function must be defined on the closed image interval.
                with _interval.working_precision(64):
                    ball = _interval.compile_arb(denominator, [_U])(
                        _interval.interval(Fraction(int(image_low.p), int(image_low.q)), Fraction(int(image_high.p), int(image_high.q)))
                    )
                if ball.contains(0):
                    return None
            return candidate, _U, image_low, image_high, "u = σ(x) = 1/(1+e^{-x})", arb_low or arb_high
    return None


def _float_down(value: sp.Rational) -> float:
    result = float(value)
    return result if sp.Rational(Fraction(result)) <= value else math.nextafter(result, -math.inf)


def _float_up(value: sp.Rational) -> float:
    result = float(value)
    return result if sp.Rational(Fraction(result)) >= value else math.nextafter(result, math.inf)


def _x_from_substituted(name: str, value: Fraction) -> float:
    value = float(value)
    if name.startswith("T"):
        return math.atanh(max(min(value, 1 - 1e-16), -1 + 1e-16))
    value = max(min(value, 1 - 1e-16), 1e-16)
    return math.log(value / (1 - value))


def _bnb_on_interval(derivative: sp.Expr, variable: sp.Symbol, low: float, high: float, bound: sp.Rational) -> tuple[Status, str, float | None]:
    """``|derivative| <= bound`` on ``[low, high]`` by arb branch and bound (both signs)."""
    bound_ball = _interval.exact_arb(bound)
    boxes = 0
    maximum = -math.inf
    for sign in (1, -1):
        expression = sign * derivative
        function = _interval.compile_arb(expression, [variable])
        gradient = [_interval.compile_arb(sp.diff(expression, variable), [variable])]
        excluder = _interval.critical_point_excluder(expression, variable, bound, (low, high))
        result = _interval.certify_upper(
            function, [(low, high)], bound_ball, gradient=gradient, exclude=excluder, min_width=1e-9, max_boxes=40000
        )
        boxes += result.boxes
        if result.counterexample is not None:
            return Status.FALSIFIED, f"|g({result.counterexample[0]:.6g})| = {abs(result.counterexample_value):.6g} > {float(bound):.6g}", result.counterexample[0]
        if not result.proved:
            return Status.UNKNOWN, f"branch and bound left {len(result.unresolved)} boxes open on [{low:g}, {high:g}]", None
        maximum = max(maximum, result.max_upper)
    return Status.CERTIFIED, f"arb branch and bound on [{low:g}, {high:g}] ({boxes} boxes)", None


def _weakest(statuses: list[Status]) -> Status:
    order = [Status.FALSIFIED, Status.UNKNOWN, Status.TESTED, Status.CERTIFIED, Status.PROVED]
    return min(statuses, key=order.index)


# ------------------------------------------------------------------------ gate tails


def _logistic() -> sp.Expr:
    return 1 / (1 + sp.exp(-X))


def _gaussian_cdf() -> sp.Expr:
    return (1 + sp.erf(X / sp.sqrt(2))) / 2


def gate_of(activation: Activation) -> str | None:
    """``"logistic"`` for x·σ(x) (SiLU), ``"gaussian"`` for x·Φ(x) (GELU), else None."""
    expression = activation.expression
    if sp.simplify(expression - X * _logistic()) == 0:
        return "logistic"
    if sp.simplify(expression - X * _gaussian_cdf()) == 0:
        return "gaussian"
    return None


def _poly_sup_bound(polynomial: sp.Expr, variable: sp.Symbol, low: sp.Rational, high: sp.Rational) -> tuple[sp.Rational, str] | None:
    """A rational ``q`` with ``|polynomial| <= q`` on ``[low, high]``, proved by z3."""
    samples = [low + (high - low) * sp.Rational(i, 200) for i in range(201)]
    peak = max(abs(float(polynomial.subs(variable, s))) for s in samples)
    candidate = sp.Rational(Fraction(peak * 1.01 + 1e-9).limit_denominator(10**6)) + sp.Rational(1, 10**6)
    goal = sp.Le(sp.Abs(polynomial), candidate)
    outcome, _ = _provers.prove_z3(goal, [variable >= low, variable <= high])
    if outcome == "proved":
        return candidate, "z3"
    status, _, _ = _bnb_on_interval(polynomial, variable, _float_down(low), _float_up(high), candidate)
    if status is Status.CERTIFIED:
        return candidate, "arb"
    return None


def gate_tail_envelope(gate: str, order: int, radius: float) -> tuple[arb, str] | None:
    """An arb ball bounding ``sup_{|x| >= radius} |φ^(order)(x)|`` for ``φ = x·gate(x)``.

    Logistic gate (SiLU), ``s = σ``: ``φ^(k) = x s^(k) + k s^(k-1)``; for ``j >= 1``,
    ``s^(j) = s(1-s) Q_j(s)`` (sympy identity) and ``s(1-s) <= e^{-|x|}``; hence for
    ``|x| >= R >= 1``: ``|φ'| <= max(1 + R e^{-R}, (1 + R) e^{-R})`` and, for ``k >= 2``,
    ``|φ^(k)| <= e^{-R}(R q_k + k q_{k-1})`` with ``q_j >= sup_{[0,1]} |Q_j|`` (z3), using
    that ``(a t + b) e^{-t}`` decreases for ``t >= 1`` when ``a, b >= 0``.

    Gaussian gate (GELU), ``s = Φ``, ``ϕ = Φ'``: ``φ' = Φ + xϕ`` gives ``|φ'| <= 1 + Rϕ(R)``
    for ``|x| >= R >= 1``; for ``k >= 2``, ``φ^(k) = G_k(x) ϕ(x)`` with ``G_k`` a polynomial
    (sympy identity) and ``|x|^i ϕ(x)`` decreasing for ``|x| >= sqrt(i)``, so
    ``|φ^(k)| <= sum_i |g_i| R^i ϕ(R)`` for ``R >= sqrt(deg G_k)``.

    Returns None when an ingredient could not be checked.
    """
    R = sp.Rational(Fraction(radius))
    if R < 1:
        return None
    if gate == "logistic":
        s = _logistic()
        phi = X * s
        if order == 1:
            # |x| >= R: s + x s(1-s) <= 1 + x e^{-x} (x >= R) and <= (1 + |x|) e^{-|x|} (x <= -R).
            envelope = sp.Max(1 + R * sp.exp(-R), (1 + R) * sp.exp(-R))
            detail = "logistic gate, k = 1: |φ'| <= max(1 + R e^-R, (1 + R) e^-R)"
        else:
            q = {}
            for j in (order - 1, order):
                derivative = sp.diff(s, X, j)
                reduced = sp.cancel(sp.together(sp.simplify(derivative.subs(X, sp.log(_U / (1 - _U))))))
                Q = sp.cancel(reduced / (_U * (1 - _U)))
                if X in Q.free_symbols or not Q.is_polynomial(_U):
                    return None
                if sp.simplify((s * (1 - s) * Q.subs(_U, s)) - derivative) != 0:
                    return None
                found = _poly_sup_bound(Q, _U, sp.Integer(0), sp.Integer(1))
                if found is None:
                    return None
                q[j] = found[0]
            if sp.simplify(sp.diff(phi, X, order) - (X * sp.diff(s, X, order) + order * sp.diff(s, X, order - 1))) != 0:
                return None
            envelope = sp.exp(-R) * (R * q[order] + order * q[order - 1])
            detail = f"logistic gate, k = {order}: |φ^(k)| <= e^-R (R·{q[order]} + {order}·{q[order - 1]})"
        # s(1 - s) <= e^{-|x|}: with v = e^{-|x|} in (0, 1], v/(1+v)^2 <= v (z3).
        v = sp.Symbol("v", positive=True)
        if _provers.prove_nonnegative(v - v / (1 + v) ** 2) is None:
            return None
    elif gate == "gaussian":
        density = sp.exp(-(X**2) / 2) / sp.sqrt(2 * sp.pi)
        phi = X * _gaussian_cdf()
        if order == 1:
            if sp.simplify(sp.diff(phi, X) - (_gaussian_cdf() + X * density)) != 0:
                return None
            envelope = 1 + R * density.subs(X, R)
            detail = "gaussian gate, k = 1: |φ'| <= 1 + R ϕ(R)"
        else:
            G = sp.expand(sp.simplify(sp.diff(phi, X, order) / density))
            if not G.is_polynomial(X) or sp.simplify(G * density - sp.diff(phi, X, order)) != 0:
                return None
            polynomial = sp.Poly(G, X)
            if R**2 < polynomial.degree():
                return None
            envelope = sum(abs(c) * R**i for (i,), c in polynomial.terms()) * density.subs(X, R)
            detail = f"gaussian gate, k = {order}: φ^(k) = ({G})·ϕ(x); tail <= Σ|g_i| R^i ϕ(R)"
    else:
        return None
    with _interval.working_precision(128):
        ball = _interval.compile_arb(envelope, [])()
    return ball, detail


# ----------------------------------------------------------------------------- driver


def check_sup(
    activation: Activation,
    order: int,
    bound: float,
    *,
    radius: float | None = None,
    tail_radius: float = 8.0,
) -> SupCheck:
    """Decide ``sup |φ^(order)(x)| <= bound`` over ``|x| <= radius`` (None: all of ℝ).

    For ``order >= 2`` the activation must be that smooth: a piecewise activation whose
    pieces meet in a kink has no second derivative there, and the claim is refused as
    UNKNOWN (the registry states None for such bounds). For ``order = 1`` a continuous
    piecewise function's Lipschitz constant is the largest ``sup |φ'|`` over its pieces;
    continuity at the joints is checked by sympy.
    """
    bound_exact = sp.Rational(Fraction(bound))
    expression = activation.expression
    parts = pieces(expression)
    if len(parts) > 1:
        if order >= 2:
            return SupCheck(Status.UNKNOWN, "sympy", f"{activation.name} is piecewise: φ^({order}) does not exist at its joints")
        for (left, region_left), (right, _) in zip(parts, parts[1:], strict=False):
            joint = region_left.sup if region_left.sup is not sp.oo else region_left.inf
            if sp.simplify(left.subs(X, joint) - right.subs(X, joint)) != 0:
                return SupCheck(Status.UNKNOWN, "sympy", f"{activation.name} is discontinuous at x = {joint}")
    statuses: list[Status] = []
    methods: list[str] = []
    details: list[str] = []
    for piece, region in parts:
        low, high = region.inf, region.sup
        if radius is not None:
            low = max(low, -sp.Rational(Fraction(radius))) if low is not -sp.oo else -sp.Rational(Fraction(radius))
            high = min(high, sp.Rational(Fraction(radius))) if high is not sp.oo else sp.Rational(Fraction(radius))
            if not low < high:
                continue
        derivative = sp.diff(piece, X, order)
        if X in derivative.free_symbols and X not in sp.simplify(derivative).free_symbols:
            derivative = sp.simplify(derivative)
        where = f"[{low}, {high}]"
        if X not in derivative.free_symbols:
            holds = sp.Abs(derivative) <= bound_exact
            if holds is sp.true:
                statuses.append(Status.PROVED)
                methods.append("sympy exact")
                details.append(f"φ^({order}) = {derivative} on {where}")
                continue
            if low.is_finite and high.is_finite:
                inside = (low + high) / 2
            else:
                inside = low + 1 if low.is_finite else (high - 1 if high.is_finite else 0)
            return SupCheck(
                Status.FALSIFIED, "sympy exact", f"φ^({order}) = {derivative} on {where} exceeds {bound}",
                counterexample=float(inside),
            )
        saturating = _saturating_form(derivative, low, high)
        if saturating is not None:
            polynomial, variable, image_low, image_high, name, used_arb = saturating
            outcome, model = _provers.prove_z3(sp.Le(sp.Abs(polynomial), bound_exact), [variable >= image_low, variable <= image_high])
            if outcome == "proved":
                statuses.append(Status.CERTIFIED if used_arb else Status.PROVED)
                methods.append(f"z3 nlsat ({variable} = {'tanh x' if variable == _T else 'σ(x)'})" + (" + arb ends" if used_arb else ""))
                details.append(f"|P({variable})| <= {bound} for {variable} in [{image_low}, {image_high}] (x in {where})")
                continue
            if outcome == "falsified" and model is not None:
                value = model.get(variable.name, Fraction(0))
                point = sp.Rational(value.numerator, value.denominator)
                if (sp.Abs(polynomial.subs(variable, point)) > bound_exact) is sp.true:
                    x_value = _x_from_substituted(variable.name, value)
                    return SupCheck(
                        Status.FALSIFIED,
                        "z3 nlsat (model re-checked in sympy)",
                        f"|φ^({order})| = {float(abs(polynomial.subs(variable, point))):.6g} > {bound} at {variable} = {float(value):.6g}",
                        counterexample=x_value,
                    )
            # z3 missing or undecided: branch and bound on the bounded image interval instead.
            image = (_float_down(image_low), _float_up(image_high))
            status, detail, point = _bnb_on_interval(polynomial, variable, image[0], image[1], bound_exact)
            if status is Status.FALSIFIED:
                return SupCheck(
                    status, "arb branch and bound", f"{detail} ({variable})",
                    counterexample=_x_from_substituted(variable.name, Fraction(point)),
                )
            if status is Status.CERTIFIED:
                statuses.append(Status.CERTIFIED)
                methods.append(f"arb branch and bound ({variable} = {'tanh x' if variable == _T else 'σ(x)'})")
                details.append(f"{detail} in {variable} (x in {where})")
                continue
        if low.is_finite and high.is_finite:
            status, detail, point = _bnb_on_interval(derivative, X, float(low), float(high), bound_exact)
            if status is Status.FALSIFIED:
                return SupCheck(status, "arb branch and bound", detail, counterexample=point)
            statuses.append(status)
            methods.append("arb branch and bound")
            details.append(detail)
            continue
        gate = gate_of(activation)
        if gate is None:
            statuses.append(Status.UNKNOWN)
            methods.append("none")
            details.append(f"no rigorous method for the unbounded piece {where}")
            continue
        inner_low = float(max(low, -sp.Rational(Fraction(tail_radius)))) if low is not -sp.oo else -tail_radius
        inner_high = float(min(high, sp.Rational(Fraction(tail_radius)))) if high is not sp.oo else tail_radius
        status, detail, point = _bnb_on_interval(derivative, X, inner_low, inner_high, bound_exact)
        if status is Status.FALSIFIED:
            return SupCheck(status, "arb branch and bound", detail, counterexample=point)
        tail = gate_tail_envelope(gate, order, tail_radius)
        if tail is None:
            statuses.append(Status.UNKNOWN)
            methods.append("arb branch and bound")
            details.append(detail + f"; tail |x| >= {tail_radius:g} not established")
            continue
        envelope, tail_detail = tail
        tail_ok = (envelope <= _interval.exact_arb(bound_exact)) is True
        statuses.append(_weakest([status, Status.CERTIFIED if tail_ok else Status.UNKNOWN]))
        methods.append("arb branch and bound + tail envelope")
        details.append(f"{detail}; tail |x| >= {tail_radius:g}: {tail_detail} = {envelope.str(6)} {'<=' if tail_ok else 'not <='} {bound}")
    if not statuses:
        return SupCheck(Status.UNKNOWN, "none", "empty region")
    return SupCheck(_weakest(statuses), " + ".join(dict.fromkeys(methods)), "; ".join(details))


__all__ = ["SupCheck", "X", "check_sup", "gate_of", "gate_tail_envelope", "pieces"]
