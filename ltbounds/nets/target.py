"""Target networks: an ordered list of layers, one activation, a bounded input domain.

The activation rule (as in Burkholz, ICML 2022 and NeurIPS 2022, and the PyTorch targets of
their experiments): the activation φ is applied after every linear layer (dense or
convolution) **except the last one**; pooling and flatten act on the post-activation values
they receive. A target of depth ``L`` has ``L`` linear layers ``h_l = φ(W_l h_{l-1} + b_l)``
for ``l < L`` and a linear output ``W_L h_{L-1} + b_L``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

from ltbounds.activations import Activation, get_activation
from ltbounds.backend import namespace, to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.nets._activation_bounds import activation_interval
from ltbounds.nets._base import Layer, LinearLayer, format_shape
from ltbounds.rng import stream_id, uniform_range
from ltbounds.validation import check_int, check_interval


class ParamCount(NamedTuple):
    """Parameter counts of a network: nonzero entries and all entries (weights + biases)."""

    nonzero: int
    total: int


@dataclass(frozen=True)
class TargetSummary:
    """The shape facts the width theorems need (LEMMAS.md sections 2.5, 2.6 and 5).

    Attributes
    ----------
    widths : tuple of int
        ``n_0 .. n_L``: input channels (or features) of the first linear layer, then the
        output channels (or features) of every linear layer.
    kernel_sizes : tuple of int
        ``k_1 .. k_L``: kernel entries per linear layer (1 for dense).
    kernel_shapes : tuple of tuple of int
        Spatial kernel shapes (``()`` for dense).
    kinds : tuple of str
        Layer kind of every linear layer (``"dense"``, ``"conv1d"``, ``"conv2d"``).
    has_bias : tuple of bool
        Whether each linear layer has a bias.
    activation : str
        The activation's registry name.
    input_shape : tuple of int
        Shape of one input sample.
    input_domain : tuple of float
        Every input entry lies in ``[low, high]``.
    depth : int
        ``L``, the number of linear layers.
    """

    widths: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    kernel_shapes: tuple[tuple[int, ...], ...]
    kinds: tuple[str, ...]
    has_bias: tuple[bool, ...]
    activation: str
    input_shape: tuple[int, ...]
    input_domain: tuple[float, float]
    depth: int

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the summary."""
        return {key: _listify(value) for key, value in asdict(self).items()}


def _listify(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_listify(v) for v in value]
    return value


class TargetNet:
    """A trained (or given) network to be approximated by a ticket.

    Parameters
    ----------
    layers : sequence of Layer
        Dense, convolution, pooling and flatten layers in order; at least one linear layer.
    input_shape : sequence of int
        Shape of one input sample, e.g. ``(1, 28, 28)`` or ``(64,)``.
    activation : str
        Registry name of φ (:func:`ltbounds.activations.get_activation`).
    input_domain : (float, float)
        Every input entry lies in ``[low, high]``; bounds are stated on this box.
    name : str, optional
        A label for reports.
    notes : sequence of str, optional
        Provenance remarks (for example that the architecture was inferred from key names).
    metadata : dict, optional
        Free JSON-ready facts (for example the test accuracy of an embedded target).

    Raises
    ------
    InvalidInput
        When the shapes do not chain, a weight is NaN or infinite, the activation is unknown
        or the domain is not a proper interval; the message names the layer and the shapes.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        input_shape: Sequence[int],
        activation: str,
        input_domain: tuple[float, float] = (-1.0, 1.0),
        *,
        name: str = "target",
        notes: Sequence[str] = (),
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._layers = tuple(layers)
        if not self._layers:
            raise InvalidInput("layers=[] must hold at least one linear layer")
        for index, layer in enumerate(self._layers):
            if not isinstance(layer, Layer):
                raise InvalidInput(f"layer {index} is {type(layer).__name__}; expected a Layer")
        if not any(layer.is_linear for layer in self._layers):
            raise InvalidInput("layers hold no dense or convolution layer; expected at least one")
        try:
            shape = tuple(check_int("input_shape entry", s, minimum=1) for s in input_shape)
        except TypeError:
            raise InvalidInput(f"input_shape={input_shape!r} must be a tuple of integers") from None
        if not shape:
            raise InvalidInput("input_shape=() must have at least one axis")
        self._input_shape = shape
        self._activation = get_activation(activation)
        self._input_domain = check_interval("input_domain", *_pair(input_domain))
        self.name = name
        self.notes = tuple(notes)
        self.metadata = dict(metadata or {})

        shapes = [shape]
        for index, layer in enumerate(self._layers):
            shapes.append(layer.output_shape(shapes[-1], index=index))
        self._shapes = tuple(shapes)
        linear = [i for i, layer in enumerate(self._layers) if layer.is_linear]
        self._linear = tuple(linear)
        self._activated = frozenset(linear[:-1])
        for index in linear:
            layer = self._layers[index]
            for part, values in layer.parameters().items():
                _check_finite(f"layer {index} ({layer.describe()}) {part}", values)
        self._layer_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None

    # -- structure -------------------------------------------------------------------------
    @property
    def layers(self) -> tuple[Layer, ...]:
        """All layers in order."""
        return self._layers

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input sample."""
        return self._input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of one output sample."""
        return self._shapes[-1]

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """Sample shapes before layer 0, after layer 0, ..., after the last layer."""
        return self._shapes

    @property
    def activation(self) -> str:
        """The activation's registry name."""
        return self._activation.name

    @property
    def activation_function(self) -> Activation:
        """The :class:`~ltbounds.activations.Activation` applied after hidden linear layers."""
        return self._activation

    @property
    def input_domain(self) -> tuple[float, float]:
        """Every input entry lies in ``[low, high]``."""
        return self._input_domain

    @property
    def linear_layers(self) -> list[tuple[int, LinearLayer]]:
        """``(index in layers, layer)`` for every dense and convolution layer, in order."""
        return [(i, self._layers[i]) for i in self._linear]  # type: ignore[misc]

    @property
    def depth(self) -> int:
        """``L``: the number of linear layers."""
        return len(self._linear)

    def is_activated(self, index: int) -> bool:
        """True when φ is applied after layer ``index`` (every linear layer but the last)."""
        return index in self._activated

    @property
    def num_params(self) -> ParamCount:
        """Nonzero and total entries of all weights and biases."""
        nonzero = total = 0
        for _, layer in self.linear_layers:
            for values in layer.parameters().values():
                nonzero += int(np.count_nonzero(values))
                total += int(values.size)
        return ParamCount(nonzero, total)

    def lipschitz_inf(self) -> list[float]:
        """``‖W_l‖_{∞→∞}`` of every linear layer (LEMMAS.md section 4)."""
        return [layer.lipschitz_inf() for _, layer in self.linear_layers]

    def shape_summary(self) -> TargetSummary:
        """Widths ``n_0..n_L``, kernel sizes, activation and biases, as the theorems read them."""
        linear = [layer for _, layer in self.linear_layers]
        return TargetSummary(
            widths=(linear[0].in_channels, *(layer.out_channels for layer in linear)),
            kernel_sizes=tuple(layer.kernel_size for layer in linear),
            kernel_shapes=tuple(tuple(int(k) for k in layer.weight.shape[2:]) for layer in linear),
            kinds=tuple(layer.kind for layer in linear),
            has_bias=tuple(layer.has_bias for layer in linear),
            activation=self.activation,
            input_shape=self._input_shape,
            input_domain=self._input_domain,
            depth=len(linear),
        )

    def describe(self) -> str:
        """One line per layer: index, description, output shape, and φ where applied."""
        lines = [
            f"input {format_shape(self._input_shape)} in [{self._input_domain[0]:g}, {self._input_domain[1]:g}]"
        ]
        for index, layer in enumerate(self._layers):
            phi = f" → {self.activation}" if index in self._activated else ""
            lines.append(
                f"{index}: {layer.describe()}{phi}  {format_shape(self._shapes[index + 1])}"
            )
        return "\n".join(lines)

    def __repr__(self) -> str:
        kinds = ", ".join(layer.describe() for layer in self._layers)
        return f"TargetNet({self.name!r}: {kinds}; φ={self.activation})"

    def to_config(self) -> dict[str, Any]:
        """The architecture as a sidecar document (no weights; keys are layer indices)."""
        layers = []
        for index, layer in enumerate(self._layers):
            entry = layer.to_config()
            if layer.is_linear:
                entry = {"type": entry.pop("type"), "key": str(index), **entry}
            layers.append(entry)
        document: dict[str, Any] = {
            "format": "ltbounds-architecture",
            "version": 1,
            "name": self.name,
            "input_shape": list(self._input_shape),
            "input_domain": list(self._input_domain),
            "activation": self.activation,
            "layers": layers,
        }
        if self.metadata:
            document["metadata"] = self.metadata
        return document

    # -- evaluation ------------------------------------------------------------------------
    def _check_batch(self, name: str, x: Any) -> Any:
        xp = namespace(x)
        x = xp.asarray(x)
        if (
            tuple(int(s) for s in x.shape[1:]) != self._input_shape
            or x.ndim != len(self._input_shape) + 1
        ):
            raise InvalidInput(
                f"{name} has shape {format_shape(x.shape)}; expected (batch, "
                + ", ".join(map(str, self._input_shape))
                + ")"
            )
        if x.dtype != xp.float64:
            x = xp.astype(x, xp.float64)
        return x

    def forward(self, x: Any) -> Any:
        """The network on a batch ``x`` of shape ``(batch, *input_shape)``, in x's namespace."""
        return self.forward_all(x)[-1]

    def forward_all(self, x: Any) -> list[Any]:
        """Outputs of every layer (after φ where applied), one array per layer."""
        x = self._check_batch("x", x)
        outputs = []
        for index, layer in enumerate(self._layers):
            x = layer.forward(x)
            if index in self._activated:
                x = self._activation.forward(x)
            outputs.append(x)
        return outputs

    def interval(self, lower: Any, upper: Any) -> tuple[Any, Any]:
        """Sound elementwise output bounds (float64 interval bound propagation).

        ``lower`` and ``upper`` have shape ``input_shape`` or ``(batch, *input_shape)`` with
        ``lower <= upper``; the result has the matching output shape.
        """
        bounds = self.interval_all(lower, upper)
        return bounds[-1]

    def interval_all(self, lower: Any, upper: Any) -> list[tuple[Any, Any]]:
        """Bounds after every layer (after φ where applied), as :meth:`interval`."""
        xp = namespace(lower, upper)
        lower, upper = xp.asarray(lower), xp.asarray(upper)
        single = lower.ndim == len(self._input_shape)
        if single:
            lower, upper = lower[None, ...], upper[None, ...]
        lower = self._check_batch("lower", lower)
        upper = self._check_batch("upper", upper)
        if bool(xp.any(lower > upper)):
            raise InvalidInput("lower > upper somewhere; expected lower <= upper elementwise")
        out = []
        for index, layer in enumerate(self._layers):
            lower, upper = layer.interval(lower, upper)
            if index in self._activated:
                lower, upper = activation_interval(self._activation, lower, upper)
            out.append((lower[0, ...], upper[0, ...]) if single else (lower, upper))
        return out

    def layer_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Bounds after every layer (post-activation where φ applies) on the input domain box.

        Returns numpy arrays of the layer's sample shape; computed once and cached.
        """
        if self._layer_bounds is None:
            low, high = self._input_domain
            lower = np.full(self._input_shape, low)
            upper = np.full(self._input_shape, high)
            self._layer_bounds = [
                (to_numpy(a), to_numpy(b)) for a, b in self.interval_all(lower, upper)
            ]
        return self._layer_bounds

    def input_norm_bounds(self) -> list[float]:
        """``M_{l-1}``: a bound on ‖input of linear layer l‖_∞ over the domain, for every l.

        The first entry is ``max(|low|, |high|)`` of the domain; the others come from
        :meth:`layer_bounds` (the value entering each linear layer, after φ and pooling).
        These are the ``M`` of the error-propagation bound, LEMMAS.md section 4.
        """
        low, high = self._input_domain
        bounds = self.layer_bounds()
        out = []
        for index in self._linear:
            if index == 0:
                out.append(max(abs(low), abs(high)))
            else:
                a, b = bounds[index - 1]
                out.append(float(max(np.max(np.abs(a)), np.max(np.abs(b)))))
        return out

    def sample_inputs(self, n: int, seed: int, *, xp: Any | None = None) -> Any:
        """``n`` inputs drawn uniformly from the domain box (counter-based, reproducible).

        Draws come from stream ``stream_id("inputs", 0)`` of ``seed``, so they never coincide
        with the draws of a source network.
        """
        n = check_int("n", n, minimum=0)
        size = n * math.prod(self._input_shape)
        index = (np if xp is None else xp).arange(size, dtype=(np if xp is None else xp).int64)
        low, high = self._input_domain
        values = uniform_range(seed, stream_id("inputs", 0), low, high, index)
        return namespace(values).reshape(values, (n, *self._input_shape))


def _pair(domain: Any) -> tuple[Any, Any]:
    try:
        low, high = domain
    except (TypeError, ValueError):
        raise InvalidInput(f"input_domain={domain!r} must be a pair (low, high)") from None
    return low, high


def _check_finite(name: str, values: np.ndarray) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidInput(
            f"{name} holds {float(values[position])!r} at index {position}; expected finite values"
        )


__all__ = ["ParamCount", "TargetNet", "TargetSummary"]
