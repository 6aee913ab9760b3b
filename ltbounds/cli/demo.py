"""``ltbounds demo``: the whole story on the embedded default targets, in one go."""

from __future__ import annotations

from typing import Annotated

import typer

from ltbounds.certify import certify
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
    budget: Annotated[int, typer.Option(help="Input boxes the certified (IBP) bound may split into.")] = 4,
    certify_tickets: Annotated[bool, typer.Option("--certify/--no-certify", help="Also attack and certify every ticket (ltbounds certify).")] = True,
    json_output: JsonOption = False,
) -> None:
    """Build tickets for the embedded digits targets and compare them with the targets."""
    rows = []
    for name in DEMO_TARGETS:
        target = load_embedded(name)
        row, ticket = build_row(
            target, eps=eps, delta=delta, depth=depth, rho=None, param_eps=None, seed=seed,
            objective="sparse", samples=0 if certify_tickets else samples,
            show_progress=not json_output,
        )
        if certify_tickets:
            report = certify(target, ticket, samples=samples, seed=seed, budget=budget).to_dict()
            row["max_sampled_error"] = report["sampled_error"]
            row["samples"] = samples
            for key in ("attacked_error", "certified_error", "certified_by", "margin", "verdict"):
                row[key] = report[key]
            row["seconds"] += report["seconds"]
        rows.append(row)
    if json_output:
        emit_json(rows)
        return
    stdout_console.print(summary_table(rows, f"{depth} tickets of the embedded digits targets (ε = {eps}, δ = {delta})"))
    stdout_console.print(
        f"max sampled err: over {samples:,} inputs drawn uniformly from each target's domain box "
        "(statistical); attacked: projected gradient ascent (statistical); certified: "
        "rigorous outward-rounded bound on the whole box (ltbounds certify), CERTIFIED when "
        "it is at most ε. predicted bound: the composition lemma (LEMMAS.md §4) evaluated on the "
        "ticket's realised per-parameter errors and pruned weight norms (float64). ρ theory: "
        "the least ρ the subset-sum lemma demands for the smallest per-parameter tolerance."
    )


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""
    app.command("demo")(demo_command)


__all__ = ["DEMO_TARGETS", "demo_command", "register"]
