"""Interval images of activation functions: ``[min φ, max φ]`` over ``[lower, upper]``.

Monotone activations map ``[l, u]`` to ``[φ(l), φ(u)]``. GELU and SiLU decrease up to one
minimiser ``x*`` and increase after it, so their minimum on ``[l, u]`` is ``φ(x*)`` when
``x*`` lies inside and ``min(φ(l), φ(u))`` otherwise; their maximum is ``max(φ(l), φ(u))``.
The minima were computed with mpmath at 40 digits and rounded down:

* GELU: ``x* = -0.75179152469356…``, ``φ(x*) = -0.16997120747990366…``;
* SiLU: ``x* = -1.27846454276107…``, ``φ(x*) = -0.27846454276107379…`` (``= x* + 1``).

Float64 throughout; outward rounding is the certify step's business.
"""

from __future__ import annotations

from typing import Any

from ltbounds.activations import Activation
from ltbounds.backend import namespace
from ltbounds.errors import InvalidInput

MONOTONE = frozenset({"relu", "leaky_relu", "tanh", "sigmoid", "elu", "softplus"})
#: name -> (minimiser, minimum rounded down)
QUASICONVEX: dict[str, tuple[float, float]] = {
    "gelu": (-0.7517915246935645, -0.1699712074799037),
    "silu": (-1.278464542761074, -0.27846454276107384),
}


def activation_interval(activation: Activation, lower: Any, upper: Any) -> tuple[Any, Any]:
    """Elementwise bounds of ``activation`` on the boxes ``[lower, upper]``."""
    phi = activation.forward
    if activation.name in MONOTONE:
        return phi(lower), phi(upper)
    if activation.name in QUASICONVEX:
        xp = namespace(lower, upper)
        minimiser, minimum = QUASICONVEX[activation.name]
        at_lower, at_upper = phi(lower), phi(upper)
        inside = (lower <= minimiser) & (upper >= minimiser)
        low = xp.where(inside, xp.full_like(at_lower, minimum), xp.minimum(at_lower, at_upper))
        return low, xp.maximum(at_lower, at_upper)
    raise InvalidInput(
        f"activation={activation.name!r} has no interval rule; known: "
        f"{', '.join(sorted(MONOTONE | set(QUASICONVEX)))}"
    )
