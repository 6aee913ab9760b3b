"""Public hypothesis strategies for ltbounds' objects (subset-sum instances, lemma
parameters, networks).

Importing this module imports hypothesis, which is a test dependency: ``import ltbounds``
alone never does. Each strategy documents what it shrinks towards.
"""

from __future__ import annotations

from ltbounds._strategies_nets import (
    conv_target_nets,
    dense_target_nets,
    source_nets,
    target_nets,
)

__all__: list[str] = []
__all__ += ["conv_target_nets", "dense_target_nets", "source_nets", "target_nets"]
