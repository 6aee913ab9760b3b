"""Independent re-derivation of lemma verdicts, for the tests.

Nothing here reuses the provers: a PROVED identity is evaluated at random points in mpmath,
a CERTIFIED supremum is compared with a dense float64 sample that must stay below it, a width
requirement is recomputed with plain floats, a FALSIFIED counterexample must violate the
statement numerically.
"""

from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import sympy as sp

from ltbounds.activations import get_activation
from ltbounds.lemmas.base import Lemma
from ltbounds.verdict import Status, Verdict

_TOLERANCE = 1e-9


def _holds(kind: type, lhs: float, rhs: float) -> bool:
    scale = max(1.0, abs(lhs), abs(rhs))
    if kind is sp.Equality:
        return abs(lhs - rhs) <= 1e-20 * scale
    if kind in (sp.LessThan, sp.StrictLessThan):
        return lhs <= rhs + _TOLERANCE * scale
    return lhs >= rhs - _TOLERANCE * scale


def _mp_sides(lemma: Lemma, point: dict[sp.Symbol, float]) -> tuple[float, float]:
    kind, lhs, rhs = lemma.sides()
    with mpmath.workdps(40):
        left = sp.N(lhs.subs({s: sp.Float(v, 40) for s, v in point.items()}), 30)
        right = sp.N(rhs.subs({s: sp.Float(v, 40) for s, v in point.items()}), 30)
        return float(left), float(right)


def random_points(lemma: Lemma, count: int, seed: int = 1) -> list[dict[sp.Symbol, float]]:
    """Admissible random points: inside the lemma's box and domains, satisfying the hypotheses.

    A hypothesis ``v <= E`` / ``v >= E`` with a symbol ``v`` on the left is met constructively
    (``v = E ∓ random slack``, after the symbols of ``E`` are drawn); the others by rejection.
    """
    rng = np.random.default_rng(seed)
    box = {name: (low, high) for name, low, high in lemma.box}
    hypotheses = list(lemma.expanded_hypotheses())
    constructive = {}
    for hypothesis in hypotheses:
        if hypothesis.lhs.is_Symbol and hypothesis.lhs not in hypothesis.rhs.free_symbols and hypothesis.lhs not in constructive:
            constructive[hypothesis.lhs] = hypothesis
    checks = [
        (sp.lambdify(sorted(h.free_symbols, key=str), h.lhs - h.rhs, "math"), sorted(h.free_symbols, key=str), type(h))
        for h in hypotheses
    ]
    points = []
    attempts = 0
    while len(points) < count and attempts < 50 * count:
        attempts += 1
        point: dict[sp.Symbol, float] = {}
        for parameter in lemma.parameters:
            if parameter.symbol in constructive:
                continue
            if parameter.name in box:
                low, high = box[parameter.name]
            else:
                low, high, _ = parameter.sampling_range()
            if parameter.integer:
                point[parameter.symbol] = float(rng.integers(int(math.ceil(low)), int(min(high, 50)) + 1))
            else:
                point[parameter.symbol] = float(rng.uniform(low, high))
        pending = dict(constructive)
        while pending:
            ready = [s for s, h in pending.items() if h.rhs.free_symbols <= set(point)]
            if not ready:
                break
            for symbol in ready:
                hypothesis = pending.pop(symbol)
                bound = float(hypothesis.rhs.subs(point))
                slack = float(rng.exponential(0.5 * max(1.0, abs(bound))))
                upper = type(hypothesis) in (sp.LessThan, sp.StrictLessThan)
                value = bound - slack if upper else bound + slack
                if symbol.is_integer:
                    value = float(math.floor(value) if upper else math.ceil(value))
                point[symbol] = value
        if pending or not all(p.symbol in point for p in lemma.parameters):
            continue
        try:
            parameter_ok = all(p.validate(int(point[p.symbol]) if p.integer else point[p.symbol]) is not None for p in lemma.parameters)
        except Exception:  # noqa: BLE001 - an inadmissible draw is simply skipped
            parameter_ok = False
        if not parameter_ok:
            continue
        satisfied = True
        for function, symbols, kind in checks:
            value = function(*(point[s] for s in symbols))
            if not _holds(kind, value, 0.0) or (kind in (sp.StrictLessThan, sp.StrictGreaterThan) and value == 0):
                satisfied = False
                break
        if satisfied:
            points.append(point)
    return points


def _derivative_grid(name: str, order: int) -> float:
    x = sp.Symbol("x", real=True)
    expression = get_activation(name).symbolic(x)
    derivative = sp.diff(expression, x, order)
    function = sp.lambdify(x, derivative, modules=[{"erf": np.vectorize(math.erf)}, "numpy"])
    grid = np.concatenate([np.linspace(-60, 60, 240001), np.linspace(-1e-3, 1e-3, 2001)])
    grid = grid[grid != 0]  # piecewise activations have kinks at 0
    with np.errstate(all="ignore"):
        values = np.abs(np.asarray(function(grid), dtype=float) * np.ones_like(grid))
    return float(np.nanmax(values))


def rederive(lemma: Lemma, verdict: Verdict, samples: int = 30) -> None:
    """Assert that ``verdict`` on ``lemma`` survives an independent numeric check."""
    status = verdict.status
    if status is Status.UNKNOWN:
        return
    name = lemma.name
    if status is Status.FALSIFIED:
        assert verdict.counterexample is not None, f"{name}: FALSIFIED without a counterexample"
        if name.startswith("activation.fact["):
            activation, fact = name[len("activation.fact[") : -1].split(",")
            order = {"lipschitz": 1, "second_derivative_bound": 2, "third_derivative_bound": 3}[fact]
            x = sp.Symbol("x", real=True)
            value = abs(float(sp.N(sp.diff(get_activation(activation).symbolic(x), x, order).subs(x, verdict.counterexample["x"]))))
            assert value > getattr(get_activation(activation), fact)
            return
        point = {p.symbol: float(verdict.counterexample[p.name]) for p in lemma.parameters}
        kind, _, _ = lemma.sides()
        lhs, rhs = _mp_sides(lemma, point)
        assert not _holds(kind, lhs, rhs) or (kind is sp.Equality and abs(lhs - rhs) > 0), f"{name}: counterexample {point} does not violate"
        return
    if name.startswith("activation.fact["):
        activation, fact = name[len("activation.fact[") : -1].split(",")
        stated = getattr(get_activation(activation), fact)
        order = {"lipschitz": 1, "second_derivative_bound": 2, "third_derivative_bound": 3}.get(fact)
        if order is not None:
            assert _derivative_grid(activation, order) <= stated * (1 + 1e-12), f"{name}: dense sample above {stated}"
        else:
            x = sp.Symbol("x", real=True)
            expression = get_activation(activation).symbolic(x)
            exact = {
                "value_at_zero": lambda: expression.subs(x, 0),
                "slope_at_zero": lambda: sp.limit((expression.subs(x, x) - expression.subs(x, 0)) / x, x, 0, "+"),
                "relu_like_negative_slope": lambda: -expression.subs(x, -1),
            }[fact]()
            assert abs(float(exact) - stated) <= 1e-15 * max(1.0, abs(stated))
        return
    if name.startswith("widths.requirement["):
        requirement = verdict.extra["requirement"]
        rederive_requirement(requirement, lemma)
        return
    if name.startswith("composition.affine_split"):
        rng = np.random.default_rng(0)
        W, W_hat = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
        h, h_hat, b, b_hat = rng.normal(size=3), rng.normal(size=3), rng.normal(size=4), rng.normal(size=4)
        lhs = W_hat @ h_hat + b_hat - (W @ h + b)
        target = W @ (h_hat - h) + (W_hat - W) @ h_hat + (b_hat - b)
        source = W_hat @ (h_hat - h) + (W_hat - W) @ h + (b_hat - b)
        assert np.allclose(lhs, target) and np.allclose(lhs, source)
        return
    if name == "composition.unrolled_induction":
        rng = np.random.default_rng(0)
        for depth in range(1, 7):
            a, b, e0 = rng.uniform(0, 2, depth + 1), rng.uniform(0, 2, depth + 1), rng.uniform()

            def closed(n: int, a=a, b=b, e0=e0) -> float:
                return math.prod(b[:n]) * e0 + sum(a[j] * math.prod(b[j + 1 : n]) for j in range(n))

            assert math.isclose(closed(depth + 1), b[depth] * closed(depth) + a[depth], rel_tol=1e-12)
        return
    if name.startswith("composition.allotment_instance"):
        return  # re-derived by simulation in tests/test_lemmas_composition.py
    if name.startswith("subsetsum.product_density"):
        for value in (0.01, 0.1, 0.5, 0.9):
            if "positive" in name:
                numeric = mpmath.quad(lambda a, v=value: 0.5 / a, [value, 1])
            elif "mass" in name:
                numeric = 2 * mpmath.quad(lambda t: mpmath.log(1 / t) / 2, [0, 1])
                assert abs(numeric - 1) < 1e-12
                return
            else:
                numeric = 2 * mpmath.quad(lambda a, v=value: 0.25 / a, [value, 1])
            assert abs(numeric - math.log(1 / value) / 2) < 1e-12
        return
    kind, lhs, rhs = lemma.sides()
    free = lhs.free_symbols | rhs.free_symbols
    if not free:
        assert _holds(kind, *_mp_sides(lemma, {})), f"{name}: closed statement does not hold numerically"
        return
    if lhs.has(sp.Sum, sp.Product, sp.Integral) or rhs.has(sp.Sum, sp.Product, sp.Integral):
        return
    if lemma.checker is not None and not lemma.parameters:
        return
    points = random_points(lemma, samples)
    assert points, f"{name}: no admissible sample point"
    for point in points:
        assert _holds(kind, *_mp_sides(lemma, point)), f"{name}: fails numerically at {point}"


def rederive_requirement(requirement: dict, lemma: Lemma) -> None:
    """Recompute a width requirement with plain floats from its own reported numbers."""
    theorem = requirement["theorem"]
    widths = requirement["widths"]
    assert requirement["source_depth"] == len(widths)
    assert all(isinstance(w, int) and w >= 1 for w in widths)
    if requirement["per_layer_eps"]:
        N = requirement["subset_sum_problems"]
        delta = float(lemma.name.split("delta=")[1].rstrip("]"))
        constants = {c["law"]: c["value"] for c in requirement["constants"]}
        for index, (rho, eps_l) in enumerate(zip(requirement["rho"], requirement["per_layer_eps"], strict=True)):
            law = "product" if theorem == "burkholz_2l" or index == 0 else "uniform"
            needed = constants[law] * math.log(1 / min(eps_l, delta / N))
            assert needed - 1e-9 <= rho < needed + 1 + 1e-9, (theorem, index, rho, needed)
    assert requirement["factor"] == requirement["source_params"] / requirement["target_params"]
    assert Fraction(requirement["source_params"]) > 0
