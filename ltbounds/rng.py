"""Counter-based random numbers: ``uniform(seed, stream, index)``, the same bits everywhere.

A source network never stores its weights (DESIGN.md): entry ``index`` of stream ``stream``
is a pure function of ``(seed, stream, index)``, so any slice can be regenerated, in any
order, on any backend. The function is Philox-4x32-10 (Salmon, Moraes, Dror and Shaw,
*Parallel random numbers: as easy as 1, 2, 3*, SC 2011; the Random123 library), after numpy's
``random`` design where Philox streams are *addressed* by key rather than sequenced.

Layout of one draw
------------------
* key (two 32-bit words) = the 64-bit ``seed``: ``(seed mod 2**32, seed // 2**32)``;
* counter (four 32-bit words) = ``(index mod 2**32, index // 2**32, stream mod 2**32,
  stream // 2**32)``;
* the first two output words ``o0, o1`` give a float64 with 53 random bits,
  ``((o0 >> 5) * 2**26 + (o1 >> 6)) / 2**53`` in ``[0, 1)`` (the ``genrand_res53``
  combination), so every value is a multiple of ``2**-53``.

Portability
-----------
The rounds are written with integer array operations of the array namespace of ``index``
only, on ``uint64`` arrays that hold 32-bit values: a 32×32-bit product then fits in 64 bits
and nothing ever overflows, so numpy, CuPy and array-api-strict give bit-identical results
without a 32-bit ``mulhi``. The key schedule is computed with Python integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ltbounds.backend import namespace
from ltbounds.errors import InvalidInput
from ltbounds.validation import check_interval

PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
PHILOX_ROUNDS = 10

_MASK32 = 0xFFFFFFFF
_MAX64 = 2**64 - 1
_TWO_POW_MINUS_53 = 2.0**-53
_BLOCK = 1 << 15


def _check_u64(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(f"{name}={value!r} must be an integer")
    value = int(value)
    if not 0 <= value <= _MAX64:
        raise InvalidInput(f"{name}={value!r} must be in [0, 2**64 - 1]")
    return value


def split_key(seed: int) -> tuple[int, int]:
    """The Philox key words ``(low, high)`` of a 64-bit ``seed``."""
    seed = _check_u64("seed", seed)
    return seed & _MASK32, seed >> 32


def philox4x32(
    counter: tuple[Any, Any, Any, Any], key: tuple[int, int], rounds: int = PHILOX_ROUNDS
) -> tuple[Any, Any, Any, Any]:
    """Philox-4x32-R block function on arrays of counters.

    Parameters
    ----------
    counter : tuple of four arrays
        The counter words, ``uint64`` arrays of one shape holding values below ``2**32``.
    key : tuple of two ints
        The key words, each in ``[0, 2**32)``.
    rounds : int
        Number of rounds; 10 is the standard Philox-4x32-10.

    Returns
    -------
    tuple of four arrays
        The output words, ``uint64`` arrays holding values below ``2**32``.

    Notes
    -----
    One round maps ``(c0, c1, c2, c3)`` to ``(hi(M1·c2) ^ c1 ^ k0, lo(M1·c2),
    hi(M0·c0) ^ c3 ^ k1, lo(M0·c0))``; the key is bumped by the Weyl constants
    ``(W0, W1)`` between rounds (Random123 ``philox.h``).
    """
    c0, c1, c2, c3 = counter
    k0, k1 = int(key[0]) & _MASK32, int(key[1]) & _MASK32
    for round_number in range(rounds):
        if round_number:
            k0 = (k0 + PHILOX_W0) & _MASK32
            k1 = (k1 + PHILOX_W1) & _MASK32
        product0 = c0 * PHILOX_M0
        product1 = c2 * PHILOX_M1
        c0, c1, c2, c3 = (
            (product1 >> 32) ^ c1 ^ k0,
            product1 & _MASK32,
            (product0 >> 32) ^ c3 ^ k1,
            product0 & _MASK32,
        )
    return c0, c1, c2, c3


def _as_index(index: Any, xp: Any | None) -> tuple[Any, Any]:
    if xp is None:
        xp = namespace(index)
    index = xp.asarray(index)
    kind_ok = xp.isdtype(index.dtype, "integral")
    if not kind_ok:
        raise InvalidInput(f"index has dtype {index.dtype}; expected an integer array")
    if index.dtype != xp.uint64:
        if index.size and bool(xp.min(index) < 0):
            raise InvalidInput(f"index holds {int(xp.min(index))}; expected indices >= 0")
        index = xp.astype(index, xp.uint64)
    return index, xp


def random_words(seed: int, stream: int, index: Any, *, xp: Any | None = None) -> tuple[Any, ...]:
    """The four raw 32-bit Philox words of draw ``index`` of ``stream`` (``uint64`` arrays)."""
    key = split_key(seed)
    stream = _check_u64("stream", stream)
    index, xp = _as_index(index, xp)
    counter = (
        index & _MASK32,
        index >> 32,
        xp.full(index.shape, stream & _MASK32, dtype=xp.uint64),
        xp.full(index.shape, stream >> 32, dtype=xp.uint64),
    )
    return philox4x32(counter, key)


def uniform(seed: int, stream: int, index: Any, *, xp: Any | None = None) -> Any:
    """Uniform draws in ``[0, 1)`` addressed by ``(seed, stream, index)``.

    Parameters
    ----------
    seed : int
        The 64-bit seed (the Philox key), in ``[0, 2**64)``.
    stream : int
        The 64-bit stream number (the high half of the counter), in ``[0, 2**64)``.
    index : array of int
        Non-negative indices below ``2**64``, any shape; its namespace is the output's.
    xp : namespace, optional
        Array namespace to use when ``index`` is a Python list or number.

    Returns
    -------
    array of float64
        Same shape as ``index``; every value a multiple of ``2**-53`` in ``[0, 1)``, and the
        same bits on every backend.
    """
    index, xp = _as_index(index, xp)
    shape = index.shape
    flat = xp.reshape(index, (-1,))
    # Blocks that fit in cache are several times faster than one pass over a long array.
    size = int(flat.shape[0])
    parts = [
        _uniform_block(seed, stream, flat[start : min(start + _BLOCK, size)])
        for start in range(0, max(size, 1), _BLOCK)
    ]
    values = parts[0] if len(parts) == 1 else xp.concat(parts)
    return xp.reshape(values, shape)


def _uniform_block(seed: int, stream: int, index: Any) -> Any:
    o0, o1, _, _ = random_words(seed, stream, index)
    xp = namespace(o0)
    bits = ((o0 >> 5) << 26) | (o1 >> 6)
    return xp.astype(bits, xp.float64) * _TWO_POW_MINUS_53


#: Stream purposes: the top 8 bits of a stream number say what the draws are for, so
#: that draws made for different jobs can never share a counter.
STREAM_PURPOSES: dict[str, int] = {"source": 0, "inputs": 1, "construction": 2, "certify": 3}
_PURPOSE_SHIFT = 56


def stream_id(purpose: str, number: int) -> int:
    """The stream number for draw family ``number`` of a ``purpose`` in :data:`STREAM_PURPOSES`.

    ``stream_id("source", n)`` is what :class:`~ltbounds.nets.source.SourceNet` uses for its
    layers; ``"inputs"`` is used to sample network inputs; ``"construction"`` and ``"certify"``
    are free for those steps. Distinct ``(purpose, number)`` pairs give distinct streams.
    """
    if purpose not in STREAM_PURPOSES:
        raise InvalidInput(
            f"purpose={purpose!r} must be one of {', '.join(map(repr, STREAM_PURPOSES))}"
        )
    if isinstance(number, bool) or not isinstance(number, (int, np.integer)):
        raise InvalidInput(f"number={number!r} must be an integer")
    if not 0 <= int(number) < 2**_PURPOSE_SHIFT:
        raise InvalidInput(f"number={number!r} must be in [0, 2**{_PURPOSE_SHIFT})")
    return (STREAM_PURPOSES[purpose] << _PURPOSE_SHIFT) | int(number)


def uniform_range(
    seed: int, stream: int, low: float, high: float, index: Any, *, xp: Any | None = None
) -> Any:
    """``low + (high - low) · uniform(seed, stream, index)``: draws on ``[low, high)``.

    The interval must be finite with ``low < high``; see :func:`uniform` for the rest.
    """
    low, high = check_interval("range", low, high)
    return low + (high - low) * uniform(seed, stream, index, xp=xp)


__all__ = [
    "PHILOX_M0",
    "PHILOX_M1",
    "PHILOX_ROUNDS",
    "PHILOX_W0",
    "PHILOX_W1",
    "philox4x32",
    "random_words",
    "split_key",
    "STREAM_PURPOSES",
    "stream_id",
    "uniform",
    "uniform_range",
]
