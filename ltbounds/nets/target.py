"""Target networks: an ordered list of layers, one activation, a bounded input domain.

The activation rule (as in Burkholz, ICML 2022 and NeurIPS 2022, and the PyTorch targets of
their experiments): the activation φ is applied after every linear layer (dense or
convolution) **except the last one**; pooling and flatten act on the post-activation values
they receive. A target of depth ``L`` has ``L`` linear layers ``h_l = φ(W_l h_{l-1} + b_l)``
for ``l < L`` and a linear output ``W_L h_{L-1} + b_L``.

Residual blocks (:class:`~ltbounds.nets.residual.ResidualBlock`, Burkholz ICML 2022) are one
unit each: the block applies φ itself (between its branch layers, and after the sum when
``activation_out``), the target passes it its activation, and a linear layer directly before
a block is followed by φ like any hidden layer. For the width theorems the branch layers count
towards the depth ``L`` and the widths ``n_0..n_L`` (they lie on the main path); a skip
projection runs parallel to its branch, so it is listed among the linear layers (its
parameters count, it has an input bound and a norm) but adds no depth.
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
from ltbounds.nets.residual import ResidualBlock
from ltbounds.rng import stream_id, uniform_range
from ltbounds.validation import check_int, check_interval


class ParamCount(NamedTuple):
    """Parameter counts of a network: nonzero entries and all entries (weights + biases)."""

    nonzero: int
    total: int


class LinearSite(NamedTuple):
    """Where one linear layer of a target sits.

    Attributes
    ----------
    index : int
        Position in :attr:`TargetNet.layers` of the layer itself, or of its residual block.
    role : str
        ``"plain"`` (a top-level layer), ``"branch"`` (inside a residual branch) or ``"skip"``
        (the projection of a residual block).
    position : int
        Position within the branch (0 for plain layers and projections).
    layer : LinearLayer
        The layer.
    """

    index: int
    role: str
    position: int
    layer: LinearLayer

    @property
    def key(self) -> str:
        """The tensor prefix :func:`~ltbounds.nets.io.save_npz` writes: ``3``, ``3.branch.0``, ``3.skip``."""
        if self.role == "plain":
            return str(self.index)
        if self.role == "branch":
            return f"{self.index}.branch.{self.position}"
        return f"{self.index}.skip"

    def label(self) -> str:
        """How messages name the layer: ``layer 3 branch 1 (Conv2d 8→8, kernel 3×3)``."""
        where = {"plain": "", "branch": f" branch {self.position}", "skip": " skip"}[self.role]
        return f"layer {self.index}{where} ({self.layer.describe()})"


@dataclass(frozen=True)
class ResidualSummary:
    """One residual block as the width theorems read it.

    Attributes
    ----------
    first_layer, last_layer : int
        The branch is linear layers ``l = first_layer .. last_layer`` of the main path
        (1-based, as the widths ``n_l``): it maps ``n_{first-1}`` to ``n_last`` channels.
    skip : str
        ``"identity"`` or the projection's kind (``"dense"``, ``"conv1d"``, ``"conv2d"``).
    skip_kernel_size : int
        Kernel entries of the projection (0 for the identity).
    activation_out : bool
        Whether φ follows the sum.
    """

    first_layer: int
    last_layer: int
    skip: str
    skip_kernel_size: int
    activation_out: bool


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
        ``L``, the number of linear layers on the main path.
    residual_blocks : tuple of ResidualSummary
        The residual blocks in order (empty for a plain target). Branch layers are part of
        ``widths``, ``kernel_sizes`` and ``depth``; skip projections are not (they run
        parallel to their branch) and are described here.
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
    residual_blocks: tuple[ResidualSummary, ...] = ()

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
        Dense, convolution, pooling, flatten layers and residual blocks in order; at least
        one linear layer (a residual branch counts).
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
        sites: list[LinearSite] = []
        for index, layer in enumerate(self._layers):
            if isinstance(layer, ResidualBlock):
                sites += [LinearSite(index, "branch", j, b) for j, b in enumerate(layer.branch)]
                if layer.skip is not None:
                    sites.append(LinearSite(index, "skip", 0, layer.skip))
            elif isinstance(layer, LinearLayer):
                sites.append(LinearSite(index, "plain", 0, layer))
        if not sites:
            raise InvalidInput("layers hold no dense or convolution layer; expected at least one")
        self._sites = tuple(sites)
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
        # φ follows a top-level linear layer when any linear layer (plain or in a block)
        # comes after it; blocks apply φ themselves.
        units = [
            i for i, layer in enumerate(self._layers)
            if layer.is_linear or isinstance(layer, ResidualBlock)
        ]  # fmt: skip
        self._activated = frozenset(i for i in units[:-1] if self._layers[i].is_linear)
        for site in self._sites:
            for part, values in site.layer.parameters().items():
                _check_finite(f"{site.label()} {part}", values)
        self._layer_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None
        self._linear_input_bounds: list[tuple[np.ndarray, np.ndarray]] | None = None

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
        """``(index in layers, layer)`` for every dense and convolution layer, in order.

        The layers of a residual block come with the block's index: its branch layers in
        order, then its skip projection (if any). :attr:`linear_sites` says which is which.
        """
        return [(site.index, site.layer) for site in self._sites]

    @property
    def linear_sites(self) -> list[LinearSite]:
        """Every linear layer with its place (plain, branch position, skip), as :attr:`linear_layers`."""
        return list(self._sites)

    @property
    def residual_blocks(self) -> list[tuple[int, ResidualBlock]]:
        """``(index in layers, block)`` for every residual block, in order."""
        return [(i, layer) for i, layer in enumerate(self._layers) if isinstance(layer, ResidualBlock)]

    @property
    def depth(self) -> int:
        """``L``: the number of linear layers on the main path (branch layers count, skips not)."""
        return sum(1 for site in self._sites if site.role != "skip")

    def is_activated(self, index: int) -> bool:
        """True when the target applies φ after layer ``index``.

        That is every top-level linear layer followed (at any distance) by another linear
        layer or a residual block. A residual block applies φ itself (between its branch
        layers and, when ``activation_out``, after the sum), so this is False for it.
        """
        return index in self._activated

    @property
    def num_params(self) -> ParamCount:
        """Nonzero and total entries of all weights and biases (skip projections included)."""
        nonzero = total = 0
        for _, layer in self.linear_layers:
            for values in layer.parameters().values():
                nonzero += int(np.count_nonzero(values))
                total += int(values.size)
        return ParamCount(nonzero, total)

    def lipschitz_inf(self) -> list[float]:
        """``‖W_l‖_{∞→∞}`` of every linear layer, as :attr:`linear_layers` (LEMMAS.md section 4).

        A whole residual block's bound is ``block.lipschitz_inf(target.activation_function)``.
        """
        return [layer.lipschitz_inf() for _, layer in self.linear_layers]

    def shape_summary(self) -> TargetSummary:
        """Widths ``n_0..n_L``, kernel sizes, activation and biases, as the theorems read them.

        Branch layers of residual blocks count as main-path layers; skip projections are
        summarised in ``residual_blocks`` instead (see :class:`TargetSummary`).
        """
        linear = [site.layer for site in self._sites if site.role != "skip"]
        blocks = []
        position = 0
        for layer in self._layers:
            if isinstance(layer, ResidualBlock):
                blocks.append(
                    ResidualSummary(
                        first_layer=position + 1,
                        last_layer=position + len(layer.branch),
                        skip="identity" if layer.skip is None else layer.skip.kind,
                        skip_kernel_size=0 if layer.skip is None else layer.skip.kernel_size,
                        activation_out=layer.activation_out,
                    )
                )
                position += len(layer.branch)
            elif layer.is_linear:
                position += 1
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
            residual_blocks=tuple(blocks),
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
        """The architecture as a sidecar document (no weights; keys as :attr:`LinearSite.key`)."""
        layers = []
        for index, layer in enumerate(self._layers):
            entry = layer.to_config()
            if layer.is_linear:
                entry = _keyed(entry, str(index))
            elif isinstance(layer, ResidualBlock):
                entry["branch"] = [
                    _keyed(part, f"{index}.branch.{j}") for j, part in enumerate(entry["branch"])
                ]
                if entry["skip"] is not None:
                    entry["skip"] = _keyed(entry["skip"], f"{index}.skip")
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
            if layer.takes_activation:
                x = layer.forward(x, self._activation)  # type: ignore[call-arg]
            else:
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
            if layer.takes_activation:
                lower, upper = layer.interval(lower, upper, self._activation)  # type: ignore[call-arg]
            else:
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

    def linear_input_bounds(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Bounds of the value entering every linear layer, as :attr:`linear_layers`.

        On the input domain box, numpy arrays of the layer's input sample shape: the domain
        box for a first layer, else the bounds after the previous layer (after φ and
        pooling). Inside a residual block, branch layer ``j > 0`` sees ``φ`` of the previous
        branch layer's interval, and the first branch layer and the projection see the
        block's input. Computed once and cached.
        """
        if self._linear_input_bounds is None:
            low, high = self._input_domain
            box = (np.full(self._input_shape, low), np.full(self._input_shape, high))
            bounds = self.layer_bounds()
            parts: dict[int, dict[str, Any]] = {}
            out = []
            for site in self._sites:
                before = box if site.index == 0 else bounds[site.index - 1]
                if site.role == "branch" and site.position > 0:
                    if site.index not in parts:
                        block = self._layers[site.index]
                        parts[site.index] = block.interval_parts(  # type: ignore[attr-defined]
                            before[0][None, ...], before[1][None, ...], self._activation
                        )
                    a, b = parts[site.index]["branch_inputs"][site.position]
                    before = (to_numpy(a)[0], to_numpy(b)[0])
                out.append(before)
            self._linear_input_bounds = out
        return self._linear_input_bounds

    def input_norm_bounds(self) -> list[float]:
        """``M_{l-1}``: a bound on ‖input of linear layer l‖_∞ over the domain, for every l.

        One entry per linear layer, as :attr:`linear_layers` (skip projections included: they
        see their block's input). The first entry is ``max(|low|, |high|)`` of the domain;
        the others come from :meth:`linear_input_bounds` (the value entering each linear
        layer, after φ and pooling). These are the ``M`` of the error-propagation bound,
        LEMMAS.md section 4.
        """
        out = []
        for a, b in self.linear_input_bounds():
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


def _keyed(entry: dict[str, Any], key: str) -> dict[str, Any]:
    """A linear layer's config entry with its tensor key placed after its type."""
    entry = dict(entry)
    return {"type": entry.pop("type"), "key": key, **entry}


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


__all__ = ["LinearSite", "ParamCount", "ResidualSummary", "TargetNet", "TargetSummary"]
