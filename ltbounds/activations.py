"""Registry of activation functions and the facts the lemmas need about them.

Each :class:`Activation` carries three views of the same function, so that one definition
serves every consumer:

* ``symbolic(x)``: a sympy expression, used by the lemma library to derive and certify
  facts (Taylor remainders, Lipschitz constants) rather than trusting them;
* ``forward(x)``: an array-namespace implementation (numpy, CuPy, array-api-strict) used by
  the networks;
* stated facts (``value_at_zero``, ``slope_at_zero``, ``lipschitz``, ``second_derivative_bound``,
  ``third_derivative_bound``, ``relu_like_negative_slope``): plain numbers that constructions
  and tables use; the lemma library checks each of them against ``symbolic``.

Sources: the ReLU identity and the linear regime at 0 are LEMMAS.md section 3 (A) and (B)
(Burkholz, NeurIPS 2022; Pensia et al. 2020). The numeric facts below are elementary
calculus, stated to a few digits and rounded *outwards* (bounds up, never down).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from ltbounds.backend import namespace
from ltbounds.errors import InvalidInput


class _LazySympy:
    """Stands for the ``sympy`` module and imports it on first attribute access.

    Importing sympy costs about a second; the networks, the constructions and the command line
    need only ``forward`` and the stated facts, so the symbolic views below (and
    :attr:`Activation.expression`) load sympy only when a lemma, a certificate or the docs
    first ask for an expression. ``sp.Max`` etc. then resolve to sympy's own objects.
    """

    def __getattr__(self, name: str) -> Any:
        import sympy  # noqa: PLC0415

        return getattr(sympy, name)


if TYPE_CHECKING:
    import sympy as sp
else:
    sp = _LazySympy()


@cache
def _symbol_x() -> Any:
    """The real symbol ``x`` of :attr:`Activation.expression` (one object, built on first use)."""
    return sp.Symbol("x", real=True)


@dataclass(frozen=True)
class Activation:
    """One activation function and its facts.

    Attributes
    ----------
    name : str
        Registry key, e.g. ``"relu"``.
    symbolic : Callable[[sympy.Expr], sympy.Expr]
        The function as a sympy expression of its argument.
    forward : Callable[[array], array]
        The function on arrays of any supported namespace.
    value_at_zero, slope_at_zero : float
        φ(0) and φ'(0) (for ReLU-like functions the right derivative, 1).
    lipschitz : float
        A global Lipschitz constant of φ (an upper bound).
    second_derivative_bound, third_derivative_bound : float or None
        Upper bounds on sup|φ''| and sup|φ'''| over the real line; None where φ is not twice
        (thrice) differentiable at 0 (ReLU, leaky ReLU, ELU).
    relu_like_negative_slope : float or None
        ``a`` when φ(x) = x for x > 0 and a·x for x ≤ 0 (ReLU: 0, leaky ReLU: its slope), so
        that the exact identity x = (φ(x) − φ(−x)) / (1 + a) holds; None otherwise.
    """

    name: str
    symbolic: Callable[[sp.Expr], sp.Expr]
    forward: Callable[[Any], Any]
    value_at_zero: float
    slope_at_zero: float
    lipschitz: float
    second_derivative_bound: float | None
    third_derivative_bound: float | None
    relu_like_negative_slope: float | None = None

    @property
    def relu_like(self) -> bool:
        """True for ReLU and leaky ReLU: positively homogeneous, linear on each half-line."""
        return self.relu_like_negative_slope is not None

    @property
    def expression(self) -> sp.Expr:
        """φ(x) as a sympy expression in the real symbol ``x``."""
        return self.symbolic(_symbol_x())

    def __call__(self, values: Any) -> Any:
        return self.forward(values)


def _relu(values: Any) -> Any:
    xp = namespace(values)
    return xp.where(values > 0, values, xp.zeros_like(values))


def _leaky_relu(slope: float) -> Callable[[Any], Any]:
    def forward(values: Any) -> Any:
        xp = namespace(values)
        return xp.where(values > 0, values, slope * values)

    return forward


def _tanh(values: Any) -> Any:
    return namespace(values).tanh(values)


def _tanh_symbolic(x: Any) -> Any:
    # A named function (not a lambda): like sympy.tanh before it, it pickles by reference.
    return sp.tanh(x)


def _sigmoid(values: Any) -> Any:
    xp = namespace(values)
    # With e = exp(-|x|) <= 1 nothing overflows, and the negative side e / (1 + e) keeps its
    # relative accuracy where 1 - 1 / (1 + e) would cancel to 0.
    small = xp.exp(-xp.abs(values))
    return xp.where(values >= 0, 1.0 / (1.0 + small), small / (1.0 + small))


def _host_special(name: str, values: Any) -> Any:
    """``scipy.special.<name>`` on the host for namespaces without it, in their array type."""
    import scipy.special  # noqa: PLC0415

    from ltbounds.backend import to_numpy  # noqa: PLC0415

    xp = namespace(values)
    return xp.asarray(getattr(scipy.special, name)(to_numpy(values)), dtype=values.dtype)


def erf(values: Any) -> Any:
    """The error function elementwise, in the namespace of ``values``.

    The array API has no ``erf``: namespaces that lack one (numpy among them) are served on
    the host by :func:`scipy.special.erf` (vectorised, accurate to about one ulp).
    """
    native = getattr(namespace(values), "erf", None)
    return native(values) if native is not None else _host_special("erf", values)


def erfc(values: Any) -> Any:
    """The complementary error function 1 − erf, elementwise, without its cancellation."""
    native = getattr(namespace(values), "erfc", None)
    return native(values) if native is not None else _host_special("erfc", values)


def _gelu(values: Any) -> Any:
    # x * Phi(x) with Phi(x) = erfc(-x / sqrt 2) / 2: accurate for negative x, where
    # 1 + erf(x / sqrt 2) cancels.
    return 0.5 * values * erfc(-values / math.sqrt(2.0))


def _silu(values: Any) -> Any:
    return values * _sigmoid(values)


def _elu(values: Any) -> Any:
    xp = namespace(values)
    negative = xp.exp(xp.minimum(values, xp.zeros_like(values))) - 1.0
    return xp.where(values > 0, values, negative)


def _softplus(values: Any) -> Any:
    xp = namespace(values)
    # log(1 + e^x) = max(x, 0) + log1p(e^{-|x|}), stable for large |x|.
    return xp.maximum(values, xp.zeros_like(values)) + xp.log1p(xp.exp(-xp.abs(values)))


_LEAKY_SLOPE = 0.01

ACTIVATIONS: dict[str, Activation] = {
    activation.name: activation
    for activation in (
        Activation(
            "relu",
            lambda x: sp.Max(x, 0),
            _relu,
            value_at_zero=0.0,
            slope_at_zero=1.0,
            lipschitz=1.0,
            second_derivative_bound=None,
            third_derivative_bound=None,
            relu_like_negative_slope=0.0,
        ),
        Activation(
            "leaky_relu",
            lambda x: sp.Max(x, 0) + sp.Rational(1, 100) * sp.Min(x, 0),
            _leaky_relu(_LEAKY_SLOPE),
            value_at_zero=0.0,
            slope_at_zero=1.0,
            lipschitz=1.0,
            second_derivative_bound=None,
            third_derivative_bound=None,
            relu_like_negative_slope=_LEAKY_SLOPE,
        ),
        # tanh: |tanh''| = 2|tanh|(1 - tanh^2) <= 4/(3*sqrt(3)) ~ 0.7698; |tanh'''| <= 2.
        Activation(
            "tanh",
            _tanh_symbolic,
            _tanh,
            value_at_zero=0.0,
            slope_at_zero=1.0,
            lipschitz=1.0,
            second_derivative_bound=0.7699,
            third_derivative_bound=2.0,
        ),
        # sigmoid: sigma' <= 1/4, |sigma''| <= 1/(6*sqrt(3)) ~ 0.09623, |sigma'''| <= 1/8.
        Activation(
            "sigmoid",
            lambda x: 1 / (1 + sp.exp(-x)),
            _sigmoid,
            value_at_zero=0.5,
            slope_at_zero=0.25,
            lipschitz=0.25,
            second_derivative_bound=0.09623,
            third_derivative_bound=0.125,
        ),
        # GELU: x*Phi(x); GELU' in [-0.129, 1.129]; |GELU''| <= 2*phi(0) ~ 0.79789; |GELU'''| <= 0.77877.
        Activation(
            "gelu",
            lambda x: x * (1 + sp.erf(x / sp.sqrt(2))) / 2,
            _gelu,
            value_at_zero=0.0,
            slope_at_zero=0.5,
            lipschitz=1.13,
            second_derivative_bound=0.7979,
            third_derivative_bound=0.7788,
        ),
        # SiLU: x*sigma(x); SiLU' in [-0.0999, 1.0999]; |SiLU''| <= 0.5 (at 0); |SiLU'''| <= 0.30819.
        Activation(
            "silu",
            lambda x: x / (1 + sp.exp(-x)),
            _silu,
            value_at_zero=0.0,
            slope_at_zero=0.5,
            lipschitz=1.1,
            second_derivative_bound=0.5,
            third_derivative_bound=0.3082,
        ),
        # ELU (alpha = 1): C^1 but not C^2 at 0; 1-Lipschitz.
        Activation(
            "elu",
            lambda x: sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)),
            _elu,
            value_at_zero=0.0,
            slope_at_zero=1.0,
            lipschitz=1.0,
            second_derivative_bound=None,
            third_derivative_bound=None,
        ),
        # softplus: sigma is its derivative, so softplus' <= 1, |softplus''| <= 1/4, |softplus'''| <= 0.0963.
        Activation(
            "softplus",
            lambda x: sp.log(1 + sp.exp(x)),
            _softplus,
            value_at_zero=math.log(2.0),
            slope_at_zero=0.5,
            lipschitz=1.0,
            second_derivative_bound=0.25,
            third_derivative_bound=0.09623,
        ),
    )
}


def get_activation(name: str) -> Activation:
    """Look an activation up by name, with a clear error listing the known ones."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        raise InvalidInput(
            f"activation={name!r} is not known; expected one of {', '.join(sorted(ACTIVATIONS))}"
        ) from None


__all__ = ["ACTIVATIONS", "Activation", "erf", "erfc", "get_activation"]
