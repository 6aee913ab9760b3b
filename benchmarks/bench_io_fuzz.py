"""How long every file loader takes to refuse damaged files, and whether anything else escapes.

The goal (issue 10, kept by issue 12): every loader answers a truncated, bit-flipped or
overwritten file with an ``LtboundsError`` within 1 s, and nothing else escapes. The tests
check the "nothing else escapes" part (``tests/reliability/test_fuzz_loaders.py``,
``tests/test_nets_io_fuzz.py``) but assert no times; the times are measured here.

Loaders covered (each loads the damaged file and makes the first use of what it returns, as
the reliability tests do):

* ``.npz`` target (``load_npz``), ``.safetensors`` (``load_safetensors``) and ``.onnx``
  (``load_onnx``): exports of the embedded dense, convolutional and residual targets; a
  forward pass on 2 inputs;
* ``sidecar .json`` (``load_npz(weights, sidecar=...)``): the architecture document damaged,
  the weights intact;
* ``ticket .npz`` (``Ticket.load``, then ``summary()`` and the pruned network's forward pass):
  tickets of a dense and a convolutional target;
* ``proof .toml`` (``load_proof``): every proof file in ``proofs/``.

Each format gets ``--cases`` damaged files (a fixed seed; truncation, bit flips or an
overwritten run of bytes, one third each), every load timed on the wall clock. Reported per
format: the worst, 99th-percentile and mean time, how many files were refused, accepted (a
flipped bit in a weight can leave a valid file) or escaped with another exception (must be
0), and, as the baseline measured in the same process, the mean time to load the undamaged
files (5 rounds, after one untimed warm-up round, so import and first-call costs are not
counted). Writes
``benchmarks/results/io_fuzz.json``.

    python benchmarks/bench_io_fuzz.py --cases 1000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds import __version__
from ltbounds.errors import LtboundsError
from ltbounds.lemmas.proofs import load_proof
from ltbounds.nets import load_embedded, load_npz, save_npz
from ltbounds.nets.onnx_io import load_onnx, save_onnx
from ltbounds.nets.safetensors_io import load_safetensors, save_safetensors
from ltbounds.ticket import Ticket

TARGETS = ("digits_mlp_relu", "digits_cnn_gelu", "digits_resnet_relu")
TICKET_TARGETS = ("digits_mlp_relu", "digits_cnn_relu")
PROOFS = Path(__file__).resolve().parents[1] / "proofs"
GOAL_SECONDS = 1.0
BASELINE_ROUNDS = 5

#: One seed file: its name, its bytes (the ones damaged) and companion files written beside it.
Seed = tuple[str, bytes, dict[str, bytes]]


def _use(target: Any) -> None:
    target.forward(target.sample_inputs(2, 0))


def _load_ticket(path: Path) -> None:
    ticket = Ticket.load(path)
    ticket.summary()
    _use(ticket.network())


def _exports(work: Path, suffix: str, save: Callable[[Any, Path], Any]) -> list[Seed]:
    seeds = []
    for name in TARGETS:
        path = work / f"{name}{suffix}"
        save(load_embedded(name), path)
        seeds.append((f"target{suffix}", path.read_bytes(), {}))
    return seeds


def _sidecars(work: Path) -> list[Seed]:
    seeds = []
    for name in TARGETS:
        target = load_embedded(name)
        path = work / f"{name}-weights.npz"
        save_npz(target, path)
        with np.load(path, allow_pickle=False) as archive:  # the weights without the architecture
            arrays = {key: archive[key] for key in archive.files if not key.startswith("__")}
        np.savez(work / "weights.npz", **arrays)
        document = json.dumps(target.to_config()).encode()
        seeds.append(("arch.json", document, {"weights.npz": (work / "weights.npz").read_bytes()}))
    return seeds


def _tickets(work: Path) -> list[Seed]:
    from ltbounds.construct import construct  # noqa: PLC0415

    seeds = []
    for name in TICKET_TARGETS:
        path = work / f"{name}-ticket.npz"
        construct(load_embedded(name), eps=0.01, rho=2, seed=0).save(path)
        seeds.append(("ticket.npz", path.read_bytes(), {}))
    return seeds


def _proofs(work: Path) -> list[Seed]:
    return [("proof.toml", path.read_bytes(), {}) for path in sorted(PROOFS.glob("*.toml"))]


#: Format → (seed files, load and first use).
FORMATS: dict[str, tuple[Callable[[Path], list[Seed]], Callable[[Path], Any]]] = {
    ".npz": (lambda w: _exports(w, ".npz", save_npz), lambda p: _use(load_npz(p))),
    ".safetensors": (lambda w: _exports(w, ".safetensors", save_safetensors), lambda p: _use(load_safetensors(p))),
    ".onnx": (lambda w: _exports(w, ".onnx", save_onnx), lambda p: _use(load_onnx(p))),
    "sidecar .json": (_sidecars, lambda p: _use(load_npz(p.parent / "weights.npz", sidecar=p))),
    "ticket .npz": (_tickets, _load_ticket),
    "proof .toml": (_proofs, load_proof),
}  # fmt: skip


def damage(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` truncated, bit-flipped (1 to 8 bits) or with up to 64 bytes overwritten."""
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


def _place(folder: Path, seed: Seed, data: bytes) -> Path:
    name, _, companions = seed
    for other, content in companions.items():
        (folder / other).write_bytes(content)
    path = folder / name
    path.write_bytes(data)
    return path


def measure(label: str, seeds: list[Seed], load: Callable[[Path], Any], cases: int, rng: np.random.Generator, work: Path) -> dict[str, Any]:
    """Time ``load`` on the undamaged seeds (the baseline) and on ``cases`` damaged files."""
    folder = work / label.replace(" ", "-").lstrip(".")
    folder.mkdir()
    for seed in seeds:  # warm-up: imports, first calls, caches
        load(_place(folder, seed, seed[1]))
    start = time.perf_counter()
    for _ in range(BASELINE_ROUNDS):
        for seed in seeds:
            load(_place(folder, seed, seed[1]))
    baseline = (time.perf_counter() - start) / (BASELINE_ROUNDS * len(seeds))
    times, refused, accepted, escaped = [], 0, 0, []
    for case in range(cases):
        seed = seeds[case % len(seeds)]
        path = _place(folder, seed, damage(seed[1], rng))
        start = time.perf_counter()
        try:
            load(path)
            accepted += 1
        except LtboundsError:
            refused += 1
        except Exception as exc:  # noqa: BLE001 - counting what escapes is the point
            escaped.append(f"{type(exc).__name__}: {exc}"[:200])
        times.append(time.perf_counter() - start)
    worst = max(times)
    return {
        "seeds": len(seeds), "cases": cases, "refused": refused, "accepted": accepted,
        "escaped": len(escaped), "escapes": escaped[:5], "max_seconds": worst,
        "p99_seconds": float(np.quantile(times, 0.99)), "mean_seconds": float(np.mean(times)),
        "valid_load_seconds": baseline, "max_over_valid_load": worst / baseline,
        "meets_goal": worst < GOAL_SECONDS and not escaped,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=300, help="damaged files per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "io_fuzz.json")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="ltbounds-bench-fuzz-"))
    load_before = os.getloadavg()[0]
    results = {}
    for label, (make_seeds, load) in FORMATS.items():
        results[label] = row = measure(label, make_seeds(work), load, args.cases, rng, work)
        print(f"{label:14} refused {row['refused']:4} accepted {row['accepted']:4} escaped {row['escaped']}  "
              f"worst {row['max_seconds'] * 1e3:7.1f} ms  p99 {row['p99_seconds'] * 1e3:6.1f} ms  "
              f"mean {row['mean_seconds'] * 1e3:6.2f} ms  (valid file {row['valid_load_seconds'] * 1e3:6.2f} ms)")  # fmt: skip
    document = {
        "ltbounds_version": __version__, "python": platform.python_version(),
        "machine": platform.machine(), "cores": os.cpu_count(), "seed": args.seed,
        "load_average_before": load_before, "load_average_after": os.getloadavg()[0],
        "goal_seconds": GOAL_SECONDS, "targets": TARGETS, "ticket_targets": TICKET_TARGETS,
        "formats": results,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
