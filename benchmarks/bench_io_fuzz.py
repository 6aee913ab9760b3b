"""How long the model loaders take to refuse damaged files, and whether anything else escapes.

The issue's goal: every loader (``.npz``, ``.safetensors``, ``.onnx``) answers a truncated,
bit-flipped or overwritten file with a ``ModelFormatError`` within 1 s. This script damages
valid exports of the embedded targets (dense, convolutional, residual) ``--cases`` times per
format with a fixed seed, times each load, and reports per format the worst and mean time,
how many files were refused, accepted (a flipped bit in a weight can leave a valid file) or
escaped with another exception (must be 0). Writes ``benchmarks/results/io_fuzz.json``.
For scale it also times loading the undamaged file (the baseline, same process).

    python benchmarks/bench_io_fuzz.py --cases 500
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from ltbounds import __version__
from ltbounds.errors import ModelFormatError
from ltbounds.nets import load_embedded, load_npz, save_npz
from ltbounds.nets.onnx_io import load_onnx, save_onnx
from ltbounds.nets.safetensors_io import load_safetensors, save_safetensors

FORMATS = {
    ".npz": (save_npz, load_npz),
    ".safetensors": (save_safetensors, load_safetensors),
    ".onnx": (save_onnx, load_onnx),
}
TARGETS = ("digits_mlp_relu", "digits_cnn_gelu", "digits_resnet_relu")


def damage(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    how = rng.integers(3)
    if how == 0:
        return bytes(out[: rng.integers(len(out))])
    if how == 1:
        for position in rng.integers(0, len(out), size=rng.integers(1, 9)):
            out[position] ^= 1 << int(rng.integers(8))
        return bytes(out)
    start = int(rng.integers(len(out)))
    chunk = rng.integers(0, 256, size=int(rng.integers(1, 65)), dtype=np.uint8).tobytes()
    out[start : start + len(chunk)] = chunk
    return bytes(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="damaged files per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "io_fuzz.json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ltbounds-bench-fuzz-"))
    results = {}
    for suffix, (save, load) in FORMATS.items():
        originals = []
        for name in TARGETS:
            path = work / f"{name}{suffix}"
            save(load_embedded(name), path)
            originals.append(path.read_bytes())
        start = time.perf_counter()
        for name in TARGETS:
            load(work / f"{name}{suffix}")
        baseline = (time.perf_counter() - start) / len(TARGETS)
        times, refused, accepted, escaped = [], 0, 0, []
        for case in range(args.cases):
            path = work / f"case{suffix}"
            path.write_bytes(damage(originals[case % len(originals)], rng))
            start = time.perf_counter()
            try:
                load(path)
                accepted += 1
            except ModelFormatError:
                refused += 1
            except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
                escaped.append(f"{type(exc).__name__}: {exc}"[:200])
            times.append(time.perf_counter() - start)
        results[suffix] = {
            "cases": args.cases, "refused": refused, "accepted": accepted, "escaped": len(escaped),
            "escapes": escaped[:5], "max_seconds": max(times), "mean_seconds": float(np.mean(times)),
            "valid_load_seconds": baseline, "max_over_valid_load": max(times) / baseline,
        }  # fmt: skip
        print(f"{suffix:13} refused {refused:4} accepted {accepted:4} escaped {len(escaped)}  "
              f"worst {max(times) * 1e3:7.1f} ms  mean {np.mean(times) * 1e3:6.1f} ms  "
              f"(valid file {baseline * 1e3:6.1f} ms)")  # fmt: skip
    document = {
        "ltbounds_version": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "seed": args.seed, "targets": TARGETS, "formats": results,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
