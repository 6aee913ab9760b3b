"""Symbolic (linear-in-the-input) bounds with outward rounding, for the differential IBP.

A :class:`Sym` holds, for every entry ``y`` of a tensor and every box of a batch, two affine
functions of the network input ``x``::

    lo_coef · x + lo_const  <=  y(x)  <=  hi_coef · x + hi_const      for every x in the box

(forward "symbolic intervals", Wang et al., USENIX Security 2018; with linear relaxations of
activations as in Singh et al., POPL 2019). Interval bound propagation forgets that two
quantities depend on the same ``x``; symbolic bounds keep that dependence through linear
layers, which matters for the ticket: the copies' errors are summed with random-sign weights
and largely cancel, which plain intervals cannot see.

Rigour in float64: every operation computes new coefficients in float and a bound ``Err`` on
their distance to the exact coefficients; since ``|x_k| <= X_k`` on the box, the exact affine
function differs from the float one by at most ``Σ_k Err_k X_k``, which is moved into the
constants (down for lower bounds, up for upper bounds). Concretisation uses the same
centre-radius evaluation with the dot-product error bound as :func:`._rigorous.enclose_linear`.

Layout: coefficients ``(batch, d, *shape)`` (d = number of input entries), constants
``(batch, *shape)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ltbounds.certify._rigorous import (
    UNIT_ROUNDOFF,
    Interval,
    LinearOp,
    absolute_slack,
    down,
    growth,
    pool_windows,
    up,
)

#: Relative rounding bound of one float operation, slightly inflated.
_U = 1.0000001 * UNIT_ROUNDOFF


@dataclass
class InputBox:
    """Centre, radius and magnitude of a batch of input boxes (flattened, ``(batch, d)``).

    ``[lo, hi] ⊆ [centre − radius, centre + radius]`` and ``magnitude >= |centre| + radius``.
    """

    centre: np.ndarray
    radius: np.ndarray
    magnitude: np.ndarray

    @classmethod
    def of(cls, box: Interval) -> InputBox:
        lo = box[0].reshape(box[0].shape[0], -1)
        hi = box[1].reshape(box[1].shape[0], -1)
        centre = 0.5 * lo + 0.5 * hi
        radius = np.maximum(up(hi - centre), up(centre - lo))
        return cls(centre, radius, up(np.abs(centre) + radius))

    @property
    def dims(self) -> int:
        return int(self.centre.shape[1])


def _contract(coef: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """``Σ_k coef[b, k, ...] · vector[b, k]`` (float)."""
    batch, dims = coef.shape[0], coef.shape[1]
    flat = coef.reshape(batch, dims, -1)
    out = np.einsum("bkn,bk->bn", flat, vector, optimize=True)
    return out.reshape((batch, *coef.shape[2:]))


def _weighted_up(err: np.ndarray, box: InputBox) -> np.ndarray:
    """Upper bound of ``Σ_k err[b, k, ...] · X_k`` for nonnegative ``err``."""
    total = _contract(err, box.magnitude)
    dims = err.shape[1]
    return up(up(total * (1.0 + growth(dims))) + absolute_slack(dims))


@dataclass
class Sym:
    """Lower and upper affine bounds of a tensor in the input (see the module docstring)."""

    lo_coef: np.ndarray
    lo_const: np.ndarray
    hi_coef: np.ndarray
    hi_const: np.ndarray

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def identity(cls, box: InputBox, shape: tuple[int, ...]) -> Sym:
        """``x`` itself: exact coefficients, zero constants."""
        batch, dims = box.centre.shape
        eye = np.broadcast_to(np.eye(dims).reshape(1, dims, *shape), (batch, dims, *shape)).copy()
        zero = np.zeros((batch, *shape))
        return cls(eye, zero, eye.copy(), zero.copy())

    @classmethod
    def constant(cls, value: Interval, dims: int) -> Sym:
        """A quantity known only through an interval (no dependence kept)."""
        lo, hi = value
        zero = np.zeros((lo.shape[0], dims, *lo.shape[1:]))
        return cls(zero, lo.copy(), zero, hi.copy())

    @property
    def dims(self) -> int:
        return int(self.lo_coef.shape[1])

    def take(self, index: np.ndarray, axis: int = 1) -> Sym:
        """Entries ``index`` along the channel axis (axis 1 of the sample, after the batch)."""
        return Sym(
            np.take(self.lo_coef, index, axis=axis + 1),
            np.take(self.lo_const, index, axis=axis),
            np.take(self.hi_coef, index, axis=axis + 1),
            np.take(self.hi_const, index, axis=axis),
        )

    def reshape(self, shape: tuple[int, ...]) -> Sym:
        batch, dims = self.lo_coef.shape[:2]
        return Sym(
            self.lo_coef.reshape(batch, dims, *shape),
            self.lo_const.reshape(batch, *shape),
            self.hi_coef.reshape(batch, dims, *shape),
            self.hi_const.reshape(batch, *shape),
        )

    # -- evaluation --------------------------------------------------------------------------
    def concretize(self, box: InputBox) -> Interval:
        """Enclosure of ``[min lower, max upper]`` over the box (rigorous)."""
        dims = self.dims
        kappa = growth(dims + 1)
        slack = absolute_slack(dims)

        def side(coef: np.ndarray, const: np.ndarray, sign: float) -> np.ndarray:
            mid = _contract(coef, box.centre)
            magnitude = np.abs(coef)
            spread = _contract(magnitude, box.radius)
            error = up(up(kappa * 2.0 * _contract(magnitude, box.magnitude)) + 2.0 * slack)
            if sign < 0:
                return down(down(down(const + mid) - spread) - error)
            return up(up(up(const + mid) + spread) + error)

        return side(self.lo_coef, self.lo_const, -1.0), side(self.hi_coef, self.hi_const, 1.0)

    # -- arithmetic --------------------------------------------------------------------------
    def add(self, other: Sym, box: InputBox) -> Sym:
        """Sum of two bounded quantities."""
        lo_coef = self.lo_coef + other.lo_coef
        hi_coef = self.hi_coef + other.hi_coef
        lo_fix = _weighted_up(up(_U * np.abs(lo_coef)), box)
        hi_fix = _weighted_up(up(_U * np.abs(hi_coef)), box)
        return Sym(
            lo_coef,
            down(down(self.lo_const + other.lo_const) - lo_fix),
            hi_coef,
            up(up(self.hi_const + other.hi_const) + hi_fix),
        )

    def negate(self) -> Sym:
        """Bounds of ``−y`` (exact)."""
        return Sym(-self.hi_coef, -self.hi_const, -self.lo_coef, -self.lo_const)

    def add_interval(self, value: Interval) -> Sym:
        """Plus a quantity known only through an interval (broadcast to the constants)."""
        return Sym(self.lo_coef, down(self.lo_const + value[0]), self.hi_coef, up(self.hi_const + value[1]))

    def scale(self, lo_slope: np.ndarray, lo_intercept: np.ndarray, hi_slope: np.ndarray, hi_intercept: np.ndarray, box: InputBox) -> Sym:
        """Compose lines ``t ↦ slope·t + intercept`` with the bounds of ``t``.

        Valid when the lower (upper) line is below (above) the function being relaxed at every
        value the quantity takes. A line of slope >= 0 is composed with the same-side bound of
        ``t``, one of slope < 0 with the other side's (``s·t >= s·upper`` for ``s < 0``), so the
        result is again a lower (upper) bound. Per entry only one of the two bounds is
        used, so the rounding is that of one product, as for slopes >= 0. Slopes and
        intercepts are arrays of the sample shape (batch included).
        """
        lo_flip, hi_flip = lo_slope < 0, hi_slope < 0
        lo_coef = np.where(lo_flip[:, None], self.hi_coef, self.lo_coef) * lo_slope[:, None]
        hi_coef = np.where(hi_flip[:, None], self.lo_coef, self.hi_coef) * hi_slope[:, None]
        lo_fix = _weighted_up(up(_U * np.abs(lo_coef)), box)
        hi_fix = _weighted_up(up(_U * np.abs(hi_coef)), box)
        lo_const = down(np.where(lo_flip, self.hi_const, self.lo_const) * lo_slope)
        hi_const = up(np.where(hi_flip, self.lo_const, self.hi_const) * hi_slope)
        return Sym(
            lo_coef,
            down(down(lo_const + lo_intercept) - lo_fix),
            hi_coef,
            up(up(hi_const + hi_intercept) + hi_fix),
        )

    def linear(self, op: LinearOp, box: InputBox, *, radius_op: LinearOp | None = None, magnitude: np.ndarray | None = None, bias: np.ndarray | None = None) -> Sym:
        """Bounds of ``(W ± R)·y + b`` from bounds of ``y`` (``R`` needs ``magnitude >= |y|``)."""
        batch, dims = self.lo_coef.shape[:2]
        sample = self.lo_coef.shape[2:]
        positive, negative = _split(op)
        stacked = np.concatenate([self.lo_coef, self.hi_coef], axis=0).reshape(2 * batch * dims, *sample)
        plus = positive.apply(stacked)
        minus = negative.apply(stacked)
        out_shape = plus.shape[1:]
        plus = plus.reshape(2, batch, dims, *out_shape)
        minus = minus.reshape(2, batch, dims, *out_shape)
        lo_coef = plus[0] + minus[1]
        hi_coef = plus[1] + minus[0]
        consts = np.concatenate([self.lo_const, self.hi_const], axis=0)
        c_plus = positive.apply(consts).reshape(2, batch, *out_shape)
        c_minus = negative.apply(consts).reshape(2, batch, *out_shape)
        lo_const = c_plus[0] + c_minus[1]
        hi_const = c_plus[1] + c_minus[0]
        # Error of every float coefficient <= κ |W| (|lo| + |hi|) (two sums of n terms, one
        # addition); its weight on the box is κ |W| s with s = Σ_k (|lo_k| + |hi_k|) X_k.
        weight = up(
            _contract(np.abs(self.lo_coef), box.magnitude) + _contract(np.abs(self.hi_coef), box.magnitude)
        )
        weight = up(weight * (1.0 + growth(dims)) + absolute_slack(dims))
        base = up(up(np.abs(self.lo_const) + np.abs(self.hi_const)) + weight)
        kappa = growth(2 * op.terms + 2)
        fix = up(up(kappa * op.apply_abs(base)) + 4.0 * absolute_slack(op.terms))
        if radius_op is not None and not radius_op.empty:
            assert magnitude is not None
            extra = radius_op.apply_abs(magnitude)
            fix = up(fix + up(up(extra * (1.0 + growth(radius_op.terms))) + absolute_slack(radius_op.terms)))
        if bias is not None:
            lo_const = down(lo_const + bias)
            hi_const = up(hi_const + bias)
        return Sym(lo_coef, down(lo_const - fix), hi_coef, up(hi_const + fix))

    def average_pool(self, layer: object, box: InputBox) -> Sym:
        """Bounds through average pooling (a linear map with weights 1/K)."""
        batch, dims = self.lo_coef.shape[:2]
        parts = []
        fixes = []
        for coef in (self.lo_coef, self.hi_coef):
            sample = coef.shape[2:]
            windows, out_spatial = pool_windows(layer, coef.reshape(batch * dims, *sample))
            count = windows.shape[2]
            total = windows.sum(axis=2) / count
            parts.append(total.reshape(batch, dims, sample[0], *out_spatial))
            error = up(up(growth(count + 1) * np.abs(windows).sum(axis=2) / count) + absolute_slack(count))
            fixes.append(_weighted_up(error.reshape(batch, dims, sample[0], *out_spatial), box))
        consts = []
        for const, sign in ((self.lo_const, -1.0), (self.hi_const, 1.0)):
            windows, out_spatial = pool_windows(layer, const)
            count = windows.shape[2]
            total = windows.sum(axis=2) / count
            error = up(up(growth(count + 1) * np.abs(windows).sum(axis=2) / count) + absolute_slack(count))
            value = down(total - error) if sign < 0 else up(total + error)
            consts.append(value.reshape(batch, const.shape[1], *out_spatial))
        return Sym(parts[0], down(consts[0] - fixes[0]), parts[1], up(consts[1] + fixes[1]))


def _split(op: LinearOp) -> tuple[LinearOp, LinearOp]:
    cached = getattr(op, "_split_ops", None)
    if cached is None:
        cached = (
            LinearOp(np.maximum(op.weight, 0.0), op.kind, op.stride, op.padding),
            LinearOp(np.minimum(op.weight, 0.0), op.kind, op.stride, op.padding),
        )
        op._split_ops = cached  # type: ignore[attr-defined]
    return cached


# -------------------------------------------------------------------------- relaxations
def relu_like_relaxation(z: Interval, a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Slopes and intercepts bounding φ(t) = max(t, a·t) on ``[l, u]`` (``0 <= a < 1``).

    Returns (lower slope, lower intercept, upper slope, upper intercept), slopes >= 0. Stable
    pieces are exact; across 0 the upper line is the chord from ``(l, a·l)`` to ``(u, u)``
    (φ is convex, so a line above φ at both ends is above it in between; the intercept is
    rounded so that this holds exactly) and the lower line is ``t`` or ``a·t`` (both below
    φ everywhere), the one closer to φ on the larger side.
    """
    lo, hi = z
    active = lo >= 0
    inactive = hi <= 0
    cross = ~(active | inactive)
    width = np.where(cross, hi - lo, 1.0)
    chord = np.clip(np.where(cross, (hi - a * lo) / width, 1.0), a, 1.0)
    at_low = up(up(a * lo) - down(chord * lo))  # >= a·l − chord·l
    at_high = up(hi - down(chord * hi))  # >= u − chord·u
    upper_slope = np.where(active, 1.0, np.where(inactive, a, chord))
    upper_intercept = np.where(cross, np.maximum(at_low, at_high), 0.0)
    lower_slope = np.where(active, 1.0, np.where(inactive, a, np.where(hi > -lo, 1.0, a)))
    lower_intercept = np.zeros_like(lo)
    return lower_slope, lower_intercept, upper_slope, upper_intercept


def monotone_relaxation(z: Interval, phi_low: np.ndarray, phi_high: np.ndarray, slope: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parallel lines of slope ``g <= min φ'`` (``g >= 0``) bounding a monotone φ on ``[l, u]``.

    ``φ(t) >= φ(l) + g (t − l)`` and ``φ(t) <= φ(u) + g (t − u)`` (mean value theorem);
    ``phi_low <= φ(l)`` and ``phi_high >= φ(u)``.
    """
    lo, hi = z
    lower_intercept = down(phi_low - up(slope * lo))
    upper_intercept = up(phi_high - down(slope * hi))
    return slope, lower_intercept, slope.copy(), upper_intercept


def product_relaxation(delta: Interval, slope: Interval) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines bounding ``g·δ`` over ``g ∈ [g_lo, g_hi]`` as functions of δ.

    Returns (lower slope, lower intercept, upper slope, upper intercept), slopes in
    ``[g_lo, g_hi]`` (>= 0 when ``g_lo >= 0``). For δ of one sign the envelope is one line;
    across 0 the chords through the envelope's ends, with intercepts checked at both ends.
    Valid for ``g_lo`` of either sign: ``max(g_lo δ, g_hi δ)`` is convex and ``min(...)``
    concave in δ, so a line above (below) them at both ends of ``[dl, du]`` is so on all of it.
    """
    dl, du = delta
    gl, gh = slope
    nonneg = dl >= 0
    nonpos = du <= 0
    cross = ~(nonneg | nonpos)
    width = np.where(cross, du - dl, 1.0)
    upper_chord = np.where(cross, (gh * du - gl * dl) / width, 0.0)
    lower_chord = np.where(cross, (gl * du - gh * dl) / width, 0.0)
    upper_slope = np.where(nonneg, gh, np.where(nonpos, gl, np.clip(upper_chord, gl, gh)))
    lower_slope = np.where(nonneg, gl, np.where(nonpos, gh, np.clip(lower_chord, gl, gh)))
    # Intercepts: the line must dominate (resp. stay below) g·δ at both ends of [dl, du] for
    # every g in the range; at an end δ the extreme products are gl·δ and gh·δ.
    def extreme(d: np.ndarray, top: bool) -> np.ndarray:
        products = np.stack([gl * d, gh * d])
        return up(products.max(axis=0)) if top else down(products.min(axis=0))

    upper_intercept = np.maximum(
        up(extreme(dl, True) - down(upper_slope * dl)), up(extreme(du, True) - down(upper_slope * du))
    )
    lower_intercept = np.minimum(
        down(extreme(dl, False) - up(lower_slope * dl)), down(extreme(du, False) - up(lower_slope * du))
    )
    return lower_slope, lower_intercept, upper_slope, upper_intercept


def estimate_bytes(shapes: list[tuple[int, ...]], dims: int) -> int:
    """Rough bytes one box needs for symbolic bounds of tensors of ``shapes``."""
    return int(sum(math.prod(shape) for shape in shapes) * dims * 8 * 2 * 4)


__all__ = [
    "InputBox",
    "Sym",
    "estimate_bytes",
    "monotone_relaxation",
    "product_relaxation",
    "relu_like_relaxation",
]
