"""Speed of the back-substitution bound of ``ltbounds certify`` against its unoptimised twin.

Run ``python benchmarks/bench_backsub.py``. For each embedded target it constructs a ticket
(``eps``, ``seed`` as given), builds :class:`ltbounds.certify._backsub.BackSubstitution` and
times ``bound`` on the whole input domain twice per round, back to back in one process (the
machine is shared): once as shipped and once with the private ``_reference`` flag, which runs
the unoptimised computation (dense one-hot rows, ``|M| size`` recomputed per product, no
products shared between a row and its negation, no skipped zero products). It checks that both
give the same floats and reports the median ratio over rounds. Writes
``benchmarks/results/backsub.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ltbounds._io_util import write_text_atomic
from ltbounds.certify._alignment import align
from ltbounds.certify._backsub import BackSubstitution
from ltbounds.certify._bounds import Engine
from ltbounds.construct import construct
from ltbounds.nets.resolve import resolve_target

RESULTS = Path(__file__).resolve().parent / "results" / "backsub.json"


def _time(method: BackSubstitution, box: tuple[np.ndarray, np.ndarray], reference: bool) -> tuple[float, tuple[np.ndarray, np.ndarray]]:
    method._reference = reference
    try:
        start = time.perf_counter()
        result = method.bound(box)
        return time.perf_counter() - start, result
    finally:
        method._reference = False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="+", default=["digits_cnn_relu", "digits_cnn_tanh"])
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    report: dict[str, object] = {"eps": args.eps, "seed": args.seed, "rounds": args.rounds, "targets": {}, "load_average_before": os.getloadavg()[0]}
    for name in args.targets:
        target = resolve_target(name)
        ticket = construct(target, eps=args.eps, seed=args.seed)
        method = BackSubstitution.build(Engine.build(align(target, ticket)))
        if method is None:
            report["targets"][name] = {"offered": False}  # type: ignore[index]
            continue
        low, high = target.input_domain
        box = (np.full((1, *target.input_shape), low), np.full((1, *target.input_shape), high))
        reference_s, fast_s, identical = [], [], True
        for _ in range(args.rounds):
            slow, expected = _time(method, box, reference=True)
            fast, got = _time(method, box, reference=False)
            reference_s.append(slow)
            fast_s.append(fast)
            identical &= bool(np.array_equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]))
        ratios = [s / f for s, f in zip(reference_s, fast_s, strict=True)]
        entry = {
            "reference_s": reference_s,
            "fast_s": fast_s,
            "speedup_median": float(np.median(ratios)),
            "speedups": ratios,
            "bit_identical": identical,
            "linf_bound": float(max(np.max(np.abs(got[0])), np.max(np.abs(got[1])))),
        }
        report["targets"][name] = entry  # type: ignore[index]
        print(name, json.dumps(entry), flush=True)
    report["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    return 0 if all(entry.get("bit_identical", True) for entry in report["targets"].values()) else 1  # type: ignore[union-attr]


if __name__ == "__main__":
    raise SystemExit(main())
