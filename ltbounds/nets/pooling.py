"""Average and max pooling (1-D and 2-D), as PyTorch's ``nn.AvgPool*d`` / ``nn.MaxPool*d``.

No padding, floor mode (PyTorch's defaults); ``stride`` defaults to ``kernel``. Pooling
acts on post-activation values (the activation rule of
:class:`~ltbounds.nets.target.TargetNet`) and is 1-Lipschitz in ∞-norm: an average or a
maximum of entries never exceeds their largest absolute value, and both are monotone, so
interval bounds map entrywise (``pool(lower)``, ``pool(upper)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ltbounds.backend import is_numpy, namespace
from ltbounds.errors import InvalidInput
from ltbounds.nets._base import Layer, as_tuple, format_shape
from ltbounds.nets._gather import window_indices, window_output_shape


class _PoolNd(Layer):
    """Shared implementation of the four pooling kinds."""

    dims: ClassVar[int]
    reduce: ClassVar[str]  # "mean" or "max"
    kernel: tuple[int, ...]
    stride: tuple[int, ...]

    def _setup(self) -> None:
        name = type(self).__name__
        kernel = as_tuple(f"{name} kernel", self.kernel, self.dims, minimum=1)
        object.__setattr__(self, "kernel", kernel)
        stride = kernel if self.stride is None else self.stride
        object.__setattr__(self, "stride", as_tuple(f"{name} stride", stride, self.dims, minimum=1))

    def describe(self) -> str:
        text = f"{type(self).__name__} kernel " + "×".join(map(str, self.kernel))
        if self.stride != self.kernel:
            text += ", stride " + "×".join(map(str, self.stride))
        return text

    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        if len(shape) != 1 + self.dims:
            raise InvalidInput(
                f"{self.where(index)}: input shape {format_shape(shape)} does not fit; expected "
                f"(channels, " + ", ".join(["size"] * self.dims) + ")"
            )
        out = window_output_shape(shape[1:], self.kernel, self.stride, (0,) * self.dims)
        if any(size < 1 for size in out):
            raise InvalidInput(
                f"{self.where(index)}: input shape {format_shape(shape)} is smaller than the "
                f"pooling kernel {format_shape(self.kernel)}"
            )
        return (shape[0], *out)

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        batch, channels = int(x.shape[0]), int(x.shape[1])
        spatial = tuple(int(s) for s in x.shape[2:])
        padding = (0,) * self.dims
        out_spatial = window_output_shape(spatial, self.kernel, self.stride, padding)
        indices = window_indices(spatial, self.kernel, self.stride, padding)
        take = indices if is_numpy(xp) else xp.asarray(indices)
        flat = xp.reshape(x, (batch, channels, math.prod(spatial)))
        windows = xp.reshape(
            xp.take(flat, take, axis=2),
            (batch, channels, math.prod(self.kernel), math.prod(out_spatial)),
        )
        pooled = xp.mean(windows, axis=2) if self.reduce == "mean" else xp.max(windows, axis=2)
        return xp.reshape(pooled, (batch, channels, *out_spatial))

    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        return self.forward(lower), self.forward(upper)

    def lipschitz_inf(self) -> float:
        return 1.0

    def to_config(self) -> dict[str, Any]:
        return {"type": self.kind, "kernel": list(self.kernel), "stride": list(self.stride)}


_PARAMETERS = """

    Parameters
    ----------
    kernel : int or tuple of {dims} ints
        Window size per spatial axis.
    stride : int or tuple of {dims} ints, optional
        Step per spatial axis; defaults to ``kernel`` (non-overlapping windows).
"""


@dataclass(frozen=True, eq=False)
class AvgPool1d(_PoolNd):
    """Average pooling over one spatial axis: input ``(channels, length)``."""

    kernel: Any
    stride: Any = None
    kind: ClassVar[str] = "avgpool1d"
    dims: ClassVar[int] = 1
    reduce: ClassVar[str] = "mean"

    def __post_init__(self) -> None:
        self._setup()


@dataclass(frozen=True, eq=False)
class AvgPool2d(_PoolNd):
    """Average pooling over two spatial axes: input ``(channels, height, width)``."""

    kernel: Any
    stride: Any = None
    kind: ClassVar[str] = "avgpool2d"
    dims: ClassVar[int] = 2
    reduce: ClassVar[str] = "mean"

    def __post_init__(self) -> None:
        self._setup()


@dataclass(frozen=True, eq=False)
class MaxPool1d(_PoolNd):
    """Max pooling over one spatial axis: input ``(channels, length)``."""

    kernel: Any
    stride: Any = None
    kind: ClassVar[str] = "maxpool1d"
    dims: ClassVar[int] = 1
    reduce: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        self._setup()


@dataclass(frozen=True, eq=False)
class MaxPool2d(_PoolNd):
    """Max pooling over two spatial axes: input ``(channels, height, width)``."""

    kernel: Any
    stride: Any = None
    kind: ClassVar[str] = "maxpool2d"
    dims: ClassVar[int] = 2
    reduce: ClassVar[str] = "max"

    def __post_init__(self) -> None:
        self._setup()


for _cls in (AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d):
    _cls.__doc__ = (_cls.__doc__ or "") + _PARAMETERS.format(dims=_cls.dims)

__all__ = ["AvgPool1d", "AvgPool2d", "MaxPool1d", "MaxPool2d"]
