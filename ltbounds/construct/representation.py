"""How a source network's hidden layer carries the target's hidden layer.

In the L+1 construction (Burkholz, NeurIPS 2022, Figure 1c; LEMMAS.md 2.6) every target unit
(neuron or channel) of a hidden layer is carried by ρ *copies* in the source layer, and a
block of *constant* units carries the value needed to build biases. A :class:`Carrier`
records which source unit is which: ``copies[i, s]`` is the source unit holding copy ``s`` of
target unit ``i``; ``constants[c]`` a source unit whose value is the exact number
``constant_values[c]`` at every input and spatial position.

Structural layers (pooling, flatten) act on the source exactly as on the target, so a carrier
is mapped through them here; the error bound ``error`` (sup over the domain of
|copy − target unit|) is unchanged by pooling (1-Lipschitz in ∞-norm) and flattening.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from ltbounds.errors import InvalidInput
from ltbounds.nets import Flatten, Layer


@dataclass(frozen=True)
class Carrier:
    """Source units carrying a target representation.

    Attributes
    ----------
    copies : ndarray of int, shape (target_units, n_copies)
        Source unit index of each copy of each target unit (channel for spatial layers,
        feature for flat ones).
    constants : ndarray of int, shape (n_constants,)
        Source units whose value is constant over inputs and positions.
    constant_values : ndarray of float, shape (n_constants,)
        Their exact values.
    source_shape : tuple of int
        Sample shape of the source representation, ``(channels, *spatial)`` or ``(features,)``.
    error : float
        Bound on ``|copy − target unit|`` over the input domain, all *usable* copies.
    usable : ndarray of bool, shape (target_units, n_copies), optional
        False for copies dropped because one of their subset sums missed its tolerance; the
        next layer never reads them. Default: every copy usable.
    """

    copies: np.ndarray
    constants: np.ndarray
    constant_values: np.ndarray
    source_shape: tuple[int, ...]
    error: float
    usable: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.usable is None:
            object.__setattr__(self, "usable", np.ones(self.copies.shape, dtype=bool))

    @property
    def n_copies(self) -> int:
        """Copies per target unit (ρ, or 1 for the input and in the 2L construction)."""
        return int(self.copies.shape[1])

    @classmethod
    def identity(cls, input_shape: tuple[int, ...]) -> Carrier:
        """The network input itself: one copy of each input channel, no constants, no error."""
        channels = int(input_shape[0])
        return cls(
            copies=np.arange(channels, dtype=np.int64)[:, None],
            constants=np.zeros(0, dtype=np.int64),
            constant_values=np.zeros(0),
            source_shape=tuple(int(s) for s in input_shape),
            error=0.0,
        )

    def through(self, layer: Layer) -> Carrier:
        """Map the carrier through a structural (pooling or flatten) layer."""
        if layer.is_linear:
            raise InvalidInput(f"{layer.describe()} is linear; carriers pass only structural layers")
        new_shape = layer.output_shape(self.source_shape)
        if not isinstance(layer, Flatten):
            return replace(self, source_shape=new_shape)
        positions = math.prod(self.source_shape[1:])
        offsets = np.arange(positions, dtype=np.int64)
        # Flattening (C, *S) row-major: feature = channel·|S| + position.
        copies = (self.copies[:, None, :] * positions + offsets[None, :, None]).reshape(
            -1, self.n_copies
        )
        constants = (self.constants[:, None] * positions + offsets[None, :]).reshape(-1)
        values = np.repeat(self.constant_values, positions)
        usable = np.repeat(self.usable, positions, axis=0)
        return Carrier(copies, constants, values, new_shape, self.error, usable)

    def candidates(self, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Per target unit, up to ``limit`` usable copies first: (source units, usable mask)."""
        order = np.argsort(~self.usable, axis=1, kind="stable")[:, :limit]
        return np.take_along_axis(self.copies, order, axis=1), np.take_along_axis(self.usable, order, axis=1)


def always_valid_kernel_positions(
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> np.ndarray:
    """Flat kernel positions that read a real (unpadded) input at *every* output position.

    A constant source channel is zero-padded like any other, so a bias built from constant
    units is exact only through kernel entries that never touch the padding. For "same"
    convolutions that is the centre; for unpadded ones every entry.
    """
    valid_per_axis = []
    for size, k, s, p in zip(spatial, kernel, stride, padding, strict=True):
        outputs = (size + 2 * p - k) // s + 1
        last = (outputs - 1) * s - p
        valid_per_axis.append([r for r in range(k) if r - p >= 0 and last + r <= size - 1])
    grids = np.meshgrid(*[np.asarray(v, dtype=np.int64) for v in valid_per_axis], indexing="ij")
    if any(len(v) == 0 for v in valid_per_axis):
        return np.zeros(0, dtype=np.int64)
    return np.ravel_multi_index(tuple(g.ravel() for g in grids), kernel).astype(np.int64)


__all__ = ["Carrier", "always_valid_kernel_positions"]
