"""Public hypothesis strategies for ltbounds' objects (subset-sum instances, lemma
parameters, networks).

Importing this module imports hypothesis, which is a test dependency: ``import ltbounds``
alone never does. Each strategy documents what it shrinks towards.
"""

from __future__ import annotations

from ltbounds import _strategies_lemmas, _strategies_nets, _strategies_subsetsum
from ltbounds._strategies_lemmas import *  # noqa: F403
from ltbounds._strategies_nets import *  # noqa: F403
from ltbounds._strategies_subsetsum import *  # noqa: F403

# Each private module's ``__all__`` is the list of what it makes public; adding a strategy
# there is all it takes to export it here.
__all__: list[str] = [
    *_strategies_lemmas.__all__,
    *_strategies_nets.__all__,
    *_strategies_subsetsum.__all__,
]
