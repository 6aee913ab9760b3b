"""File helpers shared by library code and the CLI: atomic writes.

Writes are atomic (DESIGN.md): data goes to a temporary file beside the destination, which
is renamed onto it only once complete, so a crash never leaves a partial file.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    A crash or an exception leaves no partial file behind.
    """
    from ltbounds.validation import check_output_path  # noqa: PLC0415

    target = check_output_path("output", path)  # not a folder, no file where a folder goes
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        # mkstemp creates the file private (0600); give it the mode a plain open() would.
        os.chmod(temporary_path, 0o666 & ~_umask())
        os.replace(temporary_path, target)
    finally:
        if temporary_path.exists():
            temporary_path.unlink()


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


#: Timestamp of every member of an archive written by :func:`write_npz_atomic` (the zip epoch),
#: so the same arrays always give the same bytes.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def write_npz_atomic(path: str | os.PathLike[str], arrays: dict[str, Any]) -> Path:
    """Write ``arrays`` as a compressed ``.npz`` atomically, byte for byte reproducibly.

    ``numpy.savez_compressed`` stamps every member with the wall clock, so two writes of the
    same arrays differ; here every member carries the zip epoch, members keep the order of
    ``arrays`` and are plain ``.npy`` (no pickle). ``numpy.load`` reads the result.
    """
    import numpy as np  # noqa: PLC0415

    target = Path(path)
    with atomic_path(target) as temporary, zipfile.ZipFile(
        temporary, "w", compression=zipfile.ZIP_DEFLATED
    ) as archive:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with archive.open(info, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)
    return target


__all__ = ["atomic_path", "write_npz_atomic", "write_text_atomic"]
