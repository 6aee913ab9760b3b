"""Cost and gain of the refining search of misses (``REFINE_WINDOW``) in the construction.

Run ``python benchmarks/bench_refine.py``. It draws instances as the residual constructions
see them (76 candidates per block, i.i.d. U[-1, 1]; targets U[-0.5, 0.5]; tolerance 1e-10, which
nearly every instance misses, as the digits ResNets' tolerances of about 1e-10 do) and solves
them with :func:`ltbounds.construct.solve.solve_problems` in windows of 24, once without and
once with the refining search of the misses. Every round times both back to back on the same
instances (the machine is shared), and the median over rounds of the time ratio is reported
with the error distributions of both. Writes ``benchmarks/results/refine.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ltbounds._io_util import write_text_atomic
from ltbounds.construct.solve import REFINE_WINDOW, solve_problems

RESULTS = Path(__file__).resolve().parent / "results" / "refine.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=76)
    parser.add_argument("--window", type=int, default=24)
    parser.add_argument("--tolerance", type=float, default=1e-10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    targets = rng.uniform(-0.5, 0.5, args.instances)
    candidates = rng.uniform(-1.0, 1.0, (args.instances, args.candidates))
    solve_problems(targets[:4], candidates[:4], args.tolerance, "sparse", args.window)  # compile / load cache
    ratios, plain_s, refined_s = [], [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        plain = solve_problems(targets, candidates, args.tolerance, "sparse", args.window, refine=None)
        middle = time.perf_counter()
        refined = solve_problems(targets, candidates, args.tolerance, "sparse", args.window)
        stop = time.perf_counter()
        plain_s.append(middle - start)
        refined_s.append(stop - middle)
        ratios.append((stop - middle) / (middle - start))

    def errors(result: object) -> dict[str, float]:
        error = result.error  # type: ignore[attr-defined]
        return {"mean": float(error.mean()), "median": float(np.median(error)), "max": float(error.max()), "missed": int(result.missed)}  # type: ignore[attr-defined]

    report = {
        "instances": args.instances,
        "candidates": args.candidates,
        "window": args.window,
        "refine_window": REFINE_WINDOW,
        "tolerance": args.tolerance,
        "time_ratio_refined_over_plain_median": float(np.median(ratios)),
        "time_ratios": ratios,
        "plain_ms_per_instance": 1000 * float(np.median(plain_s)) / args.instances,
        "refined_ms_per_instance": 1000 * float(np.median(refined_s)) / args.instances,
        "plain_errors": errors(plain),
        "refined_errors": errors(refined),
        "error_ratio_mean": float(plain.error.mean() / refined.error.mean()),
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
