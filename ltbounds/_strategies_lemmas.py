"""Hypothesis strategies for lemma parameters (re-exported by :mod:`ltbounds.strategies`).

Admissible values for the lemma library (ε, δ, widths, activations, layer facts, target
shapes) and, for the refusal tests, inadmissible ones. Each strategy says what it shrinks
towards. Importing this module imports hypothesis (a test dependency).
"""

from __future__ import annotations

import math

from hypothesis import strategies as st

from ltbounds.activations import ACTIVATIONS


def eps_values(min_value: float = 1e-8, max_value: float = 0.5) -> st.SearchStrategy[float]:
    """Approximation errors ε in ``[min_value, max_value]``, log-uniform-ish; shrinks towards
    ``max_value`` (the mildest requirement)."""
    low, high = math.log10(min_value), math.log10(max_value)
    return st.floats(min_value=0.0, max_value=1.0).map(lambda t: float(10 ** (high - t * (high - low))))


def delta_values(min_value: float = 1e-8, max_value: float = 0.5) -> st.SearchStrategy[float]:
    """Failure probabilities δ in ``[min_value, max_value]`` (inside (0, 1)); shrinks towards
    ``max_value``."""
    return eps_values(min_value, max_value)


def layer_widths(max_value: int = 512) -> st.SearchStrategy[int]:
    """Layer widths ``1..max_value``; shrinks towards 1."""
    return st.integers(min_value=1, max_value=max_value)


def activation_names(
    *, relu_like: bool | None = None, smooth: bool | None = None
) -> st.SearchStrategy[str]:
    """Registered activation names, optionally only ReLU-like ones or only smooth ones
    (those that state a bound on φ''); shrinks towards the first registered (``relu``)."""
    names = [
        name
        for name, activation in ACTIVATIONS.items()
        if (relu_like is None or activation.relu_like == relu_like)
        and (smooth is None or (activation.second_derivative_bound is not None) == smooth)
    ]
    return st.sampled_from(names)


def layer_facts(max_fan_in: int = 4096) -> st.SearchStrategy:
    """:class:`~ltbounds.lemmas.composition.LayerFacts` with fan-in ``1..max_fan_in``, norms
    and bounds in ``[0, 8]``, Lipschitz constants in ``[0, 2]``; shrinks towards a fan-in 1 layer
    with zero norm and bounds."""
    from ltbounds.lemmas.composition import LayerFacts  # noqa: PLC0415

    finite = {"allow_nan": False, "allow_infinity": False}
    return st.builds(
        LayerFacts,
        fan_in=st.integers(min_value=1, max_value=max_fan_in),
        weight_norm=st.floats(min_value=0.0, max_value=8.0, **finite),
        lipschitz=st.floats(min_value=0.0, max_value=2.0, **finite),
        input_bound=st.floats(min_value=0.0, max_value=8.0, **finite),
        has_bias=st.booleans(),
    )


@st.composite
def target_shapes(draw, max_depth: int = 4, max_width: int = 64, conv: bool | None = None, residual: bool = False):
    """:class:`~ltbounds.lemmas.widths.TargetShape` values: depth ``1..max_depth``, widths
    ``1..max_width``, kernel sizes 1 (dense) or 1..25 (``conv=True``; ``None`` draws either),
    any registered activation, with or without biases; with ``residual=True`` one residual
    block over equal widths when the depth allows. Shrinks towards a depth-1 dense ReLU
    target of width 1."""
    from ltbounds.lemmas.widths import TargetShape  # noqa: PLC0415

    depth = draw(st.integers(min_value=1, max_value=max_depth))
    widths = [draw(st.integers(min_value=1, max_value=max_width)) for _ in range(depth + 1)]
    is_conv = draw(st.booleans()) if conv is None else conv
    kernels = [draw(st.integers(min_value=1, max_value=25)) if is_conv else 1 for _ in range(depth)]
    blocks: tuple[tuple[int, int], ...] = ()
    if residual and depth >= 2:
        first = draw(st.integers(min_value=2, max_value=depth))
        last = draw(st.integers(min_value=first, max_value=depth))
        widths[last] = widths[first - 1]
        blocks = ((first, last),)
    return TargetShape(
        widths=tuple(widths),
        kernel_sizes=tuple(kernels),
        activation=draw(activation_names()),
        has_bias=draw(st.booleans()),
        residual_blocks=blocks,
    )


def bad_eps_values() -> st.SearchStrategy:
    """Inadmissible ε: zero, negative, NaN, infinite, or not a number at all."""
    return st.one_of(
        st.just(0.0),
        st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
        st.just(math.nan),
        st.just(math.inf),
        st.just(-math.inf),
        st.text(max_size=3),
        st.none(),
        st.booleans(),
    )


def bad_delta_values() -> st.SearchStrategy:
    """Inadmissible δ: outside the open interval (0, 1), NaN, infinite, or not a number."""
    return st.one_of(
        st.just(0.0),
        st.just(1.0),
        st.floats(min_value=1.0, allow_nan=False, allow_infinity=False),
        st.floats(max_value=0.0, allow_nan=False, allow_infinity=False),
        st.just(math.nan),
        st.text(max_size=3),
        st.none(),
    )


def bad_widths() -> st.SearchStrategy:
    """Inadmissible widths: zero, negative, any float (even 3.0), booleans, strings."""
    return st.one_of(
        st.integers(max_value=0),
        st.floats(allow_nan=True),
        st.booleans(),
        st.text(max_size=3),
    )


__all__ = [
    "activation_names",
    "bad_delta_values",
    "bad_eps_values",
    "bad_widths",
    "delta_values",
    "eps_values",
    "layer_facts",
    "layer_widths",
    "target_shapes",
]
