"""Residual blocks: ``y = φ_out(skip(x) + branch(x))``, the ResNet pattern.

Burkholz (ICML 2022, "Convolutional and Residual Networks Provably Contain Lottery Tickets")
approximates residual targets by sources with skip connections at the same positions: each
branch is a feed-forward segment pruned like a plain network, and the skip path is copied
(identity) or approximated like any other linear layer (projection). This module holds the
target side of that picture.

A block is one unit of a :class:`~ltbounds.nets.target.TargetNet`:

* ``branch`` is a stack of linear layers (dense or convolution) ``W_1 .. W_k``; φ is applied
  after every branch layer **except the last** (``h_j = φ(W_j h_{j-1} + b_j)`` for ``j < k``,
  ``g(x) = W_k h_{k-1} + b_k``);
* ``skip`` is the identity (``None``) or one linear layer ``P`` — typically a 1×1 convolution
  with stride 2 where the branch downsamples (ResNet-18/-20) — with ``s(x) = P x (+ b)``;
* the block returns ``φ(s(x) + g(x))`` when ``activation_out`` (the post-activation ResNet of
  He et al. 2016, as in ResNet-18/-20), else ``s(x) + g(x)``.

Batch normalisation is folded into the convolution before it when a file is loaded
(:func:`ltbounds.nets.io.fold_batchnorm`), so blocks hold plain linear layers only.

φ is the enclosing target's activation, so the block's hooks take it as an extra argument:
``forward(x, activation)``, ``interval(lower, upper, activation)`` and
``lipschitz_inf(activation)`` (an :class:`~ltbounds.activations.Activation` or its registry
name). The class attribute ``takes_activation = True`` tells
:class:`~ltbounds.nets.target.TargetNet` to pass it; plain layers keep their one-argument
hooks. Pre-activation blocks (φ at the start of the branch) are not represented: their batch
normalisation cannot be folded into a preceding convolution, and implementations differ in
whether the projection sees ``x`` or ``φ(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ltbounds.activations import Activation, get_activation
from ltbounds.errors import InvalidInput
from ltbounds.nets._activation_bounds import activation_interval
from ltbounds.nets._base import Layer, LinearLayer, format_shape


def as_activation(activation: Activation | str) -> Activation:
    """``activation`` itself, or the registered activation of that name."""
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        return get_activation(activation)
    raise InvalidInput(
        f"activation={activation!r} must be an Activation or a registered activation name"
    )


@dataclass(frozen=True, eq=False)
class ResidualBlock(Layer):
    """A residual block ``y = φ_out(skip(x) + branch(x))`` (Burkholz, ICML 2022).

    Parameters
    ----------
    branch : sequence of LinearLayer
        Dense or convolution layers, at least one; φ follows every one but the last.
    skip : Dense, Conv1d or Conv2d, optional
        The projection on the skip path; ``None`` (default) for the identity.
    activation_out : bool
        Apply φ after the sum (default True, the post-activation ResNet block).

    Notes
    -----
    ``is_linear`` is False: the block is one unit of the target, and φ inside it comes from
    the target. Its linear layers (branch, then the projection) are :attr:`linear_layers`.
    Interval propagation adds the branch and skip intervals; both depend on the same ``x``,
    so the sum is sound but not tight.
    """

    branch: tuple[LinearLayer, ...]
    skip: LinearLayer | None = None
    activation_out: bool = True

    kind: ClassVar[str] = "residual"
    takes_activation: ClassVar[bool] = True

    def __post_init__(self) -> None:
        branch = self.branch
        if isinstance(branch, LinearLayer) or not isinstance(branch, Sequence):
            raise InvalidInput(
                f"ResidualBlock branch={branch!r} must be a sequence of dense or convolution layers"
            )
        branch = tuple(branch)
        if not branch:
            raise InvalidInput("ResidualBlock branch=() must hold at least one linear layer")
        for position, layer in enumerate(branch):
            if not isinstance(layer, LinearLayer):
                raise InvalidInput(
                    f"ResidualBlock branch layer {position} is {type(layer).__name__}; expected a "
                    "dense or convolution layer (blocks do not nest; pooling goes outside)"
                )
        object.__setattr__(self, "branch", branch)
        if self.skip is not None and not isinstance(self.skip, LinearLayer):
            raise InvalidInput(
                f"ResidualBlock skip is {type(self.skip).__name__}; expected None (identity) or a "
                "dense or convolution layer"
            )
        if not isinstance(self.activation_out, bool):
            raise InvalidInput(
                f"ResidualBlock activation_out={self.activation_out!r} must be True or False"
            )

    # -- structure -------------------------------------------------------------------------
    @property
    def linear_layers(self) -> tuple[LinearLayer, ...]:
        """The branch layers in order, then the projection (when the skip is not the identity)."""
        return self.branch + (() if self.skip is None else (self.skip,))

    @property
    def depth(self) -> int:
        """``k``: the number of branch layers (the skip is parallel to them)."""
        return len(self.branch)

    @property
    def has_projection(self) -> bool:
        """True when the skip path is a linear layer rather than the identity."""
        return self.skip is not None

    def describe(self) -> str:
        inner = " → ".join(layer.describe() for layer in self.branch)
        skip = "identity" if self.skip is None else self.skip.describe()
        out = "φ(skip + branch)" if self.activation_out else "skip + branch"
        return f"ResidualBlock {out} [branch: {inner}; skip: {skip}]"

    def where(self, index: int | None) -> str:
        prefix = "layer" if index is None else f"layer {index}"
        return f"{prefix} (residual block)"

    def output_shape(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[int, ...]:
        shape = tuple(int(s) for s in input_shape)
        shapes = self.branch_shapes(shape, index=index)
        branch_out = shapes[-1]
        if self.skip is None:
            skip_out = shape
        else:
            try:
                skip_out = self.skip.output_shape(shape)
            except InvalidInput as exc:
                raise InvalidInput(f"{self.where(index)}, skip: {exc}") from None
        if skip_out != branch_out:
            what = "identity skip keeps" if self.skip is None else "skip projection gives"
            raise InvalidInput(
                f"{self.where(index)}: branch output {format_shape(branch_out)} and skip output "
                f"{format_shape(skip_out)} differ (the {what} {format_shape(skip_out)} for input "
                f"{format_shape(shape)}); expected equal shapes"
                + (
                    "; use a projection skip (e.g. a 1×1 convolution with the branch's stride)"
                    if self.skip is None
                    else ""
                )
            )
        return branch_out

    def branch_shapes(
        self, input_shape: Sequence[int], *, index: int | None = None
    ) -> tuple[tuple[int, ...], ...]:
        """Sample shapes: the block input, then after every branch layer."""
        shapes = [tuple(int(s) for s in input_shape)]
        for position, layer in enumerate(self.branch):
            try:
                shapes.append(layer.output_shape(shapes[-1], index=position))
            except InvalidInput as exc:
                raise InvalidInput(f"{self.where(index)}, branch: {exc}") from None
        return tuple(shapes)

    # -- evaluation ------------------------------------------------------------------------
    def branch_forward(self, x: Any, activation: Activation | str) -> Any:
        """``g(x)``: the branch alone (φ between its layers, none after the last)."""
        phi = as_activation(activation)
        last = len(self.branch) - 1
        for position, layer in enumerate(self.branch):
            x = layer.forward(x)
            if position < last:
                x = phi.forward(x)
        return x

    def skip_forward(self, x: Any) -> Any:
        """``s(x)``: ``x`` itself or the projection."""
        return x if self.skip is None else self.skip.forward(x)

    def forward(self, x: Any, activation: Activation | str) -> Any:  # type: ignore[override]
        """``φ_out(s(x) + g(x))`` on a batch, in the array namespace of ``x``."""
        phi = as_activation(activation)
        total = self.skip_forward(x) + self.branch_forward(x, phi)
        return phi.forward(total) if self.activation_out else total

    def interval_parts(
        self, lower: Any, upper: Any, activation: Activation | str
    ) -> dict[str, Any]:
        """Interval bounds inside the block, for the construction's bookkeeping.

        Returns a dict with ``"branch_inputs"`` (bounds of the value entering each branch
        layer: the block input, then ``φ(h_j)``), ``"branch"`` (of ``g(x)``), ``"skip"`` (of
        ``s(x)``), ``"sum"`` (of ``s(x) + g(x)``, the plain sum of the two intervals) and
        ``"output"`` (after φ_out where applied); each a ``(lower, upper)`` pair.
        """
        phi = as_activation(activation)
        inputs = [(lower, upper)]
        low, high = lower, upper
        last = len(self.branch) - 1
        for position, layer in enumerate(self.branch):
            low, high = layer.interval(low, high)
            if position < last:
                low, high = activation_interval(phi, low, high)
                inputs.append((low, high))
        skip = (lower, upper) if self.skip is None else self.skip.interval(lower, upper)
        total = (skip[0] + low, skip[1] + high)
        output = activation_interval(phi, *total) if self.activation_out else total
        return {
            "branch_inputs": inputs,
            "branch": (low, high),
            "skip": skip,
            "sum": total,
            "output": output,
        }

    def interval(  # type: ignore[override]
        self, lower: Any, upper: Any, activation: Activation | str
    ) -> tuple[Any, Any]:
        """Sound elementwise output bounds: branch interval + skip interval, then φ_out.

        Branch and skip see the same ``x``, so adding their intervals ignores the correlation:
        sound, and loose by at most the spread of the two intervals.
        """
        return self.interval_parts(lower, upper, activation)["output"]

    def lipschitz_inf(self, activation: Activation | str) -> float:  # type: ignore[override]
        """``‖s‖ + λ^(k-1)·Π_j ‖W_j‖``: a bound on the ∞→∞ Lipschitz constant of ``s + g``.

        ``‖s‖ = 1`` for the identity and ``‖P‖_{∞→∞}`` for a projection; ``‖W_j‖_{∞→∞}`` per
        branch layer and ``λ`` the Lipschitz constant of φ, applied ``k - 1`` times inside the
        branch (LEMMAS.md section 4: the residual step ``e_out ≤ e_in (1 + Lip(g)) + e_g``).
        As for plain layers, the φ after the block (``activation_out``) is not included.
        """
        phi = as_activation(activation)
        branch = math.prod(layer.lipschitz_inf() for layer in self.branch)
        branch *= phi.lipschitz ** (len(self.branch) - 1)
        skip = 1.0 if self.skip is None else self.skip.lipschitz_inf()
        return float(skip + branch)

    def to_config(self) -> dict[str, Any]:
        return {
            "type": "residual",
            "branch": [layer.to_config() for layer in self.branch],
            "skip": None if self.skip is None else self.skip.to_config(),
            "activation_out": self.activation_out,
        }


__all__ = ["ResidualBlock", "as_activation"]
