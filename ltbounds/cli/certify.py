"""``ltbounds certify``: sampled <= certified <= eps for a ticket and its target.

Prints a table of the three numbers (and every method's bound) on stdout, progress on stderr.
Exit codes: 0 when the sandwich holds (whether or not eps is certified: the verdict says which),
3 when it fails (FALSIFIED: an input's error exceeds a certified bound; a bug or a false lemma),
1 for bad input (for example a ticket built for another target).

``--json`` prints one object with at least the keys ``target``, ``ticket``, ``eps``,
``sampled_error``, ``attacked_error``, ``certified_error``, ``certified_by``, ``margin``,
``verdict``, ``eps_status``, ``samples``, ``seconds`` and ``methods`` (per method ``linf``,
``l2``, ``seconds``); ``-o FILE`` writes the report file atomically: the same object with the
witness inputs, ``format`` (``ltbounds-certify-report``), ``version``, ``inputs`` (TARGET as
given, the ticket's path and SHA-256, the target's fingerprint, every setting) and
``provenance`` (seed, versions, backend, command). ``--report DIR`` writes it as
``DIR/certify.json`` plus a Markdown summary ``DIR/certify.md``.

``--check-report REPORT`` (a report file or ``--report`` folder, instead of TARGET TICKET)
recomputes the certification from the recorded inputs: exit 0 when verdicts and numbers agree
(to a relative 1e-9; timings ignored), exit 4 with a one-line ``MISMATCH:`` reason otherwise;
``--json`` prints ``{"report", "match", "reason"}``. A report of an unknown version is refused
(exit 1).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ltbounds._defaults import CERTIFY_BUDGET as DEFAULT_BUDGET
from ltbounds._defaults import CERTIFY_METHODS as METHODS
from ltbounds._defaults import CERTIFY_RESTARTS as DEFAULT_RESTARTS
from ltbounds._defaults import CERTIFY_SAMPLES as DEFAULT_SAMPLES
from ltbounds._defaults import CERTIFY_STEPS as DEFAULT_STEPS
from ltbounds.cli._common import (
    JsonOption,
    atomic_path,
    dumps,
    emit_json,
    stderr_console,
    stdout_console,
    write_text_atomic,
)
from ltbounds.cli._options import BackendOption, resolve_backend
from ltbounds.errors import BoundViolation, InvalidInput
from ltbounds.validation import check_output_path
from ltbounds.verdict import Status

if TYPE_CHECKING:
    from ltbounds.ticket import Ticket

# ltbounds.certify (scipy, sympy, python-flint), the target loaders and the ticket reader are
# imported inside the commands, so that ``ltbounds --help`` does not load them; the option
# defaults above come from the import-free ltbounds._defaults.

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
    target: Annotated[str | None, typer.Argument(help="Embedded target name (e.g. digits_cnn_relu) or an .npz file.")] = None,
    ticket: Annotated[Path | None, typer.Argument(help="Ticket file written by 'ltbounds construct'.")] = None,
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
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Also write the report (JSON, with witness inputs and provenance).")] = None,
    report_dir: Annotated[
        Path | None, typer.Option("--report", help="Also write the report to this folder: certify.json (as -o), certify.md and error_growth.png (per-layer errors, predicted against measured).")
    ] = None,
    check_report: Annotated[
        Path | None,
        typer.Option("--check-report", help="Recompute a report (its JSON file or --report folder) from its recorded inputs; exit 0 when it matches, 4 when not."),
    ] = None,
    backend: BackendOption = "numpy",
    json_output: JsonOption = False,
) -> None:
    """Sampled, attacked and certified error of TICKET against TARGET: the sandwich check.

    --backend runs the sampling and the attack (the heavy part on a wide ticket) on CuPy or
    array-api-strict; the inputs are the same on every backend and the certified bounds are
    always computed on the host."""
    if check_report is not None:
        if target is not None or ticket is not None:
            raise InvalidInput("give either TARGET TICKET or --check-report REPORT, not both")
        _check_report(check_report, json_output)
        return
    if target is None or ticket is None:
        raise InvalidInput("give TARGET and TICKET (or --check-report REPORT)")
    from ltbounds.nets.resolve import resolve_target  # noqa: PLC0415
    from ltbounds.ticket import Ticket  # noqa: PLC0415

    resolve_backend(backend)
    if output is not None:
        check_output_path("output", output)
    if report_dir is not None:
        if report_dir.exists() and not report_dir.is_dir():
            raise InvalidInput(f"report={str(report_dir)!r} is a file; expected a folder")
        check_output_path("report", report_dir / "certify.json")
    net = resolve_target(target, sidecar=sidecar)
    loaded = Ticket.load(ticket)
    methods = tuple(method) if method else METHODS
    for name in methods:
        if name not in METHODS:
            raise InvalidInput(f"method={name!r} must be one of {', '.join(map(repr, METHODS))}")
    settings = {
        "target": target, "ticket": str(ticket.resolve()), "sidecar": None if sidecar is None else str(sidecar.resolve()),
        "samples": samples, "restarts": restarts, "steps": steps, "budget": budget, "seed": seed,
        "eps": eps, "methods": list(methods), "backend": backend,
    }  # fmt: skip
    report = _run(net, loaded, settings, show_progress=not json_output)
    document = {"ticket": str(ticket), **report.to_dict()}
    if output is not None or report_dir is not None:
        full = report_document(report, settings, ticket=ticket, net=net)
        text = dumps(full) + "\n"
        if output is not None:
            write_text_atomic(output, text)
        if report_dir is not None:
            if full.get("layer_growth"):
                _write_growth_plot(full, report_dir / GROWTH_PLOT)
            write_text_atomic(report_dir / "certify.json", text)
            write_text_atomic(report_dir / "certify.md", report_markdown(full))
    if json_output:
        emit_json(document)
    else:
        stdout_console.print(report_table(document))
        style = _STYLE.get(report.verdict.status, "")
        stdout_console.print(f"[{style}]{report.verdict.status.value}[/]: {report.verdict.detail}", soft_wrap=True)
    if report.falsified:
        raise BoundViolation(f"FALSIFIED: {report.verdict.detail}")


def _run(net: Any, loaded: Ticket, settings: dict[str, Any], *, show_progress: bool) -> Any:
    from ltbounds.certify import certify  # noqa: PLC0415

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=stderr_console,
        transient=True,
        disable=not show_progress,
    ) as bar:
        task = bar.add_task("certify", total=1)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, description=message, completed=done, total=total)

        return certify(
            net, loaded, eps=settings["eps"], samples=settings["samples"], seed=settings["seed"],
            restarts=settings["restarts"], steps=settings["steps"], budget=settings["budget"],
            methods=tuple(settings["methods"]), progress=progress,
            xp=resolve_backend(settings.get("backend", "numpy")),
        )


def report_document(report: Any, settings: dict[str, Any], *, ticket: Path, net: Any) -> dict[str, Any]:
    """The report file: format and version, the recorded inputs, provenance and the numbers.

    ``inputs`` holds everything ``--check-report`` needs to recompute it: the TARGET as given,
    the ticket's absolute path and SHA-256, the target's fingerprint, and every setting.
    """
    from ltbounds.certify._report import REPORT_FORMAT, REPORT_VERSION  # noqa: PLC0415
    from ltbounds.provenance import provenance  # noqa: PLC0415
    from ltbounds.ticket import target_fingerprint  # noqa: PLC0415

    inputs = {
        **settings,
        "ticket_sha256": _sha256(ticket),
        "target_fingerprint": target_fingerprint(net),
    }
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "inputs": inputs,
        "provenance": provenance(seed=settings["seed"], backend=settings.get("backend", "numpy")),
        "ticket": str(ticket),
        **report.to_dict(inputs=True),
    }


def report_markdown(document: dict[str, Any]) -> str:
    """A short human summary of a report document (``certify.md`` of ``--report``)."""
    origin = document["provenance"]
    lines = [
        f"# certify: {document['target']}",
        "",
        f"verdict: **{document['verdict']}**: {document['verdict_detail']}",
        "",
        "| quantity | ∞-norm | 2-norm | kind |",
        "|---|---|---|---|",
        f"| sampled ({document['samples']} points) | {document['sampled_error']:.6g} | {document['sampled_error_l2']:.6g} | statistical |",
        f"| attacked | {document['attacked_error']:.6g} | {document['attacked_error_l2']:.6g} | statistical |",
    ]
    for name, bound in document["methods"].items():
        lines.append(f"| certified: {name} | {_md(bound['linf'])} | {_md(bound['l2'])} | rigorous |")
    lines += [
        f"| eps | {document['eps']:g} | | |",
        "",
        *_growth_markdown(document.get("layer_growth") or []),
        f"Report format {document['format']} version {document['version']}; ltbounds {origin['ltbounds']}, "
        f"seed {origin['seed']}, backend {origin['backend']}; command: `{' '.join(origin['command'])}`.",
        "Recompute with `ltbounds certify --check-report <this folder>`.",
        "",
    ]
    return "\n".join(lines)


#: The per-layer error growth figure of ``--report``.
GROWTH_PLOT = "error_growth.png"


def _write_growth_plot(document: dict[str, Any], path: Path) -> None:
    """The per-layer growth figure (:func:`ltbounds.certify._growth.plot_growth`), written atomically."""
    from ltbounds.certify._growth import plot_growth  # noqa: PLC0415

    title = f"{document['target']}: per-layer copy error, predicted and measured"
    with atomic_path(path) as temporary:
        plot_growth(document["layer_growth"], temporary, eps=document["eps"], certified=document["certified_error"], title=title)


def _growth_markdown(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    lines = [
        "## Per-layer error growth",
        "",
        "Largest error of a carried copy after each step: predicted by the construction (composition "
        f"lemma) and measured at sampled inputs and the witnesses (statistical). Figure: `{GROWTH_PLOT}`.",
        "",
        "| step | target layer | predicted | measured |",
        "|---|---|---|---|",
    ]
    for row in rows:
        predicted = "–" if row["predicted"] is None else f"{row['predicted']:.6g}"
        lines.append(f"| {row['step']} | {row['layer']}: {row['what']} | {predicted} | {row['measured']:.6g} |")
    return [*lines, "", f"![per-layer error growth]({GROWTH_PLOT})", ""]


def _md(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


#: Exit code of ``--check-report`` when the recomputation differs from the report.
MISMATCH_EXIT_CODE = 4


def _check_report(path: Path, json_output: bool) -> None:
    """Recompute the report at ``path`` from its recorded inputs and compare (see ``--check-report``)."""
    from ltbounds.certify._report import compare_reports, read_report  # noqa: PLC0415
    from ltbounds.nets.resolve import resolve_target  # noqa: PLC0415
    from ltbounds.ticket import Ticket, target_fingerprint  # noqa: PLC0415

    recorded = read_report(path)
    inputs = recorded["inputs"]
    reason = None
    ticket = Path(inputs["ticket"])
    if not ticket.is_file():
        reason = f"the recorded ticket {ticket} no longer exists"
    elif _sha256(ticket) != inputs.get("ticket_sha256"):
        reason = f"the recorded ticket {ticket} has changed since the report (SHA-256 differs)"
    recomputed: dict[str, Any] = {}
    if reason is None:
        sidecar = inputs.get("sidecar")
        net = resolve_target(inputs["target"], sidecar=None if sidecar is None else Path(sidecar))
        if target_fingerprint(net) != inputs.get("target_fingerprint"):
            reason = f"the recorded target {inputs['target']!r} has changed since the report (fingerprint differs)"
        else:
            report = _run(net, Ticket.load(ticket), inputs, show_progress=not json_output)
            recomputed = report.to_dict(inputs=True)
            reason = compare_reports(recorded, recomputed)
    if json_output:
        emit_json({"report": str(path), "match": reason is None, "reason": reason})
    elif reason is None:
        stdout_console.print(f"MATCH: {path} recomputes to the same verdict and numbers ({recorded['verdict']})")
    if reason is not None:
        if not json_output:
            stderr_console.print(f"MISMATCH: {reason}", soft_wrap=True, markup=False)
        raise typer.Exit(MISMATCH_EXIT_CODE)


def register(app: typer.Typer) -> None:
    """Add ``certify`` to the CLI."""
    app.command("certify")(certify_command)


__all__ = ["MISMATCH_EXIT_CODE", "certify_command", "register", "report_document", "report_markdown", "report_table"]
