"""Argument checks shared by the Python API and the CLI.

All checks live here so that every refusal reads the same way: the message names the
parameter, quotes the bad value and says what was expected, e.g. ``eps=-0.1 must be > 0``.
"""

from __future__ import annotations

import math
import re
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
    try:
        value = float(value)
    except OverflowError:  # an integer beyond the float range, e.g. 10**400 from a JSON file
        bits = int(value).bit_length()
        raise InvalidInput(f"{name} is an integer of {bits:,} bits; expected a finite real number") from None
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
    """Refuse work whose estimated memory exceeds ``budget`` bytes, stating both.

    ``nbytes`` may be an integer beyond the float range (a hostile file's declared shapes).
    """
    if nbytes > budget:
        try:
            amount = f"about {nbytes / 2**20:,.1f} MiB"
        except OverflowError:
            amount = "more than 10^300 MiB"
        raise ResourceLimitError(
            f"{what} needs {amount}, over the budget of "
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


#: Memory budget (bytes) for work refused up front (constructions, sampling, branch and
#: bound) when ``LTBOUNDS_MEMORY_BUDGET`` is not set.
DEFAULT_MEMORY_BUDGET = 8 * 2**30
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def memory_budget() -> float:
    """The memory budget in bytes: ``LTBOUNDS_MEMORY_BUDGET`` (``8G``, ``512M``, bytes) or 8 GiB.

    Read at every call, so a user (or a test) can shrink or raise it without code changes.
    """
    import os  # noqa: PLC0415

    text = os.environ.get("LTBOUNDS_MEMORY_BUDGET", "").strip()
    if not text:
        return float(DEFAULT_MEMORY_BUDGET)
    match = re.fullmatch(r"([0-9.eE+]+)\s*([kKmMgGtT]?)[iI]?[bB]?", text)
    try:
        value = float(match.group(1)) * _UNITS[match.group(2).lower()] if match else math.nan
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise InvalidInput(
            f"LTBOUNDS_MEMORY_BUDGET={text!r} must be a positive size such as 8G, 512M or 1000000"
        )
    return value


def check_output_path(name: str, path: Any) -> Any:
    """An output file path that can be written: not a directory, no file where its folder goes.

    Checked before any work starts, so a bad ``-o`` never costs a long computation.
    """
    from pathlib import Path  # noqa: PLC0415

    where = Path(path)
    if where.is_dir():
        raise InvalidInput(f"{name}={str(where)!r} is a directory; expected a file path")
    for parent in where.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InvalidInput(
                    f"{name}={str(where)!r} cannot be written: {str(parent)!r} is a file, not a folder"
                )
            break
    if where.name in ("", ".", ".."):
        raise InvalidInput(f"{name}={str(where)!r} names no file")
    return where


#: Bytes of memory per sampled input entry (the inputs, their counter-based draws and the
#: forward passes; measured about 34 on numpy, rounded up).
SAMPLE_BYTES_PER_ENTRY = 48


def check_samples(name: str, samples: Any, input_shape: Sequence[int], *, minimum: int = 1) -> int:
    """A count of sampled inputs of ``input_shape``, refused up front when it would not fit in memory."""
    samples = check_int(name, samples, minimum=minimum)
    entries = math.prod(int(s) for s in input_shape)
    check_memory(
        f"sampling {name}={samples:,} inputs of shape {tuple(input_shape)}",
        float(samples) * entries * SAMPLE_BYTES_PER_ENTRY,
        memory_budget(),
    )
    return samples
