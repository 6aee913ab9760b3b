"""The one-pass sparsest search (``kernels.sparsest_by_hits``) against the search by size.

Run ``python benchmarks/bench_sparsest_hits.py``. It draws instances as the constructions'
sparsest searches leave them for the general search: candidates i.i.d. U[-1, 1] (10 % zeros,
the unusable slots), targets U[-0.3, 0.3], kept only where the closest subset meets the
tolerance (the rows :func:`ltbounds.subsetsum.solver._sparsest_screened` sends on), at
n = 24 (a window) and n = 28 (``REFINE_WINDOW``), tight and loose tolerances. Every round
times ``solve_sparsest`` back to back with the one pass (default) and with every row sent
to the sweeps by cardinality class (``_HIT_VISITS = 0``, the code before it) on the same
instances (the machine is shared); the median over rounds of the time ratio is reported,
and the two answers are checked to be identical. Writes ``benchmarks/results/sparsest_hits.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ltbounds._io_util import write_text_atomic
from ltbounds.subsetsum import solve, solve_sparsest, solver

RESULTS = Path(__file__).resolve().parent / "results" / "sparsest_hits.json"
CASES = ((24, 1e-7), (24, 1e-5), (28, 1e-8), (28, 1e-6))
FIELDS = ("mask", "value", "error", "size", "within")


def instances(rng: np.random.Generator, n: int, tolerance: float, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` instances whose closest subset is within ``tolerance`` (drawn until enough)."""
    targets, candidates = [], []
    while sum(len(t) for t in targets) < rows:
        t = rng.uniform(-0.3, 0.3, 4 * rows)
        c = rng.uniform(-1.0, 1.0, (4 * rows, n))
        c[rng.random(c.shape) < 0.1] = 0.0
        hit = np.asarray(solve(t, c).error) <= tolerance
        targets.append(t[hit])
        candidates.append(c[hit])
    return np.concatenate(targets)[:rows], np.concatenate(candidates)[:rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    default_visits = solver._HIT_VISITS
    report: dict[str, object] = {"rows": args.rows, "rounds": args.rounds, "cases": []}
    for n, tolerance in CASES:
        targets, candidates = instances(rng, n, tolerance, args.rows)
        solve_sparsest(targets[:2], candidates[:2], tolerance)  # compile / load the cache
        one_s, by_size_s = [], []
        for _ in range(args.rounds):
            solver._HIT_VISITS = default_visits
            start = time.perf_counter()
            one_pass = solve_sparsest(targets, candidates, tolerance)
            middle = time.perf_counter()
            solver._HIT_VISITS = 0
            by_size = solve_sparsest(targets, candidates, tolerance)
            stop = time.perf_counter()
            solver._HIT_VISITS = default_visits
            one_s.append(middle - start)
            by_size_s.append(stop - middle)
            for name in FIELDS:
                if not np.array_equal(getattr(one_pass, name), getattr(by_size, name)):
                    raise SystemExit(f"n={n} tolerance={tolerance}: the answers differ in {name}")
        ratios = [b / a for a, b in zip(one_s, by_size_s, strict=True)]
        case = {
            "n": n,
            "tolerance": tolerance,
            "mean_size": float(np.mean(one_pass.size)),
            "one_pass_ms_per_instance": 1000 * float(np.median(one_s)) / args.rows,
            "by_size_ms_per_instance": 1000 * float(np.median(by_size_s)) / args.rows,
            "speedup_median": float(np.median(ratios)),
            "speedups": ratios,
            "identical": True,
        }
        print(json.dumps(case), flush=True)
        report["cases"].append(case)  # type: ignore[union-attr]
    report["load_average"] = os.getloadavg()[0]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
