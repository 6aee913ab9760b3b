"""Wall time of the quick CLI verbs as a user runs them, against the interpreter's start-up.

Goals that used to be timed assertions in the tests (a timed assertion fails on a loaded
machine and proves nothing on a fast one) are measured here instead:

* ``ltbounds table --preset resnet20 --eps 0.01 --delta 0.01`` prints every row in under 5 s;
* ``ltbounds prove proofs/ --json`` checks every shipped obligation in under 60 s.

Each command runs as a subprocess ``--rounds`` times (after one untimed warm-up, which fills
numba's and Python's caches); the baseline, measured in the same run, is
``python -m ltbounds --version`` (interpreter start-up plus importing the CLI). Reported per
command: the median seconds, the goal, and the ratio to the baseline. Writes
``benchmarks/results/cli.json``.

    python benchmarks/bench_cli.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = {
    "baseline: ltbounds --version": (["--version"], None),
    "table --preset resnet20": (["table", "--preset", "resnet20", "--eps", "0.01", "--delta", "0.01"], 5.0),
    "prove proofs/": (["prove", str(ROOT / "proofs"), "--json"], 60.0),
}


def _seconds(arguments: list[str]) -> float:
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "ltbounds", *arguments], capture_output=True, text=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"ltbounds {' '.join(arguments)} exited {completed.returncode}: {completed.stderr.strip()}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for label, (arguments, goal) in COMMANDS.items():
        _seconds(arguments)
        times = [_seconds(arguments) for _ in range(args.rounds)]
        results[label] = {"median_s": statistics.median(times), "all_s": times, "goal_s": goal}
    base = results["baseline: ltbounds --version"]["median_s"]
    print(f"{'command':28} {'median s':>9} {'goal s':>7} {'x start-up':>10}")
    for label, row in results.items():
        row["ratio_to_baseline"] = row["median_s"] / base
        goal = "" if row["goal_s"] is None else f"{row['goal_s']:.0f}"
        print(f"{label:28} {row['median_s']:9.2f} {goal:>7} {row['ratio_to_baseline']:10.1f}")
    document = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "rounds": args.rounds,
        "results": results,
    }
    out = ROOT / "benchmarks" / "results" / "cli.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
