"""Public hypothesis strategies for ltbounds' objects (subset-sum instances, lemma
parameters, networks).

Importing this module imports hypothesis, which is a test dependency: ``import ltbounds``
alone never does. Each strategy documents what it shrinks towards.
"""

from __future__ import annotations

__all__: list[str] = []
