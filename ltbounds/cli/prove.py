"""``ltbounds prove``: check every obligation of the proof files and print a verdict for each.

Exit status: 0 when nothing was falsified, 3 when some obligation is FALSIFIED (its
counterexample is printed), 1 for a malformed proof file or a missing path.

``--json`` prints one list of objects with the keys ``proof``, ``obligation``, ``lemma``,
``statement``, ``method``, ``verdict``, ``seconds``, ``detail``, ``counterexample``,
``samples`` (and ``requirement`` for width obligations).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltbounds.cli._common import JsonOption, emit_json, stderr_console, stdout_console

_STYLES = {
    "PROVED": "bold green",
    "CERTIFIED": "green",
    "TESTED": "yellow",
    "FALSIFIED": "bold red",
    "UNKNOWN": "dim",
}


def prove(
    path: Annotated[
        Path,
        typer.Argument(help="A proof file or a folder of them (default: proofs/ here)."),
    ] = Path("proofs"),
    json_output: JsonOption = False,
    details: Annotated[bool, typer.Option("--details", help="Add each verdict's detail line.")] = False,
) -> None:
    """Check the lemma chains under proofs/: a verdict per obligation (PROVED ... FALSIFIED)."""
    from ltbounds.lemmas.proofs import any_falsified, discover, load_proof, run_proof  # noqa: PLC0415

    files = discover(path)
    proofs = [load_proof(file) for file in files]
    total = sum(len(proof.obligations) for proof in proofs)
    results = []
    started = time.perf_counter()
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
    ) as progress:
        task = progress.add_task("proving", total=total)
        for proof in proofs:
            progress.update(task, description=f"proving {proof.name}")
            results += run_proof(proof, on_result=lambda _: progress.advance(task))
    elapsed = time.perf_counter() - started

    if json_output:
        emit_json([result.to_dict() for result in results])
    else:
        table = Table(title=f"ltbounds prove: {len(proofs)} proof file(s)", show_lines=False)
        table.add_column("proof", style="cyan", no_wrap=True)
        table.add_column("obligation", overflow="fold")
        table.add_column("method", overflow="fold")
        table.add_column("verdict", no_wrap=True)
        table.add_column("time", justify="right", no_wrap=True)
        if details:
            table.add_column("detail", overflow="fold")
        for result in results:
            status = result.verdict.status.value
            row = [
                escape(result.proof),
                escape(result.obligation),
                escape(result.verdict.method),
                f"[{_STYLES[status]}]{status}[/]",
                f"{result.seconds:.2f}s",
            ]
            if details:
                row.append(escape(result.verdict.detail))
            table.add_row(*row)
        stdout_console.print(table)
        counts: dict[str, int] = {}
        for result in results:
            counts[result.verdict.status.value] = counts.get(result.verdict.status.value, 0) + 1
        summary = ", ".join(f"{counts[name]} {name}" for name in _STYLES if name in counts)
        stdout_console.print(f"{len(results)} obligations: {summary} ({elapsed:.1f} s)")
        for result in results:
            if result.verdict.counterexample is not None and result.verdict.status.value == "FALSIFIED":
                stdout_console.print(
                    f"[bold red]FALSIFIED[/] {escape(result.proof)}/{escape(result.obligation)}: "
                    f"{escape(result.verdict.detail)}; counterexample {escape(repr(result.verdict.counterexample))}"
                )
    if any_falsified(results):
        stderr_console.print("[bold red]error:[/] some obligation is FALSIFIED")
        raise typer.Exit(code=3)


def register(app: typer.Typer) -> None:
    """Attach ``prove`` to the CLI."""
    app.command("prove")(prove)


__all__ = ["prove", "register"]
