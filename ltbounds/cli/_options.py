"""Options shared by the numeric verbs: ``--backend``, ``--workers``, ``--scheduler``.

``--backend`` picks the array namespace (numpy by default; ``cupy`` needs CuPy and a CUDA
GPU and is refused in one line otherwise). ``--workers`` and ``--scheduler`` say where
independent work items run (:mod:`ltbounds.parallel`): ``--workers 1`` in the process,
``--workers N`` on a local pool (default: one per core), ``--scheduler tcp://HOST:PORT`` (or
``$LTBOUNDS_SCHEDULER``) on a Dask cluster.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ltbounds.backend import BACKENDS
from ltbounds.errors import InvalidInput
from ltbounds.parallel import SCHEDULER_ENV, check_scheduler
from ltbounds.validation import check_choice

BackendOption = Annotated[
    str,
    typer.Option(
        "--backend",
        help=f"Array namespace: {', '.join(BACKENDS)} (cupy needs CuPy and a CUDA GPU).",
    ),
]
WorkersOption = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Local processes for independent work (1: no pool). Default: one per core.",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar=SCHEDULER_ENV,
        show_envvar=True,
        help="Dask scheduler address (tcp://HOST:PORT) to run the work on a cluster.",
    ),
]


def resolve_backend(name: str) -> Any:
    """The namespace called ``name``; a one-line :class:`InvalidInput` when it is unusable."""
    from ltbounds.backend import get_backend  # noqa: PLC0415

    check_choice("--backend", name, BACKENDS)
    return get_backend(name)


def max_workers() -> int:
    """Most local processes ``--workers`` may ask for: 4 per core (at least 8).

    The work is CPU-bound, so processes beyond the cores only add start-up time and memory
    (each is a fresh interpreter); a larger number is a typing error, and would otherwise start
    one process per pending work item. Clusters scale through ``--scheduler`` instead.
    """
    import os  # noqa: PLC0415

    return max(8, 4 * (os.cpu_count() or 1))


def resolve_workers(workers: int | None) -> int | None:
    """``--workers`` checked (``None`` keeps the automatic choice)."""
    if workers is None:
        return None
    if workers < 1:
        raise InvalidInput(f"--workers={workers!r} must be >= 1")
    if workers > max_workers():
        raise InvalidInput(
            f"--workers={workers!r} must be <= {max_workers()} (4 local processes per core); "
            "use --scheduler to run on a cluster"
        )
    return workers


def resolve_scheduler(address: str | None) -> str | None:
    """``--scheduler`` checked (an address like ``tcp://HOST:PORT``), or ``None``."""
    try:
        return check_scheduler(address)
    except InvalidInput:
        raise InvalidInput(
            f"--scheduler={address!r} must be a Dask scheduler address like tcp://HOST:PORT"
        ) from None


__all__ = [
    "BackendOption",
    "SchedulerOption",
    "WorkersOption",
    "max_workers",
    "resolve_backend",
    "resolve_scheduler",
    "resolve_workers",
]
