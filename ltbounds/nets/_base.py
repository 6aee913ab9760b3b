"""What every layer kind shares: the hooks, weight handling and shape messages.

After auto_LiRPA's one-class-per-operator pattern, each layer kind (one module each in
``ltbounds.nets``) provides the same hooks:

* ``output_shape(input_shape)``: the shape of one sample after the layer (batch excluded),
  or :class:`~ltbounds.errors.InvalidInput` naming the layer and both shapes;
* ``forward(x)``: the layer on a batch (batch-first), in the array namespace of ``x``;
* ``interval(lower, upper)``: sound elementwise bounds of the output for elementwise input
  bounds (interval bound propagation, float64);
* ``lipschitz_inf()``: an upper bound on the ∞→∞ operator norm of the layer's linear part
  (LEMMAS.md section 4: ``‖W‖_{∞→∞} = max_j Σ_i |w_ji|``).

Linear layers (dense and convolutional) also carry ``weight``, ``bias``, ``fan_in`` and
``kernel_size``; the activation is applied by :class:`~ltbounds.nets.target.TargetNet`, not
by the layers. The one exception is :class:`~ltbounds.nets.residual.ResidualBlock`, which
applies φ inside itself: it sets ``takes_activation = True`` and its ``forward``,
``interval`` and ``lipschitz_inf`` take the target's activation as an extra argument.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from ltbounds.backend import is_numpy, namespace
from ltbounds.errors import InvalidInput


def as_weight_array(name: str, value: Any, ndim: int) -> np.ndarray:
    """``value`` as a read-only, C-contiguous float64 numpy array of ``ndim`` dimensions."""
    try:
        array = np.array(value, dtype=np.float64, copy=True, order="C")
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} cannot be read as a float64 array ({exc})") from None
    if array.ndim != ndim:
        raise InvalidInput(f"{name} has shape {array.shape}; expected {ndim} dimensions")
    if array.size == 0:
        raise InvalidInput(f"{name} has shape {array.shape}; expected no zero-length axis")
    array.setflags(write=False)
    return array


def as_tuple(name: str, value: Any, length: int, *, minimum: int) -> tuple[int, ...]:
    """An int or a sequence of ``length`` ints, each ``>= minimum``, as a tuple."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values: tuple[Any, ...] = (int(value),) * length
    elif isinstance(value, Sequence) and not isinstance(value, str):
        values = tuple(value)
    else:
        raise InvalidInput(f"{name}={value!r} must be an integer or a tuple of {length} integers")
    if len(values) != length or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
    ):
        raise InvalidInput(f"{name}={value!r} must be an integer or a tuple of {length} integers")
    values = tuple(int(v) for v in values)
    if any(v < minimum for v in values):
        raise InvalidInput(f"{name}={value!r} must have every entry >= {minimum}")
    return values


def format_shape(shape: Sequence[int]) -> str:
    """``(1, 28, 28)`` for a shape, without numpy scalar reprs."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


#: Largest fraction of nonzero weights at which numpy forward passes of a layer use only its
#: nonzero weights (:mod:`ltbounds.nets._sparse`).
SPARSE_DENSITY = 0.1
#: Smallest weight matrix (entries) worth compressing.
SPARSE_MIN_ENTRIES = 100_000


class Layer(abc.ABC):
    """Base of every layer kind; see the module docstring for the hooks."""

    kind: ClassVar[str]
    is_linear: ClassVar[bool] = False
    #: True for layers whose hooks take the target's activation as an extra argument
    #: (residual blocks); :class:`~ltbounds.nets.target.TargetNet` passes it to them.
    takes_activation: ClassVar[bool] = False

    @abc.abstractmethod
    def describe(self) -> str:
        """A short human description, e.g. ``Conv2d 1→4, kernel 3×3, padding 1``."""

    def where(self, index: int | None) -> str:
        """``layer 3 (Dense 32→10)``: how messages name this layer."""
        prefix = "layer" if index is None else f"layer {index}"
        return f"{prefix} ({self.describe()})"

    @abc.abstractmethod
    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        """Shape of one output sample for one input sample of ``input_shape`` (no batch axis)."""

    @abc.abstractmethod
    def forward(self, x: Any) -> Any:
        """The layer on a batch ``x`` of shape ``(batch, *input_shape)``."""

    @abc.abstractmethod
    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        """Elementwise output bounds given elementwise input bounds ``lower <= upper``."""

    @abc.abstractmethod
    def lipschitz_inf(self) -> float:
        """An upper bound on the ∞→∞ operator norm of the layer's linear part."""

    @abc.abstractmethod
    def to_config(self) -> dict[str, Any]:
        """The layer's architecture entry (no weights), as in the sidecar schema."""


class LinearLayer(Layer):
    """A layer with a weight tensor and an optional bias (dense or convolution)."""

    is_linear: ClassVar[bool] = True
    weight: np.ndarray
    bias: np.ndarray | None

    @property
    def out_channels(self) -> int:
        """Output features (dense) or channels (convolution): the target width n_l."""
        return int(self.weight.shape[0])

    @property
    def in_channels(self) -> int:
        """Input features (dense) or channels (convolution): the target width n_{l-1}."""
        return int(self.weight.shape[1])

    @property
    def kernel_size(self) -> int:
        """Number of kernel entries k_l (1 for dense; LEMMAS.md section 5)."""
        return int(math.prod(self.weight.shape[2:]))

    @property
    def fan_in(self) -> int:
        """Inputs of one output unit: ``in_channels · kernel_size``."""
        return self.in_channels * self.kernel_size

    @property
    def has_bias(self) -> bool:
        """True when the layer carries a bias vector."""
        return self.bias is not None

    @property
    def weight_matrix(self) -> np.ndarray:
        """The weights as an ``(out_channels, fan_in)`` matrix (kernel entries flattened)."""
        return self.weight.reshape(self.out_channels, self.fan_in)

    def lipschitz_inf(self) -> float:
        """Max over output units of Σ|w| over inputs and kernel entries (LEMMAS.md §4)."""
        return float(np.max(np.sum(np.abs(self.weight_matrix), axis=1)))

    def parameters(self) -> dict[str, np.ndarray]:
        """``{"weight": ..., "bias": ...}`` (bias only when present)."""
        out = {"weight": self.weight}
        if self.bias is not None:
            out["bias"] = self.bias
        return out

    def on(self, xp: Any, what: str) -> Any:
        """A cached copy of a derived weight array in namespace ``xp``.

        ``what`` is ``"matrix"`` (``(out, fan_in)``), ``"abs_matrix"`` (its absolute value),
        ``"matrix_t"`` and ``"abs_matrix_t"`` (transposes) or ``"bias"`` (``(out, 1)`` for
        convolutions, ``(out,)`` for dense).
        """
        cache: dict[tuple[str, str], Any] = self._cache  # type: ignore[attr-defined]
        key = (getattr(xp, "__name__", repr(xp)), what)
        if key not in cache:
            host = self._host(what)
            cache[key] = host if is_numpy(xp) else xp.asarray(host)
        return cache[key]

    def _host(self, what: str) -> np.ndarray:
        matrix = self.weight_matrix
        if what == "matrix":
            return matrix
        if what == "abs_matrix":
            return np.abs(matrix)
        if what == "matrix_t":
            return np.ascontiguousarray(matrix.T)
        if what == "abs_matrix_t":
            return np.ascontiguousarray(np.abs(matrix).T)
        if what == "bias":
            assert self.bias is not None
            return self.bias if self.weight.ndim == 2 else self.bias.reshape(-1, 1)
        raise KeyError(what)


def center_radius(lower: Any, upper: Any) -> tuple[Any, Any, Any]:
    """``(xp, (lower+upper)/2, (upper-lower)/2)`` for interval propagation."""
    xp = namespace(lower, upper)
    return xp, (lower + upper) / 2, (upper - lower) / 2
