"""``ltbounds demo``: the whole story on the embedded default targets, in one go."""

from __future__ import annotations

from typing import Annotated

import typer

from ltbounds.cli._common import JsonOption, emit_json, stdout_console
from ltbounds.cli.construct import build_row, summary_table
from ltbounds.nets import load_embedded

#: The embedded targets the demo runs, in order.
DEMO_TARGETS = (
    "digits_cnn_relu",
    "digits_cnn_tanh",
    "digits_cnn_sigmoid",
    "digits_cnn_gelu",
    "digits_mlp_relu",
)


def demo_command(
    eps: Annotated[float, typer.Option(help="Requested sup-norm output error ε.")] = 0.01,
    delta: Annotated[float, typer.Option(help="Failure probability δ (sets ρ).")] = 0.05,
    depth: Annotated[str, typer.Option(help="Construction: L+1 or 2L.")] = "L+1",
    seed: Annotated[int, typer.Option(help="Seed of the random source networks.")] = 0,
    samples: Annotated[int, typer.Option(help="Domain inputs on which the output error is measured.")] = 10_000,
    json_output: JsonOption = False,
) -> None:
    """Build tickets for the embedded digits targets and compare them with the targets."""
    rows = []
    for name in DEMO_TARGETS:
        row, _ = build_row(
            load_embedded(name), eps=eps, delta=delta, depth=depth, rho=None, param_eps=None,
            seed=seed, objective="sparse", samples=samples, show_progress=not json_output,
        )
        rows.append(row)
    if json_output:
        emit_json(rows)
        return
    stdout_console.print(summary_table(rows, f"{depth} tickets of the embedded digits targets (ε = {eps}, δ = {delta})"))
    stdout_console.print(
        f"max sampled err: over {samples:,} inputs drawn uniformly from each target's domain box "
        "(statistical). predicted bound: the composition lemma (LEMMAS.md §4) evaluated on the "
        "ticket's realised per-parameter errors and pruned weight norms (float64). ρ theory: "
        "the least ρ the subset-sum lemma demands for the smallest per-parameter tolerance."
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""
    app.command("demo")(demo_command)


__all__ = ["DEMO_TARGETS", "demo_command", "register"]
