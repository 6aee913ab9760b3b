"""Fast numpy forward passes for wide, mostly-zero linear layers (pruned tickets).

A ticket is a pruned source network: its layers are wide (ρ copies of every target unit) and
about 1 % of their weights are kept. The dense paths (im2col + matmul) spend nearly all their
time on zeros, and im2col copies every input ``kernel_size`` times. Here a layer chosen by
:func:`is_sparse` is applied through its nonzero entries only:

* *Dense*: only the live units take part: the columns (inputs) with a nonzero weight and the
  rows (outputs) with one. Their block, as a scipy CSR matrix, multiplies the gathered inputs
  (no transposed copy of the whole input); dead outputs hold the bias.
* *Convolution*: a direct sparse convolution, with no im2col. The input is reduced to the live
  channels and zero-padded once; every nonzero weight ``w[o, i, kh, kw]`` adds
  ``w · x_pad[i, oh·s_h + kh, ow·s_w + kw]`` to the output row ``(o, oh)``, a contiguous run
  over ``ow`` (for a width stride ``s_w > 1`` the padded columns are stored phase by phase,
  column ``q·s_w + φ`` at ``φ·W_q + q``, so that the run stays contiguous). A numba kernel
  (:mod:`ltbounds.nets._sparse_kernels`) runs this in parallel over (sample, block of output
  rows) tasks; each walks the live input channels in order and scatters into an accumulator
  of its rows of every live output.

Both sum every output over its nonzero weights in increasing (input, kernel entry) order from
0.0, exactly as the scipy CSR product that served these layers before did, so they give the
same bits as it; against the dense path (BLAS sums in its own order) they agree to rounding,
about 1e-15 relative. The tests hold them to the dense path and to literal loops. Only numpy
inputs take these paths; other array namespaces keep the portable dense path unchanged.

The reverse mode of :mod:`ltbounds.certify._autodiff` needs the transposes (``g ↦ g W``):

* *Dense*: ``grad[:, rows] @ block`` into the live columns (:func:`dense_transpose`).
* *Convolution*: the transpose of a convolution is a convolution with stride 1 of the
  output cotangent, spread out by the stride (``stride − 1`` zeros between entries) and
  padded by ``kernel − 1 − padding`` (cropped where that is negative), with the kernel
  flipped and its input and output channels swapped (:func:`conv_transpose`). It runs the
  same kernel as the forward, through the same nonzero weights; a stride ``s`` costs an
  extra factor ``s_h·s_w`` on the spread-out zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Largest padded-input buffer (bytes) one chunk of a sparse convolution may build.
PADDED_BUDGET_BYTES = 256 * 2**20
#: Largest per-task accumulator (bytes) of a sparse convolution: a block of output rows of
#: every live output channel. Larger blocks apply each weight to more positions per pass
#: over the weights (whole 28×28 images of 1088 live channels measured fastest).
ACCUMULATOR_BYTES = 8 * 2**20


def weight_of(layer: Any, what: str) -> np.ndarray:
    """The layer's weight tensor (``what="matrix"``) or its absolute value (``"abs_matrix"``)."""
    if what == "matrix":
        return layer.weight
    if what == "abs_matrix":
        return np.abs(layer.weight)
    raise KeyError(what)


# -- dense ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DensePlan:
    """The live block of a sparse dense layer: ``out[:, rows] = x[:, columns] @ block.T``."""

    rows: np.ndarray
    columns: np.ndarray
    block: Any  # scipy CSR matrix of shape (len(rows), len(columns))
    out_features: int


def dense_plan(weight: np.ndarray) -> DensePlan:
    """Compress an ``(out, in)`` weight matrix to the CSR matrix of its live rows and columns."""
    from scipy import sparse as scipy_sparse  # noqa: PLC0415  (only for wide tickets)

    nonzero = weight != 0
    rows = np.flatnonzero(nonzero.any(axis=1))
    columns = np.flatnonzero(nonzero.any(axis=0))
    block = scipy_sparse.csr_array(weight[np.ix_(rows, columns)])
    return DensePlan(rows, columns, block, int(weight.shape[0]))


def dense_forward(plan: DensePlan, x: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """``x @ W.T (+ bias)`` through the live block of ``W``; ``x`` has shape ``(batch, in)``.

    Every output is the sum of its nonzero weights times their inputs in increasing input
    order, as a CSR product of the whole matrix computes it (the same bits).
    """
    batch = int(x.shape[0])
    out = np.zeros((batch, plan.out_features), dtype=np.float64)
    if plan.rows.size and batch:
        gathered = np.take(np.asarray(x, dtype=np.float64), plan.columns, axis=1)
        out[:, plan.rows] = (plan.block @ np.ascontiguousarray(gathered.T)).T
    if bias is not None:
        out += bias
    return out


# -- convolution ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ConvPlan:
    """Nonzero weights of a convolution, laid out for :func:`conv_forward`.

    Attributes
    ----------
    channels : ndarray of int
        The live input channels (those some nonzero weight reads), ascending.
    outputs : ndarray of int
        The live output channels (those with a nonzero weight), ascending.
    colptr : ndarray of int, shape (len(channels) + 1,)
        Weights of live input channel ``c`` are ``colptr[c]:colptr[c + 1]``.
    targets : ndarray of int
        Per nonzero weight, the position of its output channel in ``outputs``.
    offsets : ndarray of int
        Per nonzero weight, the offset it reads in one sample's padded, phase-ordered input
        of live channels, relative to output row 0 and output column 0.
    values : ndarray of float
        The nonzero weights, ordered by input channel, then output channel, then kernel
        entry; so every output is summed over inputs in the same (input, entry) order.
    padded : tuple of int
        ``(height, width)`` of one padded, phase-ordered channel plane.
    """

    channels: np.ndarray
    outputs: np.ndarray
    colptr: np.ndarray
    targets: np.ndarray
    offsets: np.ndarray
    values: np.ndarray
    padded: tuple[int, int]


def _as_2d(
    spatial: tuple[int, ...], kernel: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...]
) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int]]:
    """A 1-D convolution as a 2-D one of height 1."""
    if len(spatial) == 1:
        return (1, spatial[0]), (1, kernel[0]), (1, stride[0]), (0, padding[0])
    return spatial, kernel, stride, padding  # type: ignore[return-value]


def _padded_shape(
    spatial: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]
) -> tuple[int, int, int]:
    """``(padded height, phase width W_q, stored width s_w·W_q)`` of one channel plane."""
    height = spatial[0] + 2 * padding[0]
    width = spatial[1] + 2 * padding[1]
    phase_width = -(-width // stride[1])
    return height, phase_width, phase_width * stride[1]


def conv_plan(
    weight: np.ndarray,
    spatial: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> ConvPlan:
    """Lay out the nonzero entries of ``weight`` (``(out, in, *kernel)``) for inputs of ``spatial``."""
    kernel = tuple(int(k) for k in weight.shape[2:])
    flat = weight.reshape(weight.shape[0], weight.shape[1], -1)
    in_index, out_index, entry = np.nonzero(flat.transpose(1, 0, 2))  # input-major
    values = np.ascontiguousarray(flat[out_index, in_index, entry], dtype=np.float64)
    return _plan_of_entries(in_index, out_index, entry, values, kernel, spatial, stride, padding)


def _plan_of_entries(
    in_index: np.ndarray,
    out_index: np.ndarray,
    entry: np.ndarray,
    values: np.ndarray,
    kernel: tuple[int, ...],
    spatial: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> ConvPlan:
    """:class:`ConvPlan` of nonzero weights given as ``(input, output, flat kernel entry, value)``
    lists, grouped by ascending input channel."""
    spatial2, kernel2, stride2, padding2 = _as_2d(spatial, kernel, stride, padding)
    height, phase_width, width = _padded_shape(spatial2, stride2, padding2)
    channels, counts = np.unique(in_index, return_counts=True)
    live_in = np.repeat(np.arange(channels.size, dtype=np.int64), counts)
    colptr = np.zeros(channels.size + 1, dtype=np.int64)
    np.cumsum(counts, out=colptr[1:])
    outputs, targets = np.unique(out_index, return_inverse=True)
    row, column = np.divmod(entry.astype(np.int64), kernel2[1])
    phase, shift = column % stride2[1], column // stride2[1]
    offsets = (live_in * height + row) * width + phase * phase_width + shift
    return ConvPlan(
        channels, outputs, colptr, targets.astype(np.int64), offsets, values, (height, width)
    )


def _padded_input(
    x: np.ndarray,
    channels: np.ndarray,
    spatial: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
) -> np.ndarray:
    """Live channels of ``x`` (``(batch, C, H, W)``), zero-padded and phase-ordered, flattened per sample."""
    batch = int(x.shape[0])
    height, phase_width, width = _padded_shape(spatial, stride, padding)
    plane = np.zeros((batch, channels.size, height, width), dtype=np.float64)
    plane[:, :, padding[0] : padding[0] + spatial[0], padding[1] : padding[1] + spatial[1]] = np.take(
        x, channels, axis=1
    )
    if stride[1] > 1:  # column q·s + φ goes to φ·W_q + q
        plane = plane.reshape(batch, channels.size, height, phase_width, stride[1])
        plane = np.ascontiguousarray(plane.transpose(0, 1, 2, 4, 3))
    return plane.reshape(batch, -1)


def _rows_per_task(live: int, out_spatial: tuple[int, ...], batch: int) -> int:
    """Output rows per task: as many as the accumulator holds, but tasks enough for every thread."""
    import numba  # noqa: PLC0415

    rows = int(out_spatial[0])
    fitting = max(1, ACCUMULATOR_BYTES // (8 * live * int(out_spatial[1])))
    blocks_wanted = -(-2 * numba.get_num_threads() // max(batch, 1))
    return int(max(1, min(rows, fitting, -(-rows // blocks_wanted))))


def conv_forward(
    plan: ConvPlan,
    x: np.ndarray,
    out_channels: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    bias: np.ndarray | None,
) -> np.ndarray:
    """The convolution of ``x`` (``(batch, in, *spatial)``) through the nonzero weights of ``plan``."""
    from ltbounds.nets import _sparse_kernels  # noqa: PLC0415  (numba loads only when used)

    spatial = tuple(int(s) for s in x.shape[2:])
    spatial2, kernel2, stride2, padding2 = _as_2d(spatial, kernel, stride, padding)
    out_spatial = tuple(
        (size + 2 * pad - k) // step + 1
        for size, k, step, pad in zip(spatial2, kernel2, stride2, padding2, strict=True)
    )
    batch = int(x.shape[0])
    out = np.zeros((batch, out_channels, *out_spatial), dtype=np.float64)
    if bias is not None:
        out += bias.reshape(-1, 1, 1)
    x = x.reshape(batch, int(x.shape[1]), *spatial2)
    if plan.outputs.size and batch:
        rows_per_task = _rows_per_task(plan.outputs.size, out_spatial, batch)
        per_sample = 8 * plan.channels.size * plan.padded[0] * plan.padded[1]
        chunk = max(1, PADDED_BUDGET_BYTES // max(per_sample, 1))
        for start in range(0, batch, chunk):
            stop = min(batch, start + chunk)
            padded = _padded_input(
                np.asarray(x[start:stop], dtype=np.float64), plan.channels, spatial2, stride2, padding2
            )
            _sparse_kernels.sparse_conv_rows(
                padded, plan.colptr, plan.targets, plan.offsets, plan.values, plan.outputs,
                stride2[0] * plan.padded[1], rows_per_task, out[start:stop],
            )
    return out.reshape(batch, out_channels, *(out_spatial if len(spatial) == 2 else out_spatial[1:]))


def dense_transpose(plan: DensePlan, grad: np.ndarray, in_features: int) -> np.ndarray:
    """``grad @ W`` through the live block of ``W``; ``grad`` has shape ``(batch, out)``.

    The transpose of :func:`dense_forward`'s product (the vector-Jacobian product of a dense
    layer): only the live rows of ``grad`` are read and only the live columns written.
    """
    batch = int(grad.shape[0])
    out = np.zeros((batch, in_features), dtype=np.float64)
    if plan.rows.size and batch:
        gathered = np.take(np.asarray(grad, dtype=np.float64), plan.rows, axis=1)
        out[:, plan.columns] = (plan.block.T @ np.ascontiguousarray(gathered.T)).T
    return out


def conv_transpose_plan(weight: np.ndarray, spatial: tuple[int, ...]) -> ConvPlan:
    """The plan of the stride-1, unpadded convolution that is the transpose of ``weight``.

    ``weight`` is ``(out, in, *kernel)``; the transpose reads the ``out`` channels of a
    cotangent spread out and padded to ``spatial`` (:func:`conv_transpose`) and writes the
    ``in`` channels, with every kernel entry flipped.
    """
    kernel = tuple(int(k) for k in weight.shape[2:])
    flat = weight.reshape(weight.shape[0], weight.shape[1], -1)
    out_index, in_index, entry = np.nonzero(flat)  # grouped by the transpose's input channel
    values = np.ascontiguousarray(flat[out_index, in_index, entry], dtype=np.float64)
    flipped = flat.shape[2] - 1 - entry
    ones = (1,) * len(kernel)
    return _plan_of_entries(out_index, in_index, flipped, values, kernel, spatial, ones, (0,) * len(kernel))


def _spread_range(out_size: int, stride: int, left: int, size: int) -> tuple[int, int, int]:
    """Output positions ``[first, stop)`` whose spread-out slot ``left + o·stride`` lies in
    ``[0, size)``, and the slot of ``first``."""
    first = 0 if left >= 0 else -(left // stride)  # ⌈−left / stride⌉
    stop = max(first, min(out_size, -((left - size) // stride)))  # ⌈(size − left) / stride⌉
    return first, stop, left + first * stride


def conv_transpose(
    plan: ConvPlan,
    grad: np.ndarray,
    in_channels: int,
    spatial: tuple[int, ...],
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> np.ndarray:
    """The vector-Jacobian product of a convolution: ``(batch, out, *out_spatial)`` cotangents
    of its output to ``(batch, in, *spatial)`` cotangents of its input.

    ``plan`` is :func:`conv_transpose_plan` of the weights for the spread-out, padded plane
    (``spatial + kernel − 1``). Only the live output channels of the cotangent are copied into
    that plane; the sparse kernel of the forward pass does the rest.
    """
    from ltbounds.nets import _sparse_kernels  # noqa: PLC0415  (numba loads only when used)

    spatial2, kernel2, stride2, padding2 = _as_2d(spatial, kernel, stride, padding)
    batch = int(grad.shape[0])
    out_spatial = tuple(int(s) for s in grad.shape[2:])
    out_spatial2 = (1, *out_spatial) if len(spatial) == 1 else out_spatial
    planes = tuple(size + k - 1 for size, k in zip(spatial2, kernel2, strict=True))
    assert plan.padded == planes, (plan.padded, planes)
    out = np.zeros((batch, in_channels, *spatial2), dtype=np.float64)
    grad = grad.reshape(batch, int(grad.shape[1]), *out_spatial2)
    if not (plan.outputs.size and batch):
        return out.reshape(batch, in_channels, *spatial)
    ranges = [
        _spread_range(o, s, k - 1 - p, size)
        for o, s, k, p, size in zip(out_spatial2, stride2, kernel2, padding2, planes, strict=True)
    ]
    (h0, h1, hs), (w0, w1, ws) = ranges
    rows_per_task = _rows_per_task(plan.outputs.size, spatial2, batch)
    per_sample = 8 * plan.channels.size * planes[0] * planes[1]
    chunk = max(1, PADDED_BUDGET_BYTES // max(per_sample, 1))
    for start in range(0, batch, chunk):
        stop = min(batch, start + chunk)
        plane = np.zeros((stop - start, plan.channels.size, *planes), dtype=np.float64)
        if h1 > h0 and w1 > w0:
            plane[
                :, :, hs : hs + (h1 - h0 - 1) * stride2[0] + 1 : stride2[0], ws : ws + (w1 - w0 - 1) * stride2[1] + 1 : stride2[1]
            ] = np.take(grad[start:stop, :, h0:h1, w0:w1], plan.channels, axis=1)
        _sparse_kernels.sparse_conv_rows(
            plane.reshape(stop - start, -1), plan.colptr, plan.targets, plan.offsets, plan.values,
            plan.outputs, plan.padded[1], rows_per_task, out[start:stop],
        )
    return out.reshape(batch, in_channels, *spatial)


def cached_conv_transpose_plan(layer: Any, spatial: tuple[int, ...]) -> ConvPlan:
    """:func:`conv_transpose_plan` of ``layer``'s weights for inputs of ``spatial``, cached on the layer."""
    cache: dict[Any, Any] = layer._cache
    key = ("sparse-conv-transpose", spatial)
    if key not in cache:
        kernel = tuple(int(k) for k in layer.weight.shape[2:])
        spatial2, kernel2, _, _ = _as_2d(spatial, kernel, layer.stride, layer.padding)
        planes = tuple(size + k - 1 for size, k in zip(spatial2, kernel2, strict=True))
        cache[key] = conv_transpose_plan(layer.weight, planes if len(spatial) == 2 else planes[1:])
    return cache[key]


def cached_conv_plan(layer: Any, what: str, spatial: tuple[int, ...]) -> ConvPlan:
    """:func:`conv_plan` of ``layer``'s weights (or their absolute values), cached on the layer."""
    cache: dict[Any, Any] = layer._cache
    key = ("sparse-conv", what, spatial)
    if key not in cache:
        cache[key] = conv_plan(weight_of(layer, what), spatial, layer.stride, layer.padding)
    return cache[key]


def cached_dense_plan(layer: Any) -> DensePlan:
    """:func:`dense_plan` of ``layer``'s weights, cached on the layer."""
    cache: dict[Any, Any] = layer._cache
    key = ("sparse-dense", "matrix")
    if key not in cache:
        cache[key] = dense_plan(layer.weight)
    return cache[key]


def is_sparse(layer: Any) -> bool:
    """Whether numpy forward passes of ``layer`` take the sparse paths of this module.

    The rule is the one under which the layer used to be multiplied as a scipy CSR matrix: at
    least ``SPARSE_MIN_ENTRIES`` weights, at most ``SPARSE_DENSITY`` of them nonzero
    (:mod:`ltbounds.nets._base`). Layers outside it keep the dense path and its exact results.
    """
    from ltbounds.nets import _base  # noqa: PLC0415

    cache: dict[Any, Any] = layer._cache
    key = ("sparse", "decision")
    if key not in cache:
        size = layer.weight.size
        nonzero = np.count_nonzero(layer.weight)
        cache[key] = size >= _base.SPARSE_MIN_ENTRIES and nonzero <= _base.SPARSE_DENSITY * size
    return bool(cache[key])


__all__ = [
    "ACCUMULATOR_BYTES",
    "PADDED_BUDGET_BYTES",
    "ConvPlan",
    "DensePlan",
    "cached_conv_plan",
    "cached_conv_transpose_plan",
    "cached_dense_plan",
    "conv_forward",
    "conv_plan",
    "conv_transpose",
    "conv_transpose_plan",
    "dense_forward",
    "dense_plan",
    "dense_transpose",
    "is_sparse",
]
