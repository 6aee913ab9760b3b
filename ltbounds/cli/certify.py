"""``ltbounds certify``: sampled <= certified <= eps for a ticket and its target.

Prints a table of the three numbers (and every method's bound) on stdout, progress on stderr.
Exit codes: 0 when the sandwich holds (whether or not eps is certified: the verdict says which),
3 when it fails (FALSIFIED: an input's error exceeds a certified bound; a bug or a false lemma),
1 for bad input (for example a ticket built for another target).

``--json`` prints one object with at least the keys ``target``, ``ticket``, ``eps``,
``sampled_error``, ``attacked_error``, ``certified_error``, ``certified_by``, ``margin``,
``verdict``, ``eps_status``, ``samples``, ``seconds`` and ``methods`` (per method ``linf``,
``l2``, ``seconds``); ``-o`` writes the same object, with the witness inputs, atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltbounds.certify import METHODS, certify
from ltbounds.certify._core import DEFAULT_BUDGET, DEFAULT_RESTARTS, DEFAULT_SAMPLES, DEFAULT_STEPS
from ltbounds.cli._common import (
    JsonOption,
    dumps,
    emit_json,
    stderr_console,
    stdout_console,
    write_text_atomic,
)
from ltbounds.errors import BoundViolation, InvalidInput
from ltbounds.nets.resolve import resolve_target
from ltbounds.ticket import Ticket
from ltbounds.verdict import Status

_STYLE = {
    Status.CERTIFIED: "bold green",
    Status.TESTED: "yellow",
    Status.UNKNOWN: "yellow",
    Status.FALSIFIED: "bold red",
}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def report_table(document: dict[str, Any]) -> Table:
    """The report as a rich table: empirical numbers, certified bounds, eps."""
    box = document["input_box"]
    table = Table(
        title=f"{document['target']}: ‖f_ticket − f_target‖ on [{box['low']:g}, {box['high']:g}]^{tuple(box['shape'])}"
    )
    table.add_column("quantity", style="bold")
    table.add_column("∞-norm", justify="right")
    table.add_column("2-norm", justify="right")
    table.add_column("kind")
    table.add_row(
        f"sampled ({document['samples']:,} points)",
        _fmt(document["sampled_error"]),
        _fmt(document["sampled_error_l2"]),
        "statistical",
    )
    table.add_row(
        f"attacked ({document['restarts']} restarts × {document['steps']} steps)",
        _fmt(document["attacked_error"]),
        _fmt(document["attacked_error_l2"]),
        "statistical",
    )
    for name, bound in document["methods"].items():
        marker = " ←" if name == document["certified_by"] else ""
        extra = f", {bound['boxes']} boxes" if "boxes" in bound else ""
        table.add_row(f"certified: {name}{marker}", _fmt(bound["linf"]), _fmt(bound["l2"]), f"rigorous{extra}")
    table.add_row("eps (the theorem's claim)", _fmt(document["eps"]), "", "")
    table.add_row("margin eps − certified", _fmt(document["margin"]), "", "")
    table.add_row("certified / attacked", _fmt(document["ratio"]), "", "")
    return table


def certify_command(
    target: Annotated[str, typer.Argument(help="Embedded target name (e.g. digits_cnn_relu) or an .npz file.")],
    ticket: Annotated[Path, typer.Argument(help="Ticket file written by 'ltbounds construct'.")],
    samples: Annotated[int, typer.Option(help="Uniform domain inputs at which to measure the error.")] = DEFAULT_SAMPLES,
    restarts: Annotated[int, typer.Option(help="Gradient-attack runs per norm, from the best sampled inputs.")] = DEFAULT_RESTARTS,
    steps: Annotated[int, typer.Option(help="Steps of every attack run.")] = DEFAULT_STEPS,
    budget: Annotated[int, typer.Option(help="Input boxes the branch and bound of the ibp method may use.")] = DEFAULT_BUDGET,
    seed: Annotated[int, typer.Option(help="Seed of the sampled inputs.")] = 0,
    eps: Annotated[float | None, typer.Option(help="Error to compare with (default: the ticket's eps).")] = None,
    method: Annotated[
        list[str] | None, typer.Option("--method", help=f"Certification method (repeatable): {', '.join(METHODS)}.")
    ] = None,
    sidecar: Annotated[Path | None, typer.Option(help="Architecture sidecar JSON for an .npz target.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Also write the report (JSON, with witness inputs).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Sampled, attacked and certified error of TICKET against TARGET: the sandwich check."""
    net = resolve_target(target, sidecar=sidecar)
    loaded = Ticket.load(ticket)
    methods = tuple(method) if method else METHODS
    for name in methods:
        if name not in METHODS:
            raise InvalidInput(f"method={name!r} must be one of {', '.join(map(repr, METHODS))}")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=json_output,
    ) as bar:
        task = bar.add_task("certify", total=1)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        report = certify(
            net, loaded, eps=eps, samples=samples, seed=seed, restarts=restarts, steps=steps,
            budget=budget, methods=methods, progress=progress,
        )
    document = {"ticket": str(ticket), **report.to_dict()}
    if output is not None:
        write_text_atomic(output, dumps({"ticket": str(ticket), **report.to_dict(inputs=True)}) + "\n")
    if json_output:
        emit_json(document)
    else:
        stdout_console.print(report_table(document))
        style = _STYLE.get(report.verdict.status, "")
        stdout_console.print(f"[{style}]{report.verdict.status.value}[/]: {report.verdict.detail}", soft_wrap=True)
    if report.falsified:
        raise BoundViolation(f"FALSIFIED: {report.verdict.detail}")


def register(app: typer.Typer) -> None:
    """Add ``certify`` to the CLI."""
    app.command("certify")(certify_command)


__all__ = ["certify_command", "register", "report_table"]
