"""The symbolic lemma library: stated results as sympy objects, with machine-checked verdicts.

One module per family (LEMMAS.md):

* :mod:`ltbounds.lemmas.subsetsum`: Lueker's corollary, the usable width form, products of
  uniforms, the code-derived constants;
* :mod:`ltbounds.lemmas.activation`: the ReLU identity, the linear regime at 0 with a
  certified Taylor remainder, the symmetric difference, and every stated activation fact;
* :mod:`ltbounds.lemmas.composition`: per-parameter errors to output error (dense and
  convolutional layers), propagation through depth, residual blocks, the allotment of ε;
* :mod:`ltbounds.lemmas.widths`: the width theorems of Malach, Pensia, Orseau, da Cunha and
  Burkholz (2L and L+1) composed from those lemmas.

:mod:`ltbounds.lemmas.proofs` loads the proof files under ``proofs/`` and runs them.
Importing this package loads sympy and python-flint; ``import ltbounds`` alone does not.
"""

from ltbounds.lemmas.base import Evaluation, Lemma, Parameter, Source, SourceStatus
from ltbounds.lemmas.composition import (
    LayerFacts,
    allot_eps,
    layer_step,
    output_error_bound,
    residual_error_bound,
)
from ltbounds.lemmas.registry import documented_lemmas, entries, get_lemma, lemma_names
from ltbounds.lemmas.subsetsum import (
    CODE_DERIVED_PRODUCT,
    CODE_DERIVED_UNIFORM,
    SubsetSumConstant,
    code_derived_constant,
    least_width,
)
from ltbounds.lemmas.widths import (
    THEOREMS,
    TargetShape,
    WidthRequirement,
    WidthTheorem,
    get_theorem,
)

__all__ = [
    "CODE_DERIVED_PRODUCT",
    "CODE_DERIVED_UNIFORM",
    "THEOREMS",
    "Evaluation",
    "LayerFacts",
    "Lemma",
    "Parameter",
    "Source",
    "SourceStatus",
    "SubsetSumConstant",
    "TargetShape",
    "WidthRequirement",
    "WidthTheorem",
    "allot_eps",
    "code_derived_constant",
    "documented_lemmas",
    "entries",
    "get_lemma",
    "get_theorem",
    "layer_step",
    "lemma_names",
    "least_width",
    "output_error_bound",
    "residual_error_bound",
]
