"""Forward pass of a compacted residual ticket: direct window gather against the old im2col.

Run ``python benchmarks/bench_forward.py [--ticket PATH]``. It builds (or loads) the ticket of
``digits_resnet_tanh`` at ε = 0.01, seed 0, compacts it as :func:`max_sampled_error` does (its
convolutions, 128 to 550 channels and 10 – 31 % dense, take the dense im2col path of
:mod:`ltbounds.nets.conv`) and times its forward pass over ``--samples`` domain inputs in the
batches :func:`max_sampled_error` uses. Every round times the default gather (the window matrix
gathered directly in the layout of the matrix product) and the old per-sample gather plus
transposed copy (``conv.DIRECT_GATHER_MIN_CHANNELS`` set past every layer, which selects the
old code; tests/test_nets_conv.py holds it to the verbatim old function) back to back in one
process (the machine is shared), checks the outputs are bitwise equal, and reports the median
over rounds of the time ratio. Writes ``benchmarks/results/forward.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from ltbounds._io_util import write_text_atomic
from ltbounds.construct import construct
from ltbounds.construct.evaluation import batch_size, compact
from ltbounds.nets import conv
from ltbounds.nets.resolve import resolve_target
from ltbounds.ticket import Ticket

RESULTS = Path(__file__).resolve().parent / "results" / "forward.json"
TARGET = "digits_resnet_tanh"


def forward_all(network, inputs: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate(
        [network.forward(inputs[i : i + batch]) for i in range(0, len(inputs), batch)]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticket", type=Path, help="a saved ticket of digits_resnet_tanh (else built, ~1-3 min)")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    target = resolve_target(TARGET)
    if args.ticket is not None and args.ticket.exists():
        ticket = Ticket.load(args.ticket)
    else:
        ticket = construct(target, eps=0.01, seed=0)
        if args.ticket is not None:
            ticket.save(args.ticket)
    network = compact(ticket.network())
    batch = batch_size(network, target)
    inputs = target.sample_inputs(args.samples, 0)
    default = conv.DIRECT_GATHER_MIN_CHANNELS
    forward_all(network, inputs[:batch], batch)  # warm caches (index arrays, weight matrices)
    new_s, old_s = [], []
    for _ in range(args.rounds):
        conv.DIRECT_GATHER_MIN_CHANNELS = default
        start = time.perf_counter()
        new = forward_all(network, inputs, batch)
        middle = time.perf_counter()
        conv.DIRECT_GATHER_MIN_CHANNELS = 10**9  # every layer takes the old gather
        old = forward_all(network, inputs, batch)
        stop = time.perf_counter()
        conv.DIRECT_GATHER_MIN_CHANNELS = default
        if not np.array_equal(new, old):
            raise SystemExit("the two gathers give different forward outputs")
        new_s.append(middle - start)
        old_s.append(stop - middle)
    ratios = [o / n for n, o in zip(new_s, old_s, strict=True)]
    convs = [
        {"shape": list(layer.weight.shape), "stride": list(layer.stride), "density": float(np.mean(layer.weight != 0))}
        for block in network.layers
        for layer in (list(block.branch) + ([block.skip] if block.skip is not None else []) if hasattr(block, "branch") else [block])
        if isinstance(layer, conv._ConvNd)
    ]
    report = {
        "target": TARGET,
        "samples": args.samples,
        "batch": batch,
        "rounds": args.rounds,
        "convolutions": convs,
        "direct_gather_s": new_s,
        "old_gather_s": old_s,
        "direct_gather_median_s": float(np.median(new_s)),
        "old_gather_median_s": float(np.median(old_s)),
        "speedup_median": float(np.median(ratios)),
        "speedups": ratios,
        "identical": True,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(report, indent=2), flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
