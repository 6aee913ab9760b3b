"""Dense (fully connected) layers: ``y = W x + b`` with ``W`` of shape ``(out, in)``.

Numpy inputs to a wide, mostly-zero layer (a pruned ticket) multiply only its live block
(:mod:`ltbounds.nets._sparse`); every other case is one matrix product in the input's namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from ltbounds.backend import is_numpy, namespace
from ltbounds.errors import InvalidInput
from ltbounds.nets._base import LinearLayer, as_weight_array, center_radius, format_shape
from ltbounds.nets._sparse import cached_dense_plan, dense_forward, is_sparse


@dataclass(frozen=True, eq=False)
class Dense(LinearLayer):
    """A fully connected layer, as PyTorch's ``nn.Linear``.

    Parameters
    ----------
    weight : array of shape (out, in)
        The weight matrix; stored as read-only float64.
    bias : array of shape (out,), optional
        The bias vector, or None for a layer without bias.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    _cache: dict = field(init=False, repr=False, default_factory=dict)

    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        object.__setattr__(self, "weight", as_weight_array("Dense weight", self.weight, 2))
        if self.bias is not None:
            bias = as_weight_array("Dense bias", self.bias, 1)
            if bias.shape[0] != self.weight.shape[0]:
                raise InvalidInput(
                    f"Dense bias has shape {format_shape(bias.shape)}; expected "
                    f"({self.weight.shape[0]},) to match weight {format_shape(self.weight.shape)}"
                )
            object.__setattr__(self, "bias", bias)

    def describe(self) -> str:
        return f"Dense {self.in_channels}→{self.out_channels}" + (
            "" if self.has_bias else ", no bias"
        )

    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        if shape != (self.in_channels,):
            hint = (
                "; insert a Flatten before it"
                if len(shape) > 1 and int(np.prod(shape)) == self.in_channels
                else ""
            )
            raise InvalidInput(
                f"{self.where(index)}: input shape {format_shape(shape)} does not fit; "
                f"expected ({self.in_channels},){hint}"
            )
        return (self.out_channels,)

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        if is_numpy(xp) and is_sparse(self):
            return dense_forward(cached_dense_plan(self), x, self.bias)
        out = xp.matmul(x, self.on(xp, "matrix_t"))
        if self.bias is not None:
            out = out + self.on(xp, "bias")
        return out

    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        xp, center, radius = center_radius(lower, upper)
        mid = self.forward(center)
        spread = xp.matmul(radius, self.on(xp, "abs_matrix_t"))
        return mid - spread, mid + spread

    def to_config(self) -> dict[str, Any]:
        return {"type": "dense", "bias": self.has_bias}


__all__ = ["Dense"]
