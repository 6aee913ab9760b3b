"""Turn what a user types (an embedded name or a file path) into a :class:`TargetNet`.

``digits_cnn_relu`` names a shipped target (:func:`~ltbounds.nets.embedded.list_embedded`);
a file is read by its suffix: ``.npz`` with :func:`~ltbounds.nets.io.load_npz`,
``.safetensors`` with :func:`~ltbounds.nets.safetensors_io.load_safetensors` (both with the
sidecar ``<stem>.json`` beside the file used automatically when present, or the one given,
or the sidecar shipped for a well-known foreign file such as ``lt_existence_mnist_cnn.npz``),
and ``.onnx`` with :func:`~ltbounds.nets.onnx_io.load_onnx` (the graph is its own
architecture). Every failure is a one-line :class:`~ltbounds.errors.LtboundsError`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ltbounds.errors import InvalidInput
from ltbounds.nets.embedded import list_embedded, load_embedded
from ltbounds.nets.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS, load_npz
from ltbounds.nets.target import TargetNet

#: Sidecars shipped for well-known foreign targets, looked up by file name.
_SHIPPED_SIDECARS = {"lt_existence_mnist_cnn.npz": "lt_existence_mnist_cnn.json"}
#: File suffixes read as targets.
TARGET_SUFFIXES = (".npz", ".safetensors", ".onnx")


def resolve_target(
    spec: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    activation: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> TargetNet:
    """Load the target named or pointed to by ``spec`` (``max_*``: the loaders' size caps)."""
    text = str(spec)
    embedded = list_embedded()
    if text in embedded:
        if sidecar is not None:
            raise InvalidInput(f"sidecar={str(sidecar)!r} applies to files, not to the embedded target {text!r}")
        return load_embedded(text)
    path = Path(text)
    if path.suffix not in TARGET_SUFFIXES:
        raise InvalidInput(
            f"target={text!r} is neither an embedded target ({', '.join(embedded)}) nor an "
            f"{', '.join(TARGET_SUFFIXES[:-1])} or {TARGET_SUFFIXES[-1]} file"
        )
    if not path.exists():
        raise InvalidInput(f"target file {text!r} does not exist")
    limits = {"max_bytes": max_bytes, "max_elements": max_elements}
    if path.suffix == ".onnx":
        if sidecar is not None:
            raise InvalidInput(f"sidecar={str(sidecar)!r} applies to .npz and .safetensors files; an ONNX graph is its own architecture")
        from ltbounds.nets.onnx_io import load_onnx  # noqa: PLC0415

        return load_onnx(path, activation=activation, **limits)
    if sidecar is None:
        beside = path.with_suffix(".json")
        if beside.exists():
            sidecar = beside
        elif path.name in _SHIPPED_SIDECARS:
            from importlib import resources  # noqa: PLC0415

            sidecar = Path(str(resources.files("ltbounds").joinpath("data", _SHIPPED_SIDECARS[path.name])))
    if path.suffix == ".safetensors":
        from ltbounds.nets.safetensors_io import load_safetensors  # noqa: PLC0415

        return load_safetensors(path, sidecar=sidecar, activation=activation, **limits)
    return load_npz(path, sidecar=sidecar, activation=activation, **limits)


__all__ = ["TARGET_SUFFIXES", "resolve_target"]
