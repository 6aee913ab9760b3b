"""``ltbounds bench``: the standard speed measurements, against a numpy baseline from the same run.

Each row times one job twice in this process: the **baseline** (numpy, one process: the
numba kernels with their threads, ``--workers 1``) and the **measured** configuration
(``--backend``, and ``--workers`` for the concentration grid). When the measured
configuration *is* the baseline (numpy, one worker), the job is timed once and the ratio is 1.
The ratio is a speed-up: baseline seconds / measured seconds (above 1: faster). Jobs:

* ``solver n=15``, ``solver n=24``: exact closest subset sum, :func:`ltbounds.subsetsum.solve`
  (numba kernel on numpy, the array-API twin on other namespaces), in instances/s;
* ``concentration``: :func:`~ltbounds.subsetsum.concentration_grid` over a small grid, in
  trials/s (other backends decide coverage with the array twin; ``--workers`` runs a pool);
* ``construct digits_cnn_relu``: :func:`ltbounds.construct.construct` (L+1, ε = 0.1) of the
  embedded CNN, in seconds, with the source weights drawn on ``--backend`` (``xp``); the
  ticket must be byte-identical to the baseline's, else the run stops with an error;
* ``construct ResNet-20``: the same for :func:`resnet20_target` (the ``resnet20`` preset's
  shape with random weights, CIFAR-shaped 3×32×32 inputs) at ε = 0.01 and a small stated
  ρ (8; 2 with ``--quick``): the theorem's ρ at that ε (the row's ``theorem_rho``, 171) is
  far beyond one machine (``benchmarks/bench_construct_residual.py`` projects its time); the
  row's ``missed`` counts the subset sums that miss at the small ρ (reported, not hidden);
* ``certify digits_cnn_relu``: :func:`ltbounds.certify.certify` of that ticket, in seconds,
  with sampling and the attack on ``--backend`` (the certified methods always run on the host).

Timings are the best of ``repeats`` runs after a warm-up (numba compiles or loads its cache
first). ``--quick`` shrinks every job to a smoke test (seconds in all; its figures mean little).

``--json`` prints one object: ``backend``, ``workers``, ``quick``, ``repeats``, ``machine``
(``platform``, ``processor``, ``cores``, ``python``, ``numpy``, ``numba``, ``load_average``
(1-minute, before and after), ``device``), and ``rows``: each with ``name``, ``unit``,
``baseline`` and ``measured`` (in ``unit``, ``null`` when not measured), ``ratio`` (speed-up,
or ``null``), ``size`` (what was timed) and ``note``; the construction rows also have
``missed`` (subset sums that missed their tolerance in the ticket), the ResNet-20 row
``theorem_rho``.
"""

from __future__ import annotations

import math
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ltbounds.cli._common import JsonOption, emit_json, stderr_console, stdout_console
from ltbounds.cli._options import BackendOption, WorkersOption, resolve_backend, resolve_workers
from ltbounds.errors import InvalidInput
from ltbounds.validation import check_int

#: Sizes of every job, full and ``--quick``.
SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "solver15": 20_000, "solver24": 200, "twin_fraction": 10,
        "grid": ([14, 15, 16, 17, 18], [0.01], 2048),
        "construct": {"eps": 0.1, "rho": 24, "param_eps": 0.002},
        "resnet20": {"eps": 0.01, "rho": 8},
        "certify": {"samples": 1000, "restarts": 2, "steps": 20, "budget": 4},
    },
    "quick": {
        "solver15": 500, "solver24": 4, "twin_fraction": 4,
        "grid": ([9, 10], [0.05], 256),
        "construct": {"eps": 0.1, "rho": 4, "param_eps": 0.01},
        "resnet20": {"eps": 0.01, "rho": 2},
        "certify": {"samples": 100, "restarts": 1, "steps": 2, "budget": 1,
                    "methods": ("composition",)},
    },
}
TARGET = "digits_cnn_relu"


def resnet20_target(seed: int = 0) -> Any:
    """ResNet-20 (CIFAR, He et al. 2016, n = 3; the ``resnet20`` preset) with random weights.

    A 3×3 stem 3→16, three stages of three blocks of two 3×3 convolutions (16, 32, 64
    channels; the first block of stages 2 and 3 has stride 2 and a 1×1 projection skip, the
    others identity skips), 8×8 average pooling and a dense 64→10 head; ReLU, 3×32×32 inputs
    in [0, 1]. Weights ``U[−s, s]`` with ``s = min(1, 1/√fan_in)`` (a He-like scale inside the
    [−1, 1] the subset-sum lemmas approximate), biases ``U[−0.1, 0.1]`` (batch norm folded),
    from ``numpy.random.default_rng(seed)``. Used by ``ltbounds bench`` and
    ``benchmarks/bench_construct_residual.py``.
    """
    import numpy as np  # noqa: PLC0415

    from ltbounds.nets import AvgPool2d, Conv2d, Dense, Flatten, ResidualBlock, TargetNet  # noqa: PLC0415

    rng = np.random.default_rng(seed)

    def conv(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> Conv2d:
        scale = min(1.0, 1.0 / math.sqrt(cin * kernel * kernel))
        return Conv2d(
            rng.uniform(-scale, scale, (cout, cin, kernel, kernel)),
            rng.uniform(-0.1, 0.1, cout),
            stride=stride,
            padding=kernel // 2,
        )

    layers: list[Any] = [conv(3, 16)]
    channels = 16
    for stage, width in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if (stage > 0 and block == 0) else 1
            skip = conv(channels, width, 1, stride) if (stride != 1 or channels != width) else None
            layers.append(ResidualBlock((conv(channels, width, 3, stride), conv(width, width)), skip, True))
            channels = width
    layers += [AvgPool2d(8), Flatten(), Dense(rng.uniform(-0.125, 0.125, (10, 64)), rng.uniform(-0.1, 0.1, 10))]
    return TargetNet(layers, (3, 32, 32), "relu", (0.0, 1.0), name="resnet20_random")


def _best(job: Callable[[], Any], repeats: int) -> float:
    """Best wall-clock seconds of ``repeats`` runs of ``job``."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
    return min(times)


def _row(
    name: str, unit: str, size: str, baseline: float | None, measured: float | None,
    *, per_second: float | None = None, note: str = "",
) -> dict[str, Any]:
    """A table row; ``baseline``/``measured`` are seconds, shown per second when
    ``per_second`` (the work count) is given."""
    ratio = None if baseline is None or measured is None else baseline / measured

    def shown(seconds: float | None) -> float | None:
        if seconds is None:
            return None
        return per_second / seconds if per_second is not None else seconds

    return {
        "name": name, "unit": unit, "size": size, "baseline": shown(baseline),
        "measured": shown(measured), "ratio": ratio, "note": note,
    }


def machine_info(backend: str, xp: Any) -> dict[str, Any]:
    """What the figures were measured on."""
    import numba  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from ltbounds.parallel import default_workers  # noqa: PLC0415

    processor = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    processor = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    device = "host CPU"
    if backend == "cupy":
        import cupy  # noqa: PLC0415  (only reached when --backend cupy was usable)

        properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        device = properties["name"].decode() if isinstance(properties["name"], bytes) else str(
            properties["name"]
        )
    return {
        "platform": platform.platform(),
        "processor": processor,
        "cores": default_workers(),
        "numba_threads": numba.get_num_threads(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "device": device,
        "namespace": getattr(xp, "__name__", str(xp)),
    }


def run_benchmarks(
    backend: str = "numpy",
    *,
    workers: int = 1,
    quick: bool = False,
    repeats: int | None = None,
    report: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Measure the standard set and return the document ``--json`` prints."""
    import numpy as np  # noqa: PLC0415

    from ltbounds.subsetsum import solve  # noqa: PLC0415
    from ltbounds.subsetsum.concentration import concentration_grid  # noqa: PLC0415

    xp = resolve_backend(backend)
    workers = check_int("--workers", workers, minimum=1)
    repeats = check_int("repeats", repeats if repeats is not None else (1 if quick else 2), minimum=1)
    sizes = SIZES["quick" if quick else "full"]
    same = backend == "numpy" and workers == 1
    say = report or (lambda message: None)
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    rows = []
    rng = np.random.default_rng(2024)

    for n, key in ((15, "solver15"), (24, "solver24")):
        say(f"solver n={n}")
        count = sizes[key]
        targets = rng.uniform(-1, 1, count)
        candidates = rng.uniform(-1, 1, (count, n))
        solve(targets[:2], candidates[:2])  # compile / load numba's cache
        baseline = _best(lambda t=targets, c=candidates: solve(t, c), repeats)
        measured, note, size = baseline, "", f"{count} instances"
        if not same:
            # The array twin is much slower than the kernel: time a fraction of the instances.
            part = max(1, count // sizes["twin_fraction"])
            on_t, on_c = xp.asarray(targets[:part]), xp.asarray(candidates[:part])
            solve(xp.asarray(targets[:1]), xp.asarray(candidates[:1]))
            measured = _best(lambda t=on_t, c=on_c: solve(t, c), repeats) * count / part
            note = f"{backend}: array-API twin on {part} instances, scaled"
        rows.append(_row(f"solver n={n}", "instances/s", size, baseline, measured,
                         per_second=count, note=note))

    say("concentration")
    ns, eps_values, trials = sizes["grid"]
    concentration_grid(ns[:1], eps_values, 64, seed=1, workers=1)  # warm-up

    def grid(**options: Any) -> Any:
        return concentration_grid(ns, eps_values, trials, seed=1, **options)

    expected = None
    baseline = _best(lambda: grid(workers=1), repeats)
    measured, note = baseline, ""
    if not same:
        expected = grid(workers=1)
        result: list[Any] = []
        measured = _best(
            lambda: result.__setitem__(slice(None), grid(workers=workers, backend=backend)),
            repeats,
        )
        if result != expected:
            raise InvalidInput(
                f"backend={backend!r}, workers={workers} gave other failure counts than numpy "
                "in one process; this is a bug, please report it"
            )
        note = f"{backend}, {workers} worker(s); same counts as the baseline"
    total = len(ns) * trials
    rows.append(_row(
        "concentration", "trials/s",
        f"n={ns[0]}..{ns[-1]} x {len(eps_values)} eps x {trials} trials", baseline, measured,
        per_second=total, note=note,
    ))

    say(f"construct {TARGET}")
    from ltbounds.nets.resolve import resolve_target  # noqa: PLC0415

    target = resolve_target(TARGET)
    settings = sizes["construct"]
    row, ticket = _construct_row(
        f"construct {TARGET}", target, settings, xp=xp, backend=backend, repeats=repeats,
        size=f"L+1, eps={settings['eps']}, rho={settings['rho']}, param_eps={settings['param_eps']}",
    )
    rows.append(row)

    say("construct ResNet-20")
    from ltbounds.construct import allot_tolerances  # noqa: PLC0415
    from ltbounds.construct.width import default_rho  # noqa: PLC0415

    settings = sizes["resnet20"]
    resnet = resnet20_target(0)
    theorem_rho = default_rho(resnet, min(allot_tolerances(resnet, settings["eps"])), 0.05, depth="L+1")
    row, _ = _construct_row(
        "construct ResNet-20", resnet, settings, xp=xp, backend=backend, repeats=repeats,
        size=f"ResNet-20 shape, random weights, 3x32x32, L+1, eps={settings['eps']}, rho={settings['rho']}",
        note=f"rho={settings['rho']}, not the theorem's rho={theorem_rho} at this eps (delta=0.05): "
        f"that source is about {(theorem_rho / settings['rho']) ** 2:,.0f}x larger (it grows as "
        "rho^2), infeasible here",
    )
    row["theorem_rho"] = theorem_rho
    rows.append(row)

    say(f"certify {TARGET}")
    from ltbounds.certify import certify  # noqa: PLC0415

    certify_settings = sizes["certify"]
    baseline = _best(lambda: certify(target, ticket, **certify_settings), repeats)
    measured, note = baseline, ""
    if backend != "numpy":
        measured = _best(lambda: certify(target, ticket, xp=xp, **certify_settings), repeats)
        note = f"{backend}: sampling and attack on {backend}, certified methods on the host (numpy)"
    rows.append(_row(
        f"certify {TARGET}", "s",
        ", ".join(f"{key}={value}" for key, value in certify_settings.items() if key != "methods"),
        baseline, measured, note=note,
    ))

    machine = machine_info(backend, xp)
    machine["load_average"] = [load_before, os.getloadavg()[0] if load_before is not None else None]
    return {
        "backend": backend, "workers": workers, "quick": quick, "repeats": repeats,
        "baseline": "numpy, one process (--workers 1)", "machine": machine, "rows": rows,
    }


def _construct_row(
    name: str, target: Any, settings: dict[str, Any], *, xp: Any, backend: str, repeats: int,
    size: str, note: str = "",
) -> tuple[dict[str, Any], Any]:
    """Time :func:`~ltbounds.construct.construct` of ``target`` on numpy and, unless it is
    numpy, with the source weights drawn on ``xp``; the two tickets must be byte-identical
    (compared as saved files). Returns the row and the ticket."""
    from ltbounds.construct import construct  # noqa: PLC0415

    tickets: list[Any] = []
    baseline = _best(lambda: tickets.append(construct(target, seed=0, **settings)), repeats)
    measured = baseline
    if backend != "numpy":
        measured = _best(lambda: tickets.append(construct(target, seed=0, xp=xp, **settings)), repeats)
        if _ticket_bytes(tickets[0]) != _ticket_bytes(tickets[-1]):
            raise InvalidInput(
                f"backend={backend!r} constructed another ticket for {name!r} than numpy; "
                "this is a bug, please report it"
            )
        note = "; ".join(filter(None, [note, f"{backend}: byte-identical ticket to numpy's"]))
    missed = int(tickets[-1].metadata["missed_subset_sums"])
    if missed:
        note = "; ".join(filter(None, [note, f"{missed:,} subset sums missed their tolerance"]))
    row = _row(name, "s", size, baseline, measured, note=note)
    row["missed"] = missed
    return row, tickets[-1]


def _ticket_bytes(ticket: Any) -> bytes:
    """The bytes :meth:`~ltbounds.ticket.Ticket.save` writes for ``ticket``."""
    with tempfile.TemporaryDirectory(prefix="ltbounds-bench-") as folder:
        path = Path(folder) / "ticket.npz"
        ticket.save(path)
        return path.read_bytes()


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _table(document: dict[str, Any]) -> Table:
    machine = document["machine"]
    load = machine["load_average"]
    table = Table(
        title=(
            f"ltbounds bench: backend {document['backend']}, workers {document['workers']}"
            f"{' (quick)' if document['quick'] else ''}"
        ),
        caption=(
            f"{machine['processor']}, {machine['cores']} cores ({machine['numba_threads']} numba "
            f"threads), device {machine['device']}; Python {machine['python']}, numpy "
            f"{machine['numpy']}, numba {machine['numba']}; load "
            f"{_number(load[0])} -> {_number(load[1])}. Ratio: baseline (numpy, one process) "
            f"time / measured time, best of {document['repeats']}."
        ),
    )
    for header in ("job", "unit", "baseline", "measured", "ratio"):
        table.add_column(header, justify="left" if header in ("job", "unit") else "right")
    for number, row in enumerate(document["rows"], start=1):
        mark = f" [{number}]" if row["note"] else ""
        table.add_row(
            f"{row['name']}{mark}\n[dim]{row['size']}[/]", row["unit"], _number(row["baseline"]),
            _number(row["measured"]), "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
        )
    return table


def _notes(document: dict[str, Any]) -> list[str]:
    return [
        f"[{number}] {row['note']}"
        for number, row in enumerate(document["rows"], start=1)
        if row["note"]
    ]


def bench_command(
    backend: BackendOption = "numpy",
    workers: WorkersOption = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke run: tiny jobs, seconds in all.")] = False,
    repeats: Annotated[
        int | None, typer.Option("--repeats", help="Runs per timing, best kept (default 2; 1 with --quick).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Time the standard jobs on a backend, against numpy in one process (same run)."""
    workers = resolve_workers(workers) or 1
    resolve_backend(backend)
    if repeats is not None:
        check_int("--repeats", repeats, minimum=1)
    with stderr_console.status("bench", spinner="dots") as status:
        document = run_benchmarks(
            backend, workers=workers, quick=quick, repeats=repeats,
            report=lambda job: status.update(f"bench: {job}"),
        )
    if json_output:
        emit_json(document)
        return
    stdout_console.print(_table(document))
    for note in _notes(document):
        stdout_console.print(note, markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` verb to ``app``."""
    app.command("bench")(bench_command)
