"""Back-substitution bounds of the ticket's error: differential CROWN/DeepPoly, outward rounded.

The forward symbolic bounds of :mod:`._symbolic` concretise the slack of every relaxed ReLU
into an interval *per tracked copy*; the next copy layer then sums those intervals with
``|Ŵ|`` (about 100 per output of the ReLU CNN's last layer, against the target's ``Σ|W|`` of
about 14), so the copies' errors cannot cancel. This module instead walks *backwards* from each
quantity to be bounded (Zhang et al., NeurIPS 2018; Singh et al., POPL 2019) through the joint
(target, ticket) network written in differences (Paulsen et al., ICSE 2020: ReluDiff): the
state of transition ``k`` is the target's pre-activation ``z`` and, per tracked copy, the
pre-activation difference ``Δ`` (:mod:`._alignment`); its outputs are ``φ(z)`` and
``D = φ(z + Δ) − φ(z)``. A row of coefficients is carried back layer by layer, so that the
coefficient of a copy's ``Δ`` in an earlier layer is ``Σ_c λ_c Ŵ[c, c']``, summed over the
copies *before* any absolute value is taken: that is where the copies cancel.

Relaxations (per entry, picked by the sign of its coefficient):

* ``φ(z)``: the DeepPoly/CROWN lines (:func:`._symbolic.relu_like_relaxation`; for smooth φ
  parallel lines of the least slope, intervals where φ is not monotone);
* ``D(z, Δ) = φ(z + Δ) − φ(z)`` for ReLU-like φ: a plane ``a·z + b·Δ + c`` in *both* arguments,
  picked among a few slopes (``b`` ∈ {0, 1, the two chords}, ``a`` ∈ {0, ±dl/(u−l),
  ±du/(u−l)}) by the least mean slack over the box. ``D`` is piecewise linear with kinks on
  ``z = 0`` and ``z + Δ = 0``, so a plane lies above it on the box iff it does at the vertices
  of those pieces (corners, the kinks' crossings with the edges, and the origin); the
  intercept is the outward-rounded maximum there. For smooth φ, lines in ``Δ`` bounding
  ``g·Δ`` for ``g`` in φ's slope range on the hull of both pre-activations
  (:func:`._symbolic.product_relaxation`);
* for smooth φ, for the output rows, also per target unit at every hidden layer
  (:meth:`BackSubstitution._grouped_difference`: the copies of a unit share φ'(z), so their
  summed ``Δ`` is bounded before the slope's range is applied); the smaller bound is kept.

A univariate pair (a 1×1 univariate layer before the target layer) reads ``x̂ = h + D`` of the
previous layer's primary copies: ``φ(±x̂)`` (ReLU-like φ) is relaxed by its lines on ``x̂``'s
interval, exact where that has one sign, and the coefficient of ``x̂`` goes onto both ``h`` and
``D`` (:meth:`BackSubstitution._univariate_inputs`); for smooth φ the pair is linear in ``x̂``.

Intermediate bounds (of ``z`` and ``Δ`` of every hidden transition, and of ``x̂`` at univariate
pairs after the first) are themselves computed by back-substitution, row by row, and
intersected with the interval enclosures.

Rigour in float64: a back-substituted row is a float vector ``A`` taken as exact reals, and
the invariant is ``quantity <= A·v + C`` on the box for the current variables ``v``. Every
product ``A·M`` computed in float differs from the exact one by at most ``γ_n |A||M|``
(Higham, *Accuracy and Stability*, §3.1); that error times the magnitude of ``v`` (from the
interval enclosures) goes into ``C``, rounded up, as do the relaxations' intercepts and the
rounding of their slopes. The lower bound is the upper bound of the negated row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sparse

from ltbounds.certify._activation import activation_image, slope_range
from ltbounds.certify._alignment import Alignment, Transition
from ltbounds.certify._rigorous import (
    UNIT_ROUNDOFF,
    Interval,
    LinearOp,
    absolute_slack,
    add,
    down,
    enclose_linear,
    growth,
    hull,
    intersect,
    magnitude,
    negate,
    subtract,
    up,
)
from ltbounds.certify._symbolic import monotone_relaxation, product_relaxation, relu_like_relaxation
from ltbounds.nets import Flatten

#: Rows back-substituted together (bounds the memory of one chunk: rows × widest layer).
CHUNK_ROWS = 512
#: Largest dense matrix (entries) a transition may need; above it the method is not offered.
MAX_MATRIX_ENTRIES = 40_000_000
#: Relative error of one float multiplication, with room for the neighbouring float.
_PRODUCT = 2.0 * UNIT_ROUNDOFF


# ------------------------------------------------------------------ rigorous row algebra
@dataclass(frozen=True)
class _OneHot:
    """Rows ``values[i] · e_{columns[i]}`` of ``width`` columns (a zero row where the value is 0).

    The rows :meth:`BackSubstitution._bound_rows` starts from (one entry of ``z`` or ``Δ`` per
    row) and the zero rows beside them. Every product of such a row has at most one nonzero
    term, so the helpers below take it by selection: ``fl(v·m)``, the very float operation a
    dense BLAS product performs there, the other terms being exact zeros that change no sum
    (IEEE: ``x + 0 = x``). The results equal the dense computation's (a zero's sign aside, which
    no later step reads), at the cost of the output instead of rows × width. Where an operand
    is not finite (``0·∞`` would be NaN in the dense product) the helpers fall back to it.
    """

    columns: np.ndarray
    values: np.ndarray
    width: int

    @classmethod
    def zeros(cls, rows: int, width: int) -> _OneHot:
        return cls(np.zeros(rows, dtype=np.intp), np.zeros(rows), width)

    @classmethod
    def of(cls, dense: np.ndarray) -> _OneHot | None:
        """The rows of ``dense`` as one-hot rows, or None where a row has two nonzeros."""
        nonzero = dense != 0
        if np.any(nonzero.sum(axis=1) > 1):
            return None
        columns = np.argmax(nonzero, axis=1)
        return cls(columns, dense[np.arange(dense.shape[0]), columns], dense.shape[1])

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.values), self.width)

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape)
        out[np.arange(len(self.values)), self.columns] = self.values
        return out


Rows = np.ndarray | _OneHot


def _finite(*arrays: np.ndarray) -> bool:
    return all(bool(np.isfinite(a).all()) for a in arrays)


def _abs_apply_up(matrix: Any, vector: np.ndarray) -> np.ndarray:
    """Upper bound of ``|M| v`` for ``v >= 0`` (rows of ``M`` dense, sparse or one-hot)."""
    terms = matrix.shape[1]
    if isinstance(matrix, _OneHot):
        if _finite(vector):
            total = np.abs(matrix.values) * vector[matrix.columns]
            return up(up(total * (1.0 + growth(terms))) + absolute_slack(terms))
        matrix = matrix.dense()
    absolute = abs(matrix) if sparse.issparse(matrix) else np.abs(matrix)
    total = np.asarray(absolute @ vector)
    return up(up(total * (1.0 + growth(terms))) + absolute_slack(terms))


def _rows_abs_apply_up(rows: Rows, vector: np.ndarray, absolute: np.ndarray | None = None) -> np.ndarray:
    """Upper bound of ``|A| v`` per row of ``A`` (dense or one-hot), ``v >= 0``; ``absolute``,
    where given, is ``np.abs(A)`` (computed once for several vectors)."""
    if absolute is None or isinstance(rows, _OneHot):
        return _abs_apply_up(rows, vector)
    terms = rows.shape[1]
    total = absolute @ vector
    return up(up(total * (1.0 + growth(terms))) + absolute_slack(terms))


def _dot_up(rows: Rows, vector: np.ndarray, absolute: np.ndarray | None = None) -> np.ndarray:
    """Upper bound of the exact ``A v`` per row (``v`` signed floats)."""
    terms = rows.shape[1]
    if isinstance(rows, _OneHot):
        if _finite(vector):
            picked = vector[rows.columns]
            value = rows.values * picked
            magnitude_sum = np.abs(rows.values) * np.abs(picked)
            error = up(up(growth(terms) * magnitude_sum) + absolute_slack(terms))
            return up(value + up(error * (1.0 + growth(terms))))
        rows = rows.dense()
    value = rows @ vector
    if absolute is None:
        absolute = np.abs(rows)
    error = up(up(growth(terms) * (absolute @ np.abs(vector))) + absolute_slack(terms))
    return up(value + up(error * (1.0 + growth(terms))))


def _interval_dot_up(rows: Rows, value: Interval, absolute: np.ndarray | None = None) -> np.ndarray:
    """Upper bound of ``max A k`` over ``k ∈ [lo, hi]`` per row (centre and radius)."""
    lo, hi = value
    centre = 0.5 * lo + 0.5 * hi
    radius = np.maximum(up(hi - centre), up(centre - lo))
    return up(_dot_up(rows, centre, absolute) + _rows_abs_apply_up(rows, radius, absolute))


def _times(rows: np.ndarray, factor: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``G = fl(A ⊙ f)`` and an upper bound of ``Σ_j |A_j f_j − G_j| · size_j`` per row."""
    product, error, _ = _times_with_absolute(rows, factor, size)
    return product, error


def _times_with_absolute(rows: np.ndarray, factor: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_times` and ``|G|``, for the next product with ``G``."""
    product = rows * factor
    absolute = np.abs(product)
    error = _rows_abs_apply_up(product, size, absolute)
    return product, up(up(error * _PRODUCT) + absolute_slack(rows.shape[1])), absolute


def _select_product(rows: _OneHot, matrix: Any) -> np.ndarray | None:
    """``fl(A M)`` for one-hot ``A`` by selecting rows of ``M`` (None where M is not finite or
    a sparse ``M`` has duplicate entries, whose separate terms a sparse product would add)."""
    if sparse.issparse(matrix):
        if not matrix.has_canonical_format:
            return None
        picked = matrix[rows.columns].toarray()
    else:
        picked = matrix[rows.columns]
    if not _finite(picked):
        return None
    return rows.values[:, None] * picked


def _matmul(
    rows: Rows,
    matrix: Any,
    size: np.ndarray,
    matrix_error: Any = None,
    *,
    inner: np.ndarray | None = None,
    error_inner: np.ndarray | None = None,
    absolute: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``P = fl(A M)`` and an upper bound of ``|A M_exact − P| · size`` per row.

    ``matrix_error`` (same shape, >= 0) bounds ``|M_exact − M|`` where the float ``M`` is not
    exact (average pooling by a window that is not a power of two); ``size >= |v|`` bounds the
    variables ``M`` is applied to. ``inner`` and ``error_inner``, when given, must be
    ``_abs_apply_up(matrix, size)`` and ``_abs_apply_up(matrix_error, size)``: they depend on
    the stage and the box only, so :class:`BackSubstitution` computes them once per box;
    ``absolute``, where given, is ``np.abs(rows)``.
    """
    product = None
    if isinstance(rows, _OneHot):
        product = _select_product(rows, matrix)
        if product is None:
            rows = rows.dense()
    if product is None:
        product = np.asarray(rows @ matrix)
    if inner is None:
        inner = _abs_apply_up(matrix, size)  # >= |M| size
    terms = matrix.shape[0]
    if isinstance(rows, _OneHot):
        absolute = None
    elif absolute is None and matrix_error is not None:
        absolute = np.abs(rows)
    error = up(growth(terms + 1) * _rows_abs_apply_up(rows, inner, absolute))
    if matrix_error is not None:
        if error_inner is None:
            error_inner = _abs_apply_up(matrix_error, size)
        error = up(error + _rows_abs_apply_up(rows, error_inner, absolute))
    return product, up(error + absolute_slack(terms))


def _sum_products_up(rows: Rows, values: np.ndarray) -> np.ndarray:
    """Upper bound of the exact ``Σ_j A_j c_j`` per row (entrywise products, then summed)."""
    terms = rows.shape[1]
    if isinstance(rows, _OneHot):
        if _finite(values):
            total = rows.values * values[rows.columns]  # the one nonzero term: its sum is exact
            spread = up(np.abs(total) * (1.0 + growth(terms)))
            return up(total + up(up(spread * (growth(terms + 2) + _PRODUCT)) + absolute_slack(terms)))
        rows = rows.dense()
    product = rows * values
    total = product.sum(axis=1)
    spread = up(np.abs(product, out=product).sum(axis=1) * (1.0 + growth(terms)))
    return up(total + up(up(spread * (growth(terms + 2) + _PRODUCT)) + absolute_slack(terms)))


# ----------------------------------------------------------------- relaxations of D(z, Δ)
def _phi_interval(t: Interval, a: float) -> Interval:
    """Enclosure of φ(t) = max(t, a·t) (0 <= a < 1) on exact intervals ``t``."""
    lo, hi = t
    if a == 0.0:
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    return np.where(lo > 0, lo, down(a * lo)), np.where(hi > 0, hi, up(a * hi))


def _difference_at(z: np.ndarray, d: np.ndarray, a: float) -> Interval:
    """Enclosure of ``φ(z + d) − φ(z)`` at exact floats ``z, d``."""
    total = _phi_interval((down(z + d), up(z + d)), a)
    base = _phi_interval((z, z), a)
    return subtract(total, base)


def _vertices(low: np.ndarray, u: np.ndarray, dl: np.ndarray, du: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertices of the pieces on which D is linear, on ``[low, u] × [dl, du]`` (exact floats).

    D is linear on each cell cut by the lines ``z = 0`` and ``z + Δ = 0``: their vertices are
    the box corners, the lines' crossings with the edges and the lines' crossing (0, 0).
    Points outside the box are replaced by a corner (harmless duplicates).
    """
    zero = np.zeros_like(low)
    zs = [low, low, u, u, zero, zero, -dl, -du, low, u, zero]
    ds = [dl, du, dl, du, dl, du, dl, du, -low, -u, zero]
    out_z, out_d = [], []
    for zv, dv in zip(zs, ds, strict=True):
        inside = (zv >= low) & (zv <= u) & (dv >= dl) & (dv <= du)
        out_z.append(np.where(inside, zv, low))
        out_d.append(np.where(inside, dv, dl))
    return np.stack(out_z), np.stack(out_d)


@dataclass
class Planes:
    """Per entry: an upper plane ``D <= au·z + bu·Δ + cu`` and a lower plane (al, bl, cl)."""

    au: np.ndarray
    bu: np.ndarray
    cu: np.ndarray
    al: np.ndarray
    bl: np.ndarray
    cl: np.ndarray


def relu_difference_planes(z: Interval, delta: Interval, a: float) -> Planes:
    """Rigorous planes bounding ``D = φ(z + Δ) − φ(z)`` on ``z ∈ [l, u]``, ``Δ ∈ [dl, du]``.

    Candidate slopes ``(a, b)``; the intercept of each makes it valid (outward-rounded extreme
    over :func:`_vertices`); per entry the one with the least mean slack over the box is kept.
    """
    low, u = z
    dl, du = delta
    vz, vd = _vertices(low, u, dl, du)
    d_lo, d_hi = _difference_at(vz, vd, a)
    width = np.where(u > low, u - low, 1.0)
    spread = np.where(du > dl, du - dl, 1.0)
    zeros, ones = np.zeros_like(low), np.ones_like(low)
    slopes_b = [zeros, ones, np.clip(du / spread, 0.0, 1.0), np.clip(-dl / spread, 0.0, 1.0)]
    slopes_a = [zeros, dl / width, du / width, -dl / width, -du / width]
    zc, dc = 0.5 * low + 0.5 * u, 0.5 * dl + 0.5 * du
    best_u = best_l = None
    for sa in slopes_a:
        sa = np.where(np.isfinite(sa), sa, 0.0)
        az_lo, az_hi = down(sa * vz), up(sa * vz)
        for sb in slopes_b:
            bd_lo, bd_hi = down(sb * vd), up(sb * vd)
            cu = up(up(d_hi - az_lo) - bd_lo).max(axis=0)
            cl = down(down(d_lo - az_hi) - bd_hi).min(axis=0)
            slack_u = cu + sa * zc + sb * dc
            slack_l = -(cl + sa * zc + sb * dc)
            if best_u is None:
                best_u = [sa, sb, cu, slack_u]
                best_l = [sa, sb, cl, slack_l]
                continue
            take = slack_u < best_u[3]
            best_u = [np.where(take, new, old) for new, old in zip((sa, sb, cu, slack_u), best_u, strict=True)]
            take = slack_l < best_l[3]
            best_l = [np.where(take, new, old) for new, old in zip((sa, sb, cl, slack_l), best_l, strict=True)]
    assert best_u is not None and best_l is not None
    return Planes(best_u[0], best_u[1], best_u[2], best_l[0], best_l[1], best_l[2])


def smooth_difference_planes(activation: Any, z: Interval, delta: Interval, z_hat: Interval) -> Planes:
    """Lines in Δ bounding ``D = φ(z + Δ) − φ(z) = g·Δ``, g in φ's slope range on the hull of
    both pre-activations (mean value theorem).

    :func:`._symbolic.product_relaxation` is valid for a slope range of either sign (``max(g_lo
    Δ, g_hi Δ)`` is convex in Δ), so where the range dips below 0 (GELU, SiLU) the lines keep
    their slopes instead of falling back to constants: back-substitution multiplies them by
    coefficients of either sign anyway.
    """
    reach = hull(z, intersect(add(z, delta), z_hat))
    g_lo, g_hi = slope_range(activation, reach)
    lo_s, lo_c, hi_s, hi_c = product_relaxation(delta, (g_lo, g_hi))
    zeros = np.zeros_like(lo_s)
    return Planes(zeros, hi_s, hi_c, zeros.copy(), lo_s, lo_c)


def activation_lines(activation: Any, z: Interval) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(lower slope, lower intercept, upper slope, upper intercept) of φ on ``[l, u]``."""
    if activation.relu_like:
        return relu_like_relaxation(z, float(activation.relu_like_negative_slope or 0.0))
    slope = slope_range(activation, z)[0]
    low_image = activation_image(activation, (z[0], z[0]))[0]
    high_image = activation_image(activation, (z[1], z[1]))[1]
    post = activation_image(activation, z)
    lo_s, lo_c, hi_s, hi_c = monotone_relaxation(z, low_image, high_image, np.maximum(slope, 0.0))
    negative = slope < 0
    return (
        np.where(negative, 0.0, lo_s),
        np.where(negative, post[0], lo_c),
        np.where(negative, 0.0, hi_s),
        np.where(negative, post[1], hi_c),
    )


# --------------------------------------------------------------------------- the network
def _dense(op: LinearOp, in_shape: tuple[int, ...]) -> np.ndarray:
    """The matrix of ``op`` on inputs of ``in_shape`` (exact: each entry is one weight)."""
    n = math.prod(in_shape)
    out = op.apply(np.eye(n).reshape(n, *in_shape))
    return np.ascontiguousarray(out.reshape(n, -1).T)


def _structural(layers: list[Any], shape: tuple[int, ...]) -> tuple[Any, Any, tuple[int, ...]]:
    """Sparse matrix of a chain of flatten/average-pooling layers, a bound of its rounding, and
    the output shape; None where a layer is not linear (max pooling)."""
    n = math.prod(shape)
    matrix = sparse.identity(n, format="csr")
    error = None
    for layer in layers:
        if isinstance(layer, Flatten):
            shape = (math.prod(shape),)
            continue
        if not layer.kind.startswith("avgpool"):
            return None, None, shape
        size = math.prod(shape)
        image = layer.forward(np.eye(size).reshape(size, *shape))
        out_shape = tuple(image.shape[1:])
        step = sparse.csr_matrix(image.reshape(size, -1).T)
        count = math.prod(layer.kernel)
        step_error = None
        if not math.log2(count).is_integer():  # 1/count is rounded: |exact − float| <= u·float
            step_error = abs(step) * (2.0 * UNIT_ROUNDOFF)
        new_error = None
        if error is not None:
            new_error = abs(step) @ error * (1.0 + 4.0 * UNIT_ROUNDOFF)
        if step_error is not None:
            extra = step_error @ abs(matrix)
            new_error = extra if new_error is None else new_error + extra
        matrix = step @ matrix
        error = new_error
        shape = out_shape
    return matrix.tocsr(), (None if error is None else error.tocsr()), shape


@dataclass
class _Entry:
    """Rows taken back through a copy stage ``k``: ``a_h = g_z W + g_d Err``, ``a_d = g_d Copy``
    (None at the first stage) and the upper bounds, per row, that the rounding of those
    products adds to the constant, in the order they are added (``terms``, then
    ``copy_terms`` for ``a_d``). None of it depends on the rows' sign but ``a_h`` and ``a_d``,
    which change sign exactly with them (negation is exact and every rounding is symmetric)."""

    a_h: np.ndarray
    a_d: np.ndarray | None
    terms: list[np.ndarray]
    copy_terms: list[np.ndarray]

    def negated(self) -> _Entry:
        return _Entry(-self.a_h, None if self.a_d is None else -self.a_d, self.terms, self.copy_terms)


@dataclass
class _Stage:
    """Box-independent matrices of one transition (flattened entries)."""

    transition: Transition
    z_shape: tuple[int, ...]
    weight: np.ndarray  # target: z = W h_in + b
    bias: np.ndarray
    unit_index: np.ndarray  # per Δ entry, the z entry of its target unit
    ops: dict[str, np.ndarray]
    after_target: Any
    after_target_error: Any
    after_copies: Any
    after_copies_error: Any


class BackSubstitution:
    """Back-substitution bounds of ``f̂ − f`` for a plain (non-residual) alignment.

    Build with :meth:`build` (None where it does not apply: residual targets, max pooling,
    matrices too large); :meth:`bound` gives per output an enclosure of the error on one box.
    Univariate pairs after the first layer (2L tickets) are walked through by
    :meth:`_univariate_inputs`.
    """

    def __init__(self, engine: Any, stages: list[_Stage], leading: Any, leading_error: Any):
        self.engine = engine
        self.alignment: Alignment = engine.alignment
        self.stages = stages
        self.leading = leading
        self.leading_error = leading_error
        #: The unoptimised computation (dense rows, nothing cached per box): the slow twin the
        #: tests and ``benchmarks/bench_backsub.py`` check the default against.
        self._reference = False

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def build(cls, engine: Any) -> BackSubstitution | None:
        alignment: Alignment = engine.alignment
        if alignment.residual or not alignment.transitions:
            return None
        target = alignment.target
        if cls.estimate_entries(alignment) > MAX_MATRIX_ENTRIES:
            return None
        leading, leading_error, shape = _structural([target.layers[i] for i in alignment.leading], tuple(target.input_shape))
        if leading is None:
            return None
        stages = []
        for position, transition in enumerate(alignment.transitions):
            t_index = transition.target_layer
            h_shape = tuple(target.shapes[t_index])
            z_shape = tuple(target.shapes[t_index + 1])
            op, bias = engine.target.ops[t_index]
            weight = _dense(op, h_shape)
            bias_vector = np.zeros(math.prod(z_shape)) if bias is None else np.broadcast_to(bias, z_shape).reshape(-1).copy()
            positions = math.prod(z_shape[1:])
            unit_index = (transition.tracked_units[:, None] * positions + np.arange(positions)[None, :]).reshape(-1)
            ops: dict[str, np.ndarray] = {}
            if transition.kind == "copy":
                d_shape = (len(transition.incoming.channels), *transition.incoming.spatial)
                if position > 0:
                    ops["copy"] = _dense(transition.ops["copy"], d_shape)
                for name in ("error", "error_rad"):
                    ops[name] = _dense(transition.ops[name], h_shape)
            else:
                names = ("pos", "pos_rad", "neg", "neg_rad") if target.activation_function.relu_like else ("linear", "linear_rad")
                for name in names:
                    ops[name] = _dense(transition.ops[name], h_shape)
                if position > 0:
                    # x̂ = h_in + D_p: entry (i, s) of h_in reads entry (primary_slot[i], s) of d_in.
                    ops["target"] = _dense(transition.ops["target"], h_shape)
                    h_positions = math.prod(h_shape[1:])
                    has = np.flatnonzero(transition.primary_slot >= 0)
                    offsets = np.arange(h_positions)
                    ops["primary_h"] = (has[:, None] * h_positions + offsets[None, :]).reshape(-1)
                    ops["primary_d"] = (transition.primary_slot[has][:, None] * h_positions + offsets[None, :]).reshape(-1)
                    if stages[-1].after_copies.shape[0] != len(transition.incoming.channels) * h_positions:
                        return None
            layers = [target.layers[i] for i in transition.after]
            after_t, after_t_err, _ = _structural(layers, z_shape)
            after_d, after_d_err, _ = _structural(layers, (len(transition.tracked), *z_shape[1:]))
            if after_t is None or after_d is None:
                return None
            if position == len(alignment.transitions) - 1 and after_d_err is not None:
                return None
            stages.append(_Stage(transition, z_shape, weight, bias_vector, unit_index, ops, after_t, after_t_err, after_d, after_d_err))
        return cls(engine, stages, leading, leading_error)

    @staticmethod
    def estimate_entries(alignment: Alignment) -> int:
        """Largest number of matrix entries one transition needs (rows × columns)."""
        target = alignment.target
        largest = 0
        previous = math.prod(target.input_shape)
        for transition in alignment.transitions:
            t_index = transition.target_layer
            z_entries = math.prod(target.shapes[t_index + 1])
            positions = math.prod(target.shapes[t_index + 1][1:])
            d_entries = len(transition.tracked) * positions
            h_entries = math.prod(target.shapes[t_index])
            largest = max(largest, d_entries * previous, d_entries * h_entries, z_entries * h_entries, CHUNK_ROWS * d_entries)
            previous = len(transition.outgoing.channels) * max(1, math.prod(transition.outgoing.spatial))
        return largest

    # -- per box -------------------------------------------------------------------------------
    def _prepare(self, box: Interval) -> dict[str, Any]:
        engine = self.engine
        alignment = self.alignment
        activation = alignment.target.activation_function
        t_enc = engine.target.enclose(box)
        s_enc = engine.ticket.enclose(box)
        state: dict[str, Any] = {"t_enc": t_enc, "s_enc": s_enc, "box": box, "stages": [], "inner": {}}
        lo = box[0].reshape(-1)
        hi = box[1].reshape(-1)
        centre = 0.5 * lo + 0.5 * hi
        state["x_centre"] = centre
        state["x_radius"] = np.maximum(up(hi - centre), up(centre - lo))
        state["x_size"] = magnitude((lo, hi))
        for k, (stage, transition) in enumerate(zip(self.stages, alignment.transitions, strict=True)):
            info: dict[str, Any] = {}
            t_index = transition.target_layer
            h_in = engine._entering(t_enc, t_index, box)
            info["h_size"] = magnitude(h_in)[0].reshape(-1)
            spatial = stage.z_shape[1:]
            count = len(transition.tracked)
            bias = transition.bias_delta
            shape = (count, *([1] * len(spatial)))
            constant = (
                np.broadcast_to(bias[0].reshape(shape), (count, *spatial)).reshape(-1),
                np.broadcast_to(bias[1].reshape(shape), (count, *spatial)).reshape(-1),
            )
            if transition.kind == "copy":
                s_in = engine._entering(s_enc, transition.source_layer, box)
                if len(transition.free_units):
                    free = enclose_linear(transition.ops["free"], (s_in[0][:, transition.free_units], s_in[1][:, transition.free_units]))
                    constant = add(constant, (free[0].reshape(-1), free[1].reshape(-1)))
                radius = _abs_apply_up(stage.ops["error_rad"], info["h_size"])
                constant = (down(constant[0] - radius), up(constant[1] + radius))
            else:
                s_in = engine._entering(s_enc, transition.univariate_layer, box)
                zero = np.zeros((1, len(transition.incoming.channels), *transition.incoming.spatial))
                if k == 0:
                    _, x_hat = engine._x_hat(transition, (zero, zero), h_in, s_in)
                    info["x_hat"] = (x_hat[0][0].reshape(-1), x_hat[1][0].reshape(-1))
                else:
                    # x̂ = h_in + D_p: the ticket's own enclosure of the primary copy, intersected
                    # with the back-substituted bound of h_in + P d_in.
                    unknown = zero + np.inf
                    _, x_hat = engine._x_hat(transition, (-unknown, unknown), h_in, s_in)
                    flat = intersect((x_hat[0][0].reshape(-1), x_hat[1][0].reshape(-1)), self._bound_inputs(state, k))
                    info["x_hat"] = flat
                    x_hat = (flat[0].reshape(x_hat[0].shape), flat[1].reshape(x_hat[1].shape))
                    info["x_size"] = magnitude(flat)
                    p_size = np.zeros(len(flat[0]))
                    p_size[stage.ops["primary_h"]] = state["stages"][k - 1]["d_out_size"][stage.ops["primary_d"]]
                    info["p_size"] = p_size
                if len(transition.free_units):
                    s_uni = s_enc[transition.univariate_layer][1]
                    free = enclose_linear(transition.ops["free"], (s_uni[0][:, transition.free_units], s_uni[1][:, transition.free_units]))
                    constant = add(constant, (free[0].reshape(-1), free[1].reshape(-1)))
                if activation.relu_like:
                    plus = activation_image(activation, info["x_hat"])
                    minus = activation_image(activation, negate(info["x_hat"]))
                    radius = up(_abs_apply_up(stage.ops["pos_rad"], magnitude(plus)) + _abs_apply_up(stage.ops["neg_rad"], magnitude(minus)))
                else:
                    offset = transition.offset
                    constant = add(constant, (offset[0].reshape(-1), offset[1].reshape(-1)))
                    remainder = engine._remainder(transition, x_hat)
                    constant = add(constant, (remainder[0].reshape(-1), remainder[1].reshape(-1)))
                    radius = _abs_apply_up(stage.ops["linear_rad"], magnitude(info["x_hat"]))
                constant = (down(constant[0] - radius), up(constant[1] + radius))
            info["constant"] = constant
            state["stages"].append(info)
            if k == len(self.stages) - 1:
                break
            pre = t_enc[t_index][0]
            z = (pre[0][0].reshape(-1), pre[1][0].reshape(-1))
            pre_hat = s_enc[transition.source_layer][0]
            z_hat = (pre_hat[0][0][transition.tracked].reshape(-1), pre_hat[1][0][transition.tracked].reshape(-1))
            z_units = (z[0][stage.unit_index], z[1][stage.unit_index])
            delta = subtract(z_hat, z_units)
            # Back-substituted bounds of z and Δ on this box, intersected with the intervals.
            z_bound = self._bound_rows(state, k, "z")
            z = intersect(z, z_bound)
            delta = intersect(delta, self._bound_rows(state, k, "delta"))
            info["z"], info["delta"] = z, delta
            info["z_size"] = magnitude(z)
            info["delta_size"] = magnitude(delta)
            info["lines"] = activation_lines(activation, z)
            z_units = (z[0][stage.unit_index], z[1][stage.unit_index])
            if activation.relu_like:
                info["planes"] = relu_difference_planes(z_units, delta, float(activation.relu_like_negative_slope or 0.0))
            else:
                info["planes"] = smooth_difference_planes(activation, z_units, delta, z_hat)
            info["planes_flat"] = not (np.any(info["planes"].au) or np.any(info["planes"].al))
            post = activation_image(activation, z)
            info["post_size"] = magnitude(post)
            lipschitz = float(activation.lipschitz)
            info["d_size"] = up(info["delta_size"] * lipschitz)
            info["post_out_size"] = _abs_apply_up(stage.after_target, info["post_size"])
            info["d_out_size"] = _abs_apply_up(stage.after_copies, info["d_size"])
        return state

    def _bound_rows(self, state: dict[str, Any], k: int, which: str) -> Interval:
        """Enclosures of every entry of ``z_k`` (``which="z"``) or ``Δ_k`` by back-substitution."""
        stage = self.stages[k]
        n_z = len(stage.bias)
        n_d = len(stage.unit_index)
        n = n_z if which == "z" else n_d
        bounds = []
        for sign in (1.0, -1.0):
            values = np.empty(n)
            for start in range(0, n, CHUNK_ROWS):
                stop = min(n, start + CHUNK_ROWS)
                rows: Rows = _OneHot(np.arange(start, stop), np.full(stop - start, sign), n)
                zeros: Rows = _OneHot.zeros(stop - start, n_d if which == "z" else n_z)
                if self._reference:
                    rows, zeros = rows.dense(), zeros.dense()
                if which == "z":
                    values[start:stop] = self._upper(state, k, rows, zeros)
                else:
                    values[start:stop] = self._upper(state, k, zeros, rows)
            bounds.append(values)
        return down(-bounds[1]), bounds[0]

    def _inner(self, state: dict[str, Any], key: tuple[Any, ...], matrix: Any, size: np.ndarray) -> np.ndarray | None:
        """``_abs_apply_up(matrix, size)``, computed once per box (``key`` names matrix and size)."""
        if self._reference or matrix is None:
            return None
        cache = state["inner"]
        if key not in cache:
            cache[key] = _abs_apply_up(matrix, size)
        return cache[key]

    def _matmul(
        self, state: dict[str, Any], key: tuple[Any, ...], rows: Rows, matrix: Any, size: np.ndarray,
        matrix_error: Any = None, *, absolute: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """:func:`_matmul` with ``|M|·size`` (and ``|M_err|·size``) taken from the per-box cache
        (:meth:`_inner`; ``key`` names the matrix and the size)."""
        return _matmul(
            rows, matrix, size, matrix_error,
            inner=self._inner(state, key, matrix, size),
            error_inner=self._inner(state, (*key, "error"), matrix_error, size),
            absolute=absolute,
        )

    def _univariate_parts(self, state: dict[str, Any], k: int, name: str) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """Size bound of ``φ(±x̂)`` and the ReLU lines of ``±x̂`` at the univariate stage ``k``."""
        key = (k, name, "parts")
        cache = state["inner"]
        if key in cache and not self._reference:
            return cache[key]
        activation = self.alignment.target.activation_function
        x_hat = state["stages"][k]["x_hat"]
        argument = x_hat if name == "pos" else negate(x_hat)
        size = magnitude(activation_image(activation, argument))
        lines = relu_like_relaxation(argument, float(activation.relu_like_negative_slope or 0.0))
        cache[key] = (size, lines)
        return size, lines

    def _relu_univariate_lines(
        self, state: dict[str, Any], k: int, g_d: Rows, start: np.ndarray | None, x_size: np.ndarray,
        absolute: np.ndarray | None, constant: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``g_d`` on ``Pos·φ(x̂) + Neg·φ(−x̂)`` of univariate stage ``k`` (ReLU-like φ), each
        ``φ(±x̂)`` replaced by its line on ``x̂``'s interval picked by the sign of its coefficient.

        Returns ``start`` plus the rows on ``x̂`` (added in that order; ``start`` None: the rows
        alone) and ``constant`` plus, per row, upper bounds of the intercepts and of the
        products' rounding (``x_size`` bounds ``|x̂|``); the rounding of the final sum is the
        caller's.
        """
        stage = self.stages[k]
        rows = start
        for name, sign in (("pos", 1.0), ("neg", -1.0)):
            size, (lo_s, lo_c, hi_s, hi_c) = self._univariate_parts(state, k, name)
            coefficient, error = self._matmul(state, (k, name), g_d, stage.ops[name], size, absolute=absolute)
            constant = up(constant + error)
            positive = coefficient > 0
            constant = up(constant + _sum_products_up(coefficient, np.where(positive, hi_c, lo_c)))
            moved, error = _times(coefficient, np.where(positive, hi_s, lo_s) * sign, x_size)
            constant = up(constant + error)
            rows = moved if rows is None else rows + moved
        assert rows is not None
        return rows, constant

    def _univariate_inputs(
        self, state: dict[str, Any], k: int, g_d: Rows, a_h: np.ndarray, absolute: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows ``g_d`` on ``Δ_k`` of a univariate stage ``k > 0`` taken onto its inputs.

        ``Δ = T·D_p + Pos·φ(x̂) + Neg·φ(−x̂) + K`` (ReLU-like φ) or ``T·D_p + Lin·x̂ + K`` (smooth
        φ; the Taylor remainder is in ``K``), with ``x̂ = h_in + D_p`` the value the univariate
        readers see and ``D_p = P·d_in`` the difference at each target unit's primary copy
        (zero where no reader reads one; :mod:`._alignment`). ``φ(±x̂)`` is relaxed by its lines
        on ``x̂``'s interval (exact where that interval has one sign, as after a ReLU), so the
        rows become ``a_x·x̂ = a_x·h_in + a_x·D_p``. Returns ``a_h + a_x`` (``a_h`` the rows on
        ``h_in`` from ``W``), the rows on ``d_in`` and per row an upper bound of the constants
        (intercepts, rounding of every product and sum).
        """
        stage, info = self.stages[k], state["stages"][k]
        activation = self.alignment.target.activation_function
        x_size, p_size, h_size = info["x_size"], info["p_size"], info["h_size"]
        constant = np.zeros(g_d.shape[0])
        if activation.relu_like:
            a_x, constant = self._relu_univariate_lines(state, k, g_d, None, x_size, absolute, constant)
            constant = up(constant + _rows_abs_apply_up(a_x, x_size) * _PRODUCT)  # the sum's rounding
        else:
            a_x, error = self._matmul(state, (k, "linear"), g_d, stage.ops["linear"], x_size, absolute=absolute)
            constant = up(constant + error)
        a_h = a_h + a_x
        constant = up(constant + _rows_abs_apply_up(a_h, h_size) * _PRODUCT)
        on_primary, error = self._matmul(state, (k, "target"), g_d, stage.ops["target"], p_size, absolute=absolute)
        constant = up(constant + error)
        on_primary = on_primary + a_x
        constant = up(constant + _rows_abs_apply_up(on_primary, p_size) * _PRODUCT)
        h_entries, d_entries = stage.ops["primary_h"], stage.ops["primary_d"]
        a_d = np.zeros((g_d.shape[0], self.stages[k - 1].after_copies.shape[0]))
        a_d[:, d_entries] = on_primary[:, h_entries]  # D_p = P d_in: a selection, exact
        return a_h, a_d, constant

    def _bound_inputs(self, state: dict[str, Any], k: int) -> Interval:
        """Enclosures, by back-substitution, of ``x̂ = h_in + P·d_in`` per entry of ``h_in`` at a
        univariate stage ``k > 0`` (``x̂ = h_in`` where the unit has no primary copy)."""
        stage = self.stages[k]
        n_h = stage.weight.shape[1]
        n_d = self.stages[k - 1].after_copies.shape[0]
        column = np.full(n_h, -1, dtype=np.intp)
        column[stage.ops["primary_h"]] = stage.ops["primary_d"]
        bounds = []
        for sign in (1.0, -1.0):
            values = np.empty(n_h)
            for start in range(0, n_h, CHUNK_ROWS):
                stop = min(n_h, start + CHUNK_ROWS)
                picked = column[start:stop]
                on_h: Rows = _OneHot(np.arange(start, stop), np.full(stop - start, sign), n_h)
                on_d: Rows = _OneHot(np.maximum(picked, 0), np.where(picked >= 0, sign, 0.0), n_d)
                if self._reference:
                    on_h, on_d = on_h.dense(), on_d.dense()
                values[start:stop] = self._upper(state, k, None, None, inputs=(on_h, on_d))
            bounds.append(values)
        return down(-bounds[1]), bounds[0]

    def _copy_entry(self, state: dict[str, Any], k: int, g_z: Rows, g_d: Rows, absolute: np.ndarray | None = None) -> _Entry:
        """The products of the rows with a copy stage's ``W``, ``Err`` and ``Copy`` (see :class:`_Entry`);
        ``absolute``, where given, is ``np.abs(g_d)``."""
        stage, info = self.stages[k], state["stages"][k]
        a_h, error = self._matmul(state, (k, "weight"), g_z, stage.weight, info["h_size"])
        terms = [error]
        active = bool(np.any(g_d.values if isinstance(g_d, _OneHot) else g_d))
        if active:
            part, error = self._matmul(state, (k, "error"), g_d, stage.ops["error"], info["h_size"], absolute=absolute)
            a_h = a_h + part
            terms += [error, _rows_abs_apply_up(a_h, info["h_size"]) * _PRODUCT]
        if k == 0:
            return _Entry(a_h, None, terms, [])
        previous = state["stages"][k - 1]
        if active:
            a_d, error = self._matmul(state, (k, "copy"), g_d, stage.ops["copy"], previous["d_out_size"], absolute=absolute)
            return _Entry(a_h, a_d, terms, [error])
        return _Entry(a_h, np.zeros((g_d.shape[0], stage.ops["copy"].shape[1])), terms, [])

    def _upper(
        self, state: dict[str, Any], k: int, g_z: Rows | None, g_d: Rows | None, *, grouped: bool = False,
        entry: _Entry | None = None, inputs: tuple[Rows, Rows] | None = None,
    ) -> np.ndarray:
        """Upper bounds on the box of ``g_z·z_k + g_d·Δ_k`` per row (rigorous).

        With ``grouped`` (smooth φ only) every difference ``D`` walked back through is relaxed
        per target unit rather than per copy (:meth:`_grouped_difference`; the rows bounding
        each unit's summed Δ go back per copy). ``entry``, where stage ``k`` is a copy stage,
        may give :meth:`_copy_entry` of these very rows, computed before (or its negation).
        ``inputs`` (``k > 0``; then ``g_z``, ``g_d`` are ignored) are rows ``(a_h, a_d)`` on
        stage ``k``'s inputs instead: the bound is of ``a_h·h_in + a_d·d_in`` (what
        :meth:`_bound_inputs` needs for the values a univariate stage reads).
        """
        activation = self.alignment.target.activation_function
        absolute = None  # np.abs(g_d), where a step computed it already
        if inputs is not None:
            constant = np.zeros(inputs[0].shape[0])
            k, g_z, g_d, constant, absolute = self._back_through(state, k, inputs[0], inputs[1], constant, grouped)
        else:
            constant = np.zeros(g_z.shape[0])
        while True:
            stage, info = self.stages[k], state["stages"][k]
            transition = stage.transition
            # z_k = W h_in + b;  Δ_k = Copy d_in + Err h_in + K (K an interval).
            if self._reference:
                absolute = None
            elif absolute is None and isinstance(g_d, np.ndarray):
                absolute = np.abs(g_d)
            constant = up(constant + _sum_products_up(g_z, stage.bias))
            constant = up(constant + _interval_dot_up(g_d, info["constant"], absolute=absolute))
            if transition.kind == "copy":
                if entry is None:
                    entry = self._copy_entry(state, k, g_z, g_d, absolute)
                a_h = entry.a_h
                for term in entry.terms:
                    constant = up(constant + term)
                if k == 0:
                    return self._concretize(state, a_h, constant)
                a_d = entry.a_d
                for term in entry.copy_terms:
                    constant = up(constant + term)
                entry = None
            elif k > 0:  # univariate pair after the first layer: x̂ = h_in + P d_in
                a_h, error = self._matmul(state, (k, "weight"), g_z, stage.weight, info["h_size"])
                constant = up(constant + error)
                a_h, a_d, error = self._univariate_inputs(state, k, g_d, a_h, absolute)
                constant = up(constant + error)
            else:  # univariate pair at the input: Δ = Pos φ(x̂) + Neg φ(−x̂) (+ K), x̂ = h_in
                a_h, error = self._matmul(state, (k, "weight"), g_z, stage.weight, info["h_size"])
                constant = up(constant + error)
                if activation.relu_like:
                    a_h, constant = self._relu_univariate_lines(state, k, g_d, a_h, info["h_size"], absolute, constant)
                    constant = up(constant + _rows_abs_apply_up(a_h, info["h_size"]) * (4.0 * UNIT_ROUNDOFF))
                else:
                    part, error = self._matmul(state, (k, "linear"), g_d, stage.ops["linear"], info["h_size"], absolute=absolute)
                    a_h = a_h + part
                    constant = up(up(constant + error) + _rows_abs_apply_up(a_h, info["h_size"]) * _PRODUCT)
                return self._concretize(state, a_h, constant)
            # Back through the previous transition's φ, D and structural layers.
            k, g_z, g_d, constant, absolute = self._back_through(state, k, a_h, a_d, constant, grouped)

    def _back_through(
        self, state: dict[str, Any], k: int, a_h: Rows, a_d: Rows, constant: np.ndarray, grouped: bool
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Rows ``(a_h, a_d)`` on stage ``k``'s inputs taken back through stage ``k − 1``'s
        structural layers, φ and D: ``(k − 1, g_z, g_d, constant, |g_d| or None)``."""
        activation = self.alignment.target.activation_function
        k -= 1
        stage, info = self.stages[k], state["stages"][k]
        a_post, error = self._matmul(
            state, (k, "after_target"), a_h, stage.after_target, info["post_size"], stage.after_target_error
        )
        constant = up(constant + error)
        a_diff, error = self._matmul(
            state, (k, "after_copies"), a_d, stage.after_copies, info["d_size"], stage.after_copies_error
        )
        constant = up(constant + error)
        lo_s, lo_c, hi_s, hi_c = info["lines"]
        positive = a_post > 0
        constant = up(constant + _sum_products_up(a_post, np.where(positive, hi_c, lo_c)))
        g_z, error = _times(a_post, np.where(positive, hi_s, lo_s), info["z_size"])
        constant = up(constant + error)
        if grouped and not activation.relu_like:
            g_d, extra = self._grouped_difference(state, k, a_diff)
            constant = up(constant + extra)
            absolute = None
        else:
            planes: Planes = info["planes"]
            positive = a_diff > 0
            constant = up(constant + _sum_products_up(a_diff, np.where(positive, planes.cu, planes.cl)))
            g_d, error, absolute = _times_with_absolute(a_diff, np.where(positive, planes.bu, planes.bl), info["delta_size"])
            constant = up(constant + error)
            scatter = self._scatter(stage, len(stage.bias))
            z_units = info["z_size"][stage.unit_index]
            if info["planes_flat"] and not self._reference and _finite(a_diff):
                # au = al = 0 (smooth φ): the coefficients on z are exact zeros, and only
                # the slacks of their two (error-free) products are left; g_z + 0 = g_z.
                zero = _OneHot.zeros(len(a_diff), len(stage.unit_index))
                error = up(up(_rows_abs_apply_up(zero, z_units) * _PRODUCT) + absolute_slack(zero.width))
                constant = up(constant + error)
                _, error = self._matmul(state, (k, "scatter"), zero, scatter, info["z_size"])
                constant = up(constant + error)
            else:
                on_z, error, on_z_absolute = _times_with_absolute(a_diff, np.where(positive, planes.au, planes.al), z_units)
                constant = up(constant + error)
                summed, error = self._matmul(state, (k, "scatter"), on_z, scatter, info["z_size"], absolute=on_z_absolute)
                constant = up(constant + error)
                g_z = g_z + summed
        constant = up(constant + _rows_abs_apply_up(np.abs(g_z), info["z_size"]) * _PRODUCT)
        return k, g_z, g_d, constant, absolute

    def _grouped_difference(self, state: dict[str, Any], k: int, a_diff: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relax ``Σ_c a_c D_c`` of stage ``k`` per target unit: coefficients on Δ_k and constants.

        For smooth φ every copy ``c`` of target unit entry ``u`` shares the slope at the
        target's pre-activation: ``D_c = φ'(z_u)·Δ_c + r_c`` with ``|r_c| <= sup|φ''|·Δ_c²/2``
        (Taylor). So ``Σ_{c∈u} a_c D_c = φ'(z_u)·Y_u + Σ a_c r_c`` with ``Y_u = Σ_{c∈u} a_c Δ_c``,
        whose range is back-substituted (the copies' errors cancel inside it) instead of each
        copy's ``g·Δ_c`` being relaxed on its own range. ``g·Y`` for ``g`` in the slope range of
        φ on ``z_u``'s interval and ``Y ∈ [Y_lo, Y_hi]`` lies below the chord of ``max(g_lo Y,
        g_hi Y)`` (convex in Y; checked at both ends, outward rounded). Returns the new
        coefficient rows on Δ_k (``a_c·s_u``) and per row an upper bound of the constants
        (chord intercepts, Taylor remainders, the rounding of ``a_c·s_u``).
        """
        stage, info = self.stages[k], state["stages"][k]
        activation = self.alignment.target.activation_function
        units = stage.unit_index
        live = np.unique(units)
        rows, n_d = a_diff.shape
        n_z = len(stage.bias)
        y_hi = np.empty((rows, len(live)))
        y_lo = np.empty((rows, len(live)))
        per_chunk = max(1, CHUNK_ROWS // max(1, rows))
        for start in range(0, len(live), per_chunk):
            chunk = live[start:start + per_chunk]
            member = units[None, :] == chunk[:, None]  # (chunk, n_d)
            sub = (a_diff[:, None, :] * member[None, :, :]).reshape(-1, n_d)  # exact: copies of a_diff or 0
            zeros: Rows = np.zeros((sub.shape[0], n_z)) if self._reference else _OneHot.zeros(sub.shape[0], n_z)
            # The rows and their negation share the products with stage k's matrices (negation
            # is exact and commutes with every rounding), the largest part of this pass.
            entry = None if self._reference or stage.transition.kind != "copy" else self._copy_entry(state, k, zeros, sub)
            y_hi[:, start:start + len(chunk)] = self._upper(state, k, zeros, sub, entry=entry).reshape(rows, len(chunk))
            negated = None if entry is None else entry.negated()
            y_lo[:, start:start + len(chunk)] = down(-self._upper(state, k, zeros, -sub, entry=negated)).reshape(rows, len(chunk))
        z = info["z"]
        slope = slope_range(activation, (z[0][live], z[1][live]))
        _, _, hi_s, hi_c = product_relaxation((y_lo, y_hi), (np.broadcast_to(slope[0], y_lo.shape), np.broadcast_to(slope[1], y_lo.shape)))
        position = np.searchsorted(live, units)
        factor = hi_s[:, position]  # (rows, n_d): the slope of each copy's unit, per row
        g_d, error = _times(a_diff, factor, info["delta_size"])
        dl, du = info["delta"]
        square = up(np.maximum(up(dl * dl), up(du * du)))
        remainder = up(up(float(activation.second_derivative_bound) * 0.5) * square)
        extra = up(error + _sum_products_up(hi_c, np.ones(len(live))))
        extra = up(extra + _sum_products_up(np.abs(a_diff), remainder))
        return g_d, extra

    def _scatter(self, stage: _Stage, n_z: int) -> Any:
        cached = getattr(stage, "_scatter_matrix", None)
        if cached is None:
            n_d = len(stage.unit_index)
            cached = sparse.csr_matrix((np.ones(n_d), (np.arange(n_d), stage.unit_index)), shape=(n_d, n_z))
            stage._scatter_matrix = cached  # type: ignore[attr-defined]
        return cached

    def _concretize(self, state: dict[str, Any], a_h: np.ndarray, constant: np.ndarray) -> np.ndarray:
        """Upper bound over the input box of ``a_h·h_in_0 + constant``, ``h_in_0 = L x``."""
        a_x, error = self._matmul(state, ("leading",), a_h, self.leading, state["x_size"], self.leading_error)
        constant = up(constant + error)
        value = up(_dot_up(a_x, state["x_centre"]) + _rows_abs_apply_up(a_x, state["x_radius"]))
        return up(value + constant)

    def bound(self, box: Interval) -> Interval:
        """Enclosure, per output unit, of ``f̂(x) − f(x)`` over one box (batch of one)."""
        state = self._prepare(box)
        k = len(self.stages) - 1
        stage = self.stages[k]
        n_z = len(stage.bias)
        dense = stage.after_copies.toarray()  # the outputs are the last Δ after structural layers
        rows = dense.shape[0]
        one_hot = None if self._reference else _OneHot.of(dense)
        select: Rows = dense if one_hot is None else one_hot
        negated: Rows = -dense if one_hot is None else _OneHot(one_hot.columns, -one_hot.values, one_hot.width)
        zeros: Rows = np.zeros((rows, n_z)) if self._reference else _OneHot.zeros(rows, n_z)
        upper = self._upper(state, k, zeros, select)
        lower = -self._upper(state, k, zeros, negated)
        activation = self.alignment.target.activation_function
        if k > 0 and not activation.relu_like and activation.second_derivative_bound is not None:
            # fmin/fmax: a NaN of the grouped bound (an infinite Y range) keeps the per-copy one.
            upper = np.fmin(upper, self._upper(state, k, zeros, select, grouped=True))
            lower = np.fmax(lower, -self._upper(state, k, zeros, negated, grouped=True))
        order = np.argsort(self.alignment.output_map)
        return down(lower[order]), upper[order]


__all__ = [
    "BackSubstitution",
    "Planes",
    "activation_lines",
    "relu_difference_planes",
    "smooth_difference_planes",
]
