"""Exceptions raised by ltbounds.

Every refusal the tool makes is an :class:`LtboundsError`. User-facing subclasses also
inherit the builtin they resemble (after Hypothesis' ``InvalidArgument(..., TypeError)``),
so ``except ValueError`` keeps working for callers who don't know our hierarchy. The CLI
prints any of them as one line and exits with :attr:`LtboundsError.exit_code`; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class LtboundsError(Exception):
    """Root of every error ltbounds raises on purpose."""

    exit_code: int = 1


class InvalidInput(LtboundsError, ValueError):
    """An argument or option is outside its documented range (``eps=-0.1 must be > 0``)."""


class ModelFormatError(LtboundsError, ValueError):
    """A model, ticket or proof file cannot be read: malformed, hostile or unsupported."""


class ResourceLimitError(LtboundsError, MemoryError):
    """The requested work would exceed a memory, size or time budget; the message gives the estimate."""


class BoundViolation(LtboundsError, ArithmeticError):
    """A stated bound was observed to fail (for example sampled error > certified bound)."""

    exit_code = 3


__all__ = [
    "BoundViolation",
    "InvalidInput",
    "LtboundsError",
    "ModelFormatError",
    "ResourceLimitError",
]
