"""Index arrays for sliding-window operators (convolution, pooling), built once per shape.

A window operator over an input of spatial shape ``S`` (any number of spatial axes) is
written as one gather: ``cols[..., r, o] = x_padded[..., idx[r, o]]`` for kernel entry ``r``
and output position ``o``, where the flattened, zero-padded input has one extra slot
(index ``prod(S)``) that stands for every padding position. ``take`` along one axis with a
precomputed 1-D index array is portable (numpy, CuPy, array-api-strict); no numpy stride
tricks are needed on the shared path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np


def window_output_shape(
    spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int]
) -> tuple[int, ...]:
    """Output spatial shape ``floor((S + 2p - k) / s) + 1`` per axis (may be <= 0 if invalid)."""
    return tuple(
        (int(size) + 2 * int(pad) - int(k)) // int(step) + 1
        for size, k, step, pad in zip(spatial, kernel, stride, padding, strict=True)
    )


@lru_cache(maxsize=64)
def window_indices(
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> np.ndarray:
    """Flat gather indices of shape ``(K·P,)``, kernel entry major, output position minor.

    ``K = prod(kernel)``, ``P = prod(output shape)``; entries equal to ``prod(spatial)``
    point at the zero slot standing for padding. The array is read-only (it is cached).
    """
    out_shape = window_output_shape(spatial, kernel, stride, padding)
    dims = len(spatial)
    offsets = np.indices(kernel).reshape(dims, -1)  # (dims, K)
    positions = np.indices(out_shape).reshape(dims, -1)  # (dims, P)
    flat = np.zeros((offsets.shape[1], positions.shape[1]), dtype=np.int64)
    valid = np.ones(flat.shape, dtype=bool)
    for axis in range(dims):
        coordinate = (
            positions[axis][None, :] * stride[axis] + offsets[axis][:, None] - padding[axis]
        )
        valid &= (coordinate >= 0) & (coordinate < spatial[axis])
        flat = flat * spatial[axis] + coordinate
    flat = np.where(valid, flat, math.prod(spatial)).reshape(-1)
    flat.setflags(write=False)
    return flat
