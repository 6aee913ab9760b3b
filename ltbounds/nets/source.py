"""Source networks that never store their weights.

Entry ``i`` (flat, row-major) of the weight tensor of layer ``l`` is
``low_l + (high_l - low_l) · uniform(seed, stream_id("source", 2l), i)`` and entry ``i`` of its
bias ``low'_l + (high'_l - low'_l) · uniform(seed, stream_id("source", 2l + 1), i)``
(:mod:`ltbounds.rng`, Philox-4x32-10). So any slice can be regenerated in any order on any
backend, a ticket only needs the seed and the kept indices (DESIGN.md), and no two layers or
kinds share a stream. The weight law is iid uniform, as in Burkholz (ICML 2022, NeurIPS 2022):
``U[-1, 1]`` for most layers, with the ranges of special layers (first-layer ``U[-2, 2]``,
bias-neuron biases ``U[0, 2]``, LEMMAS.md section 2.5) chosen by the construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ltbounds.backend import namespace, to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.rng import stream_id, uniform
from ltbounds.validation import check_int, check_interval, check_memory

#: Default cap (bytes) on materialising one tensor with :meth:`SourceNet.full_weight`.
DEFAULT_MAX_BYTES = 2 * 2**30
# Bytes per materialised entry: the float64 result plus its int64 index array.
_BYTES_PER_ENTRY = 16

WEIGHT, BIAS = "weight", "bias"
_KIND_CODE = {WEIGHT: 0, BIAS: 1}


def _shape(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(check_int(f"{name} entry", s, minimum=1) for s in value)
    except TypeError:
        raise InvalidInput(f"{name}={value!r} must be a tuple of positive integers") from None
    if not shape:
        raise InvalidInput(f"{name}=() must have at least one axis")
    return shape


class SourceNet:
    """An implicit random network: shapes, weight ranges and a seed.

    Parameters
    ----------
    seed : int
        The 64-bit seed; the same seed gives the same weights everywhere.
    weight_shapes : sequence of tuple of int
        Weight tensor shape of every layer, e.g. ``(out, in)`` or ``(out, in, kh, kw)``.
    bias_shapes : sequence of (tuple of int or None), optional
        Bias shape of every layer, or None for a layer without bias (default: no biases).
    ranges : sequence of (float, float), optional
        ``(low, high)`` of the uniform law of every layer's weights (default ``(-1, 1)``).
    bias_ranges : sequence of ((float, float) or None), optional
        The same for biases (default: the weight range of the layer).
    max_bytes : int, optional
        Cap on materialising one full tensor (default :data:`DEFAULT_MAX_BYTES`).
    """

    def __init__(
        self,
        seed: int,
        weight_shapes: Sequence[Sequence[int]],
        bias_shapes: Sequence[Sequence[int] | None] | None = None,
        ranges: Sequence[tuple[float, float]] | None = None,
        bias_ranges: Sequence[tuple[float, float] | None] | None = None,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        self.seed = check_int("seed", seed, minimum=0, maximum=2**64 - 1)
        self.weight_shapes = tuple(
            _shape(f"weight_shapes[{layer}]", s) for layer, s in enumerate(weight_shapes)
        )
        layers = len(self.weight_shapes)
        if not layers:
            raise InvalidInput("weight_shapes=[] must describe at least one layer")
        if bias_shapes is None:
            bias_shapes = [None] * layers
        if len(bias_shapes) != layers:
            raise InvalidInput(
                f"bias_shapes has {len(bias_shapes)} entries; expected {layers}, one per layer"
            )
        self.bias_shapes = tuple(
            None if s is None else _shape(f"bias_shapes[{layer}]", s)
            for layer, s in enumerate(bias_shapes)
        )
        if ranges is None:
            ranges = [(-1.0, 1.0)] * layers
        if len(ranges) != layers:
            raise InvalidInput(
                f"ranges has {len(ranges)} entries; expected {layers}, one per layer"
            )
        self.ranges = tuple(
            check_interval(f"ranges[{layer}]", *r) for layer, r in enumerate(ranges)
        )
        if bias_ranges is None:
            bias_ranges = [None] * layers
        if len(bias_ranges) != layers:
            raise InvalidInput(
                f"bias_ranges has {len(bias_ranges)} entries; expected {layers}, one per layer"
            )
        self.bias_ranges = tuple(
            self.ranges[layer] if r is None else check_interval(f"bias_ranges[{layer}]", *r)
            for layer, r in enumerate(bias_ranges)
        )
        self.max_bytes = check_int("max_bytes", max_bytes, minimum=1)

    # -- structure -------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        """Number of layers (weight tensors)."""
        return len(self.weight_shapes)

    @property
    def num_params(self) -> int:
        """Total number of weights and biases (all of them; nothing is stored)."""
        total = sum(math.prod(s) for s in self.weight_shapes)
        return total + sum(math.prod(s) for s in self.bias_shapes if s is not None)

    def stream(self, layer: int, kind: str = WEIGHT) -> int:
        """The RNG stream of layer ``layer``'s weights (``kind="weight"``) or biases."""
        layer = self._layer(layer)
        if kind not in _KIND_CODE:
            raise InvalidInput(f"kind={kind!r} must be 'weight' or 'bias'")
        return stream_id("source", 2 * layer + _KIND_CODE[kind])

    def to_config(self) -> dict[str, Any]:
        """A JSON-ready description (seed, shapes, ranges) from which :meth:`from_config` rebuilds it."""
        return {
            "seed": self.seed,
            "weight_shapes": [list(s) for s in self.weight_shapes],
            "bias_shapes": [None if s is None else list(s) for s in self.bias_shapes],
            "ranges": [list(r) for r in self.ranges],
            "bias_ranges": [list(r) for r in self.bias_ranges],
        }

    @classmethod
    def from_config(
        cls, config: dict[str, Any], *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> SourceNet:
        """Rebuild a source network from :meth:`to_config`'s document."""
        try:
            return cls(
                config["seed"],
                config["weight_shapes"],
                config.get("bias_shapes"),
                [tuple(r) for r in config["ranges"]],
                [None if r is None else tuple(r) for r in config.get("bias_ranges") or []] or None,
                max_bytes=max_bytes,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(
                f"source network config is malformed ({type(exc).__name__}: {exc})"
            ) from None

    def __repr__(self) -> str:
        shapes = ", ".join("×".join(map(str, s)) for s in self.weight_shapes)
        return f"SourceNet(seed={self.seed}, weights [{shapes}])"

    # -- values ----------------------------------------------------------------------------
    def weights(self, layer: int, flat_index: Any, *, xp: Any | None = None) -> Any:
        """Weights of ``layer`` at row-major flat indices (any shape), in the index's namespace."""
        return self._values(layer, WEIGHT, flat_index, xp)

    def biases(self, layer: int, flat_index: Any, *, xp: Any | None = None) -> Any:
        """Biases of ``layer`` at flat indices; the layer must have a bias."""
        return self._values(layer, BIAS, flat_index, xp)

    def weight_block(self, layer: int, index: Any, *, xp: Any | None = None) -> Any:
        """An outer-product block of ``layer``'s weights.

        ``index`` holds one selector per leading axis (missing trailing axes are taken whole):
        an int (the axis is dropped), a slice, or a 1-D integer array (``numpy.ix_``-style, so
        ``weight_block(l, (rows, cols))`` equals ``full_weight(l)[np.ix_(rows, cols)]``).
        """
        return self._block(layer, WEIGHT, index, xp)

    def bias_block(self, layer: int, index: Any, *, xp: Any | None = None) -> Any:
        """An outer-product block of ``layer``'s bias, as :meth:`weight_block`."""
        return self._block(layer, BIAS, index, xp)

    def full_weight(
        self, layer: int, *, xp: Any | None = None, max_bytes: int | None = None
    ) -> Any:
        """The whole weight tensor of ``layer``, refused beyond the memory budget."""
        return self._full(layer, WEIGHT, xp, max_bytes)

    def full_bias(self, layer: int, *, xp: Any | None = None, max_bytes: int | None = None) -> Any:
        """The whole bias of ``layer`` (which must have one), refused beyond the budget."""
        return self._full(layer, BIAS, xp, max_bytes)

    # -- internals -------------------------------------------------------------------------
    def _layer(self, layer: int) -> int:
        return check_int("layer", layer, minimum=0, maximum=self.num_layers - 1)

    def _shape_of(self, layer: int, kind: str) -> tuple[int, ...]:
        layer = self._layer(layer)
        shape = self.weight_shapes[layer] if kind == WEIGHT else self.bias_shapes[layer]
        if shape is None:
            raise InvalidInput(f"layer={layer} of the source network has no bias")
        return shape

    def _range(self, layer: int, kind: str) -> tuple[float, float]:
        return self.ranges[layer] if kind == WEIGHT else self.bias_ranges[layer]

    def _values(self, layer: int, kind: str, flat_index: Any, xp: Any | None) -> Any:
        shape = self._shape_of(layer, kind)
        xp = namespace(flat_index) if xp is None else xp
        index = xp.asarray(flat_index)
        if not xp.isdtype(index.dtype, "integral"):
            raise InvalidInput(f"flat_index has dtype {index.dtype}; expected an integer array")
        size = math.prod(shape)
        if index.size and (bool(xp.min(index) < 0) or bool(xp.max(index) >= size)):
            raise InvalidInput(
                f"flat_index holds values in [{int(xp.min(index))}, {int(xp.max(index))}]; "
                f"expected [0, {size - 1}] for the {kind} of layer {layer} with shape {shape}"
            )
        low, high = self._range(layer, kind)
        return low + (high - low) * uniform(self.seed, self.stream(layer, kind), index)

    def _block(self, layer: int, kind: str, index: Any, xp: Any | None) -> Any:
        shape = self._shape_of(layer, kind)
        selectors = index if isinstance(index, tuple) else (index,)
        if len(selectors) > len(shape):
            raise InvalidInput(
                f"index has {len(selectors)} selectors; the {kind} of layer {layer} has shape {shape}"
            )
        selectors = selectors + (slice(None),) * (len(shape) - len(selectors))
        axes: list[np.ndarray] = []
        keep: list[bool] = []
        for axis, (selector, length) in enumerate(zip(selectors, shape, strict=True)):
            if isinstance(selector, slice):
                values = np.arange(length, dtype=np.int64)[selector]
                keep.append(True)
            elif isinstance(selector, (int, np.integer)) and not isinstance(selector, bool):
                position = int(selector)
                if not -length <= position < length:
                    raise InvalidInput(
                        f"index {position} on axis {axis} is out of range for shape {shape}"
                    )
                values = np.array([position % length], dtype=np.int64)
                keep.append(False)
            else:
                values = np.asarray(_to_host(selector))
                if values.ndim != 1 or not np.issubdtype(values.dtype, np.integer):
                    raise InvalidInput(
                        f"selector on axis {axis} must be an int, a slice or a 1-D integer array"
                    )
                if values.size and (values.min() < -length or values.max() >= length):
                    raise InvalidInput(
                        f"selector on axis {axis} holds values outside [0, {length - 1}] for shape {shape}"
                    )
                values = values.astype(np.int64) % length
                keep.append(True)
            axes.append(values)
        flat = np.zeros((1,) * len(shape), dtype=np.int64)
        for axis, values in enumerate(axes):
            stride = math.prod(shape[axis + 1 :])
            view = [1] * len(shape)
            view[axis] = values.size
            flat = flat + values.reshape(view) * stride
        out_shape = tuple(v.size for v, k in zip(axes, keep, strict=True) if k)
        flat = flat.reshape(out_shape)
        if xp is not None:
            flat = xp.asarray(flat)
        return self._values(layer, kind, flat, None)

    def _full(self, layer: int, kind: str, xp: Any | None, max_bytes: int | None) -> Any:
        shape = self._shape_of(layer, kind)
        budget = (
            self.max_bytes if max_bytes is None else check_int("max_bytes", max_bytes, minimum=1)
        )
        check_memory(
            f"materialising the {kind} of source layer {layer} with shape {shape}",
            _BYTES_PER_ENTRY * math.prod(shape),
            budget,
        )
        xp = namespace(np.empty(0)) if xp is None else xp
        index = xp.reshape(xp.arange(math.prod(shape), dtype=xp.int64), shape)
        return self._values(layer, kind, index, xp)


def _to_host(selector: Any) -> Any:
    return to_numpy(selector) if not isinstance(selector, (list, tuple)) else selector


__all__ = ["BIAS", "DEFAULT_MAX_BYTES", "WEIGHT", "SourceNet"]
