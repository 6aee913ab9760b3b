"""Shared pieces of the command line: consoles, the ``--json`` convention, atomic writes.

Every verb accepts ``--json``: it then prints exactly one JSON document on stdout (an object
or a list of objects, as its docstring says) and nothing else there; progress and notes go to
stderr. The keys named in a verb's help are a public interface.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

from ltbounds._io_util import atomic_path, write_text_atomic

# atomic_path and write_text_atomic live in ltbounds._io_util (library code must not import
# the CLI); they are re-exported here for the verbs.
__all__ = [
    "JsonOption",
    "atomic_path",
    "dumps",
    "emit_json",
    "stderr_console",
    "stdout_console",
    "write_text_atomic",
]


def _pipe_width() -> int | None:
    """Terminals (and an explicit ``COLUMNS``) keep their width; output piped or redirected to
    a file gets 160 columns, so that wide tables (``ltbounds demo``) are not cut to 80."""
    import os  # noqa: PLC0415

    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160


stdout_console = Console(highlight=False, width=_pipe_width())
stderr_console = Console(stderr=True, highlight=False)

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one machine-readable JSON document on stdout.")
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(document: Any) -> str:
    """Serialise ``document`` to strict JSON (numpy scalars converted, NaN becomes null)."""
    return json.dumps(_jsonable(document), indent=2, allow_nan=False)


def emit_json(document: Any) -> None:
    """Print ``document`` as the single JSON output of a verb."""
    sys.stdout.write(dumps(document) + "\n")
    sys.stdout.flush()
