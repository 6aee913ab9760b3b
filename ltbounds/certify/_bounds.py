"""Certified upper bounds on ``sup_{x ∈ box} ‖f_ticket(x) − f_target(x)‖`` (three methods).

* :func:`separate_ibp`: outward-rounded interval bound propagation of each network on its own,
  ``f̂ − f ∈ [l̂ − u, û − l]`` (sound, loose: it forgets that both see the same x).
* :func:`differential_ibp`: propagates, per tracked ticket copy and spatial position, an
  enclosure of the *difference* ``ĥ − h`` through the transitions of
  :mod:`._alignment` (the exact error decompositions of LEMMAS.md 3 and 4), through φ by the
  mean value theorem on the hull of both pre-activations, and through pooling and flatten
  exactly; every step is intersected with the separate bounds. :func:`branch_and_bound`
  splits the input box while a budget of boxes lasts.
* :func:`composition_bound`: the composition lemma (``composition.layer_step`` of
  :mod:`ltbounds.lemmas.composition`, the split ``Ŵĥ − Wh = Ŵ(ĥ − h) + (Ŵ − W)h``) evaluated
  per tracked copy with realised quantities:
  ``e_o <= λ (Σ|Ŵ_o| e_in + Σ|E_o| M + sup|b̂_o − b_j + free|)`` (+ the Taylor remainder of
  the univariate layer for smooth φ), with ``M`` from the outward-rounded IBP of the target.

All arithmetic is outward rounded (:mod:`._rigorous`, :mod:`._activation`): the results are
upper bounds of the exact real quantities, for the stated box.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ltbounds.certify._activation import (
    activation_image,
    curvature_at_zero,
    slope_range,
)
from ltbounds.certify._alignment import Alignment, BlockTransition, Carried, Transition
from ltbounds.certify._rigorous import (
    Interval,
    LinearOp,
    add,
    difference_through_structural,
    down,
    enclose_linear,
    enclose_structural,
    hull,
    intersect,
    magnitude,
    multiply,
    negate,
    power_up,
    scale,
    square,
    subtract,
    sum_up,
    up,
)
from ltbounds.certify._symbolic import (
    InputBox,
    Sym,
    estimate_bytes,
    monotone_relaxation,
    product_relaxation,
    relu_like_relaxation,
)
from ltbounds.errors import InvalidInput
from ltbounds.nets import Flatten, LinearLayer, ResidualBlock, TargetNet

#: Largest dense matrix (entries) :meth:`Engine._fusion` may build; above it the smooth
#: transition is not fused (an MNIST-sized smooth ticket would need about 2·10¹¹ entries).
MAX_FUSION_ENTRIES = 40_000_000


# --------------------------------------------------------------------- network enclosures
def _linear_op(layer: LinearLayer) -> tuple[LinearOp, np.ndarray | None]:
    bias = None
    if layer.bias is not None:
        bias = layer.bias.reshape(-1, *([1] * (layer.weight.ndim - 2)))
    return LinearOp.like(layer, layer.weight), bias


class RigorousNet:
    """Outward-rounded interval bound propagation of a :class:`TargetNet` (batched boxes).

    Residual blocks (``y = φ_out(skip(x) + branch(x))``) are enclosed piece by piece: the
    branch layer by layer (φ between its layers), the skip (identity, or its projection), their
    sum outward rounded, then φ_out. Branch and skip see the same ``x``, so the sum of their
    enclosures is sound but not tight.
    """

    def __init__(self, net: TargetNet):
        self.net = net
        self.ops: dict[int, tuple[LinearOp, np.ndarray | None]] = {}
        self.blocks: dict[int, tuple[list[tuple[LinearOp, np.ndarray | None]], tuple[LinearOp, np.ndarray | None] | None]] = {}
        for index, layer in enumerate(net.layers):
            if isinstance(layer, LinearLayer):
                self.ops[index] = _linear_op(layer)
            elif isinstance(layer, ResidualBlock):
                branch = [_linear_op(inner) for inner in layer.branch]
                skip = None if layer.skip is None else _linear_op(layer.skip)
                self.blocks[index] = (branch, skip)

    def enclose_block(self, index: int, x: Interval, inner: dict[int, Any] | None = None) -> tuple[Interval, Interval]:
        """``(enclosure of skip(x) + branch(x), block output)`` of residual block ``index``.

        With ``inner``, ``inner[index]`` receives ``{"branch": [(pre, post) per branch
        layer], "skip": enclosure of skip(x)}`` (what the differential bounds read).
        """
        layer = self.net.layers[index]
        activation = self.net.activation_function
        branch, skip = self.blocks[index]
        h = x
        layers = []
        for position, (op, bias) in enumerate(branch):
            pre = enclose_linear(op, h, bias=bias)
            h = activation_image(activation, pre) if position < len(branch) - 1 else pre
            layers.append((pre, h))
        s = x if skip is None else enclose_linear(skip[0], x, bias=skip[1])
        if inner is not None:
            inner[index] = {"branch": layers, "skip": s}
        total = add(s, h)
        return total, activation_image(activation, total) if layer.activation_out else total

    def enclose(self, box: Interval, inner: dict[int, Any] | None = None) -> list[tuple[Interval | None, Interval]]:
        """Per layer ``(pre-activation enclosure or None, output enclosure)`` on a box batch.

        For a residual block the first entry is the enclosure of ``skip(x) + branch(x)``;
        with ``inner`` its branch layers' and skip's enclosures are kept there too
        (:meth:`enclose_block`).
        """
        out: list[tuple[Interval | None, Interval]] = []
        x = box
        activation = self.net.activation_function
        for index, layer in enumerate(self.net.layers):
            if index in self.ops:
                op, bias = self.ops[index]
                pre = enclose_linear(op, x, bias=bias)
                x = activation_image(activation, pre) if self.net.is_activated(index) else pre
                out.append((pre, x))
            elif index in self.blocks:
                pre, x = self.enclose_block(index, x, inner)
                if self.net.is_activated(index):
                    x = activation_image(activation, x)
                out.append((pre, x))
            else:
                x = enclose_structural(layer, x)
                out.append((None, x))
        return out


def _take(x: Interval, index: np.ndarray) -> Interval:
    return x[0][:, index], x[1][:, index]


def _bias_like(values: np.ndarray, spatial_dims: int) -> np.ndarray:
    return values.reshape(-1, *([1] * spatial_dims))


@dataclass
class Engine:
    """Both networks' rigorous IBP and the alignment, ready to bound boxes."""

    alignment: Alignment
    target: RigorousNet
    ticket: RigorousNet

    @classmethod
    def build(cls, alignment: Alignment) -> Engine:
        return cls(alignment, RigorousNet(alignment.target), RigorousNet(alignment.ticket_net))

    # -- helpers ----------------------------------------------------------------------------
    def _entering(self, enclosures: list, index: int, box: Interval) -> Interval:
        return box if index == 0 else enclosures[index - 1][1]

    def _remainder(self, transition: Transition, x_hat: Interval) -> Interval:
        activation = self.alignment.target.activation_function
        ops = transition.ops
        top = magnitude(x_hat)
        m2 = up(top * top)
        second = float(activation.second_derivative_bound)
        loose = enclose_linear(ops["b2"], (m2, m2))[1]
        loose = up(up(loose * second) / 2.0)
        remainder = (-loose, loose)
        third = activation.third_derivative_bound
        if third is not None:
            curvature = curvature_at_zero(activation)
            t1 = enclose_linear(ops["a2"], square(x_hat), radius_op=ops["a2_rad"])
            t1 = scale(t1, (curvature[0] / 2.0, curvature[1] / 2.0))
            m3 = power_up(top, 3)
            t3 = enclose_linear(ops["a3"], (m3, m3))[1]
            t3 = up(up(t3 * float(third)) / 6.0)
            remainder = intersect(remainder, (down(t1[0] - t3), up(t1[1] + t3)))
        return remainder

    def _x_hat(self, transition: Transition, d_in: Interval, h_in: Interval, s_in: Interval) -> tuple[Interval, Interval]:
        """Per target input unit: enclosures of ``D`` at its primary copy and of ``x̂`` there."""
        slots = transition.primary_slot
        has = slots >= 0
        safe = np.maximum(slots, 0)
        shape = (1, -1) + (1,) * (h_in[0].ndim - 2)
        mask = has.reshape(shape)
        d_lo = np.where(mask, d_in[0][:, safe], 0.0)
        d_hi = np.where(mask, d_in[1][:, safe], 0.0)
        channels = transition.incoming.channels[safe]
        s_lo = np.where(mask, s_in[0][:, channels], -np.inf)
        s_hi = np.where(mask, s_in[1][:, channels], np.inf)
        x_hat = intersect(add(h_in, (d_lo, d_hi)), (s_lo, s_hi))
        return (d_lo, d_hi), x_hat

    def _primary_sym(self, transition: Transition, d_sym: Sym) -> Sym:
        slots = transition.primary_slot
        picked = d_sym.take(np.maximum(slots, 0))
        mask = (slots >= 0).reshape((1, 1, -1) + (1,) * (picked.lo_coef.ndim - 3))
        cmask = mask[:, 0]
        return Sym(
            np.where(mask, picked.lo_coef, 0.0),
            np.where(cmask, picked.lo_const, 0.0),
            np.where(mask, picked.hi_coef, 0.0),
            np.where(cmask, picked.hi_const, 0.0),
        )

    def _relu_sym(self, value: Sym, concrete: Interval, ibox: InputBox) -> Sym:
        a = float(self.alignment.target.activation_function.relu_like_negative_slope or 0.0)
        return value.scale(*relu_like_relaxation(concrete, a), ibox)

    def _delta(
        self,
        transition: Transition,
        d_in: Interval,
        t_enc: list,
        s_enc: list,
        box: Interval,
        sym: dict[str, Any] | None = None,
    ) -> tuple[Interval, Sym | None]:
        """Enclosure (and symbolic bounds) of the pre-activation difference of tracked copies."""
        ops = transition.ops
        h_in = self._entering(t_enc, transition.target_layer, box)
        spatial_dims = h_in[0].ndim - 2
        bias = transition.bias_delta
        bias_interval = (_bias_like(bias[0], spatial_dims)[None], _bias_like(bias[1], spatial_dims)[None])
        delta_sym: Sym | None = None
        if sym is not None:
            ibox: InputBox = sym["box"]
            h_sym: Sym = sym["target"][transition.target_layer - 1] if transition.target_layer > 0 else sym["input"]
            d_sym: Sym = sym["d"]
        if transition.kind == "copy":
            s_in = self._entering(s_enc, transition.source_layer, box)
            delta = enclose_linear(ops["copy"], d_in)
            delta = add(delta, enclose_linear(ops["error"], h_in, radius_op=ops["error_rad"]))
            constant = bias_interval
            if len(transition.free_units):
                constant = add(constant, enclose_linear(ops["free"], _take(s_in, transition.free_units)))
            delta = add(delta, constant)
            if sym is not None:
                deferred = sym.get("deferred")
                if deferred is not None:
                    delta_sym = self._fused_contribution(deferred["fusion"], deferred, ibox)
                else:
                    delta_sym = d_sym.linear(ops["copy"], ibox)
                error_sym = h_sym.linear(ops["error"], ibox, radius_op=ops["error_rad"], magnitude=magnitude(h_in))
                delta_sym = delta_sym.add(error_sym, ibox).add_interval(constant)
        else:
            activation = self.alignment.target.activation_function
            s_in = self._entering(s_enc, transition.univariate_layer, box)
            d_primary, x_hat = self._x_hat(transition, d_in, h_in, s_in)
            constant = bias_interval
            if len(transition.free_units):
                s_uni = s_enc[transition.univariate_layer][1]
                constant = add(constant, enclose_linear(ops["free"], _take(s_uni, transition.free_units)))
            if sym is not None:
                p_sym = self._primary_sym(transition, d_sym)
                x_sym = h_sym.add(p_sym, ibox)
                x_hat = intersect(x_hat, x_sym.concretize(ibox))
                delta_sym = p_sym.linear(ops["target"], ibox)
            delta = enclose_linear(ops["target"], d_primary)
            if activation.relu_like:
                plus = activation_image(activation, x_hat)
                minus = activation_image(activation, negate(x_hat))
                delta = add(delta, enclose_linear(ops["pos"], plus, radius_op=ops["pos_rad"]))
                delta = add(delta, enclose_linear(ops["neg"], minus, radius_op=ops["neg_rad"]))
                if sym is not None:
                    plus_sym = self._relu_sym(x_sym, x_hat, ibox)
                    minus_sym = self._relu_sym(x_sym.negate(), negate(x_hat), ibox)
                    for name, part, image in (("pos", plus_sym, plus), ("neg", minus_sym, minus)):
                        term = part.linear(ops[name], ibox, radius_op=ops[name + "_rad"], magnitude=magnitude(image))
                        delta_sym = delta_sym.add(term, ibox)
            else:
                offset = transition.offset
                constant = add(constant, (offset[0][None], offset[1][None]))
                constant = add(constant, self._remainder(transition, x_hat))
                delta = add(delta, enclose_linear(ops["linear"], x_hat, radius_op=ops["linear_rad"]))
                if sym is not None:
                    term = x_sym.linear(ops["linear"], ibox, radius_op=ops["linear_rad"], magnitude=magnitude(x_hat))
                    delta_sym = delta_sym.add(term, ibox)
            delta = add(delta, constant)
            if sym is not None:
                delta_sym = delta_sym.add_interval(constant)
        return delta, delta_sym

    # -- symbolic target ------------------------------------------------------------------------
    def _target_symbolic(self, box: Interval, ibox: InputBox, t_enc: list) -> tuple[Sym, list[Sym | None], list]:
        """Symbolic bounds of every target layer output; the concrete enclosures tightened."""
        net = self.alignment.target
        activation = net.activation_function
        value = Sym.identity(ibox, tuple(net.input_shape))
        start = value
        syms: list[Sym | None] = []
        tightened = []
        for index, layer in enumerate(net.layers):
            pre, post = t_enc[index]
            if index in self.target.ops:
                op, bias = self.target.ops[index]
                value = value.linear(op, ibox, bias=bias)
                pre = intersect(pre, value.concretize(ibox))
                if net.is_activated(index):
                    post = activation_image(activation, pre)
                    value = self._activation_sym(value, pre, post, ibox)
                else:
                    post = pre
            elif isinstance(layer, Flatten):
                value = value.reshape(tuple(net.shapes[index + 1]))
            elif layer.kind.startswith("avgpool"):
                value = value.average_pool(layer, ibox)
            else:
                value = Sym.constant(post, ibox.dims)
            post = intersect(post, value.concretize(ibox))
            tightened.append((pre, post))
            syms.append(value)
        return start, syms, tightened

    def _activation_sym(self, value: Sym, pre: Interval, post: Interval, ibox: InputBox) -> Sym:
        activation = self.alignment.target.activation_function
        if activation.relu_like:
            return self._relu_sym(value, pre, ibox)
        slope = slope_range(activation, pre)[0]
        low_image = activation_image(activation, (pre[0], pre[0]))[0]
        high_image = activation_image(activation, (pre[1], pre[1]))[1]
        lo_s, lo_c, hi_s, hi_c = monotone_relaxation(pre, low_image, high_image, np.maximum(slope, 0.0))
        negative = slope < 0  # not monotone here: keep only the interval
        lo_s = np.where(negative, 0.0, lo_s)
        hi_s = np.where(negative, 0.0, hi_s)
        lo_c = np.where(negative, post[0], lo_c)
        hi_c = np.where(negative, post[1], hi_c)
        return value.scale(lo_s, lo_c, hi_s, hi_c, ibox)

    # -- smooth φ: sum the copies before relaxing the slope -----------------------------------
    def _fusion(self, position: int) -> dict[str, Any] | None:
        """Box-independent pieces for fusing smooth transition ``position`` into the next one.

        For smooth φ, ``D_c = φ'(z_i) Δ_c + r_c`` with ``|r_c| <= sup|φ''|·Δ_c²/2`` (Taylor)
        and the slope ``φ'(z_i)`` *shared by all copies c of target unit i* at a position. So
        the next (dense) layer's ``Σ_c K[o,c,p] D_c(p)`` equals
        ``Σ_{i,p} φ'(z_i(p))·Y[o,i,p] + Σ K r`` with ``Y[o,i,p] = Σ_{c copies i} K[o,c,p] Δ_c(p)``:
        the copies' errors are summed (and cancel) before the slope's range is taken. ``K`` is
        the next layer's copy weights pulled back through flatten and one non-overlapping
        average pooling. Returns None where this does not apply.
        """
        cache = self.__dict__.setdefault("_fusions", {})
        if position in cache:
            return cache[position]
        cache[position] = None
        transitions = self.alignment.transitions
        activation = self.alignment.target.activation_function
        if activation.relu_like or position + 1 >= len(transitions):
            return None
        here, after = transitions[position], transitions[position + 1]
        if not here.activated or after.kind != "copy" or after.ops["copy"].kind != "dense":
            return None
        target = self.alignment.target
        spatial = tuple(target.shapes[here.target_layer + 1][1:])
        channels = len(here.tracked)
        positions = math.prod(spatial)
        weight = after.ops["copy"].weight  # (T, features after the structural layers)
        count = 1.0
        shape = spatial
        pooled_index = np.arange(positions)
        for t_index in here.after:
            layer = target.layers[t_index]
            if isinstance(layer, Flatten):
                continue
            if not layer.kind.startswith("avgpool") or tuple(layer.stride) != tuple(layer.kernel) or count != 1.0:
                return None
            from ltbounds.nets._gather import window_indices, window_output_shape  # noqa: PLC0415

            out = window_output_shape(shape, layer.kernel, layer.stride, (0,) * len(shape))
            table = window_indices(shape, layer.kernel, layer.stride, (0,) * len(shape))
            table = table.reshape(math.prod(layer.kernel), math.prod(out))
            pooled_index = np.full(positions, -1)
            for q in range(table.shape[1]):
                pooled_index[table[:, q]] = q
            count = float(math.prod(layer.kernel))
            shape = out
        pooled = math.prod(shape)
        w = weight.reshape(weight.shape[0], channels, pooled)
        k = np.where(pooled_index[None, None, :] >= 0, w[:, :, np.maximum(pooled_index, 0)], 0.0)
        k_lo, k_hi = down(k / count), up(k / count)
        if count == 1.0 or math.log2(count).is_integer():
            k_lo = k_hi = k / count  # exact
        units = here.tracked_units
        n_units = int(units.max()) + 1 if len(units) else 0
        rows_t, rows_i = weight.shape[0], n_units
        rows = rows_t * rows_i * positions
        if rows * channels * positions > MAX_FUSION_ENTRIES:
            return None  # the unfused bound is sound too; a wide ticket would need terabytes here
        big_lo = np.zeros((rows, channels * positions))
        big_hi = np.zeros((rows, channels * positions))
        o_idx, c_idx, p_idx = np.meshgrid(np.arange(rows_t), np.arange(channels), np.arange(positions), indexing="ij")
        row = (o_idx * rows_i + units[c_idx]) * positions + p_idx
        col = c_idx * positions + p_idx
        big_lo[row.reshape(-1), col.reshape(-1)] = k_lo.reshape(-1)
        big_hi[row.reshape(-1), col.reshape(-1)] = k_hi.reshape(-1)
        mid = 0.5 * big_lo + 0.5 * big_hi
        rad = np.maximum(up(big_hi - mid), up(mid - big_lo))
        summing = np.zeros((rows_t, rows))
        summing[np.repeat(np.arange(rows_t), rows_i * positions), np.arange(rows)] = 1.0
        cache[position] = {
            "mid": LinearOp(mid, "dense"),
            "rad": LinearOp(rad, "dense"),
            "abs": LinearOp(up(np.abs(mid) + rad), "dense"),
            "sum": LinearOp(summing, "dense"),
            "units": rows_i,
            "positions": positions,
        }
        return cache[position]

    def _fused_contribution(self, fusion: dict[str, Any], deferred: dict[str, Any], ibox: InputBox) -> Sym:
        """Symbolic bounds of the next layer's ``Σ_c K D_c`` from the deferred pre-activation Δ."""
        activation = self.alignment.target.activation_function
        delta, delta_sym, z = deferred["delta"], deferred["delta_sym"], deferred["z"]
        batch = delta[0].shape[0]
        flat = (delta[0].reshape(batch, -1), delta[1].reshape(batch, -1))
        flat_sym = delta_sym.reshape((flat[0].shape[1],))
        top = magnitude(flat)
        y_sym = flat_sym.linear(fusion["mid"], ibox, radius_op=fusion["rad"], magnitude=top)
        y = intersect(enclose_linear(fusion["mid"], flat, radius_op=fusion["rad"]), y_sym.concretize(ibox))
        slopes = slope_range(activation, (z[0].reshape(batch, -1), z[1].reshape(batch, -1)))
        repeat = y[0].shape[1] // slopes[0].shape[1]
        g = (np.tile(slopes[0], (1, repeat)), np.tile(slopes[1], (1, repeat)))
        summed = y_sym.scale(*product_relaxation(y, g), ibox).linear(fusion["sum"], ibox)
        # Σ |K| · sup|φ''|/2 · Δ²  (the Taylor remainders r_c).
        square_top = up(up(top * top) * float(activation.second_derivative_bound) / 2.0)
        square_top = up(square_top)
        remainder = enclose_linear(fusion["abs"], (square_top, square_top))[1]
        remainder = enclose_linear(fusion["sum"], (remainder, remainder))[1]
        return summed.add_interval((-remainder, remainder))

    # -- method (b): differential IBP ----------------------------------------------------------
    def differential(self, box: Interval, *, symbolic: bool = False) -> tuple[Interval, Interval]:
        """Enclosures of ``f̂ − f`` on every box of the batch: (differential, separate).

        With ``symbolic`` the differences (and the target's values) also carry affine bounds
        in the input (:mod:`._symbolic`), intersected with the intervals at every step.
        """
        t_enc = self.target.enclose(box)
        s_enc = self.ticket.enclose(box)
        separate_out = subtract(s_enc[-1][1], t_enc[-1][1])
        if self.alignment.residual:
            if self.alignment.steps is None:
                # The ticket records no copies (not built by the construction): separate.
                return separate_out, separate_out
            return self._differential_residual(box), separate_out
        activation = self.alignment.target.activation_function
        first = self.alignment.transitions[0].incoming
        batch = box[0].shape[0]
        zero = np.zeros((batch, len(first.channels), *first.spatial))
        d: Interval = (zero, zero)
        sym: dict[str, Any] | None = None
        if symbolic:
            ibox = InputBox.of(box)
            start, target_syms, t_enc = self._target_symbolic(box, ibox, t_enc)
            sym = {"box": ibox, "input": start, "target": target_syms, "d": Sym.constant(d, ibox.dims)}
        for position, transition in enumerate(self.alignment.transitions):
            delta, delta_sym = self._delta(transition, d, t_enc, s_enc, box, sym)
            if sym is not None:
                sym["deferred"] = None
            z = _take(t_enc[transition.target_layer][0], transition.tracked_units)
            z_hat = _take(s_enc[transition.source_layer][0], transition.tracked)
            delta = intersect(delta, subtract(z_hat, z))
            if delta_sym is not None:
                delta = intersect(delta, delta_sym.concretize(sym["box"]))
            d_sym = delta_sym
            if transition.activated:
                reach = hull(z, intersect(add(z, delta), z_hat))
                slopes = slope_range(activation, reach)
                d = multiply(delta, slopes)
                separate = subtract(
                    _take(s_enc[transition.source_layer][1], transition.tracked),
                    _take(t_enc[transition.target_layer][1], transition.tracked_units),
                )
                d = intersect(d, separate)
                if delta_sym is not None:
                    # Lines of either sign (φ's slope range may dip below 0: GELU, SiLU).
                    d_sym = delta_sym.scale(*product_relaxation(delta, slopes), sym["box"])
                    d = intersect(d, d_sym.concretize(sym["box"]))
            else:
                d = delta
            state = Carried(transition.tracked, transition.tracked_units, tuple(d[0].shape[2:]))
            for t_index, s_index in zip(transition.after, transition.source_after, strict=True):
                layer = self.alignment.target.layers[t_index]
                d = difference_through_structural(layer, d)
                state = state.through(layer)
                if d_sym is not None:
                    if isinstance(layer, Flatten):
                        d_sym = d_sym.reshape(tuple(d[0].shape[1:]))
                    elif layer.kind.startswith("avgpool"):
                        d_sym = d_sym.average_pool(layer, sym["box"])
                    else:
                        d_sym = Sym.constant(d, sym["box"].dims)
                separate = subtract(_take(s_enc[s_index][1], state.channels), _take(t_enc[t_index][1], state.units))
                d = intersect(d, separate)
                if d_sym is not None:
                    d = intersect(d, d_sym.concretize(sym["box"]))
            if sym is not None:
                sym["d"] = d_sym
                fusion = self._fusion(position) if delta_sym is not None else None
                if fusion is not None:
                    sym["deferred"] = {
                        "fusion": fusion,
                        "delta": delta,
                        "delta_sym": delta_sym,
                        "z": t_enc[transition.target_layer][0],
                    }
        return d, separate_out

    # -- residual targets: the difference through blocks -------------------------------------
    def _through(self, step: Any, delta: Interval, target_pair: Any, source_pair: Any) -> Interval:
        """The difference after ``step``'s φ from the pre-activation difference ``delta`` (mean
        value theorem on the hull of both pre-activations), intersected with the separate
        bounds; ``delta`` itself (intersected with ``ẑ − z``) when the step has no φ.

        ``target_pair`` and ``source_pair`` are the (pre-activation, post-activation)
        enclosures of the layer in the target and in the ticket, of which the step's tracked
        units are taken."""
        z = _take(target_pair[0], step.tracked_units)
        z_hat = _take(source_pair[0], step.tracked)
        delta = intersect(delta, subtract(z_hat, z))
        if not step.activated:
            return delta
        post = _take(target_pair[1], step.tracked_units)
        post_hat = _take(source_pair[1], step.tracked)
        activation = self.alignment.target.activation_function
        reach = hull(z, intersect(add(z, delta), z_hat))
        d = multiply(delta, slope_range(activation, reach))
        return intersect(d, subtract(post_hat, post))

    def _after(self, step: Any, d: Interval, t_enc: list, s_enc: list) -> Interval:
        """The difference through the pooling and flatten layers after a step (exact)."""
        state = Carried(step.tracked, step.tracked_units, tuple(d[0].shape[2:]))
        for t_index, s_index in zip(step.after, step.source_after, strict=True):
            layer = self.alignment.target.layers[t_index]
            d = difference_through_structural(layer, d)
            state = state.through(layer)
            separate = subtract(_take(s_enc[s_index][1], state.channels), _take(t_enc[t_index][1], state.units))
            d = intersect(d, separate)
        return d

    def _differential_residual(self, box: Interval) -> Interval:
        """Differential IBP through plain layers and residual blocks (interval bounds).

        A block ``φ_out(skip(x) + branch(x))``: the branch's copy transitions carry the
        per-copy difference as plain layers do (they read the block input's copies); at the
        sum, output copy ``o`` of unit ``j`` adds its skip's difference: for the identity the
        block input's own difference at source unit ``o`` (exact: the ticket adds ``x̂_o``, the
        target ``x_j``), for a projection a copy transition from the input copies (realised
        subset-sum errors ``E·x`` plus ``P̂·D``). Both parts enter the same pre-activation
        before φ_out. Each part is the true difference of its own path (branch: ``ĝ − g``, with
        the ticket's summed bias against ``b_branch``; projection: ``ŝ − s``), so each is
        intersected with its own separate enclosure; their exact bias constants cancel.

        Interval bounds only: ``symbolic`` is not used through blocks.
        """
        t_inner: dict[int, Any] = {}
        s_inner: dict[int, Any] = {}
        t_enc = self.target.enclose(box, t_inner)
        s_enc = self.ticket.enclose(box, s_inner)
        steps = self.alignment.steps or []
        first = steps[0].incoming
        batch = box[0].shape[0]
        zero = np.zeros((batch, len(first.channels), *first.spatial))
        d: Interval = (zero, zero)
        for step in steps:
            if not isinstance(step, BlockTransition):
                delta, _ = self._delta(step, d, t_enc, s_enc, box)
                d = self._through(step, delta, t_enc[step.target_layer], s_enc[step.source_layer])
                d = self._after(step, d, t_enc, s_enc)
                continue
            h_in = self._entering(t_enc, step.target_layer, box)
            s_in = self._entering(s_enc, step.source_layer, box)
            t_local = [(None, h_in), *t_inner[step.target_layer]["branch"]]
            s_local = [(None, s_in), *s_inner[step.source_layer]["branch"]]
            d_in = d
            for j, transition in enumerate(step.branch):
                delta, _ = self._delta(transition, d, t_local, s_local, box)
                d = self._through(transition, delta, t_local[j + 1], s_local[j + 1])
            branch_delta = d
            if step.skip is None:
                # Identity: the ticket adds its source unit o, the target unit j's own value.
                slots = step.skip_slot
                has = (slots >= 0).reshape((1, -1) + (1,) * (d_in[0].ndim - 2))
                safe = np.maximum(slots, 0)
                separate = subtract(_take(s_in, step.tracked), _take(h_in, step.tracked_units))
                skip_delta = (
                    np.where(has, d_in[0][:, safe], separate[0]),
                    np.where(has, d_in[1][:, safe], separate[1]),
                )
                skip_delta = intersect(skip_delta, separate)
            else:
                t_skip = t_inner[step.target_layer]["skip"]
                s_skip = s_inner[step.source_layer]["skip"]
                skip_delta, _ = self._delta(step.skip, d_in, [(None, h_in), (t_skip, t_skip)], [(None, s_in), (s_skip, s_skip)], box)
            delta = add(branch_delta, skip_delta)
            d = self._through(step, delta, t_enc[step.target_layer], s_enc[step.source_layer])
            d = self._after(step, d, t_enc, s_enc)
        return d

    def symbolic_bytes(self) -> int:
        """Rough bytes one box needs in :meth:`differential` with ``symbolic=True``."""
        target = self.alignment.target
        if self.alignment.residual:
            return 0
        shapes = [tuple(s) for s in target.shapes]
        for transition in self.alignment.transitions:
            index = transition.target_layer
            shapes.append((len(transition.tracked), *target.shapes[index + 1][1:]))
        return estimate_bytes(shapes, math.prod(target.input_shape))

    # -- method (a): composition -------------------------------------------------------------------
    def composition(self) -> np.ndarray:
        """Per output unit, an upper bound of ``sup |f̂_j − f_j|`` over the domain box."""
        target = self.alignment.target
        if self.alignment.residual:
            if self.alignment.steps is None:
                raise InvalidInput(
                    f"target {target.name!r} has residual blocks and the ticket records no copies of "
                    "them (not built by the L+1 construction): the per-copy composition bound needs "
                    "them (use the 'separate' or 'ibp' method)"
                )
            return self._composition_residual()
        low, high = target.input_domain
        box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
        t_enc = self.target.enclose(box)
        s_enc = self.ticket.enclose(box)
        activation = target.activation_function
        first = self.alignment.transitions[0].incoming
        errors = np.zeros(len(first.channels))  # sup |D| per carried channel
        for transition in self.alignment.transitions:
            pre = self._composition_pre(transition, errors, t_enc, s_enc, box)
            lipschitz = float(activation.lipschitz) if transition.activated else 1.0
            errors = up(pre * lipschitz)
            # Pooling cannot raise a sup-norm; flatten repeats a channel's bound per position.
            for t_index in transition.after:
                layer = target.layers[t_index]
                if layer.kind == "flatten":
                    errors = np.repeat(errors, math.prod(target.shapes[t_index][1:]))
        return errors

    def _composition_residual(self) -> np.ndarray:
        """:meth:`composition` through residual blocks (the residual composition lemma per copy).

        Output copy ``o`` of a block: ``e_o <= λ_out (e_skip(o) + e_branch(o))`` with the
        branch's copy transitions bounded as plain layers, ``e_skip(o)`` the block input's own
        bound at source unit ``o`` for the identity (exact path) or a copy-layer step for a
        projection. Each part bounds its own path's difference, so the summed bias the ticket
        realises in the branch is paid twice (``|b̂ − b_branch|`` and ``|b_skip|``): sound, a
        little loose.
        """
        target = self.alignment.target
        low, high = target.input_domain
        box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
        t_inner: dict[int, Any] = {}
        s_inner: dict[int, Any] = {}
        t_enc = self.target.enclose(box, t_inner)
        s_enc = self.ticket.enclose(box, s_inner)
        lam = float(target.activation_function.lipschitz)
        steps = self.alignment.steps or []
        errors = np.zeros(len(steps[0].incoming.channels))
        for step in steps:
            if not isinstance(step, BlockTransition):
                pre = self._composition_pre(step, errors, t_enc, s_enc, box)
                errors = up(pre * (lam if step.activated else 1.0))
            else:
                h_in = self._entering(t_enc, step.target_layer, box)
                s_in = self._entering(s_enc, step.source_layer, box)
                t_local = [(None, h_in), *t_inner[step.target_layer]["branch"]]
                s_local = [(None, s_in), *s_inner[step.source_layer]["branch"]]
                branch = errors
                for transition in step.branch:
                    pre = self._composition_pre(transition, branch, t_local, s_local, box)
                    branch = up(pre * (lam if transition.activated else 1.0))
                if step.skip is None:
                    separate = magnitude(subtract(_take(s_in, step.tracked), _take(h_in, step.tracked_units)))[0]
                    if separate.ndim > 1:
                        separate = separate.max(axis=tuple(range(1, separate.ndim)))
                    slots = step.skip_slot
                    skip = np.minimum(np.where(slots >= 0, errors[np.maximum(slots, 0)], separate), separate)
                else:
                    t_skip = t_inner[step.target_layer]["skip"]
                    s_skip = s_inner[step.source_layer]["skip"]
                    skip = self._composition_pre(
                        step.skip, errors, [(None, h_in), (t_skip, t_skip)], [(None, s_in), (s_skip, s_skip)], box
                    )
                errors = up(up(branch + skip) * (lam if step.activated else 1.0))
            for t_index in step.after:
                if target.layers[t_index].kind == "flatten":
                    errors = np.repeat(errors, math.prod(target.shapes[t_index][1:]))
        return errors

    def _composition_pre(self, transition: Transition, errors: np.ndarray, t_enc: list, s_enc: list, box: Interval) -> np.ndarray:
        """Per tracked copy, the composition lemma's bound of its pre-activation error on the box
        (before φ), from ``errors`` (sup |D| per carried input channel)."""
        target = self.alignment.target
        activation = target.activation_function
        ops = transition.ops
        h_in = self._entering(t_enc, transition.target_layer, box)
        m_in = magnitude(h_in)[0]
        m_unit = m_in.max(axis=tuple(range(1, m_in.ndim))) if m_in.ndim > 1 else m_in
        k = len(transition.tracked)
        kernel_axes = tuple(range(2, ops["free"].weight.ndim))
        spatial_dims = h_in[0].ndim - 2
        if transition.kind == "copy":
            copy_abs = np.abs(ops["copy"].weight).sum(axis=kernel_axes) if kernel_axes else np.abs(ops["copy"].weight)
            propagated = sum_up(copy_abs * errors[None, :], axis=1)
            err_abs = up(np.abs(ops["error"].weight) + ops["error_rad"].weight)
            err_abs = sum_up(err_abs, axis=kernel_axes) if kernel_axes else err_abs
            own = sum_up(up(err_abs * m_unit[None, :]), axis=1)
            s_in = self._entering(s_enc, transition.source_layer, box)
            constant = (np.zeros((1, k, *([1] * spatial_dims))),) * 2
            if len(transition.free_units):
                constant = enclose_linear(ops["free"], _take(s_in, transition.free_units))
            pre = up(propagated + own)
        else:
            s_in = self._entering(s_enc, transition.univariate_layer, box)
            slots = transition.primary_slot
            e_primary = np.where(slots >= 0, errors[np.maximum(slots, 0)], 0.0)
            s_mag = magnitude(s_in)[0]
            s_unit = s_mag.max(axis=tuple(range(1, s_mag.ndim))) if s_mag.ndim > 1 else s_mag
            x_bound = np.where(
                slots >= 0,
                np.minimum(up(m_unit + e_primary), s_unit[transition.incoming.channels[np.maximum(slots, 0)]]),
                m_unit,
            )
            target_abs = np.abs(ops["target"].weight)
            target_abs = target_abs.sum(axis=kernel_axes) if kernel_axes else target_abs
            propagated = sum_up(up(target_abs * e_primary[None, :]), axis=1)
            if activation.relu_like:
                names = ("pos", "neg")
            else:
                names = ("linear",)
            reach = {name: x_bound for name in names}
            if activation.relu_like:
                # E⁺ multiplies φ(x̂) and E⁻ multiplies φ(−x̂): bound each by its own
                # range (on a nonnegative box φ(−x̂) = 0 for ReLU, and the construction
                # leaves E⁻ = w unrealised there; LEMMAS.md 3 (A)).
                plus, minus = self._univariate_reach(transition, h_in, s_in, e_primary)
                reach = {"pos": np.minimum(x_bound, plus), "neg": np.minimum(x_bound, minus)}
            own = np.zeros(k)
            for name in names:
                coefficient = up(np.abs(ops[name].weight) + ops[name + "_rad"].weight)
                coefficient = sum_up(coefficient, axis=kernel_axes) if kernel_axes else coefficient
                own = up(own + sum_up(up(coefficient * reach[name][None, :]), axis=1))
            s_uni = s_enc[transition.univariate_layer][1]
            constant = (np.zeros((1, k, *([1] * spatial_dims))),) * 2
            if len(transition.free_units):
                constant = enclose_linear(ops["free"], _take(s_uni, transition.free_units))
            if not activation.relu_like:
                offset = transition.offset
                constant = add(constant, (offset[0][None], offset[1][None]))
                own = up(own + self._composition_remainder(transition, x_bound))
            pre = up(propagated + own)
        bias = transition.bias_delta
        constant = add(constant, (_bias_like(bias[0], spatial_dims)[None], _bias_like(bias[1], spatial_dims)[None]))
        sup_constant = magnitude(constant)[0]
        if sup_constant.ndim > 1:
            sup_constant = sup_constant.max(axis=tuple(range(1, sup_constant.ndim)))
        pre = up(pre + sup_constant)
        return pre

    def _univariate_reach(
        self, transition: Transition, h_in: Interval, s_in: Interval, e_primary: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per target input unit, upper bounds of ``sup |φ(x̂)|`` and ``sup |φ(−x̂)|`` on the box.

        ``x̂`` (the value the univariate readers see) lies in ``h ± e`` (target value and the
        primary copy's error bound) and in the ticket's own enclosure of that copy.
        """
        activation = self.alignment.target.activation_function
        axes = tuple(range(2, h_in[0].ndim))
        low = h_in[0].min(axis=axes)[0] if axes else h_in[0][0]
        high = h_in[1].max(axis=axes)[0] if axes else h_in[1][0]
        low, high = down(low - e_primary), up(high + e_primary)
        slots = transition.primary_slot
        has = slots >= 0
        channels = transition.incoming.channels[np.maximum(slots, 0)]
        s_low = s_in[0][:, channels].min(axis=axes)[0] if axes else s_in[0][0, channels]
        s_high = s_in[1][:, channels].max(axis=axes)[0] if axes else s_in[1][0, channels]
        low = np.where(has, np.maximum(low, s_low), low)
        high = np.where(has, np.minimum(high, s_high), high)
        high = np.maximum(high, low)
        plus = magnitude(activation_image(activation, (low, high)))
        minus = magnitude(activation_image(activation, (-high, -low)))
        return plus, minus

    def _composition_remainder(self, transition: Transition, x_bound: np.ndarray) -> np.ndarray:
        """Σ_{i,r} min(S2/2·B2·m², |φ''(0)|/2·B2·m² + T/6·A3·m³) per tracked copy (upper)."""
        activation = self.alignment.target.activation_function
        ops = transition.ops
        b2 = ops["b2"].weight.reshape(ops["b2"].weight.shape[0], ops["b2"].weight.shape[1], -1)
        a3 = ops["a3"].weight.reshape(b2.shape)
        m2 = up(x_bound * x_bound)[None, :, None]
        m3 = power_up(x_bound, 3)[None, :, None]
        loose = up(up(up(b2 * m2) * float(activation.second_derivative_bound)) / 2.0)
        if activation.third_derivative_bound is not None:
            curvature = max(abs(c) for c in curvature_at_zero(activation))
            tight = up(
                up(up(up(b2 * m2) * curvature) / 2.0)
                + up(up(up(a3 * m3) * float(activation.third_derivative_bound)) / 6.0)
            )
            loose = np.minimum(loose, tight)
        return sum_up(loose.reshape(loose.shape[0], -1), axis=1)


# ----------------------------------------------------------------------------- norms
def norms_of(enclosure: Interval) -> tuple[np.ndarray, np.ndarray]:
    """Per box: upper bounds of ``max ‖d‖_∞`` and ``max ‖d‖_2`` over the enclosure."""
    top = magnitude(enclosure)
    flat = top.reshape(top.shape[0], -1)
    linf = flat.max(axis=1)
    l2 = up(np.sqrt(sum_up(up(flat * flat), axis=1)))
    return linf, l2


def lower_norms(enclosure: Interval) -> tuple[np.ndarray, np.ndarray]:
    """Per box: lower bounds of ``‖d‖_∞`` and ``‖d‖_2`` valid for every d in the enclosure."""
    lo, hi = enclosure
    least = np.maximum(np.maximum(lo, -hi), 0.0).reshape(lo.shape[0], -1)
    linf = least.max(axis=1)
    squares = down(least * least)
    total = down(np.sum(squares, axis=1) * (1 - 4 * squares.shape[1] * 2.0**-53))
    l2 = down(np.sqrt(np.maximum(total, 0.0)))
    return linf, l2


# -------------------------------------------------------------------- branch and bound
@dataclass
class BranchAndBound:
    """Result of :func:`branch_and_bound`."""

    linf: float
    l2: float
    separate_linf: float
    separate_l2: float
    boxes: int
    evaluated: int
    worst_box: Interval
    symbolic: bool = False


def branch_and_bound(
    engine: Engine,
    *,
    budget: int,
    influence: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
    batch: int = 16,
    progress: Callable[[str, int, int], None] | None = None,
    time_limit: float | None = None,
    symbolic: bool = False,
) -> BranchAndBound:
    """Differential IBP on the domain box, split while ``budget`` leaves last (rigorous).

    The leaf with the largest ∞-norm bound is split in two along the coordinate with the
    largest ``width × influence`` (``influence(lo, hi)`` per coordinate; the width alone when
    None). The reported bounds are maxima over all leaves, so they hold on the whole box.
    """
    target = engine.alignment.target
    low, high = target.input_domain
    shape = tuple(target.input_shape)
    root = (np.full((1, *shape), low), np.full((1, *shape), high))
    start = time.perf_counter()
    diff, separate = engine.differential(root, symbolic=symbolic)
    linf, l2 = norms_of(diff)
    sep_linf, sep_l2 = norms_of(separate)
    heap: list[tuple[float, int, np.ndarray, np.ndarray, float]] = [(-float(linf[0]), 0, root[0][0], root[1][0], float(l2[0]))]
    counter = 1
    evaluated = 1
    while len(heap) < budget:
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
        take = min(batch, budget - len(heap), len(heap))
        popped = [heapq.heappop(heap) for _ in range(take)]
        children_lo, children_hi = [], []
        for _, _, lo, hi in ((p[0], p[1], p[2], p[3]) for p in popped):
            width = hi - lo
            weight = width if influence is None else width * influence(lo, hi)
            axis = int(np.argmax(weight.reshape(-1)))
            if width.reshape(-1)[axis] <= 0:
                axis = int(np.argmax(width.reshape(-1)))
            middle = 0.5 * lo.reshape(-1)[axis] + 0.5 * hi.reshape(-1)[axis]
            left_hi = hi.copy()
            left_hi.reshape(-1)[axis] = middle
            right_lo = lo.copy()
            right_lo.reshape(-1)[axis] = middle
            children_lo += [lo, right_lo]
            children_hi += [left_hi, hi]
        boxes = (np.stack(children_lo), np.stack(children_hi))
        diff, _ = engine.differential(boxes, symbolic=symbolic)
        linf, l2 = norms_of(diff)
        evaluated += len(children_lo)
        for k in range(len(children_lo)):
            heapq.heappush(heap, (-float(linf[k]), counter, children_lo[k], children_hi[k], float(l2[k])))
            counter += 1
        if progress is not None:
            progress("branch and bound", len(heap), budget)
    worst = min(heap)
    return BranchAndBound(
        linf=-worst[0],
        l2=max(item[4] for item in heap),
        separate_linf=float(sep_linf[0]),
        separate_l2=float(sep_l2[0]),
        boxes=len(heap),
        evaluated=evaluated,
        worst_box=(worst[2], worst[3]),
        symbolic=symbolic,
    )


def point_enclosure(engine: Engine, points: np.ndarray) -> Interval:
    """Rigorous enclosures of ``f̂(x) − f(x)`` at exact float inputs (point boxes)."""
    box = (points, points)
    t_enc = engine.target.enclose(box)
    s_enc = engine.ticket.enclose(box)
    return subtract(s_enc[-1][1], t_enc[-1][1])


__all__ = [
    "BranchAndBound",
    "Engine",
    "RigorousNet",
    "branch_and_bound",
    "lower_norms",
    "norms_of",
    "point_enclosure",
]
