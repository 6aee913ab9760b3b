"""Back-substitution bounds (:mod:`ltbounds.certify._backsub`): sound, and tighter where meant.

Slow twins: exact rationals for the relaxation planes and the rounded products, sampled
points and the gradient attack for whole networks (random small targets from
:mod:`ltbounds.strategies`), point boxes for the float error, and the existing differential
interval/symbolic propagation as the bound it has to beat on a ReLU CNN ticket.
"""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
import scipy.sparse as sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.certify import certify
from ltbounds.certify._alignment import align
from ltbounds.certify._backsub import (
    BackSubstitution,
    _dot_up,
    _interval_dot_up,
    _matmul,
    _OneHot,
    _rows_abs_apply_up,
    _sum_products_up,
    relu_difference_planes,
    smooth_difference_planes,
)
from ltbounds.certify._bounds import Engine, norms_of
from ltbounds.construct import construct
from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, MaxPool2d, TargetNet
from ltbounds.strategies import target_nets
from ltbounds.verdict import Status

CONSTRUCTIBLE = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu", "softplus")


def small_conv(activation: str = "relu", domain=(0.0, 1.0), seed: int = 1, pool=AvgPool2d) -> TargetNet:
    rng = np.random.default_rng(seed)
    layers = [
        Conv2d(rng.uniform(-1, 1, (3, 1, 3, 3)), rng.uniform(-0.3, 0.3, 3), padding=1),
        pool(2),
        Conv2d(rng.uniform(-1, 1, (3, 3, 3, 3)), rng.uniform(-0.3, 0.3, 3), padding=1),
        Flatten(),
        Dense(rng.uniform(-1, 1, (3, 12)), rng.uniform(-0.3, 0.3, 3)),
    ]
    return TargetNet(layers, (1, 4, 4), activation, domain, name="smallconv3")


def _root(target: TargetNet):
    low, high = target.input_domain
    return np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high)


def _check_points(method: BackSubstitution, target: TargetNet, ticket, box, points: np.ndarray) -> None:
    lower, upper = method.bound(box)
    seen = ticket.network().forward(points) - target.forward(points)
    slack = 1e-12 * (1 + np.abs(seen))
    assert np.all(seen >= lower - slack) and np.all(seen <= upper + slack)


# ------------------------------------------------------------------- exact twins of the pieces
@pytest.mark.parametrize("a", [0.0, 0.01])
def test_difference_planes_hold_at_exact_rational_points(a: float) -> None:
    rng = np.random.default_rng(int(a * 100))
    n = 300
    centre = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-6, 1, n)
    width = rng.uniform(0, 1, n) * 10.0 ** rng.integers(-6, 1, n)
    low, u = centre - width, centre + width
    low[:20] = u[:20] = centre[:20]  # point intervals
    dc = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-7, 0, n)
    dw = rng.uniform(0, 1, n) * 10.0 ** rng.integers(-7, 0, n)
    dl, du = dc - dw, dc + dw
    planes = relu_difference_planes((low, u), (dl, du), a)

    def phi(t: Fraction) -> Fraction:
        return t if t > 0 else Fraction(a) * t

    for j in range(n):
        zs = [low[j], u[j], 0.0, -dl[j], -du[j], *rng.uniform(low[j], u[j], 6)]
        ds = [dl[j], du[j], 0.0, -low[j], -u[j], *rng.uniform(dl[j], du[j], 6)]
        for z in zs:
            for d in ds:
                if not (low[j] <= z <= u[j] and dl[j] <= d <= du[j]):
                    continue
                zf, df = Fraction(z), Fraction(d)
                value = phi(zf + df) - phi(zf)
                upper = Fraction(planes.au[j]) * zf + Fraction(planes.bu[j]) * df + Fraction(planes.cu[j])
                lower = Fraction(planes.al[j]) * zf + Fraction(planes.bl[j]) * df + Fraction(planes.cl[j])
                assert lower <= value <= upper


_MP_PHI = {
    "gelu": lambda t: t / 2 * (1 + mpmath.erf(t / mpmath.sqrt(2))),
    "silu": lambda t: t / (1 + mpmath.exp(-t)),
    "tanh": mpmath.tanh,
}


@pytest.mark.parametrize("name", sorted(_MP_PHI))
def test_smooth_difference_lines_hold_at_high_precision_points(name: str) -> None:
    """``D = φ(z + Δ) − φ(z)`` between the lines at 60-digit values, also where φ's slope range
    dips below 0 (GELU and SiLU left of about −0.75 and −1.28), where the lines keep a slope."""
    from ltbounds.activations import get_activation  # noqa: PLC0415
    from ltbounds.certify._activation import slope_range  # noqa: PLC0415

    activation = get_activation(name)
    rng = np.random.default_rng(7)
    n = 200
    low = rng.uniform(-4, 2, n)
    up = low + rng.uniform(0, 2, n) * 10.0 ** rng.integers(-3, 1, n)
    dc = rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-6, -1, n)
    dw = rng.uniform(0, 1, n) * 10.0 ** rng.integers(-6, -1, n)
    dl, du = dc - dw, dc + dw
    z_hat = (low + dl - 1e-3, up + du + 1e-3)
    planes = smooth_difference_planes(activation, (low, up), (dl, du), z_hat)
    assert np.all(planes.au == 0) and np.all(planes.al == 0)
    negative = slope_range(activation, (low + np.minimum(dl, 0), up + np.maximum(du, 0)))[0] < 0
    if name != "tanh":
        assert negative.any() and np.any(planes.bu[negative] != 0)
    phi = _MP_PHI[name]
    with mpmath.workdps(60):
        for j in range(n):
            for z in (low[j], up[j], *rng.uniform(low[j], up[j], 3)):
                for d in (dl[j], du[j], 0.0, *rng.uniform(dl[j], du[j], 3)):
                    if not dl[j] <= d <= du[j]:
                        continue
                    value = phi(mpmath.mpf(z) + mpmath.mpf(d)) - phi(mpmath.mpf(z))
                    upper = mpmath.mpf(planes.bu[j]) * mpmath.mpf(d) + mpmath.mpf(planes.cu[j])
                    lower = mpmath.mpf(planes.bl[j]) * mpmath.mpf(d) + mpmath.mpf(planes.cl[j])
                    assert lower <= value <= upper, (name, j, z, d)


def test_rounded_products_are_bounded_by_the_stated_error() -> None:
    rng = np.random.default_rng(5)
    rows = rng.uniform(-1, 1, (4, 7)) * 10.0 ** rng.integers(-9, 9, (4, 7))
    matrix = rng.uniform(-1, 1, (7, 5)) * 10.0 ** rng.integers(-9, 9, (7, 5))
    size = rng.uniform(0, 3, 5)
    product, error = _matmul(rows, matrix, size)
    for i in range(4):
        total = Fraction(0)
        for j in range(5):
            exact = sum(Fraction(rows[i, k]) * Fraction(matrix[k, j]) for k in range(7))
            total += abs(exact - Fraction(product[i, j])) * Fraction(size[j])
        assert total <= Fraction(error[i])


# ------------------------------------------------------------------------ whole networks
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    target=target_nets(activations=CONSTRUCTIBLE, bias=True),
    rho=st.integers(3, 5),
    seed=st.integers(0, 2**32),
)
def test_bounds_hold_at_random_points_on_random_networks(target, rho, seed) -> None:
    ticket = construct(target, eps=0.5, rho=rho, seed=seed % 1000, param_eps=0.05)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    if method is None:  # max pooling: not offered
        return
    box = _root(target)
    _check_points(method, target, ticket, box, target.sample_inputs(10_000, seed % 11))
    # A random sub-box: the bound holds there too.
    rng = np.random.default_rng(seed % 97)
    lo, hi = box
    a = rng.uniform(lo, hi)
    b = rng.uniform(lo, hi)
    sub = (np.minimum(a, b), np.maximum(a, b))
    points = rng.uniform(sub[0][0], sub[1][0], (2000, *target.input_shape))
    _check_points(method, target, ticket, sub, points)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "gelu"])
def test_certify_with_back_substitution_is_never_falsified(activation: str) -> None:
    target = small_conv(activation, domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.5, rho=5, seed=1, param_eps=0.03)
    report = certify(target, ticket, samples=10_000, seed=2, restarts=4, steps=20, budget=2, methods=("ibp",))
    assert report.verdict.status is not Status.FALSIFIED, report.verdict.detail
    ibp = report.methods["ibp"]
    assert "backsub_linf" in ibp.detail
    assert ibp.linf >= report.attacked.linf and ibp.l2 >= report.attacked.l2
    assert ibp.detail["backsub_linf"] >= report.attacked.linf


def test_point_box_bound_is_narrow_and_brackets_the_float_error() -> None:
    target = small_conv("relu")
    ticket = construct(target, eps=0.5, rho=6, seed=3, param_eps=0.02)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    assert method is not None
    for x in target.sample_inputs(3, 4):
        box = (x[None], x[None])
        lower, upper = method.bound(box)
        seen = (ticket.network().forward(x[None]) - target.forward(x[None]))[0]
        assert np.all(lower <= seen + 1e-15) and np.all(seen <= upper + 1e-15)
        assert np.all(upper - lower <= 1e-9 * (1 + np.abs(seen)).max())


def test_tighter_than_the_forward_symbolic_bound_on_a_relu_cnn_ticket() -> None:
    target = small_conv("relu", seed=4)
    ticket = construct(target, eps=0.1, rho=12, seed=0, param_eps=0.002)
    engine = Engine.build(align(target, ticket))
    method = BackSubstitution.build(engine)
    assert method is not None
    box = _root(target)
    lower, upper = method.bound(box)
    mine = norms_of((lower[None], upper[None]))[0][0]
    symbolic = norms_of(engine.differential(box, symbolic=True)[0])[0][0]
    assert mine < symbolic


def test_not_offered_through_max_pooling() -> None:
    target = small_conv("relu", pool=MaxPool2d)
    ticket = construct(target, eps=0.5, rho=4, seed=1, param_eps=0.05)
    assert BackSubstitution.build(Engine.build(align(target, ticket))) is None


def test_dense_targets_are_bounded_too() -> None:
    rng = np.random.default_rng(0)
    target = TargetNet(
        [Dense(rng.uniform(-1, 1, (5, 3)), rng.uniform(-0.5, 0.5, 5)), Dense(rng.uniform(-1, 1, (2, 5)), None)],
        (3,),
        "relu",
        (-1.0, 1.0),
        name="dense2",
    )
    ticket = construct(target, eps=0.5, rho=5, seed=0, param_eps=0.02)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    assert method is not None
    _check_points(method, target, ticket, _root(target), target.sample_inputs(5000, 0))


# ------------------------------------- 2L tickets: univariate layers after the first target layer
_UNIVARIATE = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")


def _has_max_pooling(target: TargetNet) -> bool:
    return any(getattr(layer, "kind", "").startswith("maxpool") for layer in target.layers)


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=target_nets(activations=CONSTRUCTIBLE, bias=True), rho=st.integers(3, 5), seed=st.integers(0, 2**32))
def test_bounds_hold_at_random_points_on_random_2l_tickets(target, rho, seed) -> None:
    """Every target layer read through a univariate layer: ``x̂ = h + D`` of an earlier layer's
    copy, relaxed on its back-substituted interval (exact where it has one sign)."""
    ticket = construct(target, eps=0.5, rho=rho, seed=seed % 1000, param_eps=0.05, depth="2L")
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    if _has_max_pooling(target):
        assert method is None
        return
    assert method is not None
    box = _root(target)
    _check_points(method, target, ticket, box, target.sample_inputs(3000, seed % 11))
    rng = np.random.default_rng(seed % 97)
    a, b = rng.uniform(box[0], box[1]), rng.uniform(box[0], box[1])
    sub = (np.minimum(a, b), np.maximum(a, b))
    _check_points(method, target, ticket, sub, rng.uniform(sub[0][0], sub[1][0], (1000, *target.input_shape)))


@pytest.mark.parametrize("activation", _UNIVARIATE)
@pytest.mark.parametrize("domain", [(0.0, 1.0), (-1.0, 1.0)])
def test_2l_ticket_of_a_small_cnn_is_bounded_on_the_box_and_on_point_boxes(activation: str, domain) -> None:
    """On point boxes the bound brackets the float error; for ReLU-like φ every relaxation is
    exact there, so it is also narrow (a wrong primary-copy mapping or a dropped ``T·D`` term
    would show); smooth φ keep their Taylor remainder."""
    target = small_conv(activation, domain=domain)
    ticket = construct(target, eps=0.5, rho=4, seed=2, param_eps=0.02, depth="2L")
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    assert method is not None and all(stage.transition.kind == "univariate" for stage in method.stages)
    _check_points(method, target, ticket, _root(target), target.sample_inputs(3000, 1))
    for x in target.sample_inputs(3, 4):
        box = (x[None], x[None])
        lower, upper = method.bound(box)
        seen = (ticket.network().forward(x[None]) - target.forward(x[None]))[0]
        slack = 1e-12 * (1 + np.abs(seen))
        assert np.all(seen >= lower - slack) and np.all(seen <= upper + slack)
        if activation in ("relu", "leaky_relu"):
            assert np.all(upper - lower <= 1e-9 * (1 + np.abs(seen)).max())


def test_2l_bound_is_tighter_than_the_forward_symbolic_bound_on_a_relu_cnn_ticket() -> None:
    target = small_conv("relu", seed=4)
    ticket = construct(target, eps=0.1, rho=12, seed=0, param_eps=0.002, depth="2L")
    engine = Engine.build(align(target, ticket))
    method = BackSubstitution.build(engine)
    assert method is not None
    box = _root(target)
    lower, upper = method.bound(box)
    points = target.sample_inputs(3000, 2)
    _check_points(method, target, ticket, box, points)
    mine = norms_of((lower[None], upper[None]))[0][0]
    symbolic = norms_of(engine.differential(box, symbolic=True)[0])[0][0]
    assert mine < symbolic


# ----------------------------------------------------- the per-unit relaxation of smooth copies
def _grouped_bounds(method: BackSubstitution, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(lower, upper) of the grouped relaxation alone, and the per-copy upper, per output."""
    state = method._prepare(box)
    k = len(method.stages) - 1
    n_z = len(method.stages[k].bias)
    select = method.stages[k].after_copies.toarray()
    zeros = np.zeros((select.shape[0], n_z))
    upper = method._upper(state, k, zeros, select, grouped=True)
    lower = -method._upper(state, k, zeros, -select, grouped=True)
    per_copy = method._upper(state, k, zeros, select)
    order = np.argsort(method.alignment.output_map)
    return lower[order], upper[order], per_copy[order]


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    target=target_nets(activations=("tanh", "sigmoid", "gelu", "silu", "softplus"), bias=True),
    rho=st.integers(3, 5),
    seed=st.integers(0, 2**32),
)
def test_grouped_smooth_relaxation_alone_holds_at_random_points(target, rho, seed) -> None:
    ticket = construct(target, eps=0.5, rho=rho, seed=seed % 1000, param_eps=0.05)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    if method is None or len(method.stages) < 2:
        return
    lower, upper, _ = _grouped_bounds(method, _root(target))
    points = target.sample_inputs(10_000, seed % 13)
    seen = ticket.network().forward(points) - target.forward(points)
    slack = 1e-12 * (1 + np.abs(seen))
    assert np.all(seen >= lower - slack) and np.all(seen <= upper + slack)


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_grouped_smooth_relaxation_is_tighter_on_a_small_cnn_ticket(activation: str) -> None:
    target = small_conv(activation, domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.05, seed=1)  # the theorem's ρ: no missed subset sums
    assert ticket.metadata["missed_subset_sums"] == 0
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    lower, upper, per_copy = _grouped_bounds(method, _root(target))
    # Measured: tanh 1.15e-2 -> 1.02e-2, gelu 2.82e-2 -> 1.71e-2. With large Δ (tickets full of
    # misses) the Taylor remainder dominates instead and the per-copy bound is kept.
    points = target.sample_inputs(10_000, 5)
    seen = ticket.network().forward(points) - target.forward(points)
    assert np.all(seen <= upper + 1e-12) and np.all(seen >= lower - 1e-12)
    assert np.max(upper) < np.max(per_copy)
    both = method.bound(_root(target))
    assert np.all(both[1] <= per_copy) and np.all(both[1] <= upper)  # the smaller of the two


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_grouped_smooth_relaxation_brackets_the_float_error_on_point_boxes(activation: str) -> None:
    """On a point box every slack but the Taylor remainder vanishes, so a wrong unit mapping or
    a missing remainder shows (the whole box hides them behind its slack)."""
    target = small_conv(activation, domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.05, seed=1)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    for point in target.sample_inputs(4, 9):
        box = (point[None], point[None])
        lower, upper, _ = _grouped_bounds(method, box)
        seen = (ticket.network().forward(point[None]) - target.forward(point[None]))[0]
        slack = 1e-12 * (1 + np.abs(seen))
        assert np.all(seen >= lower - slack) and np.all(seen <= upper + slack)


# ------------------------------------------- the fast paths against the unoptimised computation
def _same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as floats, NaN where NaN (a zero's sign may differ, which no later step reads)."""
    return np.array_equal(a, b, equal_nan=True)


def test_one_hot_rows_give_the_dense_results_exactly() -> None:
    rng = np.random.default_rng(11)
    width, out = 40, 7
    columns = rng.integers(0, width, 9)
    values = rng.uniform(-1, 1, 9) * 10.0 ** rng.integers(-300, 300, 9)
    values[[2, 5]] = 0.0  # zero rows
    values[3] = 5e-324  # subnormal products
    rows = _OneHot(columns, values, width)
    dense = rows.dense()
    assert _OneHot.of(dense) is not None and _OneHot.of(np.ones((2, 3))) is None
    matrix = rng.uniform(-1, 1, (width, out)) * 10.0 ** rng.integers(-9, 9, (width, out))
    matrix[rng.uniform(size=matrix.shape) < 0.5] = 0.0
    size = rng.uniform(0, 3, out)
    vector = rng.uniform(-2, 2, width) * 10.0 ** rng.integers(-5, 5, width)
    interval = (vector - rng.uniform(0, 1, width), vector + rng.uniform(0, 1, width))
    for m in (matrix, sparse.csr_matrix(matrix)):
        fast, slow = _matmul(rows, m, size), _matmul(dense, m, size)
        assert _same(fast[0], slow[0]) and _same(fast[1], slow[1])
        error = sparse.csr_matrix(abs(m)) * 1e-16
        fast, slow = _matmul(rows, m, size, error), _matmul(dense, m, size, error)
        assert _same(fast[0], slow[0]) and _same(fast[1], slow[1])
    positive = np.abs(vector)
    assert _same(_rows_abs_apply_up(rows, positive), _rows_abs_apply_up(dense, positive))
    assert _same(_dot_up(rows, vector), _dot_up(dense, vector))
    assert _same(_interval_dot_up(rows, interval), _interval_dot_up(dense, interval))
    assert _same(_sum_products_up(rows, vector), _sum_products_up(dense, vector))
    # A non-finite operand (0·∞ is NaN in the dense product): the same NaNs.
    with np.errstate(invalid="ignore"):
        _check_non_finite(rows, dense, vector, matrix, columns, out)


def _check_non_finite(rows, dense, vector, matrix, columns, out) -> None:
    vector = vector.copy()
    vector[columns[0]] = np.inf
    positive = np.abs(vector)
    assert np.isnan(_rows_abs_apply_up(dense, positive)).any()
    assert _same(_rows_abs_apply_up(rows, positive), _rows_abs_apply_up(dense, positive))
    assert _same(_dot_up(rows, vector), _dot_up(dense, vector))
    assert _same(_sum_products_up(rows, vector), _sum_products_up(dense, vector))
    fast, slow = _matmul(rows, matrix, positive[:out]), _matmul(dense, matrix, positive[:out])
    assert _same(fast[0], slow[0]) and _same(fast[1], slow[1])


def _reference_bound(method: BackSubstitution, box):
    method._reference = True
    try:
        return method.bound(box)
    finally:
        method._reference = False


@pytest.mark.parametrize("depth", ["L+1", "2L"])
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "gelu"])
def test_bound_equals_the_unoptimised_computation(activation: str, depth: str) -> None:
    """One-hot rows, per-box caches, shared products of ±rows and skipped zero products change
    no float: the bound is bit-identical to the dense computation without them."""
    target = small_conv(activation, domain=(-1.0, 1.0))
    ticket = construct(target, eps=0.05, rho=6, seed=2, param_eps=0.01, depth=depth)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    assert method is not None
    point = target.sample_inputs(1, 3)
    for box in (_root(target), (point, point)):
        fast = method.bound(box)
        slow = _reference_bound(method, box)
        assert _same(fast[0], slow[0]) and _same(fast[1], slow[1])


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck))
@given(target=target_nets(activations=CONSTRUCTIBLE, bias=True), seed=st.integers(0, 2**32))
def test_bound_equals_the_unoptimised_computation_on_random_networks(target, seed) -> None:
    ticket = construct(target, eps=0.5, rho=4, seed=seed % 1000, param_eps=0.05)
    method = BackSubstitution.build(Engine.build(align(target, ticket)))
    if method is None:
        return
    fast = method.bound(_root(target))
    slow = _reference_bound(method, _root(target))
    assert _same(fast[0], slow[0]) and _same(fast[1], slow[1])
