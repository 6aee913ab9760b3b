"""Instances per second of ``ltbounds.subsetsum.solve`` against the authors' search.

Run ``python benchmarks/bench_subsetsum.py``. It draws random subset-sum instances (n = 15
candidates and a target, all i.i.d. U[-1, 1], as in ``main_ssa_stats.py``), solves them with

* the re-implemented public search (``reference_lt_existence.exhaustive_search``: subset sizes
  in increasing order, ``itertools.combinations``, early stop at eps = 0.01, ``nmax = 15``),
  single-threaded Python as the original;
* ``solve`` (the exact closest subset) and ``solve_sparsest(tolerance=eps)`` (the smallest
  subset within eps: the question the reference answers), numba kernels on ONE thread
  (``numba.set_num_threads(1)``), so that the headline ratios compare one core with one core;
  the same on all threads is recorded too, as information, not as a like-for-like ratio;

and prints instances/second, the ratios, and the error distributions on the same instances,
then writes ``benchmarks/results/subsetsum.json``. The machine is shared: every round times the
reference and ours back to back, so that load from other processes hits both; the ratio is
taken per round and the median over rounds is reported (with the smallest and largest), along
with the load average of every round. Compilation (or loading numba's cache) is done before
timing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numba
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reference_lt_existence import exhaustive_search  # noqa: E402

from ltbounds._io_util import write_text_atomic  # noqa: E402
from ltbounds.subsetsum import solve, solve_sparsest  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "subsetsum.json"
QUANTILES = (0.5, 0.9, 0.99, 0.999)


def instances(count: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    generator = np.random.Generator(np.random.Philox(seed))
    return generator.uniform(-1, 1, count), generator.uniform(-1, 1, (count, n))


def canonical_error(target: float, numbers: np.ndarray, members: tuple[int, ...]) -> float:
    """|target - sum| with the sum accumulated as ltbounds does (left half, right half)."""
    left_size = (len(numbers) + 1) // 2
    left = right = 0.0
    for k in sorted(members):
        if k < left_size:
            left += numbers[k]
        else:
            right += numbers[k]
    return abs(target - (left + right))


def distribution(errors: np.ndarray) -> dict[str, float]:
    summary = {"mean": float(errors.mean()), "max": float(errors.max())}
    summary.update({f"q{q:g}": float(np.quantile(errors, q)) for q in QUANTILES})
    return summary


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def timed(function, *args, **kwargs) -> float:
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return f"load average {os.getloadavg()}"


OURS = ("solve", "solve_sparsest", "solve_all_threads", "solve_sparsest_all_threads")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=15)
    parser.add_argument("--eps", type=float, default=0.01)
    parser.add_argument("--nmax", type=int, default=15, help="reference: sizes 0..nmax-1")
    parser.add_argument("--reference-instances", type=int, default=8000)
    parser.add_argument("--instances", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    uptime_before = uptime()
    ref_targets, ref_candidates = instances(args.reference_instances, args.n, args.seed)
    big_targets, big_candidates = instances(args.instances, args.n, args.seed + 1)
    threads = numba.get_num_threads()
    solve(big_targets[:64], big_candidates[:64])  # compile or load the kernels: not timed
    solve_sparsest(big_targets[:64], big_candidates[:64], args.eps)

    reference_out: list[tuple[float, tuple[int, ...], float]] = []
    seconds = {key: 0.0 for key in ("reference", *OURS)}
    per_round: list[dict[str, float]] = []
    ref_chunks = np.array_split(np.arange(args.reference_instances), args.rounds)
    big_chunks = np.array_split(np.arange(args.instances), args.rounds)
    for round_index, (ref_rows, big_rows) in enumerate(zip(ref_chunks, big_chunks, strict=True)):
        spent: dict[str, float] = {}
        start = time.perf_counter()
        for row in ref_rows:
            reference_out.append(
                exhaustive_search(ref_targets[row], ref_candidates[row], args.eps, args.nmax)
            )
        spent["reference"] = time.perf_counter() - start
        targets, candidates = big_targets[big_rows], big_candidates[big_rows]
        numba.set_num_threads(1)
        spent["solve"] = timed(solve, targets, candidates)
        spent["solve_sparsest"] = timed(solve_sparsest, targets, candidates, args.eps)
        numba.set_num_threads(threads)
        spent["solve_all_threads"] = timed(solve, targets, candidates)
        spent["solve_sparsest_all_threads"] = timed(solve_sparsest, targets, candidates, args.eps)
        for key, value in spent.items():
            seconds[key] += value
        reference_rate = len(ref_rows) / spent["reference"]
        per_round.append({
            "load_1min": os.getloadavg()[0],
            "reference_per_second": reference_rate,
            **{f"ratio_{key}": len(big_rows) / spent[key] / reference_rate for key in OURS},
        })
        print(f"round {round_index + 1}/{args.rounds}: load {per_round[-1]['load_1min']:.2f}, "
              f"ratios solve {per_round[-1]['ratio_solve']:.0f}, "
              f"solve_sparsest {per_round[-1]['ratio_solve_sparsest']:.0f}", file=sys.stderr)
    uptime_after = uptime()

    rate = {
        "reference": args.reference_instances / seconds["reference"],
        **{key: args.instances / seconds[key] for key in OURS},
    }
    ratios = {
        key: {
            "median": float(np.median([r[f"ratio_{key}"] for r in per_round])),
            "min": float(min(r[f"ratio_{key}"] for r in per_round)),
            "max": float(max(r[f"ratio_{key}"] for r in per_round)),
            "pooled": rate[key] / rate["reference"],
        }
        for key in OURS
    }

    # errors on the very instances the reference solved
    closest = solve(ref_targets, ref_candidates)
    sparsest = solve_sparsest(ref_targets, ref_candidates, args.eps)
    ref_errors = np.array([error for _, _, error in reference_out])
    ref_sizes = np.array([len(members) for _, members, _ in reference_out])
    ref_canonical = np.array(
        [
            canonical_error(ref_targets[row], ref_candidates[row], members)
            for row, (_, members, _) in enumerate(reference_out)
        ]
    )
    ref_within = ref_errors <= args.eps
    checks = {
        "solve_error_never_larger": bool((closest.error <= ref_canonical).all()),
        "solve_sparsest_error_never_larger": bool((sparsest.error <= ref_canonical).all()),
        "largest_raw_excess_solve": float((closest.error - ref_errors).max()),
        "largest_raw_excess_solve_sparsest": float((sparsest.error - ref_errors).max()),
        "sparsest_same_size_where_reference_within_eps": bool(
            (sparsest.size[ref_within] == ref_sizes[ref_within]).all()
        ),
        "reference_failures": int((~ref_within).sum()),
        "solve_sparsest_failures": int((~np.asarray(sparsest.within)).sum()),
    }
    document = {
        "benchmark": "subset sum, closest subset vs LT-existence exhaustive search",
        "n": args.n,
        "eps": args.eps,
        "reference_nmax": args.nmax,
        "reference_instances": args.reference_instances,
        "instances": args.instances,
        "rounds": args.rounds,
        "seed": args.seed,
        "threads_headline": 1,
        "threads_all": threads,
        "seconds": seconds,
        "instances_per_second": rate,
        "ratio_solve": ratios["solve"]["median"],
        "ratio_solve_sparsest": ratios["solve_sparsest"]["median"],
        "ratios": ratios,
        "rounds_detail": per_round,
        "errors": {
            "reference": distribution(ref_errors),
            "solve": distribution(np.asarray(closest.error)),
            "solve_sparsest": distribution(np.asarray(sparsest.error)),
        },
        "mean_subset_size": {
            "reference": float(ref_sizes.mean()),
            "solve": float(np.mean(closest.size)),
            "solve_sparsest": float(np.mean(sparsest.size)),
        },
        "checks": checks,
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "numba_threads": threads,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "uptime_before": uptime_before,
            "uptime_after": uptime_after,
        },
    }
    write_text_atomic(args.output, json.dumps(document, indent=2) + "\n")

    print(f"n = {args.n}, eps = {args.eps}, reference sizes 0..{args.nmax - 1}; "
          f"{args.reference_instances} reference instances, {args.instances} for ltbounds")
    print(f"{'solver':<34}{'instances/s':>14}{'median ratio':>14}{'min':>8}{'max':>8}")
    print(f"{'reference (LT-existence), 1 core':<34}{rate['reference']:>14,.0f}{1:>14}")
    for key, label in (
        ("solve", "solve, 1 thread"),
        ("solve_sparsest", "solve_sparsest, 1 thread"),
        ("solve_all_threads", f"solve, {threads} threads (info)"),
        ("solve_sparsest_all_threads", f"solve_sparsest, {threads} thr. (info)"),
    ):
        r = ratios[key]
        print(f"{label:<34}{rate[key]:>14,.0f}{r['median']:>14.0f}{r['min']:>8.0f}{r['max']:>8.0f}")
    print("\nerrors on the reference's instances")
    print(f"{'':<16}" + "".join(f"{name:>12}" for name in ("mean", "q0.5", "q0.9", "q0.99", "q0.999", "max")))
    for key in ("reference", "solve", "solve_sparsest"):
        stats = document["errors"][key]
        print(f"{key:<16}" + "".join(
            f"{stats[name]:>12.3g}" for name in ("mean", "q0.5", "q0.9", "q0.99", "q0.999", "max")
        ))
    print(f"\nchecks: {checks}")
    print(f"uptime before: {uptime_before}\nuptime after:  {uptime_after}\nwrote {args.output}")
    ok = checks["solve_error_never_larger"] and checks["solve_sparsest_error_never_larger"]
    if not ok or not math.isfinite(document["ratio_solve"]):
        print("FAILED: an ltbounds error exceeds the reference's", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
