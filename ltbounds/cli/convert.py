"""``ltbounds convert``: a target or ticket into ``.npz``, ``.safetensors`` or ``.onnx``, checked.

``--json`` prints one object with the keys ``input``, ``kind`` (``target`` or ``ticket``),
``output``, ``format``, ``dtype``, ``name``, ``activation``, ``input_shape``,
``input_domain``, ``layers`` (one description per layer), ``params`` (``nonzero``,
``total``), ``notes``, ``import_check`` and ``export_check`` (each null or ``samples``,
``max_abs_error``, ``scale``, ``tolerance``, ``passed``; ``export_check`` also has
``method``: ``onnxruntime`` or ``reload``) and ``bytes`` (size of the file written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ltbounds._defaults import DEFAULT_CROSS_CHECK_TOL, DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS
from ltbounds.cli._common import JsonOption, emit_json, stdout_console
from ltbounds.validation import check_int

# ltbounds.export (every loader and writer of networks) is imported inside the command, so
# that ``ltbounds --help`` does not load it; the option defaults come from the import-free
# ltbounds._defaults.

_MIB = 2**20


def _check_row(label: str, check: dict[str, Any] | None) -> tuple[str, str]:
    if check is None:
        return label, "–"
    verdict = "agree" if check["passed"] else "DISAGREE"
    how = f" ({check['method']})" if "method" in check else ""
    return label, (
        f"{verdict}{how}: max |Δ| {check['max_abs_error']:.3g} on {check['samples']:,} inputs "
        f"(allowed {check['tolerance']:g} × {check['scale']:.3g})"
    )


def convert_command(
    source: Annotated[str, typer.Argument(help="Embedded target name, target file (.npz, .safetensors, .onnx) or ticket .npz.")],
    output: Annotated[Path, typer.Argument(help="File to write; its suffix (.npz, .safetensors, .onnx) picks the format.")],
    sidecar: Annotated[Path | None, typer.Option(help="Architecture sidecar JSON for an .npz or .safetensors target.")] = None,
    activation: Annotated[str | None, typer.Option(help="Activation of a target file that does not record one (e.g. relu).")] = None,
    dtype: Annotated[str | None, typer.Option(help="float32 or float64 (default: float64 for weight files, float32 for ONNX).")] = None,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Cross-check the input (ONNX) and the output.")] = True,
    samples: Annotated[int, typer.Option(help="Domain inputs of each cross-check.")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the cross-check inputs.")] = 0,
    tolerance: Annotated[float, typer.Option(help="Largest allowed output difference, times max(1, max |output|).")] = DEFAULT_CROSS_CHECK_TOL,
    max_mb: Annotated[int, typer.Option("--max-mb", help="Refuse input files larger than this many MiB.")] = DEFAULT_MAX_BYTES // _MIB,
    max_elements: Annotated[int, typer.Option(help="Refuse tensors with more entries than this.")] = DEFAULT_MAX_ELEMENTS,
    json_output: JsonOption = False,
) -> None:
    """Write a target or a ticket's pruned network as .npz, .safetensors or .onnx, cross-checked.

    An ONNX input is compared with onnxruntime after import; an ONNX output is run with
    onnxruntime before it is written; a weight file is read back. A failed check exits 3 and
    writes nothing.
    """
    from ltbounds.export import convert  # noqa: PLC0415

    check_int("max_mb", max_mb, minimum=1)
    check_int("max_elements", max_elements, minimum=1)
    result = convert(
        source, output, sidecar=sidecar, activation=activation, dtype=dtype, verify=verify,
        samples=samples, seed=seed, tolerance=tolerance, max_bytes=max_mb * _MIB,
        max_elements=max_elements,
    )  # fmt: skip
    document = result.to_dict()
    if json_output:
        emit_json(document)
        return
    table = Table(title=escape(f"{document['kind']}: {document['name']} → {document['output']}"))
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("format", f"{document['format']} ({document['dtype']}, {document['bytes']:,} bytes)")
    table.add_row("activation", document["activation"])
    table.add_row("input", f"{tuple(document['input_shape'])} in {document['input_domain']}")
    table.add_row("layers", escape("\n".join(document["layers"])))
    table.add_row("parameters", f"{document['params']['nonzero']:,} nonzero of {document['params']['total']:,}")
    table.add_row(*_check_row("import check", document["import_check"]))
    table.add_row(*_check_row("export check", document["export_check"]))
    for note in document["notes"]:
        table.add_row("note", escape(note))
    stdout_console.print(table)


def register(app: typer.Typer) -> None:
    """Add ``convert`` to the CLI."""
    app.command("convert")(convert_command)


__all__ = ["convert_command", "register"]
