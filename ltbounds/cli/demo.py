"""``ltbounds demo``: the whole story on the embedded default targets, in one go."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from ltbounds.cli._common import JsonOption, emit_json, stdout_console
from ltbounds.cli._options import BackendOption, resolve_backend
from ltbounds.cli.construct import build_row, summary_table
from ltbounds.errors import InvalidInput
from ltbounds.validation import (
    check_choice,
    check_int,
    check_open_unit,
    check_positive,
    check_samples,
)

if TYPE_CHECKING:
    from ltbounds.nets import TargetNet

# ltbounds.certify, the constructions and the embedded targets are imported inside the
# functions that use them, so that ``ltbounds --help`` does not load them.

#: The embedded targets the demo runs, in order.
DEMO_TARGETS = (
    "digits_cnn_relu",
    "digits_cnn_tanh",
    "digits_cnn_sigmoid",
    "digits_cnn_gelu",
    "digits_mlp_relu",
    "digits_resnet_relu",
    "digits_resnet_tanh",
)
#: The verdict shown where certify does not handle a residual ticket (yet).
RESIDUAL_NOT_CERTIFIED = "certify: n/a (residual)"


def certify_row(
    row: dict[str, Any], target: TargetNet, ticket: Any, *, samples: int, seed: int, budget: int, xp: Any | None = None
) -> dict[str, Any]:
    """Add certify's sampled, attacked and certified error and verdict to ``row``.

    ``xp``: the array namespace for sampling and the attack (:func:`ltbounds.certify.certify`).

    Where certify refuses a residual target (``InvalidInput`` naming residual blocks), the row
    gets the sampled error alone and the verdict :data:`RESIDUAL_NOT_CERTIFIED`: an honest
    gap, not a failure. Any other refusal propagates.
    """
    from ltbounds.certify import certify  # noqa: PLC0415
    from ltbounds.construct.evaluation import max_sampled_error  # noqa: PLC0415

    try:
        report = certify(target, ticket, samples=samples, seed=seed, budget=budget, xp=xp).to_dict()
    except InvalidInput as exc:
        if not target.residual_blocks or "residual" not in str(exc):
            raise
        row["max_sampled_error"] = max_sampled_error(target, ticket, samples, seed, xp=xp)
        row["samples"] = samples
        row.update(attacked_error=None, certified_error=None, certified_by=None, margin=None, verdict=RESIDUAL_NOT_CERTIFIED)
        return row
    row["max_sampled_error"] = report["sampled_error"]
    row["samples"] = samples
    for key in ("attacked_error", "certified_error", "certified_by", "margin", "verdict"):
        row[key] = report[key]
    row["seconds"] += report["seconds"]
    return row


def _chosen(targets: str | None) -> tuple[str, ...]:
    if targets is None:
        return DEMO_TARGETS
    names = tuple(name.strip() for name in targets.split(",") if name.strip())
    unknown = [name for name in names if name not in DEMO_TARGETS]
    if unknown or not names:
        raise InvalidInput(
            f"targets={targets!r} must be a comma-separated list of {', '.join(DEMO_TARGETS)}"
        )
    return names


def _for_depth(chosen: list[TargetNet], depth: str, *, named: bool) -> tuple[list[TargetNet], list[str]]:
    """The targets ``depth`` can build and the names of those it leaves out.

    Only the L+1 construction handles residual blocks: for another depth they are left out of
    the default set, and refused (before any work) when the user named them.
    """
    residual = [target.name for target in chosen if target.residual_blocks]
    if depth == "L+1" or not residual:
        return chosen, []
    if named:
        raise InvalidInput(
            f"targets with depth={depth!r}: {', '.join(residual)} have residual blocks, which only "
            "the L+1 construction handles; drop them or use --depth L+1"
        )
    return [target for target in chosen if not target.residual_blocks], residual


def demo_command(
    eps: Annotated[float, typer.Option(help="Requested sup-norm output error ε.")] = 0.01,
    delta: Annotated[float, typer.Option(help="Failure probability δ (sets ρ).")] = 0.05,
    depth: Annotated[str, typer.Option(help="Construction: L+1 or 2L.")] = "L+1",
    seed: Annotated[int, typer.Option(help="Seed of the random source networks.")] = 0,
    samples: Annotated[int, typer.Option(help="Domain inputs on which the output error is measured.")] = 10_000,
    budget: Annotated[int, typer.Option(help="Input boxes the certified (IBP) bound may split into.")] = 4,
    certify_tickets: Annotated[bool, typer.Option("--certify/--no-certify", help="Also attack and certify every ticket (ltbounds certify).")] = True,
    targets: Annotated[str | None, typer.Option(help="Comma-separated subset of the demo targets (default: all).")] = None,
    backend: BackendOption = "numpy",
    json_output: JsonOption = False,
) -> None:
    """Build tickets for the embedded digits targets and compare them with the targets.

    --depth 2L builds the ICML 2022 tickets of the plain targets (the residual ones have no 2L
    construction yet and are left out); their certified bounds are several times tighter.

    --backend draws the source weights and runs the forward passes, sampling and attack on
    CuPy or array-api-strict; the tickets are the same on every backend and the certified
    bounds are computed on the host."""
    from ltbounds.construct import DEPTHS  # noqa: PLC0415
    from ltbounds.nets import load_embedded  # noqa: PLC0415

    # Every option is checked before the first (possibly long) construction starts.
    check_positive("eps", eps)
    check_open_unit("delta", delta)
    check_choice("depth", depth, DEPTHS)
    check_int("seed", seed, minimum=0, maximum=2**64 - 1)
    check_int("budget", budget, minimum=1)
    xp = resolve_backend(backend)
    chosen, left_out = _for_depth(
        [load_embedded(name) for name in _chosen(targets)], depth, named=targets is not None
    )
    for target in chosen:
        check_samples("samples", samples, target.input_shape, minimum=1 if certify_tickets else 0)
    rows = []
    for target in chosen:
        row, ticket = build_row(
            target, eps=eps, delta=delta, depth=depth, rho=None, param_eps=None, seed=seed,
            objective="sparse", samples=0 if certify_tickets else samples,
            show_progress=not json_output, backend=backend, xp=xp,
        )
        if certify_tickets:
            row = certify_row(row, target, ticket, samples=samples, seed=seed, budget=budget, xp=xp)
        rows.append(row)
    if json_output:
        emit_json(rows)
        return
    stdout_console.print(summary_table(rows, f"{depth} tickets of the embedded digits targets (ε = {eps}, δ = {delta})"))
    footer = (
        f"max sampled err: over {samples:,} inputs drawn uniformly from each target's domain box "
        "(statistical); attacked: projected gradient ascent (statistical); certified: "
        "rigorous outward-rounded bound on the whole box (ltbounds certify), CERTIFIED when "
        "it is at most ε; for the residual CNNs it is sound but loose (interval bounds cannot "
        "see the copies' subset-sum errors cancel; docs/certify.md). predicted bound: the "
        "composition lemma (LEMMAS.md §4) evaluated on the ticket's realised per-parameter "
        "errors and pruned weight norms (float64; for the residual CNNs the residual "
        "composition rule, block by block). ρ theory: the least ρ the subset-sum lemma demands "
        "for the smallest per-parameter tolerance."
    )
    if left_out:
        footer += (
            f" The residual targets ({', '.join(left_out)}) are left out: the {depth} "
            "construction does not cover residual blocks yet (use --depth L+1)."
        )
    if any(row.get("verdict") == RESIDUAL_NOT_CERTIFIED for row in rows):
        footer += (
            f" '{RESIDUAL_NOT_CERTIFIED}': certify refused this residual ticket; only the "
            "sampled error is shown."
        )
    stdout_console.print(footer)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the CLI."""
    app.command("demo")(demo_command)


__all__ = ["DEMO_TARGETS", "RESIDUAL_NOT_CERTIFIED", "certify_row", "demo_command", "register"]
