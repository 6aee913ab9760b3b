"""Flatten: ``(C, H, W)`` (or any sample shape) to one axis, row-major, as ``nn.Flatten``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ltbounds.backend import namespace
from ltbounds.errors import InvalidInput
from ltbounds.nets._base import Layer


@dataclass(frozen=True, eq=False)
class Flatten(Layer):
    """Flatten every sample to a vector in (C, H, W) row-major order, as PyTorch does.

    Linear in the values, so it maps interval bounds entrywise and is an ∞-norm isometry.
    """

    kind: ClassVar[str] = "flatten"

    def describe(self) -> str:
        return "Flatten"

    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        if not shape:
            raise InvalidInput(f"{self.where(index)}: input shape () has nothing to flatten")
        return (math.prod(shape),)

    def forward(self, x: Any) -> Any:
        xp = namespace(x)
        return xp.reshape(x, (int(x.shape[0]), math.prod(int(s) for s in x.shape[1:])))

    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        return self.forward(lower), self.forward(upper)

    def lipschitz_inf(self) -> float:
        return 1.0

    def to_config(self) -> dict[str, Any]:
        return {"type": "flatten"}


__all__ = ["Flatten"]
