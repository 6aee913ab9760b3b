"""The counter-based RNG: published Philox answers, our own known answers, backends agree."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ltbounds.backend import namespace, to_numpy
from ltbounds.errors import InvalidInput
from ltbounds.rng import philox4x32, random_words, stream_id, uniform, uniform_range

KAT_FILE = Path(__file__).parent / "data" / "rng_uniform_kat.json"

# Random123 tests/kat_vectors, the three "philox4x32 10" lines: counter, key, expected.
RANDOM123 = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (
        (0xFFFFFFFF,) * 4,
        (0xFFFFFFFF, 0xFFFFFFFF),
        (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD),
    ),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), RANDOM123)
def test_philox_core_matches_random123(xp, counter, key, expected) -> None:
    words = tuple(xp.asarray([c], dtype=xp.uint64) for c in counter)
    out = philox4x32(words, key)
    assert tuple(int(o[0]) for o in out) == expected


def _kat_cases() -> list[list]:
    return json.loads(KAT_FILE.read_text(encoding="utf-8"))["cases"]


def test_uniform_matches_checked_in_known_answers(xp) -> None:
    cases = _kat_cases()
    assert len(cases) >= 400
    groups: dict[tuple[int, int], list[tuple[int, float]]] = {}
    for seed, stream, index, value in cases:
        groups.setdefault((seed, stream), []).append((index, float.fromhex(value)))
    for (seed, stream), entries in groups.items():
        index = xp.asarray([i for i, _ in entries], dtype=xp.uint64)
        got = to_numpy(uniform(seed, stream, index))
        want = np.array([v for _, v in entries])
        assert np.array_equal(got, want), (seed, stream)


def test_every_backend_gives_the_numpy_bits(xp) -> None:
    index = np.arange(100_000, dtype=np.int64) * 7919
    on_numpy = uniform(2**40 + 3, stream_id("source", 5), index)
    on_backend = uniform(2**40 + 3, stream_id("source", 5), xp.asarray(index))
    assert namespace(on_backend) is xp
    assert on_backend.dtype == xp.float64
    assert np.array_equal(to_numpy(on_backend), on_numpy)
    # Python lists take the namespace given
    assert namespace(uniform(1, 2, [0, 5], xp=xp)) is xp


def test_blocks_and_shapes_do_not_change_values() -> None:
    index = np.arange(7 * 5000)  # more than one internal block
    flat = uniform(9, 4, index)
    assert np.array_equal(uniform(9, 4, index.reshape(-1, 7)).ravel(), flat)
    assert np.array_equal(uniform(9, 4, index[::-1]), flat[::-1])
    assert uniform(9, 4, np.int64(17)).shape == ()
    assert float(uniform(9, 4, 17)) == flat[17]
    assert uniform(9, 4, np.zeros((0, 3), dtype=np.int64)).shape == (0, 3)
    assert np.array_equal(uniform(9, 4, index.astype(np.uint32)), flat)


def test_values_have_53_bits_in_unit_interval() -> None:
    values = uniform(1, 2, np.arange(200_000))
    assert values.dtype == np.float64
    assert values.min() >= 0.0 and values.max() < 1.0
    scaled = values * 2.0**53
    assert np.array_equal(scaled, np.floor(scaled))
    # Statistical sanity only (TESTED, not proved): mean and variance of U[0, 1).
    assert abs(values.mean() - 0.5) < 0.005
    assert abs(values.var() - 1 / 12) < 0.002
    # Low bits are used: some values are not multiples of 2**-32.
    assert np.any(np.floor(values * 2.0**32) != values * 2.0**32)


def test_seeds_streams_and_indices_separate() -> None:
    index = np.arange(1000)
    base = uniform(5, 0, index)
    assert not np.array_equal(base, uniform(6, 0, index))
    assert not np.array_equal(base, uniform(5, 1, index))
    assert not np.array_equal(base, uniform(5 + 2**32, 0, index))  # high key word matters
    assert not np.array_equal(base, uniform(5, 2**32, index))  # high stream word matters
    assert len(np.unique(base)) == base.size
    high = uniform(5, 0, np.array([0, 2**32, 2**40], dtype=np.uint64))
    assert len(set(high.tolist())) == 3


def test_stream_ids_are_distinct_per_purpose() -> None:
    ids = {
        stream_id(p, n) for p in ("source", "inputs", "construction", "certify") for n in range(50)
    }
    assert len(ids) == 200
    with pytest.raises(InvalidInput, match="purpose='x'"):
        stream_id("x", 0)
    with pytest.raises(InvalidInput, match="number=-1"):
        stream_id("source", -1)


@given(
    seed=st.integers(0, 2**64 - 1),
    stream=st.integers(0, 2**64 - 1),
    low=st.floats(-10, 10),
    width=st.floats(1e-3, 10),
)
def test_uniform_range_stays_in_range(seed, stream, low, width) -> None:
    values = uniform_range(seed, stream, low, low + width, np.arange(64))
    assert np.all(values >= low) and np.all(values <= low + width)
    assert np.allclose(values, low + width * uniform(seed, stream, np.arange(64)))


def test_refusals_name_the_bad_value() -> None:
    with pytest.raises(InvalidInput, match="seed=-1"):
        uniform(-1, 0, np.arange(3))
    with pytest.raises(InvalidInput, match=r"seed=18446744073709551616"):
        uniform(2**64, 0, np.arange(3))
    with pytest.raises(InvalidInput, match="stream="):
        uniform(0, 1.5, np.arange(3))
    with pytest.raises(InvalidInput, match="index holds -2"):
        uniform(0, 0, np.array([1, -2]))
    with pytest.raises(InvalidInput, match="integer array"):
        uniform(0, 0, np.array([0.5]))
    with pytest.raises(InvalidInput, match="low < high"):
        uniform_range(0, 0, 1.0, 1.0, np.arange(3))


def test_raw_words_are_32_bit() -> None:
    words = random_words(3, 4, np.arange(1000))
    for word in words:
        assert word.dtype == np.uint64
        assert int(word.max()) <= 0xFFFFFFFF
