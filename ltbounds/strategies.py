"""Public hypothesis strategies for ltbounds' objects (subset-sum instances, lemma
parameters, networks).

Importing this module imports hypothesis, which is a test dependency: ``import ltbounds``
alone never does. Each strategy documents what it shrinks towards.
"""

from __future__ import annotations

from ltbounds._strategies_lemmas import (
    activation_names,
    bad_delta_values,
    bad_eps_values,
    bad_widths,
    delta_values,
    eps_values,
    layer_facts,
    layer_widths,
    target_shapes,
)
from ltbounds._strategies_nets import (
    conv_target_nets,
    dense_target_nets,
    residual_target_nets,
    source_nets,
    target_nets,
)
from ltbounds._strategies_subsetsum import candidate_sets, subset_sum_instances

__all__: list[str] = []
__all__ += [
    "conv_target_nets",
    "dense_target_nets",
    "residual_target_nets",
    "source_nets",
    "target_nets",
]
__all__ += [
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
__all__ += ["candidate_sets", "subset_sum_instances"]
