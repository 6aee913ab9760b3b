"""Construction time of the L+1 ticket of a ResNet-20-shaped target, and its subset-sum share.

Run ``python benchmarks/bench_construct_residual.py`` (``--rhos 4,8,16`` by default; a few
minutes on the shared 2-core machine). The target is ResNet-20 for CIFAR-10 as in the
``resnet20`` preset (He et al. 2016, n = 3): a 3×3 stem 3→16, three stages of three blocks
of two 3×3 convolutions (16, 32, 64 channels; the first block of stages 2 and 3 downsamples
with stride 2 and has a 1×1 projection skip, the others identity skips), global average
pooling and a dense 64→10 head; ReLU, 3×32×32 inputs in [0, 1]. Weights are random,
``U[−s, s]`` with ``s = min(1, 1/√fan_in)`` (a He-like scale inside the [−1, 1] the subset-sum
lemmas approximate), biases ``U[−0.1, 0.1]``, seed 0 (:func:`ltbounds.cli.bench.resnet20_target`,
which ``ltbounds bench`` times too).

For every ρ it measures the seconds of :func:`ltbounds.construct.construct` at ε = 0.01
(L+1, seed 0) and the seconds spent inside the subset-sum solver (``solve`` and
``solve_sparsest`` as the construction calls them), with the number of subset-sum instances
and misses. It also reports the ρ the theorem demands (:func:`default_rho` at the residual
lemma's smallest tolerance) and, where that ρ is beyond what was run, a *projection* of time
and source size: the construction's work is one instance per target weight per output copy,
over ρ candidates, so it grows about as ρ²; the projection fits ``t = a·ρ^b`` to the measured
points and says so. Timings are single runs; the 1-minute load average is recorded before and
after each (the machine is shared). Writes ``benchmarks/results/construct_residual.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run as a script, this folder is on sys.path: the clock of bench_construct serves both.
from bench_construct import SubsetSumClock

from ltbounds._io_util import write_text_atomic
from ltbounds.cli.bench import resnet20_target as resnet20  # the one ResNet-20 builder
from ltbounds.construct import allot_tolerances, construct
from ltbounds.construct.width import default_rho
from ltbounds.nets import TargetNet

RESULTS = Path(__file__).resolve().parent / "results" / "construct_residual.json"
EPS = 0.01
DELTA = 0.05
SEED = 0


def largest_layer_entries(target: TargetNet, rho: int) -> int:
    """Candidate entries of the largest copy layer at ``rho``: one instance per nonzero target
    weight per output copy (ρ of them), each over the ρ copies of its input; the construction
    holds a few float64/int64 arrays of this size at once."""
    return max(int(np.count_nonzero(layer.weight)) * rho * rho for _, layer in target.linear_layers)


def measure(target: TargetNet, rho: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    with SubsetSumClock() as clock:
        start = time.perf_counter()
        ticket = construct(target, eps=EPS, delta=DELTA, rho=rho, seed=SEED)
        seconds = time.perf_counter() - start
    summary = ticket.summary()
    return {
        "rho": rho,
        "seconds": seconds,
        "subset_sum_seconds": clock.seconds,
        "subset_sum_share": clock.seconds / seconds,
        "missed_subset_sums": summary["missed_subset_sums"],
        "source_params": summary["source_params"],
        "ticket_params": summary["ticket_params"],
        "source_widths_max": max(summary["source_widths"]),
        "predicted_error": summary["predicted_error"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rhos", default="4,8,16", help="comma-separated ρ values to run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    target = resnet20(SEED)
    tolerances = allot_tolerances(target, EPS)
    theorem_rho = default_rho(target, min(tolerances), DELTA, depth="L+1")
    runs = []
    for rho in (int(r) for r in args.rhos.split(",")):
        row = measure(target, rho)
        runs.append(row)
        print(
            f"ρ={rho:>3}: {row['seconds']:8.1f} s, subset sums {row['subset_sum_seconds']:8.1f} s "
            f"({row['subset_sum_share']:.0%}), misses {row['missed_subset_sums']:,}, source params "
            f"{row['source_params']:,}, load {row['load_before']:.1f}→{row['load_after']:.1f}",
            flush=True,
        )
    projection = None
    if len(runs) >= 2 and theorem_rho > max(r["rho"] for r in runs):
        rhos = np.log([r["rho"] for r in runs])
        exponent, intercept = np.polyfit(rhos, np.log([r["seconds"] for r in runs]), 1)
        widest = max(runs, key=lambda r: r["rho"])
        projection = {
            "rho": theorem_rho,
            "fit": f"seconds = {math.exp(intercept):.3g}·ρ^{exponent:.2f} (least squares on log-log, {len(runs)} points)",
            "seconds": float(math.exp(intercept) * theorem_rho**exponent),
            "source_params": int(widest["source_params"] * (theorem_rho / widest["rho"]) ** 2),
            "largest_layer_candidate_entries": largest_layer_entries(target, theorem_rho),
            "note": "extrapolated, not measured: the theorem's ρ was not run (time and memory)",
        }
        print(
            f"theorem ρ = {theorem_rho}: projected {projection['seconds']:.0f} s, ~{projection['source_params']:.3g} "
            f"source parameters, {projection['largest_layer_candidate_entries']:.3g} candidate entries in the largest layer"
        )
    document = {
        "benchmark": "bench_construct_residual.py",
        "target": "ResNet-20 shape (CIFAR, 3×32×32), random weights U[-s, s], s = min(1, 1/sqrt(fan_in)), ReLU, domain [0, 1]",
        "eps": EPS,
        "delta": DELTA,
        "seed": SEED,
        "construction": "L+1",
        "smallest_tolerance": min(tolerances),
        "theorem_rho": theorem_rho,
        "runs": runs,
        "projection": projection,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    write_text_atomic(args.output, json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
