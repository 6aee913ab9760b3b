"""The default width factor ρ of a construction, from the subset-sum lemma.

ρ is the least integer with ρ ≥ C·log(1/min(ε', δ/N)) (LEMMAS.md 1.2, usable form of Lueker's
corollary as used by Burkholz et al.), where ε' is the smallest per-parameter tolerance, N the
number of target parameters (union bound over the subset-sum instances, LEMMAS.md 2.6) and C
the constant of the subset-sum lemma for products of uniforms (the harder case, used by the
univariate blocks).
"""

from __future__ import annotations

import math

from ltbounds.nets import TargetNet

#: Empirical subset-sum constant for products of two uniforms, computed from the stored
#: trials of the authors' public code (LEMMAS.md 1.3: n = 15, ε = 0.01 gives Ĉ ≈ 3.26).
#: Lueker's universal C is not numerically known; this value's origin is reported with ρ.
EMPIRICAL_PRODUCT_CONSTANT = 3.26


def default_rho(
    target: TargetNet,
    tolerance: float,
    delta: float,
    *,
    depth: str,
    constant: float = EMPIRICAL_PRODUCT_CONSTANT,
) -> int:
    """Least ρ with ρ ≥ C·log(1/min(tolerance, δ/N)), N = nonzero target parameters.

    ``constant`` is C: construct's default is the code-derived product constant; ``ltbounds
    table --constant fitted`` (or a number) evaluates the same formula with another C.
    """
    problems = max(1, target.num_params.nonzero)
    smallest = min(tolerance, delta / problems)
    return max(1, math.ceil(constant * math.log(1.0 / smallest)))


__all__ = ["EMPIRICAL_PRODUCT_CONSTANT", "default_rho"]
