"""The gradient attack of ``ltbounds certify``: sparse against dense backward passes.

The attack (:func:`ltbounds.certify._empirical.attack`) runs a forward and a backward pass of
the ticket and of the target per step. On a wide pruned ticket the backward pass through the
dense transposes (im2col gradients of every source convolution) dominates time and memory;
the sparse transposes of :mod:`ltbounds.nets._sparse` run through the nonzero weights only.
This script runs the same attack both ways in one process (``sparse=False`` is the baseline)
and records seconds per step, peak resident memory of each run (Linux: the high-water mark
is reset through ``/proc/self/clear_refs`` before each run) and whether the witnesses agree.
Writes ``benchmarks/results/attack.json``.

    python benchmarks/bench_attack.py                                   # digits_cnn_relu only
    python benchmarks/bench_attack.py --mnist-ticket /tmp/mn/m.npz      # + MNIST CNN ticket
    python benchmarks/bench_attack.py --only mnist --mnist-ticket /tmp/mn/m.npz --steps 2

The MNIST ticket (theorem's ρ = 64) is built by
``ltbounds construct shared/data/lt_existence_mnist_cnn.npz -o m.npz --samples 0``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from ltbounds import __version__
from ltbounds.certify._alignment import align
from ltbounds.certify._empirical import attack, sample_errors
from ltbounds.construct import construct
from ltbounds.nets._sparse import is_sparse
from ltbounds.nets.resolve import resolve_target
from ltbounds.ticket import Ticket

HERE = Path(__file__).resolve().parent
MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "lt_existence_mnist_cnn.npz"


def _status(field: str) -> float | None:
    """``VmHWM`` / ``VmRSS`` of this process in GB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def run_pair(name: str, target, ticket, args: argparse.Namespace) -> dict:
    ticket_net = align(target, ticket).ticket_net
    layers = [
        {"layer": layer.describe(), "density": float(np.count_nonzero(layer.weight) / layer.weight.size), "sparse": is_sparse(layer)}
        for layer in ticket_net.layers
        if hasattr(layer, "weight")
    ]
    _, starts_inf, starts_two = sample_errors(target, ticket_net, args.samples, args.seed, keep=args.restarts)
    # Warm up: numba compilation (or its cache), the cached sparse plans of the forward pass.
    attack(target, ticket_net, starts_inf[:1], starts_two[:1], steps=1, sparse=True)
    runs: dict[str, list[dict]] = {"sparse": [], "dense": []}
    witnesses = {}
    # Sparse first, so that its peak does not include the dense transposes the dense run caches.
    for _ in range(args.rounds):
        for mode in ("sparse", "dense"):
            before = _status("VmRSS")
            resettable = _reset_peak()
            start = time.perf_counter()
            witness = attack(target, ticket_net, starts_inf, starts_two, steps=args.steps, sparse=mode == "sparse")
            seconds = time.perf_counter() - start
            runs[mode].append(
                {"seconds": seconds, "seconds_per_step": seconds / max(args.steps, 1),
                 "rss_before_gb": before, "peak_rss_gb": _status("VmHWM") if resettable else None}
            )
            witnesses[mode] = witness
            print(f"{name:>16} {mode:>6}: {seconds / max(args.steps, 1):8.2f} s/step  peak {runs[mode][-1]['peak_rss_gb']} GB", flush=True)
    sparse, dense = witnesses["sparse"], witnesses["dense"]
    best = {mode: min(r["seconds"] for r in rows) for mode, rows in runs.items()}
    row = {
        "target": name,
        "rows": int(starts_inf.shape[0] + starts_two.shape[0]),
        "steps": args.steps,
        "ticket_layers": layers,
        "runs": runs,
        "speedup_dense_over_sparse": best["dense"] / best["sparse"],
        "peak_ratio_dense_over_sparse": (
            max(r["peak_rss_gb"] for r in runs["dense"]) / max(r["peak_rss_gb"] for r in runs["sparse"])
            if runs["sparse"][0]["peak_rss_gb"] else None
        ),
        "witness": {
            "linf": [sparse.linf, dense.linf], "l2": [sparse.l2, dense.l2],
            "linf_relative_difference": abs(sparse.linf - dense.linf) / max(abs(dense.linf), 1e-300),
            "l2_relative_difference": abs(sparse.l2 - dense.l2) / max(abs(dense.l2), 1e-300),
            "same_inputs": bool(np.array_equal(sparse.input_linf, dense.input_linf) and np.array_equal(sparse.input_l2, dense.input_l2)),
        },
    }
    print(f"{name:>16}: dense/sparse time {row['speedup_dense_over_sparse']:.2f}×, peak {row['peak_ratio_dense_over_sparse']}, "
          f"witness Δ {row['witness']['linf_relative_difference']:.1e}, same inputs {row['witness']['same_inputs']}", flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=["digits", "mnist"], help="default: digits, plus mnist with --mnist-ticket")
    parser.add_argument("--mnist-ticket", type=Path, help="a ticket of the MNIST CNN (construct it first: slow)")
    parser.add_argument("--samples", type=int, default=64, help="sampled inputs the restarts start from")
    parser.add_argument("--restarts", type=int, default=8, help="runs per norm (rows = 2 × restarts)")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "attack.json")
    args = parser.parse_args()
    names = args.only or (["digits", "mnist"] if args.mnist_ticket else ["digits"])
    rows = []
    for name in names:
        if name == "digits":
            target = resolve_target("digits_cnn_relu")
            ticket = construct(target, eps=0.01, seed=0)  # the theorem's ρ (47)
            rows.append(run_pair("digits_cnn_relu", target, ticket, args))
        else:
            if args.mnist_ticket is None:
                parser.error("--only mnist needs --mnist-ticket")
            target = resolve_target(str(MNIST))
            rows.append(run_pair("mnist_cnn", target, Ticket.load(args.mnist_ticket), args))
    document = {
        "benchmark": "attack",
        "ltbounds_version": __version__,
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_suffix(".tmp")
    temporary.write_text(json.dumps(document, indent=2) + "\n")
    temporary.replace(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
