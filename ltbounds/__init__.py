"""ltbounds: strong lottery tickets in convolutional and residual networks, checked.

The public API is re-exported here; see ``docs/`` for a tour.
"""

from ltbounds._version import __version__
from ltbounds.errors import (
    BoundViolation,
    InvalidInput,
    LtboundsError,
    ModelFormatError,
    ResourceLimitError,
)
from ltbounds.verdict import Status, Verdict

__all__ = [
    "BoundViolation",
    "InvalidInput",
    "LtboundsError",
    "ModelFormatError",
    "ResourceLimitError",
    "Status",
    "Verdict",
    "__version__",
]
