"""Convolutions (1-D and 2-D) with stride and zero padding, as PyTorch's ``nn.Conv1d/2d``.

A convolution with kernel ``K`` of shape ``(out, in, *k)`` maps an input of shape
``(in, *S)`` to ``(out, *O)`` with ``O = floor((S + 2p - k)/s) + 1``. The forward pass is an
im2col gather with precomputed index arrays (:mod:`ltbounds.nets._gather`) followed by one
matrix product, in the array namespace of the input. Widths count channels and the kernel size ``k_l`` is the number of kernel entries
(LEMMAS.md section 5; Burkholz, ICML 2022; da Cunha et al., ICLR 2022).

A numpy-only path through ``sliding_window_view`` and ``tensordot`` was measured 8× slower
than gather + BLAS matmul (64×32×28×28 input, 3×3 kernel), so every backend takes this path,
except that numpy inputs to a wide, mostly-zero layer (a pruned ticket) take the direct sparse
convolution of :mod:`ltbounds.nets._sparse` (no im2col, only the nonzero weights).
The window matrix of a wide layer is gathered straight into the layout the matrix product
reads (:func:`_window_matrix`), with no transposed copy of it; its values and layout, hence
the product's bits, are those of the per-sample gather and transpose it replaced.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ltbounds.backend import is_numpy, namespace
from ltbounds.errors import InvalidInput
from ltbounds.nets._base import (
    LinearLayer,
    as_tuple,
    as_weight_array,
    center_radius,
    format_shape,
)
from ltbounds.nets._gather import window_indices, window_output_shape
from ltbounds.nets._sparse import cached_conv_plan, conv_forward, is_sparse

#: Largest im2col buffer (bytes) one forward chunk may build; larger batches are split.
IM2COL_BUDGET_BYTES = 256 * 2**20
#: Fewest input channels for which :func:`_window_matrix` gathers the window matrix directly in
#: the order of the matrix product (its index array is ``1/channels`` of the window matrix).
DIRECT_GATHER_MIN_CHANNELS = 8


class _ConvNd(LinearLayer):
    """Shared implementation of :class:`Conv1d` and :class:`Conv2d`."""

    dims: ClassVar[int]
    weight: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, ...]
    padding: tuple[int, ...]

    def _setup(self) -> None:
        name = type(self).__name__
        object.__setattr__(
            self, "weight", as_weight_array(f"{name} weight", self.weight, 2 + self.dims)
        )
        if self.bias is not None:
            bias = as_weight_array(f"{name} bias", self.bias, 1)
            if bias.shape[0] != self.weight.shape[0]:
                raise InvalidInput(
                    f"{name} bias has shape {format_shape(bias.shape)}; expected "
                    f"({self.weight.shape[0]},) to match weight {format_shape(self.weight.shape)}"
                )
            object.__setattr__(self, "bias", bias)
        object.__setattr__(
            self, "stride", as_tuple(f"{name} stride", self.stride, self.dims, minimum=1)
        )
        object.__setattr__(
            self, "padding", as_tuple(f"{name} padding", self.padding, self.dims, minimum=0)
        )

    @property
    def kernel_shape(self) -> tuple[int, ...]:
        """Spatial kernel shape, e.g. ``(3, 3)``."""
        return tuple(int(k) for k in self.weight.shape[2:])

    def describe(self) -> str:
        text = f"{type(self).__name__} {self.in_channels}→{self.out_channels}, kernel " + "×".join(
            map(str, self.kernel_shape)
        )
        if any(s != 1 for s in self.stride):
            text += f", stride {_compact(self.stride)}"
        if any(p != 0 for p in self.padding):
            text += f", padding {_compact(self.padding)}"
        return text + ("" if self.has_bias else ", no bias")

    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        expected = f"(channels={self.in_channels}, " + ", ".join(["size"] * self.dims) + ")"
        if len(shape) != 1 + self.dims or shape[0] != self.in_channels:
            raise InvalidInput(
                f"{self.where(index)}: input shape {format_shape(shape)} does not fit; expected {expected}"
            )
        out = window_output_shape(shape[1:], self.kernel_shape, self.stride, self.padding)
        if any(size < 1 for size in out):
            raise InvalidInput(
                f"{self.where(index)}: input shape {format_shape(shape)} is smaller than the "
                f"kernel {format_shape(self.kernel_shape)} with padding {format_shape(self.padding)}"
            )
        return (self.out_channels, *out)

    # -- forward ---------------------------------------------------------------------------
    def _apply(self, x: Any, what: str, bias: Any | None) -> Any:
        """The convolution of ``x`` with ``self.on(xp, what)`` (``"matrix"`` or ``"abs_matrix"``).

        Numpy inputs to a wide sparse layer take the direct sparse convolution; everything
        else gathers the windows (im2col), then runs one matrix product per batch chunk.
        """
        xp = namespace(x)
        spatial = tuple(int(s) for s in x.shape[2:])
        if is_numpy(xp) and is_sparse(self):
            plan = cached_conv_plan(self, what, spatial)
            host_bias = None if bias is None else self.bias
            return conv_forward(
                plan, x, self.out_channels, self.kernel_shape, self.stride, self.padding, host_bias
            )
        return self._apply_dense(x, self.on(xp, what), bias)

    def _apply_dense(self, x: Any, matrix: Any, bias: Any | None) -> Any:
        """Gather the windows (im2col), then one matrix product per batch chunk (any namespace)."""
        xp = namespace(x)
        batch, channels = int(x.shape[0]), int(x.shape[1])
        spatial = tuple(int(s) for s in x.shape[2:])
        out_spatial = window_output_shape(spatial, self.kernel_shape, self.stride, self.padding)
        indices = window_indices(spatial, self.kernel_shape, self.stride, self.padding)
        positions = math.prod(out_spatial)
        take = indices if is_numpy(xp) else xp.asarray(indices)
        per_sample = 8 * channels * self.kernel_size * positions
        chunk = max(1, IM2COL_BUDGET_BYTES // max(per_sample, 1))
        outputs = []
        for start in range(0, batch, chunk):
            stop = min(start + chunk, batch)
            part = xp.reshape(x[start:stop, ...], (stop - start, channels, math.prod(spatial)))
            cols = _window_matrix(xp, part, take, self.kernel_size, positions, any(self.padding))
            # One 2-D product for the whole chunk: a stacked matmul runs one small product per
            # sample and was measured about 10× slower on wide layers.
            out = xp.matmul(matrix, cols)
            out = xp.permute_dims(xp.reshape(out, (self.out_channels, stop - start, positions)), (1, 0, 2))
            if bias is not None:
                out = out + bias
            outputs.append(out)
        if not outputs:
            out = xp.zeros((0, self.out_channels, positions), dtype=x.dtype)
        else:
            out = outputs[0] if len(outputs) == 1 else xp.concat(outputs, axis=0)
        return xp.reshape(out, (batch, self.out_channels, *out_spatial))

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        bias = self.on(xp, "bias") if self.bias is not None else None
        return self._apply(x, "matrix", bias)

    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        _, center, radius = center_radius(lower, upper)
        mid = self.forward(center)
        spread = self._apply(radius, "abs_matrix", None)
        return mid - spread, mid + spread

    def to_config(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "bias": self.has_bias,
            "stride": list(self.stride),
            "padding": list(self.padding),
        }


def _window_matrix(
    xp: Any, part: Any, take: Any, kernel_size: int, positions: int, padded: bool
) -> Any:
    """The window matrix ``(channels·K, n·P)`` of one chunk ``(n, channels, S)`` for the product.

    Row ``c·K + r``, column ``b·P + o`` holds ``part[b, c, take[r·P + o]]`` (index ``S`` is a
    padding zero). It used to be gathered per sample, ``(n, channels·K, P)``, then copied
    transposed. Wide layers now gather it directly in this order: the input is transposed to
    ``(channels, n, S + 1)`` (K times smaller than the windows) and one ``take`` with the
    indices ``b·(S + 1) + take[r, o]``, laid out ``(r, b, o)``, writes every row in place,
    C-contiguous (the old gather and transpose was measured 2–2.5× slower, an extra pass over
    the window matrix). The combined indices are ``1/channels`` of the window matrix, so
    narrow layers (fewer than :data:`DIRECT_GATHER_MIN_CHANNELS` channels) keep the old gather
    and transpose. So do layers with one output position: there the transposed matrix is a
    view, not a copy, and it is Fortran-ordered, which BLAS may sum in another order for small
    products (seen here). Either way the matrix product sees the operands, values and
    strides, of the old per-sample gather, so it returns the same bits.
    """
    n, channels, size = (int(s) for s in part.shape)
    if channels < DIRECT_GATHER_MIN_CHANNELS or positions == 1:
        if padded:
            part = xp.concat([part, xp.zeros((n, channels, 1), dtype=part.dtype)], axis=2)
        cols = xp.reshape(xp.take(part, take, axis=2), (n, channels * kernel_size, positions))
        return xp.reshape(xp.permute_dims(cols, (1, 0, 2)), (channels * kernel_size, n * positions))
    planes = xp.permute_dims(part, (1, 0, 2))
    if padded:
        planes = xp.concat([planes, xp.zeros((channels, n, 1), dtype=part.dtype)], axis=2)
    width = size + int(padded)
    planes = xp.reshape(planes, (channels, n * width))
    starts = xp.reshape(xp.arange(n, dtype=take.dtype) * width, (1, n, 1))
    combined = xp.reshape(starts + xp.reshape(take, (kernel_size, 1, positions)), (-1,))
    cols = xp.take(planes, combined, axis=1)
    return xp.reshape(cols, (channels * kernel_size, n * positions))


def _compact(values: tuple[int, ...]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "×".join(map(str, values))


@dataclass(frozen=True, eq=False)
class Conv1d(_ConvNd):
    """A 1-D convolution: weight ``(out, in, k)``, input ``(in, length)``.

    Parameters
    ----------
    weight : array of shape (out, in, k)
    bias : array of shape (out,), optional
    stride, padding : int or tuple of one int
        Stride (>= 1) and symmetric zero padding (>= 0), as PyTorch.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: Any = 1
    padding: Any = 0
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    kind: ClassVar[str] = "conv1d"
    dims: ClassVar[int] = 1

    def __post_init__(self) -> None:
        self._setup()


@dataclass(frozen=True, eq=False)
class Conv2d(_ConvNd):
    """A 2-D convolution: weight ``(out, in, kh, kw)``, input ``(in, height, width)``.

    Parameters
    ----------
    weight : array of shape (out, in, kh, kw)
    bias : array of shape (out,), optional
    stride, padding : int or tuple of two ints
        Stride (>= 1) and symmetric zero padding (>= 0) per spatial axis, as PyTorch.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: Any = 1
    padding: Any = 0
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    kind: ClassVar[str] = "conv2d"
    dims: ClassVar[int] = 2

    def __post_init__(self) -> None:
        self._setup()


__all__ = ["IM2COL_BUDGET_BYTES", "Conv1d", "Conv2d"]
