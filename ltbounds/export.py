"""Hand targets and tickets to other tools: dense ``.npz``/``.safetensors`` and ``.onnx``.

A ticket file (:class:`~ltbounds.ticket.Ticket`) is tiny: seed plus kept indices. Other tools
need the weights, so :func:`export_ticket` writes the pruned source network
(:meth:`Ticket.network`, pruned weights exact zeros) as a dense weight file or an ONNX model;
:func:`save_target` does the same for any :class:`~ltbounds.nets.target.TargetNet`.
:func:`convert` is what ``ltbounds convert`` runs: read a target (any format
:func:`~ltbounds.nets.resolve.resolve_target` reads) or a ticket, write it in the format the
output suffix names, and check both ends:

* an ``.onnx`` **input** is run with onnxruntime on sampled domain inputs and compared with
  our forward pass of what we imported (:func:`~ltbounds.nets.onnx_io.cross_check`);
* an ``.onnx`` **output** is checked the same way *before* it is written;
* an ``.npz``/``.safetensors`` output is read back with our own loader and its forward pass
  compared with the network written (exact for float64).

A failed check raises :class:`~ltbounds.errors.BoundViolation` (exit code 3) and leaves no
output file.
"""

from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._io_util import atomic_path
from ltbounds.errors import BoundViolation, InvalidInput
from ltbounds.nets.io import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS, load_npz, save_npz
from ltbounds.nets.onnx_io import DEFAULT_CROSS_CHECK_TOL, CrossCheck, cross_check, target_to_onnx
from ltbounds.nets.resolve import resolve_target
from ltbounds.nets.safetensors_io import load_safetensors, save_safetensors
from ltbounds.nets.target import TargetNet

#: Output suffixes :func:`save_target` writes.
EXPORT_SUFFIXES = (".npz", ".safetensors", ".onnx")
#: Default dtype per output format (``.npz`` is always float64).
DEFAULT_DTYPES = {".npz": "float64", ".safetensors": "float64", ".onnx": "float32"}


def _suffix(path: Path) -> str:
    if path.suffix not in EXPORT_SUFFIXES:
        raise InvalidInput(
            f"output={str(path)!r} must end in {', '.join(EXPORT_SUFFIXES)} (the format is taken from the suffix)"
        )
    return path.suffix


def _dtype(suffix: str, dtype: str | None) -> str:
    chosen = DEFAULT_DTYPES[suffix] if dtype is None else dtype
    if suffix == ".npz" and chosen != "float64":
        raise InvalidInput(f"dtype={dtype!r}: .npz targets are written in float64 only")
    if chosen not in ("float32", "float64"):
        raise InvalidInput(f"dtype={dtype!r} must be 'float32' or 'float64'")
    return chosen


def save_target(
    target: TargetNet, path: str | os.PathLike[str], *, dtype: str | None = None
) -> Path:
    """Write ``target`` in the format of ``path``'s suffix (``.npz``, ``.safetensors``, ``.onnx``).

    ``dtype`` defaults to float64 for weight files and float32 for ONNX (see
    :func:`~ltbounds.nets.onnx_io.target_to_onnx`). The write is atomic.
    """
    destination = Path(path)
    suffix = _suffix(destination)
    chosen = _dtype(suffix, dtype)
    if suffix == ".npz":
        return save_npz(target, destination)
    if suffix == ".safetensors":
        return save_safetensors(target, destination, dtype=chosen)
    model = target_to_onnx(target, dtype=chosen)
    with atomic_path(destination) as temporary:
        temporary.write_bytes(model.SerializeToString())
    return destination


def export_ticket(ticket: Any, path: str | os.PathLike[str], *, dtype: str | None = None) -> Path:
    """Write the pruned network of ``ticket`` (:meth:`Ticket.network`) densely, as :func:`save_target`."""
    return save_target(ticket.network(), path, dtype=dtype)


def is_ticket_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an ``.npz`` archive holding a ticket header (not a target)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False
    return "header.npy" in names and not any(name.endswith(".weight.npy") for name in names)


def reload_check(
    written: TargetNet, reread: TargetNet, *, samples: int, seed: int, tolerance: float
) -> CrossCheck:
    """Our forward pass of ``written`` against that of ``reread`` (the file read back)."""
    x = np.asarray(written.sample_inputs(samples, seed), dtype=np.float64)
    ours = np.asarray(written.forward(x), dtype=np.float64)
    theirs = np.asarray(reread.forward(x), dtype=np.float64)
    error = float(np.max(np.abs(ours - theirs))) if ours.size else 0.0
    scale = max(1.0, float(np.max(np.abs(ours)))) if ours.size else 1.0
    return CrossCheck(samples, math.inf if math.isnan(error) else error, scale, tolerance)


def _require(check: CrossCheck, what: str) -> None:
    if not check.passed:
        raise BoundViolation(
            f"{what}: forward passes differ by {check.max_abs_error:.3g} on {check.samples} inputs, over "
            f"tolerance {check.tolerance:g} × scale {check.scale:.3g}; nothing written"
        )


@dataclass(frozen=True)
class Conversion:
    """What :func:`convert` read, wrote and checked (``to_dict`` is the ``--json`` document)."""

    input: str
    kind: str
    output: Path
    format: str
    dtype: str
    network: TargetNet
    import_check: CrossCheck | None
    export_check: CrossCheck | None
    export_method: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; keys documented in ``ltbounds convert --help``."""
        net = self.network
        params = net.num_params
        export = None
        if self.export_check is not None:
            export = {"method": self.export_method, **self.export_check.to_dict()}
        return {
            "input": self.input,
            "kind": self.kind,
            "output": str(self.output),
            "format": self.format,
            "dtype": self.dtype,
            "name": net.name,
            "activation": net.activation,
            "input_shape": list(net.input_shape),
            "input_domain": list(net.input_domain),
            "layers": [layer.describe() for layer in net.layers],
            "params": {"nonzero": params.nonzero, "total": params.total},
            "notes": list(net.notes),
            "import_check": None if self.import_check is None else self.import_check.to_dict(),
            "export_check": export,
            "bytes": self.output.stat().st_size,
        }


def convert(
    source: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    activation: str | None = None,
    dtype: str | None = None,
    verify: bool = True,
    samples: int = 1000,
    seed: int = 0,
    tolerance: float = DEFAULT_CROSS_CHECK_TOL,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Conversion:
    """Read a target or ticket from ``source`` and write it to ``output`` (format by suffix).

    ``source`` is an embedded target name, a target file (``.npz``, ``.safetensors``,
    ``.onnx``) or a ticket ``.npz`` written by ``ltbounds construct`` (its pruned network is
    written). With ``verify`` (the default), the checks in the module docstring run on
    ``samples`` inputs drawn from the domain with ``seed``, each passing when the largest
    output difference is at most ``tolerance × max(1, max |output|)``.

    Raises
    ------
    BoundViolation
        A check failed; nothing was written.
    ModelFormatError, InvalidInput
        The input cannot be read, or an argument is out of range.
    """
    destination = Path(output)
    suffix = _suffix(destination)
    chosen = _dtype(suffix, dtype)
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise InvalidInput(f"samples={samples!r} must be an integer >= 1")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise InvalidInput(f"tolerance={tolerance!r} must be a finite number > 0")
    text = str(source)
    import_check = None
    if text.endswith(".npz") and Path(text).is_file() and is_ticket_file(text):
        from ltbounds.ticket import MAX_TICKET_BYTES, Ticket  # noqa: PLC0415

        if sidecar is not None or activation is not None:
            raise InvalidInput("sidecar= and activation= apply to targets; a ticket records its own")
        if Path(text).stat().st_size > min(max_bytes, MAX_TICKET_BYTES):
            raise InvalidInput(f"ticket {text!r} is larger than max_bytes={min(max_bytes, MAX_TICKET_BYTES):,}")
        network = Ticket.load(text).network()
        kind = "ticket"
    else:
        network = resolve_target(text, sidecar=sidecar, activation=activation, max_bytes=max_bytes, max_elements=max_elements)
        kind = "target"
        if verify and text.endswith(".onnx"):
            import_check = cross_check(network, Path(text), samples=samples, seed=seed, tolerance=tolerance)
            _require(import_check, f"{text} as read by ltbounds vs onnxruntime")
    export_check = None
    method = None
    with atomic_path(destination) as temporary:
        if suffix == ".onnx":
            model = target_to_onnx(network, dtype=chosen)
            if verify:
                export_check = cross_check(network, model, samples=samples, seed=seed, tolerance=tolerance)
                method = "onnxruntime"
                _require(export_check, f"{destination} under onnxruntime vs ltbounds")
            temporary.write_bytes(model.SerializeToString())
        else:
            if suffix == ".npz":
                save_npz(network, temporary)
            else:
                save_safetensors(network, temporary, dtype=chosen)
            if verify:
                loader = load_npz if suffix == ".npz" else load_safetensors
                reread = loader(temporary, max_bytes=2**62, max_elements=2**62)
                export_check = reload_check(network, reread, samples=samples, seed=seed, tolerance=tolerance)
                method = "reload"
                _require(export_check, f"{destination} read back by ltbounds")
    return Conversion(text, kind, destination, suffix.lstrip("."), chosen, network, import_check, export_check, method)


__all__ = [
    "DEFAULT_DTYPES",
    "EXPORT_SUFFIXES",
    "Conversion",
    "convert",
    "export_ticket",
    "is_ticket_file",
    "reload_check",
    "save_target",
]
