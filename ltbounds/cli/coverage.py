"""``ltbounds coverage``: how often do n random weights fail to ε-cover [-1, 1]?

Runs :func:`ltbounds.subsetsum.concentration_grid` over a grid of sizes and tolerances and
fits Lueker's constant with :func:`ltbounds.subsetsum.fit_constant` (LEMMAS.md 1.1-1.3).

``--json`` prints one object: ``format`` (``"ltbounds-coverage"``), ``format_version`` (1),
``rows`` (one per ``(n, eps)``, keys ``n``, ``eps``, ``trials``, ``failures``, ``delta``,
``ci_low``, ``ci_high``, ``confidence``, ``distribution``, ``seed``, ``domain``, ``C``) and the
fit: ``C``, ``C_low``, ``C_high``, ``C_confidence``, ``C_cell`` (the ``n`` and ``eps``
attaining it) and ``C_definition``. ``--csv`` writes the rows without ``domain`` and with the
columns ``format`` and ``format_version`` last; ``--plot`` names the format in its metadata
(``Keywords``). :func:`ltbounds.subsetsum.coverage_io.load_coverage` reads the JSON and CSV back.

The blocks of trials are independent work items (:mod:`ltbounds.parallel`): ``--workers N``
runs them on a local pool (default: one per core, in-process for small grids),
``--scheduler tcp://HOST:PORT`` (or ``$LTBOUNDS_SCHEDULER``) on a Dask cluster; the rows are
identical to a serial run. ``--checkpoint PATH`` (alias ``--resume PATH``) records every
finished block in a JSON-lines file and, when the file exists, skips the blocks it holds, so
an interrupted sweep rerun with the same command and file gives the uninterrupted output.
``--backend`` picks the array namespace that decides coverage (numpy: numba kernels).

Everything is checked before the first trial: ``--n`` bounds in 1..40 (before a range is
expanded), ``--trials`` at most 10^9 per cell, the work list within the memory budget, and the
``--csv``, ``--plot`` and ``--checkpoint`` paths writable and distinct.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ltbounds.cli._common import (
    JsonOption,
    atomic_path,
    emit_json,
    stderr_console,
    stdout_console,
)
from ltbounds.cli._options import (
    BackendOption,
    SchedulerOption,
    WorkersOption,
    resolve_backend,
    resolve_scheduler,
    resolve_workers,
)
from ltbounds.errors import InvalidInput
from ltbounds.validation import (
    check_choice,
    check_int,
    check_open_unit,
    check_output_path,
    check_positive,
)

_PLOT_FORMATS = ("png", "pdf", "svg")
MAX_SIZE = 40
"""Largest ``--n``."""


def parse_sizes(text: str) -> list[int]:
    """``"8:24"`` (inclusive range), ``"8,12,16"`` or ``"15"`` → sorted distinct sizes.

    Every bound is checked against ``1 <= n <= MAX_SIZE`` before a range is expanded, so
    ``8:99999999999`` is refused at once instead of materialising 10^11 sizes.
    """
    sizes: set[int] = set()
    for part in text.split(","):
        piece = part.strip()
        try:
            if ":" in piece:
                first, last = (int(bound) for bound in piece.split(":"))
                if first > last:
                    raise ValueError
            else:
                first = last = int(piece)
        except ValueError:
            raise InvalidInput(
                f"--n {text!r} is not a size list; expected e.g. 8:24, 8,12,16 or 15"
            ) from None
        for bound in (first, last):
            check_int("--n", bound, minimum=1, maximum=MAX_SIZE)
        sizes.update(range(first, last + 1))
    return sorted(sizes)


def parse_tolerances(text: str) -> list[float]:
    """``"0.01,0.001"`` → tolerances, each in (0, 1), in the order given without repeats."""
    values: dict[float, None] = {}  # ordered, and linear time however many are given
    for part in text.split(","):
        try:
            value = float(part.strip())
        except ValueError:
            raise InvalidInput(f"--eps {text!r}: {part.strip()!r} is not a number") from None
        check_positive("--eps", value)
        if not value < 1:
            raise InvalidInput(f"--eps={value!r} must be < 1")
        values[value] = None
    return list(values)


def check_trials(trials: int) -> int:
    """``--trials`` in ``[1, MAX_TRIALS]``; the refusal names the value and the maximum."""
    from ltbounds.subsetsum.concentration import MAX_TRIALS  # noqa: PLC0415

    trials = check_int("--trials", trials, minimum=1)
    if trials > MAX_TRIALS:
        raise InvalidInput(
            f"--trials={trials} must be <= {MAX_TRIALS:,} (10^9 trials resolve delta to about "
            "3e-9 per cell; for more, run several --seed values and pool the counts)"
        )
    return trials


def check_outputs(**paths: Path | None) -> None:
    """Every output (``--csv``, ``--plot``, ``--checkpoint``) writable and distinct, checked
    before any trial runs, so a bad path never costs a long sweep."""
    seen: dict[Path, str] = {}
    for option, path in paths.items():
        if path is None:
            continue
        check_output_path(option, path)
        where = Path(path).resolve()
        if where in seen:
            raise InvalidInput(f"{option}={str(path)!r} is also {seen[where]}; expected distinct files")
        seen[where] = option


def _table(rows: list[dict[str, Any]], fit: Any) -> Table:
    from ltbounds.subsetsum.coverage_io import CONSTANT_DEFINITION  # noqa: PLC0415

    confidence = f"{rows[0]['confidence']:.0%}"
    table = Table(
        title=(
            f"P(coverage of [{rows[0]['domain'][0]:g}, {rows[0]['domain'][1]:g}] fails), "
            f"{rows[0]['distribution']} candidates, seed {rows[0]['seed']}"
        ),
        caption=(
            f"fitted C = {fit.C:.3f}, {fit.confidence:.0%} joint interval "
            f"[{fit.C_low:.3f}, {fit.C_high:.3f}] at n={fit.n}, eps={fit.eps:g}; "
            f"C = {CONSTANT_DEFINITION}"
        ),
    )
    for header in ("n", "eps", "trials", "failures", "delta", f"{confidence} CI", "C (cell)"):
        table.add_column(header, justify="right")
    for row in rows:
        table.add_row(
            str(row["n"]), f"{row['eps']:g}", str(row["trials"]), str(row["failures"]),
            f"{row['delta']:.4g}", f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]",
            f"{row['C']:.3f}",
        )
    return table


def _plot_format(path: Path) -> str:
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in _PLOT_FORMATS:
        raise InvalidInput(
            f"--plot {str(path)!r} must end in one of {', '.join('.' + s for s in _PLOT_FORMATS)}"
        )
    try:
        import matplotlib  # noqa: F401, PLC0415
    except ImportError:
        raise InvalidInput("--plot needs matplotlib (pip install 'ltbounds[plot]')") from None
    return suffix


def write_plot(rows: list[dict[str, Any]], fit: Any, path: Path, file_format: str) -> None:
    """δ̂ against n on a log scale, one line per ε, with the Clopper-Pearson band.

    Cells without failures are drawn as downward triangles at their upper bound.
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    figure = Figure(figsize=(6.4, 4.2), layout="constrained")
    axes = figure.subplots()
    floor = min(row["ci_high"] for row in rows) / 10
    for eps in dict.fromkeys(row["eps"] for row in rows):
        cells = [row for row in rows if row["eps"] == eps]
        ns = [row["n"] for row in cells]
        line = axes.plot(
            [row["n"] for row in cells if row["failures"]],
            [row["delta"] for row in cells if row["failures"]],
            marker="o", label=f"ε = {eps:g}",
        )[0]
        axes.fill_between(
            ns, [max(row["ci_low"], floor) for row in cells], [row["ci_high"] for row in cells],
            color=line.get_color(), alpha=0.2, linewidth=0,
        )
        unseen = [row for row in cells if not row["failures"]]
        if unseen:
            axes.plot(
                [row["n"] for row in unseen], [row["ci_high"] for row in unseen],
                linestyle="none", marker="v", color=line.get_color(),
            )
    axes.set_yscale("log")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("n (random candidates)")
    axes.set_ylabel("δ = P(some z in [-1, 1] not ε-approximable)")
    axes.set_title(
        f"{rows[0]['trials']} trials per point, {rows[0]['distribution']}, "
        f"{rows[0]['confidence']:.0%} Clopper-Pearson bands; fitted C = {fit.C:.2f}",
        fontsize=9,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    from ltbounds.subsetsum.coverage_io import plot_metadata  # noqa: PLC0415

    figure.savefig(path, format=file_format, dpi=120, metadata=plot_metadata())


def coverage_command(
    n: Annotated[
        str, typer.Option("--n", help="Sizes: 8:24 (inclusive), 8,12,16 or 15 (each <= 40).")
    ] = "8:24",
    eps: Annotated[str, typer.Option("--eps", help="Tolerances, comma separated.")] = "0.01",
    trials: Annotated[int, typer.Option("--trials", help="Candidate sets per (n, eps), at most 10^9.")] = 10000,
    distribution: Annotated[
        str, typer.Option("--distribution", help="uniform: U[-1,1]; product: U[-1,1]·U[-1,1].")
    ] = "uniform",
    seed: Annotated[int, typer.Option("--seed", help="Seed of the candidates.")] = 0,
    confidence: Annotated[
        float, typer.Option("--confidence", help="Level of the Clopper-Pearson intervals.")
    ] = 0.95,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the rows as CSV.", dir_okay=False)
    ] = None,
    plot_path: Annotated[
        Path | None,
        typer.Option("--plot", help="Also plot δ against n (.png/.pdf/.svg; needs matplotlib).",
                     dir_okay=False),
    ] = None,
    workers: WorkersOption = None,
    scheduler: SchedulerOption = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint", "--resume", dir_okay=False,
            help="JSON-lines file of finished blocks: resume from it if it exists, else start it.",
        ),
    ] = None,
    backend: BackendOption = "numpy",
    json_output: JsonOption = False,
) -> None:
    """Estimate how often n random weights fail to ε-cover [-1, 1], and fit Lueker's C."""
    sizes = parse_sizes(n)
    tolerances = parse_tolerances(eps)
    trials = check_trials(trials)
    seed = check_int("--seed", seed, minimum=0)
    check_choice("--distribution", distribution, ("uniform", "product"))
    check_open_unit("--confidence", confidence)
    check_outputs(**{"--csv": csv_path, "--plot": plot_path, "--checkpoint": checkpoint})
    plot_format = _plot_format(plot_path) if plot_path is not None else None
    workers = resolve_workers(workers)
    scheduler = resolve_scheduler(scheduler)
    resolve_backend(backend)

    from ltbounds.subsetsum.concentration import (  # noqa: PLC0415
        check_grid_memory,
        concentration_grid,
        fit_constant,
    )

    check_grid_memory(len(sizes), len(tolerances), trials)

    with Progress(
        TextColumn("coverage"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=stderr_console, transient=True, disable=not stderr_console.is_terminal,
    ) as progress:
        task = progress.add_task("coverage", total=len(sizes) * trials)
        results = concentration_grid(
            sizes, tolerances, trials, distribution=distribution, seed=seed,
            confidence=confidence, progress=lambda done: progress.advance(task, done),
            workers=workers, scheduler=scheduler, checkpoint=checkpoint, backend=backend,
        )
    from ltbounds.subsetsum.coverage_io import coverage_csv, coverage_document, coverage_rows  # noqa: PLC0415

    fit = fit_constant(results, confidence=confidence)
    rows = coverage_rows(results)

    with ExitStack() as stack:
        if csv_path is not None:
            stack.enter_context(atomic_path(csv_path)).write_text(coverage_csv(rows), encoding="utf-8")
        if plot_path is not None:
            write_plot(rows, fit, stack.enter_context(atomic_path(plot_path)), plot_format)

    if json_output:
        emit_json(coverage_document(rows, fit))
        return
    stdout_console.print(_table(rows, fit))


def register(app: typer.Typer) -> None:
    """Add the ``coverage`` verb to ``app``."""
    app.command("coverage")(coverage_command)
