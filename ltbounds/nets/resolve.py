"""Turn what a user types (an embedded name or a file path) into a :class:`TargetNet`.

``digits_cnn_relu`` names a shipped target (:func:`~ltbounds.nets.embedded.list_embedded`);
anything ending in ``.npz`` is read with :func:`~ltbounds.nets.io.load_npz`, with the sidecar
``<stem>.json`` beside it used automatically when present, or the one given. Every failure is
a one-line :class:`~ltbounds.errors.LtboundsError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ltbounds.errors import InvalidInput
from ltbounds.nets.embedded import list_embedded, load_embedded
from ltbounds.nets.io import load_npz
from ltbounds.nets.target import TargetNet

#: Sidecars shipped for well-known foreign targets, looked up by file name.
_SHIPPED_SIDECARS = {"lt_existence_mnist_cnn.npz": "lt_existence_mnist_cnn.json"}


def resolve_target(
    spec: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    activation: str | None = None,
) -> TargetNet:
    """Load the target named or pointed to by ``spec``."""
    text = str(spec)
    embedded = list_embedded()
    if text in embedded:
        if sidecar is not None:
            raise InvalidInput(f"sidecar={str(sidecar)!r} applies to files, not to the embedded target {text!r}")
        return load_embedded(text)
    path = Path(text)
    if path.suffix != ".npz":
        raise InvalidInput(
            f"target={text!r} is neither an embedded target ({', '.join(embedded)}) nor an .npz file"
        )
    if not path.exists():
        raise InvalidInput(f"target file {text!r} does not exist")
    if sidecar is None:
        beside = path.with_suffix(".json")
        if beside.exists():
            sidecar = beside
        elif path.name in _SHIPPED_SIDECARS:
            from importlib import resources  # noqa: PLC0415

            sidecar = Path(str(resources.files("ltbounds").joinpath("data", _SHIPPED_SIDECARS[path.name])))
    return load_npz(path, sidecar=sidecar, activation=activation)


__all__ = ["resolve_target"]
