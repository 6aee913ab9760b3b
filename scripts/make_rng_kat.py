"""Write ``tests/data/rng_uniform_kat.json``: known answers for ``ltbounds.rng.uniform``.

The values are computed here with a scalar, pure-Python Philox-4x32-10 written from the
published algorithm (Salmon et al., SC 2011; Random123 ``philox.h``), independently of the
vectorised array code in ``ltbounds/rng.py``, and with the layout that module documents:
key = (seed mod 2**32, seed >> 32), counter = (index mod 2**32, index >> 32,
stream mod 2**32, stream >> 32), value = ((o0 >> 5) * 2**26 + (o1 >> 6)) / 2**53.
The script first checks its Philox against the three Random123 ``kat_vectors`` lines.

Run from the repository root: ``python scripts/make_rng_kat.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

MASK = 0xFFFFFFFF
M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85

RANDOM123_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((MASK,) * 4, (MASK, MASK), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


def philox4x32_10(counter: tuple[int, ...], key: tuple[int, int]) -> tuple[int, ...]:
    c = list(counter)
    k = list(key)
    for _ in range(10):
        p0 = M0 * c[0]
        p1 = M1 * c[2]
        c = [(p1 >> 32) ^ c[1] ^ k[0], p1 & MASK, (p0 >> 32) ^ c[3] ^ k[1], p0 & MASK]
        k = [(k[0] + W0) & MASK, (k[1] + W1) & MASK]
    return tuple(c)


def uniform(seed: int, stream: int, index: int) -> float:
    words = philox4x32_10(
        (index & MASK, index >> 32, stream & MASK, stream >> 32), (seed & MASK, seed >> 32)
    )
    return ((words[0] >> 5) * 2**26 + (words[1] >> 6)) / 2**53


def main() -> None:
    for counter, key, expected in RANDOM123_KAT:
        assert philox4x32_10(counter, key) == expected, (counter, key)
    seeds = [0, 1, 12345, 2**32 - 1, 2**32, 2**63 + 12345, 2**64 - 1]
    streams = [0, 1, 7, 2**32 + 3, 2**56, 2**64 - 1]
    indices = [0, 1, 2, 3, 1000, 2**31, 2**32 - 1, 2**32, 2**40 + 17, 2**64 - 1]
    cases = []
    for seed in seeds:
        for stream in streams:
            for index in indices:
                value = uniform(seed, stream, index)
                cases.append([seed, stream, index, value.hex()])
    description = (
        "ltbounds.rng.uniform known answers [seed, stream, index, float.hex(value)]; made by "
        "scripts/make_rng_kat.py with an independent scalar Philox-4x32-10"
    )
    lines = ",\n  ".join(json.dumps(case) for case in cases)
    text = f'{{\n "description": {json.dumps(description)},\n "cases": [\n  {lines}\n ]\n}}\n'
    json.loads(text)
    path = Path(__file__).resolve().parents[1] / "tests" / "data" / "rng_uniform_kat.json"
    path.write_text(text, encoding="utf-8")
    print(f"wrote {len(cases)} cases to {path}")


if __name__ == "__main__":
    main()
