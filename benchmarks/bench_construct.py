"""Construction time and sampled-evaluation time of tickets, against the previous code paths.

Run ``python benchmarks/bench_construct.py`` (about half an hour on the shared 2-core machine;
``--targets`` and ``--no-baseline`` shorten it). For every target (the embedded digits targets
and the SynFlow-pruned MNIST CNN of RelationalML/LT-existence, ``/work/shared/data`` or
``--mnist``) at ε = 0.01, seed 0, depth L+1, the default ρ of the subset-sum lemma, it measures

* **construction**: seconds of :func:`ltbounds.construct.construct`, and the share spent in
  the subset-sum solver; the baseline, in the same process, is the same construction with the
  sparsest search run by size on every instance (``solver._SCREEN_WITHIN = -1``: what every
  call did before screening), and the two tickets are compared array by array (they must be
  identical);
* **evaluation**: seconds of :func:`~ltbounds.construct.evaluation.max_sampled_error` over
  10 000 inputs (1 000 for MNIST); the baseline, in the same process, is the previous path: the
  full ticket network (no dead units dropped), convolutions by im2col and a scipy CSR product
  for matrices at most 10 % nonzero with ≥ 100 000 entries, dense layers by ``(csr @ x.T).T``,
  re-implemented below as it was (batches of 500 inputs). On MNIST the baseline runs on
  ``--mnist-baseline-inputs`` inputs (default 48, one batch: about 40 MB of activations per
  input, 0.2–0.6 s per input) and is compared per input; the new path without dropping dead
  units is timed on the same inputs, to separate the kernels' gain from the compaction's.

It prints a table and writes ``benchmarks/results/construct.json``. Timings are single runs of
long jobs; the 1-minute load average is recorded before and after each (the machine is shared).
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

import numba
import numpy as np

import ltbounds.construct.solve as construct_solve
from ltbounds._io_util import write_text_atomic
from ltbounds.backend import to_numpy
from ltbounds.construct import construct, evaluation
from ltbounds.construct.evaluation import max_sampled_error
from ltbounds.errors import InvalidInput
from ltbounds.nets import Conv1d, Conv2d, Dense, TargetNet, list_embedded, load_embedded
from ltbounds.nets._gather import window_indices, window_output_shape
from ltbounds.nets.resolve import resolve_target
from ltbounds.subsetsum import solver

RESULTS = Path(__file__).resolve().parent / "results" / "construct.json"
MNIST = Path("/work/shared/data/lt_existence_mnist_cnn.npz")
EPS = 0.01
SEED = 0


def load() -> float:
    return os.getloadavg()[0]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# -- construction ----------------------------------------------------------------------------


class SubsetSumClock:
    """Accumulates the seconds the construction spends in the subset-sum solver."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._originals = {name: getattr(construct_solve, name) for name in ("solve", "solve_sparsest")}

    def __enter__(self) -> SubsetSumClock:
        for name, function in self._originals.items():
            setattr(construct_solve, name, self._timed(function))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, function in self._originals.items():
            setattr(construct_solve, name, function)

    def _timed(self, function: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return wrapper


def timed_construction(target: TargetNet, *, screening: bool) -> tuple[Any, float, float]:
    saved = solver._SCREEN_WITHIN
    solver._SCREEN_WITHIN = saved if screening else -1.0
    try:
        with SubsetSumClock() as clock:
            start = time.perf_counter()
            ticket = construct(target, eps=EPS, seed=SEED)
            seconds = time.perf_counter() - start
    finally:
        solver._SCREEN_WITHIN = saved
    return ticket, seconds, clock.seconds


def same_ticket(first: Any, second: Any) -> bool:
    pairs = zip(
        first.kept_weights + first.kept_biases + first.parameter_errors,
        second.kept_weights + second.kept_biases + second.parameter_errors,
        strict=True,
    )
    return all(np.array_equal(a, b) for a, b in pairs) and first.metadata["layer_errors"] == second.metadata["layer_errors"]


# -- the previous evaluation path (baseline), as it was ----------------------------------------


def _previous_sparse(layer: Any) -> Any:
    matrix = layer.weight.reshape(layer.weight.shape[0], -1)
    if matrix.size >= 100_000 and np.count_nonzero(matrix) <= 0.1 * matrix.size:
        from scipy import sparse  # noqa: PLC0415

        return sparse.csr_array(matrix)
    return None


def _previous_conv(layer: Any, x: np.ndarray, sparse: Any) -> np.ndarray:
    batch, channels = x.shape[:2]
    spatial = tuple(int(s) for s in x.shape[2:])
    kernel = tuple(int(k) for k in layer.weight.shape[2:])
    out_spatial = window_output_shape(spatial, kernel, layer.stride, layer.padding)
    indices = window_indices(spatial, kernel, layer.stride, layer.padding)
    positions, entries = math.prod(out_spatial), math.prod(kernel)
    matrix = layer.weight.reshape(layer.out_channels, -1)
    chunk = max(1, (256 * 2**20) // (8 * channels * entries * positions))
    outputs = []
    for start in range(0, batch, chunk):
        part = x[start : start + chunk].reshape(-1, channels, math.prod(spatial))
        if any(layer.padding):
            part = np.concatenate([part, np.zeros((part.shape[0], channels, 1))], axis=2)
        cols = np.take(part, indices, axis=2).reshape(part.shape[0], channels * entries, positions)
        cols = np.transpose(cols, (1, 0, 2)).reshape(channels * entries, -1)
        out = matrix @ cols if sparse is None else sparse @ cols
        out = np.transpose(out.reshape(layer.out_channels, part.shape[0], positions), (1, 0, 2))
        if layer.bias is not None:
            out = out + layer.bias.reshape(-1, 1)
        outputs.append(out)
    return np.concatenate(outputs).reshape(batch, layer.out_channels, *out_spatial)


def previous_forward(network: TargetNet, x: np.ndarray, cache: dict[int, Any]) -> np.ndarray:
    """The forward pass of the code before this change (im2col + scipy CSR, full network)."""
    activated = [i for i, layer in enumerate(network.layers) if layer.is_linear][:-1]
    for index, layer in enumerate(network.layers):
        if isinstance(layer, (Conv1d, Conv2d, Dense)):
            if index not in cache:
                cache[index] = _previous_sparse(layer)
            sparse = cache[index]
            if isinstance(layer, Dense):
                x = x @ layer.weight.T if sparse is None else (sparse @ x.T).T
                x = x if layer.bias is None else x + layer.bias
            else:
                x = _previous_conv(layer, x, sparse)
        else:
            x = layer.forward(x)
        if index in activated:
            x = network.activation_function.forward(x)
    return x


def previous_max_sampled_error(target: TargetNet, ticket: Any, samples: int) -> float:
    inputs = to_numpy(target.sample_inputs(samples, SEED))
    network = ticket.network()
    batch = 500  # the previous batch size (on MNIST about 40 MB of activations per input)
    cache: dict[int, Any] = {}
    worst = 0.0
    for start in range(0, samples, batch):
        chunk = inputs[start : start + batch]
        difference = previous_forward(network, chunk, cache) - to_numpy(target.forward(chunk))
        worst = max(worst, float(np.max(np.abs(difference))))
    return worst


# -- driver ------------------------------------------------------------------------------------


def run_target(name: str, target: TargetNet, samples: int, baseline: bool, baseline_samples: int) -> dict[str, Any]:
    row: dict[str, Any] = {"target": name, "eps": EPS, "seed": SEED, "depth": "L+1"}
    load_start = load()
    ticket, seconds, subset_sum = timed_construction(target, screening=True)
    row.update(
        rho=ticket.metadata["rho"],
        source_params=ticket.source_params,
        ticket_params=ticket.ticket_params,
        target_params=ticket.metadata["target_params"],
        missed_subset_sums=ticket.metadata["missed_subset_sums"],
        construction_seconds=seconds,
        subset_sum_seconds=subset_sum,
        subset_sum_share=subset_sum / seconds,
    )
    if baseline:
        previous, previous_seconds, previous_subset_sum = timed_construction(target, screening=False)
        row.update(
            baseline_construction_seconds=previous_seconds,
            baseline_subset_sum_seconds=previous_subset_sum,
            construction_speedup=previous_seconds / seconds,
            identical_tickets=same_ticket(ticket, previous),
        )
    max_sampled_error(target, ticket, 2, SEED)  # numba cache load, plans
    start = time.perf_counter()
    error = max_sampled_error(target, ticket, samples, SEED)
    forward = time.perf_counter() - start
    row.update(samples=samples, forward_seconds=forward, sampled_error=error)
    if baseline:
        count = min(samples, baseline_samples)
        if count < samples:  # the new path on the same inputs, for a per-input comparison
            start = time.perf_counter()
            same_inputs_error = max_sampled_error(target, ticket, count, SEED)
            row["forward_seconds_on_baseline_inputs"] = time.perf_counter() - start
        previous_max_sampled_error(target, ticket, 1)
        start = time.perf_counter()
        previous_error = previous_max_sampled_error(target, ticket, count)
        previous_seconds = time.perf_counter() - start
        mine = row.get("forward_seconds_on_baseline_inputs", forward)
        with_dead_units = evaluation.drop_dead_units
        evaluation.drop_dead_units = lambda network: network  # new kernels, full network
        try:
            start = time.perf_counter()
            max_sampled_error(target, ticket, count, SEED)
            row["forward_seconds_without_dropping_dead_units"] = time.perf_counter() - start
        finally:
            evaluation.drop_dead_units = with_dead_units
        row.update(
            baseline_samples=count,
            baseline_forward_seconds=previous_seconds,
            forward_speedup=previous_seconds / mine,
            baseline_sampled_error=previous_error,
            sampled_error_difference=abs(previous_error - (error if count == samples else same_inputs_error)),
        )
    row["load_average"] = [load_start, load()]
    return row


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(rows: list[dict[str, Any]]) -> str:
    columns = [
        ("target", "target"), ("ρ", "rho"), ("source params", "source_params"),
        ("ticket params", "ticket_params"), ("construct s", "construction_seconds"),
        ("subset-sum share", "subset_sum_share"), ("before s", "baseline_construction_seconds"),
        ("speed-up", "construction_speedup"), ("identical", "identical_tickets"),
        ("inputs", "samples"), ("forward s", "forward_seconds"),
        ("fwd speed-up", "forward_speedup"), ("sampled error", "sampled_error"),
    ]
    lines = ["| " + " | ".join(label for label, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if "skipped" in row:
            continue
        lines.append("| " + " | ".join(_fmt(row.get(key)) for _, key in columns) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", nargs="*", help="embedded names and/or 'mnist' (default: all)")
    parser.add_argument("--mnist", type=Path, default=MNIST, help="the LT-existence MNIST target (.npz)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the previous-path baselines")
    parser.add_argument("--samples", type=int, default=10_000, help="inputs for embedded targets")
    parser.add_argument("--mnist-samples", type=int, default=1_000, help="inputs for MNIST")
    parser.add_argument("--mnist-baseline-inputs", type=int, default=48)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = args.targets or [*list_embedded(), "mnist"]
    rows = []
    for name in names:
        try:
            if name == "mnist":
                target = resolve_target(str(args.mnist))
                row = run_target("lt_existence_mnist_cnn", target, args.mnist_samples, not args.no_baseline, args.mnist_baseline_inputs)
            else:
                row = run_target(name, load_embedded(name), args.samples, not args.no_baseline, args.samples)
        except InvalidInput as exc:  # e.g. residual targets, which construct refuses for now
            row = {"target": name, "skipped": str(exc)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(table(rows))
    document = {
        "benchmark": "construct",
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
        },
        "settings": {"eps": EPS, "seed": SEED, "depth": "L+1", "rho": "default (subset-sum lemma)"},
        "run": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.output, json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
