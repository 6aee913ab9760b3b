"""Reading and writing target networks as ``.npz`` files, safely.

Files are read with our own bounded reader (never ``pickle``, never ``torch.load``): every
archive member must be a plain ``.npy`` array of a boolean, integer or floating dtype whose
header is checked against the size caps and the member's real size *before* any data is
read. Anything malformed or hostile becomes a one-line
:class:`~ltbounds.errors.ModelFormatError` (NaN or infinite weights an
:class:`~ltbounds.errors.InvalidInput` naming the key and position).

Keys follow PyTorch's state-dict names (``0.weight``, ``conv1.weight``, ``fc.bias``); a
``<key>_mask`` array is multiplied into its partner. The architecture comes from, in order:
a sidecar JSON file (``sidecar=``), the JSON string embedded by :func:`save_npz`, or, failing
both, inference from the key order (stated in the target's ``notes``). The sidecar schema is
documented in ``docs/networks.md``::

    {"format": "ltbounds-architecture", "version": 1,
     "input_shape": [1, 28, 28], "input_domain": [-0.4242, 2.8215], "activation": "relu",
     "layers": [{"type": "conv2d", "key": "0", "stride": 1, "padding": 1},
                {"type": "avgpool2d", "kernel": 2},
                {"type": "flatten"},
                {"type": "dense", "key": "5"}]}
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._io_util import atomic_path
from ltbounds.activations import get_activation
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets._base import Layer
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.target import TargetNet

#: Largest ``.npz`` file, and largest total of its uncompressed members, read by default.
DEFAULT_MAX_BYTES = 512 * 2**20
#: Largest number of entries of one tensor read by default.
DEFAULT_MAX_ELEMENTS = 2**26
#: Largest sidecar JSON file read.
MAX_SIDECAR_BYTES = 2**20
#: Archive key under which :func:`save_npz` embeds the architecture (UTF-8 JSON as uint8).
ARCHITECTURE_KEY = "__ltbounds_architecture__"
#: Assumed input domain when neither the caller nor the architecture states one.
DEFAULT_INPUT_DOMAIN = (-1.0, 1.0)

_LINEAR = {"dense": (Dense, 2), "conv1d": (Conv1d, 3), "conv2d": (Conv2d, 4)}
_POOLS = {
    "avgpool1d": AvgPool1d,
    "avgpool2d": AvgPool2d,
    "maxpool1d": MaxPool1d,
    "maxpool2d": MaxPool2d,
}
_LAYER_FIELDS = {
    **{kind: {"type", "key", "bias", "stride", "padding"} for kind in _LINEAR},
    **{kind: {"type", "kernel", "stride"} for kind in _POOLS},
    "flatten": {"type"},
}
_TOP_FIELDS = {
    "format", "version", "name", "input_shape", "input_domain", "activation", "layers",
    "metadata", "description", "source",
}  # fmt: skip


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- reading arrays ------------------------------------------------------------------------
def read_npz_arrays(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` archive, read with header checks and size caps.

    Raises
    ------
    ModelFormatError
        When the file is missing, too large, not a zip archive, truncated, holds a member that
        is not a plain numeric ``.npy`` array (object, structured, string dtypes), declares a
        shape larger than ``max_elements`` or than its stored bytes, or repeats a key.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelFormatError(
            f"{path}: file has {size:,} bytes, over the cap max_bytes={max_bytes:,}; raise it for a trusted file"
        )
    arrays: dict[str, np.ndarray] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            total = sum(info.file_size for info in members)
            if total > max_bytes:
                raise ModelFormatError(
                    f"{path}: archive expands to {total:,} bytes, over the cap max_bytes={max_bytes:,}"
                )
            for info in members:
                if info.is_dir():
                    continue
                if not info.filename.endswith(".npy"):
                    raise ModelFormatError(f"{path}: member {info.filename!r} is not a .npy array")
                key = info.filename[: -len(".npy")]
                if key in arrays:
                    raise ModelFormatError(f"{path}: key {key!r} appears twice")
                arrays[key] = _read_member(path, archive, info, max_elements)
    except ModelFormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError,
            struct.error, zlib.error, KeyError, NotImplementedError, RuntimeError) as exc:  # fmt: skip
        raise ModelFormatError(
            f"{path}: not a readable .npz archive ({type(exc).__name__}: {_one_line(exc)})"
        ) from None
    if not arrays:
        raise ModelFormatError(f"{path}: archive holds no arrays")
    return arrays


def _read_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, max_elements: int
) -> np.ndarray:
    key = info.filename[: -len(".npy")]
    with archive.open(info) as handle:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise ModelFormatError(
                f"{path}: {key!r} uses .npy format version {version}; expected 1.0 or 2.0"
            )
        if dtype.hasobject or dtype.names is not None or dtype.subdtype is not None:
            raise ModelFormatError(
                f"{path}: {key!r} has dtype {dtype}; expected a plain numeric array"
            )
        if dtype.kind not in "biuf":
            raise ModelFormatError(
                f"{path}: {key!r} has dtype {dtype}; expected bool, integer or floating point"
            )
        elements = math.prod(shape)
        if elements > max_elements:
            raise ModelFormatError(
                f"{path}: {key!r} declares shape {tuple(shape)} ({elements:,} entries), over the cap "
                f"max_elements={max_elements:,}"
            )
        header = handle.tell()
        stored = info.file_size - header
        expected = elements * dtype.itemsize
        if stored != expected:
            raise ModelFormatError(
                f"{path}: {key!r} declares shape {tuple(shape)} of {dtype} ({expected:,} bytes) but "
                f"stores {stored:,} bytes"
            )
        data = handle.read(expected)
    if len(data) != expected:
        raise ModelFormatError(
            f"{path}: {key!r} is truncated ({len(data):,} of {expected:,} bytes)"
        )
    array = np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran_order else "C")
    return np.array(array, copy=True)


# -- architecture ----------------------------------------------------------------------------
def _group(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Tensors by key prefix: ``{"0": {"weight": ..., "bias": ...}}``, masks applied."""
    groups: dict[str, dict[str, np.ndarray]] = {}
    unsupported = []
    masks = {key[: -len("_mask")]: value for key, value in arrays.items() if key.endswith("_mask")}
    for key, value in arrays.items():
        if key == ARCHITECTURE_KEY or key.endswith("_mask"):
            continue
        match = re.fullmatch(r"(?:(.*)\.)?(weight|bias)", key)
        if match is None:
            unsupported.append(key)
            continue
        prefix, part = match.group(1) or "", match.group(2)
        if value.dtype.kind != "f":
            raise ModelFormatError(
                f"{path}: {key!r} has dtype {value.dtype}; expected floating point"
            )
        value = value.astype(np.float64)
        if key in masks:
            mask = masks[key]
            if mask.shape != value.shape:
                raise ModelFormatError(
                    f"{path}: {key}_mask has shape {mask.shape}; expected {value.shape} like {key!r}"
                )
            if not np.all((mask == 0) | (mask == 1)):
                raise ModelFormatError(f"{path}: {key}_mask holds values other than 0 and 1")
            value = value * mask.astype(np.float64)
        _check_finite(path, key, value)
        groups.setdefault(prefix, {})[part] = value
    orphans = sorted(key for key in masks if key not in arrays)
    if orphans:
        raise ModelFormatError(
            f"{path}: masks without a tensor: {', '.join(k + '_mask' for k in orphans)}"
        )
    if unsupported:
        raise ModelFormatError(
            f"{path}: unsupported keys (expected <prefix>.weight, <prefix>.bias, <key>_mask): "
            + ", ".join(sorted(unsupported))
        )
    for prefix, parts in groups.items():
        if "weight" not in parts:
            raise ModelFormatError(
                f"{path}: {_key(prefix, 'bias')!r} has no matching {_key(prefix, 'weight')!r}"
            )
    return groups


def _key(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


def _check_finite(path: Path, key: str, value: np.ndarray) -> None:
    finite = np.isfinite(value)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise InvalidInput(
            f"{path}: {key!r} holds {float(value[position])!r} at index {position}; expected finite values"
        )


def _natural(text: str) -> list[Any]:
    return [
        (0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part
    ]


def read_sidecar(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A sidecar architecture document, parsed (schema checks happen in :func:`load_npz`)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such sidecar file")
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise ModelFormatError(f"{path}: sidecar is larger than {MAX_SIDECAR_BYTES:,} bytes")
    return _parse_json(path, path.read_bytes())


def _parse_json(where: Path, raw: bytes) -> dict[str, Any]:
    try:
        document = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(
            f"{where}: architecture is not valid JSON ({_one_line(exc)})"
        ) from None
    if not isinstance(document, dict):
        raise ModelFormatError(f"{where}: architecture must be a JSON object")
    return document


def _build_from_document(
    where: Path, document: dict[str, Any], groups: dict[str, dict[str, np.ndarray]]
) -> tuple[list[Layer], dict[str, Any]]:
    unknown = sorted(set(document) - _TOP_FIELDS)
    if unknown:
        raise ModelFormatError(f"{where}: unknown architecture fields {', '.join(unknown)}")
    if document.get("format", "ltbounds-architecture") != "ltbounds-architecture":
        raise ModelFormatError(
            f"{where}: format={document['format']!r}; expected 'ltbounds-architecture'"
        )
    if document.get("version", 1) != 1:
        raise ModelFormatError(f"{where}: version={document['version']!r}; expected 1")
    entries = document.get("layers")
    if not isinstance(entries, list) or not entries:
        raise ModelFormatError(f"{where}: 'layers' must be a non-empty list")
    problems = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("type") not in _LAYER_FIELDS:
            kind = entry.get("type") if isinstance(entry, dict) else entry
            problems.append(f"layer {index}: type {kind!r}")
        else:
            extra = sorted(set(entry) - _LAYER_FIELDS[entry["type"]])
            if extra:
                problems.append(
                    f"layer {index} ({entry['type']}): unknown fields {', '.join(extra)}"
                )
    if problems:
        raise ModelFormatError(
            f"{where}: unsupported layers ({'; '.join(problems)}); supported types: "
            + ", ".join(sorted(_LAYER_FIELDS))
        )
    layers: list[Layer] = []
    used: set[str] = set()
    for index, entry in enumerate(entries):
        kind = entry["type"]
        try:
            if kind in _LINEAR:
                prefix = entry.get("key")
                if not isinstance(prefix, str):
                    raise ModelFormatError(f"{where}: layer {index} ({kind}) needs a string 'key'")
                if prefix not in groups:
                    raise ModelFormatError(
                        f"{where}: layer {index} ({kind}) names key {_key(prefix, 'weight')!r}, "
                        "which the file does not hold"
                    )
                if prefix in used:
                    raise ModelFormatError(f"{where}: key prefix {prefix!r} is used twice")
                used.add(prefix)
                layers.append(_linear_layer(where, index, kind, prefix, groups[prefix], entry))
            elif kind in _POOLS:
                layers.append(_POOLS[kind](entry.get("kernel"), entry.get("stride")))
            else:
                layers.append(Flatten())
        except InvalidInput as exc:
            raise ModelFormatError(f"{where}: layer {index} ({kind}): {exc}") from None
    unused = sorted(set(groups) - used)
    if unused:
        raise ModelFormatError(
            f"{where}: tensors not used by any layer: "
            + ", ".join(_key(p, "weight") for p in unused)
        )
    return layers, document


def _linear_layer(
    where: Path,
    index: int,
    kind: str,
    prefix: str,
    parts: dict[str, np.ndarray],
    entry: dict[str, Any],
) -> Layer:
    cls, ndim = _LINEAR[kind]
    weight = parts["weight"]
    if weight.ndim != ndim:
        raise ModelFormatError(
            f"{where}: layer {index} ({kind}): {_key(prefix, 'weight')!r} has shape {weight.shape}; "
            f"expected {ndim} dimensions"
        )
    want_bias = entry.get("bias", "bias" in parts)
    if not isinstance(want_bias, bool):
        raise ModelFormatError(
            f"{where}: layer {index} ({kind}): bias={want_bias!r} must be true or false"
        )
    if want_bias and "bias" not in parts:
        raise ModelFormatError(
            f"{where}: layer {index} ({kind}) expects {_key(prefix, 'bias')!r}, missing"
        )
    bias = parts.get("bias") if want_bias else None
    if not want_bias and "bias" in parts:
        raise ModelFormatError(
            f"{where}: layer {index} ({kind}) says bias=false but the file holds {_key(prefix, 'bias')!r}"
        )
    if kind == "dense":
        return Dense(weight, bias)
    return cls(weight, bias, stride=entry.get("stride", 1), padding=entry.get("padding", 0))


def _infer(
    where: Path,
    groups: dict[str, dict[str, np.ndarray]],
    input_shape: tuple[int, ...] | None,
) -> tuple[list[Layer], tuple[int, ...], str]:
    """A plain sequential architecture from the key order (see :func:`load_npz`)."""
    order = sorted(groups, key=_natural)
    layers: list[Layer] = []
    steps = []
    seen_conv = False
    flattened = False
    for prefix in order:
        weight = groups[prefix]["weight"]
        bias = groups[prefix].get("bias")
        name = _key(prefix, "weight")
        if weight.ndim == 2:
            if seen_conv and not flattened:
                layers.append(Flatten())
                steps.append("flatten")
                flattened = True
            layers.append(Dense(weight, bias))
            steps.append(f"{name} dense")
        elif weight.ndim in (3, 4):
            if flattened:
                raise ModelFormatError(
                    f"{where}: {name!r} is a convolution after a dense layer; cannot infer the "
                    "architecture, give a sidecar"
                )
            kernel = weight.shape[2:]
            if any(k % 2 == 0 for k in kernel):
                raise ModelFormatError(
                    f"{where}: {name!r} has an even kernel {kernel}; padding is ambiguous, give a sidecar"
                )
            padding = tuple(k // 2 for k in kernel)
            cls = Conv1d if weight.ndim == 3 else Conv2d
            layers.append(cls(weight, bias, stride=1, padding=padding))
            steps.append(
                f"{name} {cls.kind} stride 1 padding {padding[0] if len(set(padding)) == 1 else padding}"
            )
            seen_conv = True
        else:
            raise ModelFormatError(
                f"{where}: {name!r} has shape {weight.shape}; expected 2 (dense), 3 (conv1d) or 4 (conv2d) dimensions"
            )
    first = layers[0]
    if input_shape is None:
        if isinstance(first, Dense):
            input_shape = (first.in_channels,)
        else:
            input_shape = _infer_spatial(where, layers)
    note = (
        "architecture inferred from the key order ("
        + ", ".join(steps)
        + f"; input {tuple(input_shape)}); write a sidecar JSON to state it"
    )
    return layers, tuple(input_shape), note


def _infer_spatial(where: Path, layers: list[Layer]) -> tuple[int, ...]:
    convs = [layer for layer in layers if isinstance(layer, (Conv1d, Conv2d))]
    dense = next((layer for layer in layers if isinstance(layer, Dense)), None)
    if dense is None:
        raise ModelFormatError(
            f"{where}: a convolution-only file does not fix the input size; pass input_shape= or a sidecar"
        )
    channels = convs[-1].out_channels
    positions, remainder = divmod(dense.in_channels, channels)
    dims = convs[0].dims
    side = round(positions ** (1 / dims))
    if remainder or side**dims != positions:
        raise ModelFormatError(
            f"{where}: dense input {dense.in_channels} is not {channels} channels × a "
            f"{'square' if dims == 2 else 'length'}; pass input_shape= or a sidecar"
        )
    return (convs[0].in_channels, *([side] * dims))


def load_npz(
    path: str | os.PathLike[str],
    *,
    sidecar: str | os.PathLike[str] | None = None,
    activation: str | None = None,
    input_domain: tuple[float, float] | None = None,
    input_shape: tuple[int, ...] | None = None,
    name: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> TargetNet:
    """Load a target network from an ``.npz`` file (see the module docstring for the format).

    Parameters
    ----------
    path : path
        The ``.npz`` archive.
    sidecar : path, optional
        An architecture JSON file; otherwise the architecture embedded by :func:`save_npz`, or
        else one inferred from the key order: layers sorted by natural key order, weight of
        2/3/4 dimensions = dense / conv1d / conv2d, convolutions with stride 1 and padding
        ``k // 2`` (odd kernels only), a flatten before the first dense layer after a
        convolution, no pooling. Inference is stated in the target's ``notes``.
    activation : str, optional
        Overrides the architecture's activation; required when the file states none.
    input_domain : (float, float), optional
        Overrides the architecture's domain; without either, ``[-1, 1]`` is assumed and noted.
    input_shape : tuple of int, optional
        Overrides the architecture's input shape (needed to infer a convolution-only file).
    name : str, optional
        Label of the target (default: the architecture's name or the file stem).
    max_bytes, max_elements : int
        Caps on the file size (and its uncompressed members) and on one tensor's entries.

    Raises
    ------
    ModelFormatError
        Malformed or hostile file, missing or unused keys, shapes that do not chain.
    InvalidInput
        NaN or infinite weights (the message names key and position).
    """
    where = Path(path)
    arrays = read_npz_arrays(where, max_bytes=max_bytes, max_elements=max_elements)
    groups = _group(where, arrays)
    notes: list[str] = []
    document: dict[str, Any] | None = None
    if sidecar is not None:
        document = read_sidecar(sidecar)
        doc_where = Path(sidecar)
    elif ARCHITECTURE_KEY in arrays:
        raw = arrays[ARCHITECTURE_KEY]
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ModelFormatError(
                f"{where}: {ARCHITECTURE_KEY!r} must be a 1-D uint8 array of UTF-8 JSON"
            )
        document = _parse_json(where, raw.tobytes())
        doc_where = where
    if document is not None:
        layers, document = _build_from_document(doc_where, document, groups)
        shape = input_shape if input_shape is not None else document.get("input_shape")
        if shape is None:
            raise ModelFormatError(f"{doc_where}: architecture has no 'input_shape'")
        domain = input_domain if input_domain is not None else document.get("input_domain")
        phi = activation if activation is not None else document.get("activation")
        label = name or document.get("name") or where.stem
        metadata = document.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ModelFormatError(f"{doc_where}: 'metadata' must be a JSON object")
    else:
        doc_where = where
        layers, shape, note = _infer(where, groups, input_shape)
        notes.append(note)
        domain, phi, label, metadata = input_domain, activation, name or where.stem, {}
    if phi is None:
        raise ModelFormatError(
            f"{doc_where}: the activation is not recorded; pass activation= (for example 'relu')"
        )
    if activation is not None:
        get_activation(activation)  # a bad argument is the caller's InvalidInput
    if domain is None:
        domain = DEFAULT_INPUT_DOMAIN
        notes.append(f"input domain not recorded; assumed [{domain[0]:g}, {domain[1]:g}] per entry")
    try:
        shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
        return TargetNet(layers, shape, phi, tuple(domain) if isinstance(domain, (list, tuple)) else domain,
                         name=label, notes=notes, metadata=metadata)  # fmt: skip
    except InvalidInput as exc:
        raise ModelFormatError(f"{doc_where}: {exc}") from None


def save_npz(target: TargetNet, path: str | os.PathLike[str]) -> Path:
    """Write ``target`` as one ``.npz`` file: float64 weights plus the embedded architecture.

    Keys are ``<layer index>.weight`` / ``<layer index>.bias``; the architecture document
    (:meth:`TargetNet.to_config`, including metadata) is stored as UTF-8 JSON under
    :data:`ARCHITECTURE_KEY`, so :func:`load_npz` needs no sidecar. The write is atomic.
    """
    arrays: dict[str, np.ndarray] = {}
    for index, layer in target.linear_layers:
        for part, values in layer.parameters().items():
            arrays[f"{index}.{part}"] = np.asarray(values, dtype=np.float64)
    text = json.dumps(target.to_config(), sort_keys=True, allow_nan=False)
    arrays[ARCHITECTURE_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    destination = Path(path)
    with atomic_path(destination) as temporary, open(temporary, "wb") as handle:
        np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]
    return destination


__all__ = [
    "ARCHITECTURE_KEY",
    "DEFAULT_INPUT_DOMAIN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "load_npz",
    "read_npz_arrays",
    "read_sidecar",
    "save_npz",
]
