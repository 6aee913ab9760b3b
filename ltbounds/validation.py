"""Argument checks shared by the Python API and the CLI.

All checks live here so that every refusal reads the same way: the message names the
parameter, quotes the bad value and says what was expected, e.g. ``eps=-0.1 must be > 0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ltbounds.errors import InvalidInput, ResourceLimitError


def _is_real_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a finite float or raise :class:`InvalidInput`."""
    if not _is_real_number(value):
        raise InvalidInput(f"{name}={value!r} must be a real number")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidInput(f"{name}={value!r} must be finite")
    return value


def check_positive(name: str, value: Any) -> float:
    """A finite real number > 0 (for example ``eps``)."""
    value = check_real(name, value)
    if value <= 0:
        raise InvalidInput(f"{name}={value!r} must be > 0")
    return value


def check_open_unit(name: str, value: Any) -> float:
    """A probability strictly between 0 and 1 (for example ``delta``)."""
    value = check_real(name, value)
    if not 0 < value < 1:
        raise InvalidInput(f"{name}={value!r} must be in the open interval (0, 1)")
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer within ``[minimum, maximum]`` (either end optional)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(f"{name}={value!r} must be an integer")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InvalidInput(f"{name}={value!r} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidInput(f"{name}={value!r} must be <= {maximum}")
    return value


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """One of a fixed set of names."""
    if value not in choices:
        raise InvalidInput(f"{name}={value!r} must be one of {', '.join(map(repr, choices))}")
    return value


def check_finite_array(name: str, array: Any) -> None:
    """Refuse arrays holding NaN or infinity, naming the first bad position."""
    values = np.asarray(array)
    if not np.issubdtype(values.dtype, np.number):
        raise InvalidInput(f"{name} has dtype {values.dtype}; expected a real numeric array")
    finite = np.isfinite(values)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidInput(
            f"{name} holds {values[position]!r} at index {position}; expected finite values"
        )


def check_interval(name: str, low: Any, high: Any) -> tuple[float, float]:
    """A non-empty interval ``low < high`` of finite reals."""
    low = check_real(f"{name}[0]", low)
    high = check_real(f"{name}[1]", high)
    if not low < high:
        raise InvalidInput(f"{name}=({low!r}, {high!r}) must satisfy low < high")
    return low, high


def check_memory(what: str, nbytes: float, budget: float) -> None:
    """Refuse work whose estimated memory exceeds ``budget`` bytes, stating both."""
    if nbytes > budget:
        raise ResourceLimitError(
            f"{what} needs about {nbytes / 2**20:,.1f} MiB, over the budget of "
            f"{budget / 2**20:,.1f} MiB; raise the budget or shrink the problem"
        )


def check_nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0 (for example a tolerance that may be exactly zero)."""
    value = check_real(name, value)
    if value < 0:
        raise InvalidInput(f"{name}={value!r} must be >= 0")
    return value


def check_real_array(name: str, array: Any, xp: Any) -> Any:
    """``array`` as a float64 array of namespace ``xp``, refusing non-real dtypes, NaN and inf.

    Works for any array-API namespace (numpy, CuPy, array-api-strict); the data leave the
    device only when a bad value has to be located for the message.
    """
    try:
        values = xp.asarray(array)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{name} cannot be read as a numeric array ({exc})") from None
    try:
        real = xp.isdtype(values.dtype, "real floating") or xp.isdtype(values.dtype, "integral")
    except (TypeError, ValueError):
        real = False
    if not real:
        raise InvalidInput(f"{name} has dtype {values.dtype}; expected real numbers")
    values = xp.astype(values, xp.float64)
    if values.size and not bool(xp.all(xp.isfinite(values))):
        from ltbounds.backend import to_numpy  # noqa: PLC0415  (only on the error path)

        check_finite_array(name, to_numpy(values))
    return values
