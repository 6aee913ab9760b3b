"""``ltbounds construct``: prune a random source network into a ticket for a target.

``--backend`` picks the array namespace on which the source weights are drawn and the sampled
error and digits scores are computed (numpy by default; ``cupy`` needs CuPy and a CUDA GPU and
is refused in one line, before anything is written, otherwise). The ticket file is the same
byte for byte on every backend: the backend is recorded in ``--json``'s ``provenance``, never
in the ticket (see :func:`ltbounds.construct.construct`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltbounds.cli._common import JsonOption, emit_json, stderr_console, stdout_console
from ltbounds.cli._options import BackendOption, resolve_backend
from ltbounds.errors import InvalidInput
from ltbounds.validation import (
    check_int,
    check_open_unit,
    check_output_path,
    check_positive,
    check_samples,
)

if TYPE_CHECKING:
    from ltbounds.nets import TargetNet

# The constructions (sympy, numba kernels) and the target loaders are imported inside the
# functions that use them, so that ``ltbounds --help`` does not load them.


def load_target_for(spec: str, activation: str | None, sidecar: Path | None) -> TargetNet:
    """Resolve TARGET; ``digits_cnn`` + ``--activation tanh`` picks ``digits_cnn_tanh``."""
    from ltbounds.nets import list_embedded  # noqa: PLC0415
    from ltbounds.nets.resolve import resolve_target  # noqa: PLC0415

    if activation is not None and f"{spec}_{activation}" in list_embedded():
        return resolve_target(f"{spec}_{activation}")
    target = resolve_target(spec, sidecar=sidecar, activation=activation)
    if activation is not None and target.activation != activation:
        raise InvalidInput(
            f"activation={activation!r} differs from the target's {target.activation!r}; "
            f"embedded variants: {', '.join(n for n in list_embedded() if n.startswith(spec))}"
        )
    return target


def construction_progress(enabled: bool) -> Progress:
    """A per-layer progress bar on stderr."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} layers"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=not enabled,
    )


def build_row(
    target: TargetNet,
    *,
    eps: float,
    delta: float,
    depth: str,
    rho: int | None,
    param_eps: float | None,
    seed: int,
    objective: str,
    samples: int,
    show_progress: bool,
    backend: str = "numpy",
    xp: Any | None = None,
) -> tuple[dict[str, Any], Any]:
    """Construct one ticket and measure it; returns the public JSON row and the ticket.

    ``xp`` is the namespace called ``backend`` (:func:`ltbounds.backend.get_backend`; None:
    numpy): the source weights are drawn and the forward passes run there.
    """
    from ltbounds.construct import construct  # noqa: PLC0415
    from ltbounds.construct.evaluation import digits_scores, max_sampled_error  # noqa: PLC0415
    from ltbounds.construct.width import default_rho  # noqa: PLC0415
    from ltbounds.provenance import provenance  # noqa: PLC0415

    check_positive("eps", eps)
    check_open_unit("delta", delta)
    check_samples("samples", samples, target.input_shape, minimum=0)
    start = time.perf_counter()
    with construction_progress(show_progress) as bar:
        task = bar.add_task(f"{target.name} ({depth})", total=target.depth)

        def report(message: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=f"{target.name}: {message}")

        ticket = construct(
            target, eps=eps, delta=delta, depth=depth, rho=rho, param_eps=param_eps,
            seed=seed, objective=objective, progress=report, xp=xp,
        )
    seconds = time.perf_counter() - start
    summary = ticket.summary()
    tolerance = min(summary["tolerances"])
    row = {
        "target": target.name,
        "activation": target.activation,
        "depth": depth,
        "eps": eps,
        "delta": delta,
        "rho": summary["rho"],
        "rho_theory": default_rho(target, tolerance, delta, depth=depth),
        "rho_origin": summary["rho_origin"],
        "seed": seed,
        "source_widths": summary["source_widths"],
        "source_params": summary["source_params"],
        "ticket_params": summary["ticket_params"],
        "target_params": summary["target_params"],
        "sparsity": summary["sparsity"],
        "tolerances": summary["tolerances"],
        "missed_subset_sums": summary["missed_subset_sums"],
        "worst_parameter_error": summary["worst_parameter_error"],
        "predicted_error": summary["predicted_error"],
        "samples": samples,
        "max_sampled_error": max_sampled_error(target, ticket, samples, seed, xp=xp) if samples else None,
        **digits_scores(target, ticket, xp=xp),
        "seconds": seconds,
        "provenance": provenance(seed=seed, backend=backend),
    }
    return row, ticket


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


#: (label, key) of the rows of the summary table, one column per construction.
SUMMARY_ROWS = (
    ("activation φ", "activation"),
    ("construction", "depth"),
    ("ρ used / theory", None),
    ("source widths", "source_widths"),
    ("source params", "source_params"),
    ("ticket params", "ticket_params"),
    ("target params", "target_params"),
    ("missed subset sums", "missed_subset_sums"),
    ("max sampled error", "max_sampled_error"),
    ("attacked error", "attacked_error"),
    ("certified bound", "certified_error"),
    ("verdict", "verdict"),
    ("predicted bound", "predicted_error"),
    ("requested ε", "eps"),
    ("target accuracy", "target_accuracy"),
    ("ticket accuracy", "ticket_accuracy"),
    ("agreement", "agreement"),
    ("seconds", "seconds"),
)


def summary_table(rows: list[dict[str, Any]], title: str) -> Table:
    """Target vs ticket: one column per construction, one row per quantity."""
    table = Table(title=title)
    table.add_column("", style="bold")
    for row in rows:
        table.add_column(str(row["target"]).removeprefix("digits_"), justify="right")
    for label, key in SUMMARY_ROWS:
        if key is None:
            cells = [f"{row['rho']} / {row['rho_theory']}" for row in rows]
        elif not any(key in row for row in rows):
            continue
        else:
            cells = [_fmt(row.get(key)) for row in rows]
        table.add_row(label, *cells)
    return table


def construct_command(
    target: Annotated[str, typer.Argument(help="Embedded target name (e.g. digits_cnn_relu) or an .npz file.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the ticket (.npz).")],
    eps: Annotated[float, typer.Option(help="Requested sup-norm output error ε on the input domain.")] = 0.01,
    delta: Annotated[float, typer.Option(help="Failure probability δ of the theorem (sets the default ρ).")] = 0.05,
    depth: Annotated[str, typer.Option(help="Construction: L+1 (NeurIPS 2022) or 2L (ICML 2022).")] = "L+1",
    rho: Annotated[int | None, typer.Option(help="Width factor ρ; default: the least the subset-sum lemma demands.")] = None,
    param_eps: Annotated[float | None, typer.Option(help="Per-parameter tolerance for every layer (default: composition allotment).")] = None,
    activation: Annotated[str | None, typer.Option(help="Activation of the target (picks the embedded variant, or names it for a file that does not record one).")] = None,
    sidecar: Annotated[Path | None, typer.Option(help="Architecture sidecar JSON for an .npz target.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random source network.")] = 0,
    objective: Annotated[str, typer.Option(help="sparse (fewest kept weights) or closest (smallest errors).")] = "sparse",
    samples: Annotated[int, typer.Option(help="Domain inputs on which to measure the output error (0: skip).")] = 1000,
    backend: BackendOption = "numpy",
    json_output: JsonOption = False,
) -> None:
    """Prune a random source network into a ticket that approximates TARGET."""
    from ltbounds.construct import DEPTHS  # noqa: PLC0415

    if depth not in DEPTHS:
        raise InvalidInput(f"depth={depth!r} must be one of {', '.join(map(repr, DEPTHS))}")
    # Every option is checked before the (possibly long) construction starts.
    check_output_path("output", output)
    check_positive("eps", eps)
    check_open_unit("delta", delta)
    check_int("seed", seed, minimum=0, maximum=2**64 - 1)
    if rho is not None:
        check_int("rho", rho, minimum=1)
    if param_eps is not None:
        check_positive("param_eps", param_eps)
    xp = resolve_backend(backend)
    net = load_target_for(target, activation, sidecar)
    row, ticket = build_row(
        net, eps=eps, delta=delta, depth=depth, rho=rho, param_eps=param_eps, seed=seed,
        objective=objective, samples=samples, show_progress=not json_output, backend=backend, xp=xp,
    )
    ticket.save(output)
    row["ticket"] = str(output)
    if json_output:
        emit_json(row)
        return
    stdout_console.print(summary_table([row], f"ticket written to {output}"))
    stdout_console.print(
        f"source widths {row['source_widths']}, sparsity {row['sparsity']:.2%}, worst per-parameter "
        f"error {row['worst_parameter_error']:.3g} (tolerances {', '.join(f'{t:.2g}' for t in row['tolerances'])})"
    )


def register(app: typer.Typer) -> None:
    """Add ``construct`` to the CLI."""
    app.command("construct")(construct_command)


__all__ = ["build_row", "construct_command", "load_target_for", "register", "summary_table"]
