"""Error hierarchy: one root, builtin-compatible subclasses, CLI exit codes."""

from __future__ import annotations

import pytest

from ltbounds.errors import (
    BoundViolation,
    InvalidInput,
    LtboundsError,
    ModelFormatError,
    ResourceLimitError,
)


@pytest.mark.parametrize(
    ("error", "builtin", "code"),
    [
        (InvalidInput, ValueError, 1),
        (ModelFormatError, ValueError, 1),
        (ResourceLimitError, MemoryError, 1),
        (BoundViolation, ArithmeticError, 3),
    ],
)
def test_subclasses_share_the_root_and_their_builtin(error, builtin, code) -> None:
    assert issubclass(error, LtboundsError)
    assert issubclass(error, builtin)
    assert error.exit_code == code
    with pytest.raises(LtboundsError, match="why"):
        raise error("why")
