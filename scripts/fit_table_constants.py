"""Write ``ltbounds/data/fitted_constants.json``: our fitted subset-sum constants C.

``ltbounds table --constant fitted`` reads this file instead of running Monte Carlo, so that a
table stays fast. For each candidate law (``uniform``: i.i.d. U[-1, 1], the L+1 construction's
layers >= 2; ``product``: U[-1, 1]·U[-1, 1], the 2L construction and every first layer) the
script estimates δ(n, ε) = P(some z in [-1, 1] is not ε-approximable by a subset sum) with
:func:`ltbounds.subsetsum.concentration.concentration_grid` over a grid of sizes ``n`` at
``ε = 0.01`` and fits C with :func:`ltbounds.subsetsum.concentration.fit_constant`: the
largest cell value of ``n / log(1 / min(ε, δ̂))`` (the operational definition of the authors'
code, LEMMAS.md 1.3), with a 95 % joint (Bonferroni over cells) Clopper-Pearson interval.

The uniform grid is the one of ``docs/subsetsum.md`` (n = 8..24, 100 000 trials per n, seed 0),
so its fit reproduces the C = 3.909 [3.868, 3.909] reported there. Products need larger n for
the same δ (their density piles up at 0), so their grid runs to n = 30; a trial at n = 30 costs
a few milliseconds, hence fewer trials (20 000 per n, seed 0).

Run from the repository root (about 10 minutes on one core; the product cells at n = 28..30
take most of it)::

    python scripts/fit_table_constants.py

Options: ``--uniform-trials``, ``--product-trials``, ``--seed``, ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ltbounds._io_util import write_text_atomic  # noqa: E402
from ltbounds._version import __version__  # noqa: E402
from ltbounds.subsetsum.concentration import concentration_grid, fit_constant  # noqa: E402

EPS = 0.01
CONFIDENCE = 0.95
GRIDS = {"uniform": tuple(range(8, 25)), "product": tuple(range(14, 31))}
DEFINITION = "max over cells of n / log(1 / min(eps, delta_hat))"


def fit_law(law: str, trials: int, seed: int) -> dict:
    """Run the grid of one law and return its JSON entry."""
    start = time.perf_counter()
    results = []
    for n in GRIDS[law]:
        cell_start = time.perf_counter()
        results += concentration_grid([n], [EPS], trials, distribution=law, seed=seed, confidence=CONFIDENCE)
        print(
            f"{law:8s} n={n:2d}: {results[-1].failures:6d} / {trials} failures "
            f"({time.perf_counter() - cell_start:.1f} s)",
            file=sys.stderr,
        )
    fit = fit_constant(results, confidence=CONFIDENCE)
    return {
        "law": law,
        "C": fit.C,
        "C_low": fit.C_low,
        "C_high": fit.C_high,
        "confidence": fit.confidence,
        "attained_at": {"n": fit.n, "eps": fit.eps},
        "eps": EPS,
        "trials": trials,
        "seed": seed,
        "n_grid": list(GRIDS[law]),
        "cells": [
            {"n": r.n, "failures": r.failures, "trials": r.trials, "delta": r.delta, "ci_low": r.ci_low, "ci_high": r.ci_high}
            for r in results
        ],
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uniform-trials", type=int, default=100_000)
    parser.add_argument("--product-trials", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "ltbounds" / "data" / "fitted_constants.json")
    args = parser.parse_args(argv)
    document = {
        "format": "ltbounds-fitted-constants",
        "version": 1,
        "definition": DEFINITION,
        "event": "a trial fails when some z in [-1, 1] has no subset sum within eps (uniform coverage)",
        "generated_by": "python scripts/fit_table_constants.py "
        f"--uniform-trials {args.uniform_trials} --product-trials {args.product_trials} --seed {args.seed}",
        "ltbounds_version": __version__,
        "laws": {
            "uniform": fit_law("uniform", args.uniform_trials, args.seed),
            "product": fit_law("product", args.product_trials, args.seed),
        },
    }
    write_text_atomic(args.out, json.dumps(document, indent=1) + "\n")
    for law, entry in document["laws"].items():
        print(
            f"{law}: C = {entry['C']:.3f}, {entry['confidence']:.0%} joint interval "
            f"[{entry['C_low']:.3f}, {entry['C_high']:.3f}] at n = {entry['attained_at']['n']}",
            file=sys.stderr,
        )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
