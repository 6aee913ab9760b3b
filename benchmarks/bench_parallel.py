"""The concentration grid serially and on a local process pool: same rows, how much faster?

Run ``python benchmarks/bench_parallel.py`` (a few minutes on the shared 2-core machine;
``--quick`` for a smoke run). The grid is n = 8..24 x eps in {0.1, 0.01, 0.001} x 10,000
trials (uniform candidates, seed 0): 17 x 10 = 170 work items of one block each. Three
configurations are timed in this process, in alternating rounds so that load from other
processes falls on all of them:

* ``serial, 1 thread``: ``workers=1`` with numba limited to one thread: one core, the
  reading of "serially" in the goal of issue 11 (2 workers at least 1.7x faster);
* ``serial, all threads``: ``workers=1`` with numba's default threads (one per core): what an
  in-process run does anyway, since the coverage kernel is parallel over rows;
* ``pool, 2 workers``: ``workers=2`` (each worker process gets one numba thread), including
  the start of the pool (fresh ``spawn`` processes) in every round.

Every configuration must give the same rows (asserted; exit status 1 otherwise). The
1-minute load average is recorded before and after each timing. Writes
``benchmarks/results/parallel.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numba
import numpy as np

from ltbounds._io_util import write_text_atomic
from ltbounds.subsetsum.concentration import concentration_grid

RESULTS = Path(__file__).resolve().parent / "results" / "parallel.json"


def load() -> float:
    return os.getloadavg()[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 8..16, 1,000 trials")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (best kept)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=RESULTS)
    arguments = parser.parse_args()
    ns = list(range(8, 17 if arguments.quick else 25))
    eps_values = [0.1, 0.01, 0.001]
    trials = 1000 if arguments.quick else 10_000
    default_threads = numba.get_num_threads()

    def serial_one_thread():
        numba.set_num_threads(1)
        try:
            return concentration_grid(ns, eps_values, trials, seed=0, workers=1)
        finally:
            numba.set_num_threads(default_threads)

    configurations = {
        "serial, 1 thread": serial_one_thread,
        "serial, all threads": lambda: concentration_grid(ns, eps_values, trials, seed=0, workers=1),
        f"pool, {arguments.workers} workers": lambda: concentration_grid(
            ns, eps_values, trials, seed=0, workers=arguments.workers
        ),
    }
    concentration_grid([8, 20], eps_values, 64, seed=0, workers=1)  # numba: compile / load cache
    timings: dict[str, list[dict[str, float]]] = {name: [] for name in configurations}
    rows: dict[str, list] = {}
    for round_number in range(arguments.rounds):
        for name, run in configurations.items():
            before = load()
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
            timings[name].append({"seconds": seconds, "load_before": before, "load_after": load()})
            rows[name] = result
            print(f"round {round_number}: {name}: {seconds:.1f} s (load {before:.2f})", flush=True)
    reference = rows["serial, 1 thread"]
    identical = all(result == reference for result in rows.values())
    best = {name: min(t["seconds"] for t in runs) for name, runs in timings.items()}
    pool = f"pool, {arguments.workers} workers"
    document = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "grid": {"ns": ns, "eps": eps_values, "trials": trials, "seed": 0, "items": len(ns) * -(-trials // 1024)},
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cores": len(os.sched_getaffinity(0)),
            "numba_default_threads": default_threads,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "timings": timings,
        "best_seconds": best,
        "ratios": {
            f"{pool} vs serial, 1 thread": best["serial, 1 thread"] / best[pool],
            f"{pool} vs serial, all threads": best["serial, all threads"] / best[pool],
        },
        "goal": "pool of 2 workers >= 1.7x faster than serial",
        "identical_rows": identical,
        "uptime": os.popen("uptime").read().strip(),
    }
    write_text_atomic(arguments.output, json.dumps(document, indent=2) + "\n")
    for name, seconds in best.items():
        print(f"{name:>24}: {seconds:8.1f} s")
    for name, ratio in document["ratios"].items():
        print(f"{name}: {ratio:.2f}x")
    print(f"identical rows: {identical}; {document['uptime']}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
