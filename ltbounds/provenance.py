"""What produced a result: seed, versions, backend and the exact command.

Every report ltbounds writes (``certify -o/--report``, ``construct --json``, ``demo --json``)
carries :func:`provenance` under the key ``"provenance"``, so that a number can be traced to
the code and the numeric libraries that computed it, and recomputed
(``ltbounds certify --check-report``). Versions are read from the installed distributions'
metadata, so recording them imports nothing.
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from typing import Any

from ltbounds._version import __version__

#: Distributions whose versions can change a number ltbounds prints (import name in brackets
#: where it differs): numpy, numba, scipy, sympy, mpmath, python-flint (flint).
NUMERIC_DEPENDENCIES = ("numpy", "numba", "scipy", "sympy", "mpmath", "python-flint")


_command: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """Record the command line being run (the CLI calls this; the default is ``sys.argv``)."""
    global _command
    _command = list(argv)


def dependency_versions() -> dict[str, str | None]:
    """Installed version of every numeric dependency (None where it is not installed)."""
    versions: dict[str, str | None] = {}
    for name in NUMERIC_DEPENDENCIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def provenance(*, seed: int | None, backend: str = "numpy", argv: list[str] | None = None) -> dict[str, Any]:
    """The facts that let a result be traced and recomputed.

    Keys: ``seed``, ``ltbounds`` (version), ``python``, ``platform``, ``dependencies`` (name →
    version, :data:`NUMERIC_DEPENDENCIES`), ``backend`` (the array namespace that computed it)
    and ``command`` (``sys.argv`` as given, or ``argv``).
    """
    return {
        "seed": seed,
        "ltbounds": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "dependencies": dependency_versions(),
        "backend": backend,
        "command": list(argv if argv is not None else _command if _command is not None else sys.argv),
    }


__all__ = ["NUMERIC_DEPENDENCIES", "dependency_versions", "provenance", "set_command"]
