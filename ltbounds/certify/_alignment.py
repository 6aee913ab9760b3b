"""How a ticket's layers line up with its target's, checked and precomputed once per pair.

A ticket records, per target linear layer ``l``, which source layer carries the target's
output and where (``ticket.matches``; :mod:`ltbounds.construct.builder`). This module checks
that the ticket really fits the target (shapes, kinds, kernels, the order of the layers, the
fingerprint) and turns the realised weights into the box-independent pieces the bounds need:

* **copy transitions** (a source layer reading ρ copies of each target input unit;
  Burkholz, NeurIPS 2022, LEMMAS.md 2.6): for every tracked output copy ``o`` of target unit
  ``j``, the ticket's pre-activation minus the target's is
  ``Σ_{c,r} Ŵ[o,c,r]·D_c + Σ_{i,r} E[o,i,r]·h_i + Σ_{free u} Ŵ[o,u,r]·ĥ_u + (b̂_o − b_j)``,
  with ``D_c = ĥ_c − h_{unit(c)}`` the difference carried by input copy ``c`` and
  ``E[o,i,r] = Σ_{c copies i} Ŵ[o,c,r] − W[j,i,r]`` the realised subset-sum error;
* **univariate pairs** (a 1×1 univariate layer and the layer after it; LEMMAS.md 3): for
  ReLU-like φ the exact identity ``x = (φ(x) − φ(−x))/(1+a)`` gives
  ``Σ_{i,r} [E⁺·φ(x̂_i) + E⁻·φ(−x̂_i) + W[j,i,r]·D_i] + free + (b̂_o − b_j)`` with
  ``E⁺ = Σ_{u_q>0} v_q u_q − w/(1+a)`` and ``E⁻ = Σ_{u_q<0} v_q|u_q| + w/(1+a)``; for smooth φ,
  ``φ(u x̂) = φ(0) + φ'(0) u x̂ + R(u x̂)`` gives
  ``Σ_{i,r} [E·x̂_i + W[j,i,r]·D_i] + φ(0)·Σ_{valid taps} V0 + Σ_q v_q R(u_q x̂) + free + (b̂_o − b_j)``
  with ``E = φ'(0) Σ_q v_q u_q − w`` and the remainder bounded by the Taylor coefficients
  ``A2 = Σ v u²``, ``A3 = Σ |v||u|³``, ``B2 = Σ |v| u²``.

Every coefficient is computed in float64 and carried as an enclosure (``lo``, ``hi``) with the
summation error bound of :mod:`._rigorous`, then stored as midpoint and radius operators.
Units that are neither a usable copy nor a univariate reader of one ("free" units: the
constant units that carry biases, dropped copies) enter through the ticket's own interval
bounds, which are exact up to rounding for constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ltbounds.certify._rigorous import Interval, LinearOp, down, enclose_linear, growth, scale, up
from ltbounds.errors import InvalidInput
from ltbounds.nets import Flatten, LinearLayer, ResidualBlock, TargetNet
from ltbounds.nets._base import format_shape


def _interval_to_ops(like: Any, lo: np.ndarray, hi: np.ndarray) -> tuple[LinearOp, LinearOp]:
    """Midpoint and radius operators of an interval weight ``[lo, hi]``."""
    mid = 0.5 * lo + 0.5 * hi
    rad = np.maximum(up(hi - mid), up(mid - lo))
    return LinearOp.like(like, mid), LinearOp.like(like, rad)


def _group_sum(values: np.ndarray, groups: np.ndarray, count: int) -> Interval:
    """Enclosure of ``out[o, g, r] = Σ_{c : groups[c] = g} values[o, c, r]`` (groups >= 0).

    The channels are sorted by group (stably) and each run summed with ``np.add.reduceat``,
    so memory stays at one reordered copy of ``values`` plus the output: a dense one-hot
    ``(channels, count)`` matrix would need 150 GiB for the flatten→dense layer of a ρ=64
    MNIST ticket. Whatever the summation order, ``|fl(s) − s| <= κ_n·fl(Σ|v|) + n·η`` with n
    the size of the largest group (:func:`._rigorous.growth`), so the enclosure widens by that.
    Groups no channel belongs to sum to exactly zero.
    """
    values = np.asarray(values, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    rows, channels, kernel = values.shape
    total = np.zeros((rows, count, kernel))
    if channels == 0:
        return total, total.copy()
    order = np.argsort(groups, kind="stable")
    ordered = groups[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    present = ordered[starts]
    moved = values[:, order, :]  # (o, c sorted by group, r)
    total[:, present, :] = np.add.reduceat(moved, starts, axis=1)
    np.abs(moved, out=moved)
    magnitude = np.zeros_like(total)
    magnitude[:, present, :] = np.add.reduceat(moved, starts, axis=1)
    del moved
    terms = int(np.diff(np.r_[starts, channels]).max())
    error = up(up(growth(terms) * magnitude) + 2.0 * terms * 2.0**-1074)
    return down(total - error), up(total + error)


def _products(factors: list[np.ndarray]) -> Interval:
    """Enclosure of the elementwise product of exact float arrays (one step per product)."""
    lo = hi = factors[0]
    for factor in factors[1:]:
        candidates = np.stack([lo * factor, hi * factor])
        lo, hi = down(candidates.min(axis=0)), up(candidates.max(axis=0))
    return lo, hi


def _interval_group_sum(values: Interval, groups: np.ndarray, count: int) -> Interval:
    """Enclosure of the group sums of quantities enclosed by ``values``."""
    lo_sum = _group_sum(values[0], groups, count)
    hi_sum = _group_sum(values[1], groups, count)
    return lo_sum[0], hi_sum[1]


@dataclass
class Carried:
    """Which source channels (or features) carry which target units at one point of the net.

    ``channels[t]`` is a source channel index, ``units[t]`` the target unit it is a copy of;
    the difference enclosures of a box batch have shape ``(batch, len(channels), *spatial)``.
    """

    channels: np.ndarray
    units: np.ndarray
    spatial: tuple[int, ...]

    def through(self, layer: Any) -> Carried:
        if isinstance(layer, Flatten):
            positions = math.prod(self.spatial)
            offsets = np.arange(positions, dtype=np.int64)
            return Carried(
                (self.channels[:, None] * positions + offsets[None, :]).reshape(-1),
                (self.units[:, None] * positions + offsets[None, :]).reshape(-1),
                (),
            )
        shape = layer.output_shape((1, *self.spatial))
        return Carried(self.channels, self.units, tuple(shape[1:]))


@dataclass
class Transition:
    """Box-independent pieces of one target linear layer as the ticket realises it.

    Attributes
    ----------
    kind : {"copy", "univariate"}
    target_layer : int
        Index of the target's linear layer in ``target.layers``.
    source_layer : int
        Index, in the ticket network's layers, of the layer holding the tracked copies.
    univariate_layer : int or None
        Index of the univariate layer before it (univariate pairs only).
    tracked, tracked_units : ndarray of int
        Source output units followed (usable copies) and the target unit of each.
    incoming, outgoing : Carried
        What carries the target before (at the first source layer's input) and after.
    activated : bool
        Whether φ follows the layer.
    ops : dict
        Named linear operators (see the module docstring), e.g. ``"copy"``, ``"error"``,
        ``"error_rad"``, ``"free"``, ``"target"``, ``"pos"``, ``"neg"``, ``"linear"``, ...
    free_units : ndarray of int
        Source units (channels) read through ``ops["free"]``, in order.
    primary_slot : ndarray of int
        Univariate pairs: per target input unit, the position in ``incoming`` of the copy its
        readers read (−1 where no reader reads a usable copy).
    bias_delta : Interval
        Enclosure of ``b̂_o − b_j`` per tracked unit.
    offset : Interval or None
        Smooth univariate pairs: enclosure of ``φ(0)·Σ_{valid taps} V0`` per tracked unit and
        output position (box-independent).
    """

    kind: str
    target_layer: int
    source_layer: int
    univariate_layer: int | None
    tracked: np.ndarray
    tracked_units: np.ndarray
    incoming: Carried
    outgoing: Carried
    activated: bool
    ops: dict[str, LinearOp] = field(default_factory=dict)
    free_units: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    primary_slot: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    bias_delta: Interval | None = None
    offset: Interval | None = None
    after: tuple[int, ...] = ()
    source_after: tuple[int, ...] = ()


@dataclass
class Alignment:
    """A checked (target, ticket) pair: the ticket network and its transitions."""

    target: TargetNet
    ticket_net: TargetNet
    transitions: list[Transition]
    leading: tuple[int, ...]
    output_map: np.ndarray
    activation_name: str
    #: True for targets with residual blocks (``transitions`` is then empty).
    residual: bool = False
    #: Residual targets whose ticket records the residual contract (:class:`Ticket.residual`):
    #: the main path in order, a :class:`Transition` per plain linear layer and a
    #: :class:`BlockTransition` per residual block. None where the ticket does not record
    #: its copies (the bounds then enclose both networks separately).
    steps: list[Any] | None = None


@dataclass
class BlockTransition:
    """Box-independent pieces of one target residual block ``φ_out(skip(x) + branch(x))``.

    The branch layers are copy transitions (:class:`Transition` of kind ``"copy"``) whose
    ``target_layer``/``source_layer`` are *local*: ``j + 1`` for branch layer ``j``, indices
    into ``[(None, block input)] + [(pre, post) of each branch layer]`` of either network.
    Each part is a true difference of its own path: the last branch layer's ``bias_delta`` is
    ``b̂ − b_branch`` (the ticket realises the summed bias there) and the projection's is
    ``b̂_skip − b_skip``; the exact constants cancel in the sum. The skip is either a projection
    copy transition (local index 1, into ``[(None, block input), (pre, pre) of the projection]``),
    or the identity: output copy ``o`` receives the block input's source
    unit ``o`` exactly, whose difference is carried at position ``skip_slot[o]`` of
    ``incoming`` (−1 where that unit is not a carried copy of the same target unit).
    """

    target_layer: int
    source_layer: int
    branch: list[Transition]
    skip: Transition | None
    skip_slot: np.ndarray | None
    tracked: np.ndarray
    tracked_units: np.ndarray
    incoming: Carried
    outgoing: Carried
    activated: bool
    after: tuple[int, ...] = ()
    source_after: tuple[int, ...] = ()


def _kernel(layer: LinearLayer) -> tuple[int, ...]:
    return tuple(int(k) for k in layer.weight.shape[2:])


def _geometry(layer: Any) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(getattr(layer, "stride", ())), tuple(getattr(layer, "padding", ()))


def _check_basics(target: TargetNet, ticket: Any) -> None:
    if tuple(ticket.input_shape) != tuple(target.input_shape):
        raise InvalidInput(
            f"ticket expects inputs of shape {format_shape(ticket.input_shape)}, but the target "
            f"{target.name!r} takes {format_shape(target.input_shape)}: they do not belong together"
        )
    if tuple(float(v) for v in ticket.input_domain) != tuple(float(v) for v in target.input_domain):
        raise InvalidInput(
            f"ticket was built on the input domain {list(ticket.input_domain)}, the target "
            f"{target.name!r} states {list(target.input_domain)}"
        )
    if ticket.activation != target.activation:
        raise InvalidInput(
            f"ticket uses activation {ticket.activation!r}, the target {target.name!r} uses "
            f"{target.activation!r}: they do not belong together"
        )
    if len(ticket.matches) != target.depth:
        raise InvalidInput(
            f"ticket records {len(ticket.matches)} matched layers, the target {target.name!r} has "
            f"{target.depth} linear layers: they do not belong together"
        )


def _expected_order(target: TargetNet, ticket: Any) -> tuple[list[tuple[str, int]], list[int]]:
    """The ticket order implied by the target and the matches, and the structural indices."""
    spec_of = [m["source_layer"] for m in ticket.matches]
    expected: list[tuple[str, int]] = []
    structural_targets: list[int] = []
    position = 0
    for index, layer in enumerate(target.layers):
        if layer.is_linear:
            match = ticket.matches[position]
            if match["univariate_layer"] is not None:
                expected.append(("linear", int(match["univariate_layer"])))
            expected.append(("linear", int(spec_of[position])))
            position += 1
        else:
            expected.append(("structural", len(structural_targets)))
            structural_targets.append(index)
    return expected, structural_targets


def align(target: TargetNet, ticket: Any) -> Alignment:
    """Check that ``ticket`` was built for ``target`` and precompute the transitions.

    Raises
    ------
    InvalidInput
        With a message naming the first thing that does not fit (input shape or domain,
        activation, depth, layer order, kinds, kernels, strides, copies arrays, output shape,
        and finally the target fingerprint).
    """
    _check_basics(target, ticket)
    if any(isinstance(layer, ResidualBlock) for layer in target.layers):
        return _align_residual(target, ticket)
    expected, structural_targets = _expected_order(target, ticket)
    _check_order_and_structure(target, ticket, expected, structural_targets)
    ticket_net = _ticket_network_for(target, ticket)
    # Map spec index -> ticket network layer index.
    net_index = {}
    for position, (kind, index) in enumerate(ticket.order):
        if kind == "linear":
            net_index[int(index)] = position
    structural_net = [p for p, (kind, _) in enumerate(ticket.order) if kind == "structural"]

    activation = target.activation_function
    leading = tuple(i for i in range(len(target.layers)) if i < target.linear_layers[0][0])
    carried = Carried(
        np.arange(target.input_shape[0], dtype=np.int64),
        np.arange(target.input_shape[0], dtype=np.int64),
        tuple(target.input_shape[1:]),
    )
    for index in leading:
        carried = carried.through(target.layers[index])
    transitions = []
    linear = target.linear_layers
    structural_cursor = len(leading)
    for position, (t_index, layer) in enumerate(linear):
        match = ticket.matches[position]
        s_index = net_index[int(match["source_layer"])]
        source_layer = ticket_net.layers[s_index]
        if not isinstance(source_layer, LinearLayer) or source_layer.kind != layer.kind:
            raise InvalidInput(
                f"ticket source layer {s_index} ({source_layer.describe()}) cannot realise target "
                f"layer {t_index} ({layer.describe()}): kinds differ"
            )
        if _kernel(source_layer) != _kernel(layer) or _geometry(source_layer) != _geometry(layer):
            raise InvalidInput(
                f"ticket source layer {s_index} ({source_layer.describe()}) and target layer "
                f"{t_index} ({layer.describe()}) differ in kernel, stride or padding"
            )
        copies = np.asarray(match["copies"], dtype=np.int64)
        usable = np.asarray(match["usable"], dtype=bool)
        if copies.ndim != 2 or copies.shape[0] != layer.out_channels or usable.shape != copies.shape:
            raise InvalidInput(
                f"ticket match {position} has copies of shape {copies.shape} (usable "
                f"{usable.shape}); expected ({layer.out_channels}, copies) for target layer {t_index}"
            )
        if copies.size and (copies.min() < 0 or copies.max() >= source_layer.out_channels):
            raise InvalidInput(
                f"ticket match {position} names source units outside 0..{source_layer.out_channels - 1}"
            )
        if not usable.any(axis=1).all():
            raise InvalidInput(f"ticket match {position} leaves a target unit without a usable copy")
        units = np.repeat(np.arange(layer.out_channels, dtype=np.int64), copies.shape[1])
        flat_usable = usable.reshape(-1)
        tracked = copies.reshape(-1)[flat_usable]
        tracked_units = units[flat_usable]
        last = position == len(linear) - 1
        out_spatial = tuple(target.shapes[t_index + 1][1:])
        after = []
        cursor = t_index + 1
        while cursor < len(target.layers) and not target.layers[cursor].is_linear:
            after.append(cursor)
            cursor += 1
        source_after = tuple(structural_net[structural_cursor: structural_cursor + len(after)])
        structural_cursor += len(after)
        outgoing = Carried(tracked, tracked_units, out_spatial)
        for index in after:
            outgoing = outgoing.through(target.layers[index])
        common = dict(
            target_layer=t_index,
            source_layer=s_index,
            tracked=tracked,
            tracked_units=tracked_units,
            incoming=carried,
            outgoing=outgoing,
            activated=not last,
            after=tuple(after),
            source_after=source_after,
        )
        if match["univariate_layer"] is None:
            transition = _copy_transition(layer, source_layer, common)
        else:
            u_index = net_index[int(match["univariate_layer"])]
            transition = _univariate_transition(
                layer, ticket_net.layers[u_index], source_layer, activation, common, u_index
            )
        transitions.append(transition)
        carried = outgoing
    # The ticket's output k must carry the target's output k.
    outputs = int(target.output_shape[0])
    if not (np.array_equal(np.sort(carried.units), np.arange(outputs)) and np.array_equal(carried.channels, carried.units)):
        raise InvalidInput(
            "the ticket's last layer does not carry the target's outputs one to one and in order"
        )
    return Alignment(target, ticket_net, transitions, leading, carried.channels, activation.name)


def _block_shape(block: ResidualBlock) -> tuple[int, str, bool]:
    return len(block.branch), "identity" if block.skip is None else "projection", bool(block.activation_out)


def _ticket_network_for(target: TargetNet, ticket: Any) -> TargetNet:
    """The ticket's pruned network, once the ticket's fingerprint matches ``target`` and its
    output shape is the target's (``InvalidInput`` otherwise)."""
    ticket.check_target(target)
    ticket_net = ticket.network()
    if tuple(ticket_net.output_shape) != tuple(target.output_shape):
        raise InvalidInput(
            f"ticket output shape {format_shape(ticket_net.output_shape)} differs from the target's "
            f"{format_shape(target.output_shape)}"
        )
    return ticket_net


def _check_order_and_structure(
    target: TargetNet, ticket: Any, expected: list[tuple[str, int]], structural_targets: list[int]
) -> None:
    """The ticket's layer order is ``expected`` and its structural layers (pooling, flatten)
    are configured as the target's layers ``structural_targets``, in order."""
    actual = [(str(kind), int(i)) for kind, i in ticket.order]
    if actual != expected:
        raise InvalidInput(
            f"ticket layer order {actual} does not follow the target {target.name!r} "
            f"(expected {expected} from its layers and the ticket's matches)"
        )
    for k, t_index in enumerate(structural_targets):
        config = dict(ticket.structural[k])
        mine = target.layers[t_index].to_config()
        if {key: (list(v) if isinstance(v, tuple) else v) for key, v in config.items()} != mine:
            raise InvalidInput(
                f"ticket structural layer {k} is {config}, the target's layer {t_index} is {mine}"
            )


def _align_residual(target: TargetNet, ticket: Any) -> Alignment:
    """Checks for a target with residual blocks; no per-copy transitions (generic bounds).

    The ticket network must have the target's layer kinds in the target's order (linear
    layers may be preceded by a univariate layer), its ``k``-th residual block must match the
    target's ``k``-th block (branch depth, identity or projection skip, φ after the sum), and
    its outputs must carry the target's outputs one to one.
    """
    ticket_net = _ticket_network_for(target, ticket)
    mine = [_block_shape(layer) for layer in target.layers if isinstance(layer, ResidualBlock)]
    theirs = [_block_shape(layer) for layer in ticket_net.layers if isinstance(layer, ResidualBlock)]
    if mine != theirs:
        raise InvalidInput(
            f"ticket residual blocks {theirs} (branch depth, skip, φ after the sum) do not match the "
            f"target {target.name!r}'s {mine}: they do not belong together"
        )

    def kinds(net: TargetNet) -> list[Any]:
        return [
            "residual" if isinstance(layer, ResidualBlock) else layer.to_config()
            for layer in net.layers
            if not isinstance(layer, LinearLayer)
        ]

    if kinds(ticket_net) != kinds(target):
        raise InvalidInput(
            f"ticket non-linear layers {kinds(ticket_net)} do not follow the target {target.name!r}'s "
            f"{kinds(target)}"
        )
    matches = getattr(ticket, "matches", None) or []
    if matches:
        last = np.asarray(matches[-1]["copies"], dtype=np.int64).reshape(-1)
        if not np.array_equal(last, np.arange(int(np.prod(target.output_shape)))):
            raise InvalidInput("the ticket's last layer does not carry the target's outputs one to one and in order")
    outputs = np.arange(int(np.prod(target.output_shape)), dtype=np.int64)
    steps = None
    records_copies = (
        getattr(ticket, "residual", None)
        and hasattr(ticket, "order")
        and matches
        and all("residual_block" in match and "usable" in match for match in matches)
    )
    if records_copies:
        steps = _residual_steps(target, ticket, ticket_net)
    return Alignment(target, ticket_net, [], (), outputs, target.activation_function.name, residual=True, steps=steps)


def _tracked_copies(match: dict[str, Any], out_channels: int, source_out: int, position: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The usable copies of a match (source units) and the target unit of each, checked."""
    copies = np.asarray(match["copies"], dtype=np.int64)
    usable = np.asarray(match["usable"], dtype=bool)
    if copies.ndim != 2 or copies.shape[0] != out_channels or usable.shape != copies.shape:
        raise InvalidInput(
            f"ticket match {position} has copies of shape {copies.shape} (usable {usable.shape}); "
            f"expected ({out_channels}, copies) for {what}"
        )
    if copies.size and (copies.min() < 0 or copies.max() >= source_out):
        raise InvalidInput(f"ticket match {position} names source units outside 0..{source_out - 1}")
    if not usable.any(axis=1).all():
        raise InvalidInput(f"ticket match {position} leaves a target unit without a usable copy")
    units = np.repeat(np.arange(out_channels, dtype=np.int64), copies.shape[1])
    flat = usable.reshape(-1)
    return copies.reshape(-1)[flat], units[flat]


def _check_realises(source_layer: Any, layer: LinearLayer, where: str, what: str) -> None:
    if not isinstance(source_layer, LinearLayer) or source_layer.kind != layer.kind:
        raise InvalidInput(
            f"ticket {where} ({source_layer.describe()}) cannot realise {what} ({layer.describe()}): kinds differ"
        )
    if _kernel(source_layer) != _kernel(layer) or _geometry(source_layer) != _geometry(layer):
        raise InvalidInput(
            f"ticket {where} ({source_layer.describe()}) and {what} ({layer.describe()}) differ in "
            "kernel, stride or padding"
        )


def _residual_steps(target: TargetNet, ticket: Any, ticket_net: TargetNet) -> list[Any]:
    """The main path of a residual ticket as transitions (plain layers) and block transitions.

    Follows the residual ticket contract (:class:`ltbounds.ticket.Ticket`, "Residual
    tickets"): ``order`` is the target's order with ``("residual", r)`` for its ``r``-th block
    (one univariate layer before the first linear layer), ``matches`` has one entry per
    main-path linear layer (plain and branch layers) and, for a block's last branch layer,
    its copies carry the block's output.
    """
    matches = ticket.matches
    expected: list[tuple[str, int]] = []
    structural_targets: list[int] = []
    net_of: dict[int, int] = {}
    first_match: dict[int, int] = {}
    position = 0
    blocks = 0
    for index, layer in enumerate(target.layers):
        if isinstance(layer, ResidualBlock):
            expected.append(("residual", blocks))
            first_match[index] = position
            position += len(layer.branch)
            blocks += 1
        elif layer.is_linear:
            match = matches[position]
            if match["univariate_layer"] is not None:
                expected.append(("linear", int(match["univariate_layer"])))
            expected.append(("linear", int(match["source_layer"])))
            first_match[index] = position
            position += 1
        else:
            expected.append(("structural", len(structural_targets)))
            structural_targets.append(index)
        net_of[index] = len(expected) - 1
    _check_order_and_structure(target, ticket, expected, structural_targets)
    if len(ticket.residual) != blocks:
        raise InvalidInput(f"ticket records {len(ticket.residual)} residual blocks, the target {target.name!r} has {blocks}")

    activation = target.activation_function
    layers = target.layers
    first = target.linear_layers[0][0] if target.linear_layers else len(layers)
    first = min([first, *[i for i, layer in enumerate(layers) if isinstance(layer, ResidualBlock)]])
    carried = Carried(
        np.arange(target.input_shape[0], dtype=np.int64),
        np.arange(target.input_shape[0], dtype=np.int64),
        tuple(target.input_shape[1:]),
    )
    for index in range(first):
        carried = carried.through(layers[index])
    steps: list[Any] = []
    index = first
    block_number = 0
    while index < len(layers):
        layer = layers[index]
        after = []
        cursor = index + 1
        while cursor < len(layers) and not layers[cursor].is_linear and not isinstance(layers[cursor], ResidualBlock):
            after.append(cursor)
            cursor += 1
        source_after = tuple(net_of[i] for i in after)
        s_index = net_of[index]
        out_spatial = tuple(target.shapes[index + 1][1:])
        if isinstance(layer, ResidualBlock):
            step = _block_transition(
                target, ticket, ticket_net, index, s_index, block_number, first_match[index], carried, tuple(after), source_after
            )
            block_number += 1
        else:
            position = first_match[index]
            match = matches[position]
            source_layer = ticket_net.layers[s_index]
            _check_realises(source_layer, layer, f"source layer {s_index}", f"target layer {index}")
            tracked, units = _tracked_copies(match, layer.out_channels, source_layer.out_channels, position, f"target layer {index}")
            outgoing = Carried(tracked, units, out_spatial)
            for t_index in after:
                outgoing = outgoing.through(layers[t_index])
            common = dict(
                target_layer=index, source_layer=s_index, tracked=tracked, tracked_units=units,
                incoming=carried, outgoing=outgoing, activated=target.is_activated(index),
                after=tuple(after), source_after=source_after,
            )  # fmt: skip
            if match["univariate_layer"] is None:
                step = _copy_transition(layer, source_layer, common)
            else:
                step = _univariate_transition(layer, ticket_net.layers[s_index - 1], source_layer, activation, common, s_index - 1)
        steps.append(step)
        carried = step.outgoing
        index = cursor
    outputs = int(np.prod(target.output_shape))
    if not (np.array_equal(np.sort(carried.units), np.arange(outputs)) and np.array_equal(carried.channels, carried.units)):
        raise InvalidInput("the ticket's last layer does not carry the target's outputs one to one and in order")
    return steps


def _block_transition(
    target: TargetNet,
    ticket: Any,
    ticket_net: TargetNet,
    index: int,
    s_index: int,
    number: int,
    position: int,
    carried: Carried,
    after: tuple[int, ...],
    source_after: tuple[int, ...],
) -> BlockTransition:
    """One residual block: its branch copy transitions (local indices) and its skip."""
    block: ResidualBlock = target.layers[index]  # type: ignore[assignment]
    source_block = ticket_net.layers[s_index]
    record = ticket.residual[number]
    if not isinstance(source_block, ResidualBlock) or int(record.get("target_layer", index)) != index:
        raise InvalidInput(f"ticket residual block {number} does not stand for the target's layer {index}")
    shapes = block.branch_shapes(target.shapes[index], index=index)
    inner = carried
    branch: list[Transition] = []
    depth = len(block.branch)
    for j, part in enumerate(block.branch):
        match = ticket.matches[position + j]
        if match.get("residual_block") is not None and (
            int(match["residual_block"]) != number or int(match["branch_position"]) != j
        ):
            raise InvalidInput(
                f"ticket match {position + j} is for block {match['residual_block']} branch layer "
                f"{match['branch_position']}, expected block {number} branch layer {j}"
            )
        source_part = source_block.branch[j]
        where = f"block {number} branch layer {j}"
        _check_realises(source_part, part, where, f"the target's {where}")
        tracked, units = _tracked_copies(match, part.out_channels, source_part.out_channels, position + j, f"the target's {where}")
        outgoing = Carried(tracked, units, tuple(shapes[j + 1][1:]))
        common = dict(
            target_layer=j + 1, source_layer=j + 1, tracked=tracked, tracked_units=units,
            incoming=inner, outgoing=outgoing, activated=j < depth - 1,
        )  # fmt: skip
        # The last branch layer realises the sum's bias (branch + projection) once; its
        # difference is still taken against the target's branch alone (b̂ − b_branch), and the
        # projection's against the target's projection with its bias (b̂_skip − b_skip): each
        # part is a true difference (so each may be intersected with its own separate
        # enclosure), and the two exact bias constants cancel in the sum.
        branch.append(_copy_transition(part, source_part, common))
        inner = outgoing
    tracked, units = inner.channels, inner.units
    skip: Transition | None = None
    skip_slot: np.ndarray | None = None
    if block.skip is None:
        slot_of = np.full(int(max(carried.channels.max(initial=-1), tracked.max(initial=-1))) + 1, -1, dtype=np.int64)
        slot_of[carried.channels] = np.arange(len(carried.channels))
        skip_slot = slot_of[tracked]
        valid = skip_slot >= 0
        same = np.zeros(len(tracked), dtype=bool)
        same[valid] = carried.units[skip_slot[valid]] == units[valid]
        skip_slot = np.where(same, skip_slot, -1)
    else:
        source_skip = source_block.skip
        where = f"block {number} projection"
        _check_realises(source_skip, block.skip, where, f"the target's {where}")
        common = dict(
            target_layer=1, source_layer=1, tracked=tracked, tracked_units=units,
            incoming=carried, outgoing=inner, activated=False,
        )  # fmt: skip
        skip = _copy_transition(block.skip, source_skip, common)
    outgoing = Carried(tracked, units, tuple(target.shapes[index + 1][1:]))
    for t_index in after:
        outgoing = outgoing.through(target.layers[t_index])
    return BlockTransition(
        target_layer=index, source_layer=s_index, branch=branch, skip=skip, skip_slot=skip_slot,
        tracked=tracked, tracked_units=units, incoming=carried, outgoing=outgoing,
        activated=bool(block.activation_out), after=after, source_after=source_after,
    )  # fmt: skip


def _flat(weight: np.ndarray) -> np.ndarray:
    return weight.reshape(weight.shape[0], weight.shape[1], -1)


def _bias_delta(source_layer: LinearLayer, target_layer: LinearLayer, tracked: np.ndarray, units: np.ndarray) -> Interval:
    b_hat = source_layer.bias[tracked] if source_layer.bias is not None else np.zeros(len(tracked))
    b = target_layer.bias[units] if target_layer.bias is not None else np.zeros(len(units))
    return down(b_hat - b), up(b_hat - b)


def _copy_transition(layer: LinearLayer, source_layer: LinearLayer, common: dict[str, Any]) -> Transition:
    incoming: Carried = common["incoming"]
    tracked, units = common["tracked"], common["tracked_units"]
    w_hat = source_layer.weight[tracked]  # (T, C_src, *k)
    kernel = _kernel(layer)
    c_src = w_hat.shape[1]
    is_copy = np.zeros(c_src, dtype=bool)
    is_copy[incoming.channels] = True
    copy_part = w_hat[:, incoming.channels]
    free_mask = ~is_copy & np.any(w_hat.reshape(len(tracked), c_src, -1) != 0, axis=(0, 2))
    free_units = np.flatnonzero(free_mask)
    target_w = _flat(layer.weight)[units]  # (T, n_in, K)
    sums = _group_sum(_flat(copy_part), incoming.units, layer.in_channels)
    err_lo = down(sums[0] - target_w)
    err_hi = up(sums[1] - target_w)
    shape = (len(tracked), layer.in_channels, *kernel)
    error_mid, error_rad = _interval_to_ops(layer, err_lo.reshape(shape), err_hi.reshape(shape))
    ops = {
        "copy": LinearOp.like(layer, copy_part),
        "error": error_mid,
        "error_rad": error_rad,
        "free": LinearOp.like(layer, w_hat[:, free_units]),
    }
    return Transition(
        kind="copy",
        univariate_layer=None,
        ops=ops,
        free_units=free_units,
        bias_delta=_bias_delta(source_layer, layer, tracked, units),
        **common,
    )


def _univariate_transition(
    layer: LinearLayer,
    univariate: Any,
    source_layer: LinearLayer,
    activation: Any,
    common: dict[str, Any],
    u_index: int,
) -> Transition:
    from ltbounds.certify._activation import slope_at_zero, value_at_zero  # noqa: PLC0415

    if not isinstance(univariate, LinearLayer) or any(k != 1 for k in _kernel(univariate)):
        raise InvalidInput(f"ticket univariate layer {u_index} ({univariate.describe()}) is not pointwise (1×1)")
    stride, padding = _geometry(univariate)
    if any(s != 1 for s in stride) or any(p != 0 for p in padding):
        raise InvalidInput(f"ticket univariate layer {u_index} ({univariate.describe()}) must have stride 1, no padding")
    incoming: Carried = common["incoming"]
    tracked, units = common["tracked"], common["tracked_units"]
    n_in = layer.in_channels
    kernel = _kernel(layer)
    u_weight = univariate.weight.reshape(univariate.out_channels, -1)  # (Q, C_src)
    u_bias = univariate.bias if univariate.bias is not None else np.zeros(univariate.out_channels)
    nonzero = u_weight != 0
    count = nonzero.sum(axis=1)
    read = np.argmax(nonzero, axis=1)
    slot_of_channel = np.full(u_weight.shape[1], -1, dtype=np.int64)
    slot_of_channel[incoming.channels] = np.arange(len(incoming.channels))
    reader = (count == 1) & (u_bias == 0) & (slot_of_channel[read] >= 0)
    reader_slot = np.where(reader, slot_of_channel[read], -1)
    reader_unit = np.where(reader, incoming.units[np.maximum(reader_slot, 0)], -1)
    # Primary copy per target input unit: the slot most of its readers read.
    primary_slot = np.full(n_in, -1, dtype=np.int64)
    for unit in np.unique(reader_unit[reader_unit >= 0]):
        slots, counts = np.unique(reader_slot[reader_unit == unit], return_counts=True)
        primary_slot[unit] = slots[np.argmax(counts)]
    primary = reader & (reader_slot == primary_slot[np.maximum(reader_unit, 0)])
    u_values = u_weight[np.arange(len(read)), read]

    v = _flat(source_layer.weight[tracked])  # (T, Q, K)
    free_units = np.flatnonzero(~primary & np.any(v != 0, axis=(0, 2)))
    q_primary = np.flatnonzero(primary)
    groups = reader_unit[q_primary]
    v_p = v[:, q_primary]  # (T, Qp, K)
    u_p = u_values[q_primary]
    target_w = _flat(layer.weight)[units]  # (T, n_in, K)
    shape = (len(tracked), n_in, *kernel)
    ops: dict[str, LinearOp] = {
        "target": LinearOp.like(layer, target_w.reshape(shape)),
        "free": LinearOp.like(layer, source_layer.weight[tracked][:, free_units]),
    }
    offset = None
    if activation.relu_like:
        a = float(activation.relu_like_negative_slope or 0.0)
        # w' = w/(1 + a) with the float a; 1 + a rounds, so bracket it.
        denominator_lo, denominator_hi = down(1.0 + a), up(1.0 + a)
        candidates = np.stack([target_w / denominator_lo, target_w / denominator_hi])
        wp_lo, wp_hi = down(candidates.min(axis=0)), up(candidates.max(axis=0))
        for name, sign in (("pos", 1.0), ("neg", -1.0)):
            factor = np.where(sign * u_p > 0, np.abs(u_p), 0.0)
            products = _products([v_p, factor[None, :, None]])
            total = _interval_group_sum(products, groups, n_in)
            if sign > 0:  # E⁺ = Σ_{u>0} v u − w'
                lo, hi = down(total[0] - wp_hi), up(total[1] - wp_lo)
            else:  # E⁻ = Σ_{u<0} v |u| + w'
                lo, hi = down(total[0] + wp_lo), up(total[1] + wp_hi)
            ops[name], ops[name + "_rad"] = _interval_to_ops(layer, lo.reshape(shape), hi.reshape(shape))
    else:
        s_lo, s_hi = slope_at_zero(activation)
        products = _products([v_p, u_p[None, :, None]])
        total = _interval_group_sum(products, groups, n_in)
        scaled = np.stack([total[0] * s_lo, total[0] * s_hi, total[1] * s_lo, total[1] * s_hi])
        c_lo, c_hi = down(scaled.min(axis=0)), up(scaled.max(axis=0))
        lo, hi = down(c_lo - target_w), up(c_hi - target_w)
        ops["linear"], ops["linear_rad"] = _interval_to_ops(layer, lo.reshape(shape), hi.reshape(shape))
        # Remainder coefficients.
        a2 = _interval_group_sum(_products([v_p, u_p[None, :, None], u_p[None, :, None]]), groups, n_in)
        ops["a2"], ops["a2_rad"] = _interval_to_ops(layer, a2[0].reshape(shape), a2[1].reshape(shape))
        abs_u = np.abs(u_p)[None, :, None]
        a3 = _interval_group_sum(_products([np.abs(v_p), abs_u, abs_u, abs_u]), groups, n_in)[1]
        b2 = _interval_group_sum(_products([np.abs(v_p), abs_u, abs_u]), groups, n_in)[1]
        ops["a3"] = LinearOp.like(layer, a3.reshape(shape))
        ops["b2"] = LinearOp.like(layer, b2.reshape(shape))
        # φ(0)·Σ_{valid taps} V0: V0 = Σ_{q primary} v over its readers, per input unit.
        v0 = _interval_group_sum((v_p, v_p), groups, n_in)
        v0_mid, v0_rad = _interval_to_ops(layer, v0[0].reshape(shape), v0[1].reshape(shape))
        phi0 = value_at_zero(activation)
        ones = np.ones((1, n_in, *incoming.spatial))
        taps = enclose_linear(v0_mid, (ones, ones), radius_op=v0_rad)
        offset = scale((taps[0][0], taps[1][0]), phi0)
    return Transition(
        kind="univariate",
        univariate_layer=u_index,
        ops=ops,
        free_units=free_units,
        primary_slot=primary_slot,
        bias_delta=_bias_delta(source_layer, layer, tracked, units),
        offset=offset,
        **common,
    )


__all__ = ["Alignment", "BlockTransition", "Carried", "Transition", "align"]
