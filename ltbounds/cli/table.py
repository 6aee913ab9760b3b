"""``ltbounds table``: the width each paper's theorem demands for a target, side by side.

One row per width theorem (Malach et al. 2020, Pensia et al. 2020, Orseau et al. 2020, da
Cunha et al. 2022, Burkholz 2022 2L and L+1) and the row "this construction, measured" (a
real ticket built by ``construct`` for a real TARGET). See :mod:`ltbounds.tables` for the
columns and for what each ``--constant`` means.

``--format json`` (or ``--json``) prints a list of rows; every row has at least ``format``
(``"ltbounds-table"``), ``format_version`` (1), ``theorem``, ``source_depth``, ``widths``,
``source_params``, ``factor``, ``applies``, ``reason``, ``constant`` (an object: ``value``,
``origin``, ``law``, ``low``, ``high``, ``confidence``, ``note``; null where the theorem does
not apply), ``ticket_params`` and ``citation``, plus ``target``, ``eps``, ``delta`` and
``constant_mode``. ``--format csv`` ends in the columns ``format`` and ``format_version``;
Markdown and LaTeX start with a comment naming them. :func:`ltbounds.tables.load_table` reads
the JSON and CSV forms back.

``--sweep eps=1e-1:1e-4[:N]`` writes a CSV (``-o FILE.csv``, one line per theorem and value)
and, when matplotlib is importable, ``FILE.png``: the largest source width against 1/ε on
log-log axes, one line per theorem (its metadata ``Keywords`` names the format).
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ltbounds.cli._common import atomic_path, stderr_console, stdout_console, write_text_atomic
from ltbounds.errors import InvalidInput
from ltbounds.validation import check_int, check_open_unit, check_positive


def _resolve(
    target: str | None,
    preset: str | None,
    activation: str | None,
    bias: bool | None,
    sidecar: Path | None,
) -> tuple[str, Any, Any, tuple[str, ...]]:
    """``(label, shape, net or None, caveats)`` for TARGET or ``--preset``."""
    from ltbounds.presets import get_preset, shape_from_target  # noqa: PLC0415

    if (target is None) == (preset is None):
        raise InvalidInput("give exactly one of TARGET (an embedded name or an .npz file) and --preset NAME")
    if preset is not None:
        if sidecar is not None:
            raise InvalidInput("--sidecar applies to an .npz TARGET, not to --preset")
        chosen = get_preset(preset)
        shape = chosen.shape
        caveats = chosen.caveats
        overrides = {}
        if activation is not None:
            from ltbounds.activations import get_activation  # noqa: PLC0415

            get_activation(activation)
            overrides["activation"] = activation
        if bias is not None:
            overrides["has_bias"] = bias
        if overrides:
            shape = type(shape).from_dict({**shape.as_dict(), **overrides})
            changed = ", ".join(f"{key}={value!r}" for key, value in overrides.items())
            caveats = (*caveats, f"preset changed on the command line: {changed}")
        return preset, shape, None, caveats
    if bias is not None:
        raise InvalidInput("--bias/--no-bias changes a --preset; a real TARGET has the biases it has")
    from ltbounds.cli.construct import load_target_for  # noqa: PLC0415

    net = load_target_for(target, activation, sidecar)
    shape, caveats = shape_from_target(net, measured_norms=True)
    caveats = (
        *caveats,
        "theory rows use this target's own input bound, weight norms ||W_l||_inf->inf and bias "
        "bound in the error allotment (the preset of the same name assumes the papers' "
        "normalisation, all <= 1)",
    )
    return net.name, shape, net, caveats


def _sweep(
    shape: Any, label: str, spec: str, *, eps: float, delta: float, constant: Any,
    caveats: tuple[str, ...], output: Path | None, fmt: str | None,
) -> None:
    from ltbounds.tables import parse_sweep, plot_sweep, sweep, to_csv  # noqa: PLC0415

    key, values = parse_sweep(spec)
    if fmt not in (None, "csv"):
        raise InvalidInput(f"--sweep writes CSV (and a PNG plot); --format {fmt!r} does not apply")
    if output is None or output.suffix.lower() != ".csv":
        raise InvalidInput("--sweep needs -o FILE.csv (the plot goes to FILE.png beside it)")
    try:
        import matplotlib  # noqa: F401, PLC0415

        plot = output.with_suffix(".png")
    except ImportError:
        plot = None
    with Progress(
        TextColumn(f"sweep {key}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=stderr_console, transient=True, disable=not stderr_console.is_terminal,
    ) as progress:
        task = progress.add_task("sweep", total=len(values))
        tables = sweep(
            shape, key, values, eps=eps, delta=delta, target_name=label, constant=constant,
            caveats=caveats, progress=lambda done: progress.advance(task, done),
        )
    with ExitStack() as stack:
        csv_temporary = stack.enter_context(atomic_path(output))
        csv_temporary.write_text(to_csv(tables), encoding="utf-8")
        if plot is not None:
            plot_sweep(tables, key, stack.enter_context(atomic_path(plot)))
    written = f"{output}" + (f" and {plot}" if plot is not None else " (no plot: matplotlib is not installed)")
    stderr_console.print(f"wrote {len(values)} {key} values × {len(tables[0].rows)} rows to {written}")


def table_command(
    target: Annotated[
        str | None, typer.Argument(help="Embedded target name (e.g. digits_cnn_relu) or an .npz file.")
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option("--preset", help="A named shape: lenet5, conv6, resnet20, lt_existence_mnist_cnn or an embedded target (see --list-presets)."),
    ] = None,
    eps: Annotated[float, typer.Option("--eps", help="Sup-norm output error ε on the input domain.")] = 0.01,
    delta: Annotated[float, typer.Option("--delta", help="Failure probability δ.")] = 0.01,
    fmt: Annotated[
        str | None, typer.Option("--format", help="md (default), csv, latex or json.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write to this file (atomically) instead of stdout.", dir_okay=False)
    ] = None,
    constant: Annotated[
        str,
        typer.Option("--constant", help="C: code (code-derived, LEMMAS.md 1.3), paper (no paper states C: uses the code-derived value and says so), fitted (our concentration fit, with its interval) or a number."),
    ] = "code",
    measure: Annotated[
        bool | None,
        typer.Option("--measure/--no-measure", help="Build a real ticket for TARGET (default: on for TARGET, off for --preset)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the measured construction.")] = 0,
    activation: Annotated[
        str | None, typer.Option("--activation", help="Change the preset's activation (or pick the embedded variant of TARGET).")
    ] = None,
    bias: Annotated[
        bool | None, typer.Option("--bias/--no-bias", help="Give the preset biases, or take them away.")
    ] = None,
    sidecar: Annotated[
        Path | None, typer.Option("--sidecar", help="Architecture sidecar JSON for an .npz TARGET.")
    ] = None,
    sweep_spec: Annotated[
        str | None,
        typer.Option("--sweep", help="eps=1e-1:1e-4 (13 log-spaced values; FIRST:LAST:N for N): CSV to -o FILE.csv, plot to FILE.png."),
    ] = None,
    list_presets: Annotated[
        bool, typer.Option("--list-presets", help="List the presets with their shapes and exit.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
) -> None:
    """Print the width each theorem demands of a random source network for TARGET or a preset."""
    from ltbounds import tables  # noqa: PLC0415

    if list_presets:
        _print_presets()
        return
    if json_output:
        if fmt not in (None, "json"):
            raise InvalidInput(f"--json contradicts --format {fmt!r}")
        fmt = "json"
    if fmt is not None and fmt not in tables.FORMATS:
        raise InvalidInput(f"--format {fmt!r} must be one of {', '.join(tables.FORMATS)}")
    eps = check_positive("--eps", eps)
    delta = check_open_unit("--delta", delta)
    seed = check_int("--seed", seed, minimum=0, maximum=2**64 - 1)
    mode = tables.parse_constant(constant)
    if mode == "fitted":
        tables.fitted_constants()
    label, shape, net, caveats = _resolve(target, preset, activation, bias, sidecar)
    if sweep_spec is not None:
        if measure:
            raise InvalidInput("--sweep builds no tickets; drop --measure")
        _sweep(shape, label, sweep_spec, eps=eps, delta=delta, constant=mode, caveats=caveats, output=output, fmt=fmt)
        return
    if measure and net is None:
        raise InvalidInput("--measure needs a real TARGET (an embedded name or an .npz file); a preset is a shape only")
    measure = net is not None if measure is None else measure
    fmt = fmt or "md"
    progress_context = None
    if measure:
        from ltbounds.cli.construct import construction_progress  # noqa: PLC0415

        progress_context = construction_progress(stderr_console.is_terminal)
    with progress_context or ExitStack() as bar:
        report = None
        if bar is not None and progress_context is not None:
            task = bar.add_task(f"{label} (L+1)", total=shape.depth)

            def report(message: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total, description=f"{label}: {message}")

        table = tables.build_table(
            shape, eps, delta, target_name=label, constant=mode, caveats=caveats,
            target=net, measure=measure, seed=seed, progress=report,
        )
    text = tables.format_table(table, fmt)
    if output is not None:
        write_text_atomic(output, text)
        stderr_console.print(f"wrote {fmt} table of {label} to {output}")
        return
    stdout_console.file.write(text)
    stdout_console.file.flush()


def _print_presets() -> None:
    from ltbounds.presets import get_preset, list_presets  # noqa: PLC0415

    for name in list_presets():
        chosen = get_preset(name)
        shape = chosen.shape
        stdout_console.print(
            f"[bold]{name}[/]: {chosen.title}; widths {list(shape.widths)}, kernel entries "
            f"{list(shape.kernel_sizes)}, {shape.target_params:,} parameters"
        )


def register(app: typer.Typer) -> None:
    """Add ``table`` to the CLI."""
    app.command("table")(table_command)


__all__ = ["register", "table_command"]
