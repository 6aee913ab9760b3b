"""Reading and writing target networks as ``.npz`` files, safely.

Files are read with our own bounded reader (never ``pickle``, never ``torch.load``): every
archive member must be a plain ``.npy`` array of a boolean, integer or floating dtype whose
header is checked against the size caps and the member's real size *before* any data is
read. Anything malformed or hostile becomes a one-line
:class:`~ltbounds.errors.ModelFormatError`, NaN or infinite weights included (the message
names the key and position). :func:`target_from_arrays` is the format-independent half, shared
with :mod:`ltbounds.nets.safetensors_io`.

Keys follow PyTorch's state-dict names (``0.weight``, ``conv1.weight``, ``fc.bias``); a
``<key>_mask`` array is multiplied into its partner; batch-norm tensors (``bn1.weight``,
``bn1.bias``, ``bn1.running_mean``, ``bn1.running_var``; ``bn1.num_batches_tracked`` is
ignored) are folded into the convolution or dense layer they follow
(:func:`fold_batchnorm`), where the architecture places a ``batchnorm1d``/``batchnorm2d``
entry. The architecture comes from, in order:
a sidecar JSON file (``sidecar=``), the JSON string embedded by :func:`save_npz`, or, failing
both, inference from the key order (stated in the target's ``notes``). The sidecar schema is
documented in ``docs/networks.md``::

    {"format": "ltbounds-architecture", "version": 1,
     "input_shape": [1, 28, 28], "input_domain": [-0.4242, 2.8215], "activation": "relu",
     "layers": [{"type": "conv2d", "key": "0", "stride": 1, "padding": 1},
                {"type": "avgpool2d", "kernel": 2},
                {"type": "flatten"},
                {"type": "dense", "key": "5"}]}

Residual blocks (:class:`~ltbounds.nets.residual.ResidualBlock`) are entries with nested
layer entries, batch norm folded inside them too::

    {"type": "residual",
     "branch": [{"type": "conv2d", "key": "layer1.conv1", "stride": 2, "padding": 1},
                {"type": "batchnorm2d", "key": "layer1.bn1", "eps": 1e-5},
                {"type": "conv2d", "key": "layer1.conv2", "padding": 1},
                {"type": "batchnorm2d", "key": "layer1.bn2"}],
     "skip": [{"type": "conv2d", "key": "layer1.down.0", "stride": 2},
              {"type": "batchnorm2d", "key": "layer1.down.1"}],
     "activation_out": true}

(``skip``: null for the identity, one entry, or a list that folds to one linear layer.)
"""

from __future__ import annotations

import json
import math
import os
import re
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

# DEFAULT_MAX_BYTES (largest file, and largest total of its uncompressed members, read by
# default) and DEFAULT_MAX_ELEMENTS (most entries of one tensor) live in the import-free
# ltbounds._defaults so that the CLI can declare its options without loading the networks.
from ltbounds._defaults import DEFAULT_MAX_BYTES, DEFAULT_MAX_ELEMENTS
from ltbounds._io_util import write_npz_atomic
from ltbounds.activations import get_activation
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets._base import Layer, LinearLayer
from ltbounds.nets.conv import Conv1d, Conv2d
from ltbounds.nets.dense import Dense
from ltbounds.nets.flatten import Flatten
from ltbounds.nets.pooling import AvgPool1d, AvgPool2d, MaxPool1d, MaxPool2d
from ltbounds.nets.residual import ResidualBlock
from ltbounds.nets.target import TargetNet

#: Largest sidecar JSON file read.
MAX_SIDECAR_BYTES = 2**20
#: Archive key under which :func:`save_npz` embeds the architecture (UTF-8 JSON as uint8).
ARCHITECTURE_KEY = "__ltbounds_architecture__"
#: Assumed input domain when neither the caller nor the architecture states one.
DEFAULT_INPUT_DOMAIN = (-1.0, 1.0)
#: Batch-norm ``eps`` when an entry states none (PyTorch's default).
DEFAULT_BATCHNORM_EPS = 1e-5

_LINEAR = {"dense": (Dense, 2), "conv1d": (Conv1d, 3), "conv2d": (Conv2d, 4)}
_POOLS = {
    "avgpool1d": AvgPool1d,
    "avgpool2d": AvgPool2d,
    "maxpool1d": MaxPool1d,
    "maxpool2d": MaxPool2d,
}
#: Batch-norm entry kind -> the linear layer kinds it may follow (and fold into).
_BATCHNORM = {"batchnorm1d": ("dense", "conv1d"), "batchnorm2d": ("conv2d",)}
_LAYER_FIELDS = {
    **{kind: {"type", "key", "bias", "stride", "padding"} for kind in _LINEAR},
    **{kind: {"type", "kernel", "stride"} for kind in _POOLS},
    **{kind: {"type", "key", "eps"} for kind in _BATCHNORM},
    "flatten": {"type"},
    "residual": {"type", "branch", "skip", "activation_out"},
}
#: State-dict suffixes read; ``num_batches_tracked`` only next to batch-norm statistics.
_PARTS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_TOP_FIELDS = {
    "format", "version", "name", "input_shape", "input_domain", "activation", "layers",
    "metadata", "description", "source",
}  # fmt: skip


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- reading arrays ------------------------------------------------------------------------
def check_file_size(path: Path, max_bytes: int) -> int:
    """The size of the model file ``path``, refused (``ModelFormatError``) when it is missing or
    larger than ``max_bytes``: the first gate of every loader, before a byte is read."""
    if not path.is_file():
        raise ModelFormatError(f"{path}: no such file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ModelFormatError(
            f"{path}: file has {size:,} bytes, over the cap max_bytes={max_bytes:,}; raise it for a trusted file"
        )
    return size


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
    check_file_size(path, max_bytes)
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
            struct.error, zlib.error, KeyError, NotImplementedError, RuntimeError,
            SyntaxError, tokenize.TokenError) as exc:  # fmt: skip  (the last two: a garbled .npy header)
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
    tracked: set[str] = set()
    for key, value in arrays.items():
        if key == ARCHITECTURE_KEY or key.endswith("_mask"):
            continue
        match = re.fullmatch(r"(?:(.*)\.)?(" + "|".join(_PARTS) + ")", key)
        if match is None:
            unsupported.append(key)
            continue
        prefix, part = match.group(1) or "", match.group(2)
        if part == "num_batches_tracked":
            tracked.add(prefix)  # a training counter; ignored
            continue
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
    for prefix in sorted(tracked):
        if prefix not in groups or "running_mean" not in groups[prefix]:
            unsupported.append(_key(prefix, "num_batches_tracked"))
    for prefix, parts in groups.items():
        statistics = {"running_mean", "running_var"} & set(parts)
        if len(statistics) == 1:  # half a batch norm is nothing we can use
            unsupported.append(_key(prefix, statistics.pop()))
    orphans = sorted(key for key in masks if key not in arrays)
    if orphans:
        raise ModelFormatError(
            f"{path}: masks without a tensor: {', '.join(_shown(k + '_mask') for k in orphans)}"
        )
    if unsupported:
        raise ModelFormatError(
            f"{path}: unsupported keys (expected <prefix>.weight, <prefix>.bias, <key>_mask, or "
            "batch-norm <prefix>.running_mean with <prefix>.running_var): "
            + ", ".join(_shown(k) for k in sorted(unsupported))
        )
    for prefix, parts in groups.items():
        if _is_batchnorm(parts):
            if ("weight" in parts) != ("bias" in parts):
                have, lack = ("weight", "bias") if "weight" in parts else ("bias", "weight")
                raise ModelFormatError(
                    f"{path}: batch norm {prefix!r} has {_key(prefix, have)!r} but no "
                    f"{_key(prefix, lack)!r}; expected both (affine) or neither"
                )
        elif "weight" not in parts:
            raise ModelFormatError(
                f"{path}: {_key(prefix, 'bias')!r} has no matching {_key(prefix, 'weight')!r}"
            )
    return groups


def _shown(key: str) -> str:
    """A key as written, or quoted with escapes when it holds a newline or control character
    (so a hostile archive cannot break a one-line message or drive the terminal)."""
    return key if key.isprintable() else repr(key)


def _key(prefix: str, part: str) -> str:
    return f"{prefix}.{part}" if prefix else part


def _is_batchnorm(parts: dict[str, np.ndarray]) -> bool:
    return "running_mean" in parts


def _first_key(prefix: str, parts: dict[str, np.ndarray]) -> str:
    return _key(prefix, "running_mean" if _is_batchnorm(parts) else "weight")


# -- batch normalisation ---------------------------------------------------------------------
def fold_batchnorm(
    weight: Any,
    bias: Any | None,
    gamma: Any,
    beta: Any,
    mean: Any,
    var: Any,
    eps: float = DEFAULT_BATCHNORM_EPS,
) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode batch norm into the linear layer before it.

    ``BN(z) = γ (z − mean) / √(var + eps) + β`` per output channel, applied to
    ``z = W x + b``, equals the linear layer with

    * ``W' = W · s`` (every weight of output channel ``c`` scaled by ``s_c``),
    * ``b' = (b − mean) · s + β``,

    where ``s = γ / √(var + eps)`` and ``b = 0`` when the layer has no bias. Exact in real
    arithmetic; in float64 the folded and unfolded forward passes differ by rounding only
    (the tests check 1e-6 on trained-like statistics; it is ~1e-15 relative). Burkholz
    (ICML 2022) states her results for networks without normalisation layers; folding turns
    a trained ResNet into one.

    Parameters
    ----------
    weight : array of shape (out, ...)
        Dense ``(out, in)`` or convolution ``(out, in, *kernel)`` weights.
    bias : array of shape (out,), or None
    gamma, beta, mean, var : arrays of shape (out,)
        The batch norm's scale, shift, running mean and running variance.
    eps : float
        The batch norm's ``eps`` (> 0; PyTorch's default 1e-5).

    Returns
    -------
    (weight, bias) : float64 arrays of the input shapes (the bias always present).

    Raises
    ------
    InvalidInput
        Shapes that do not match ``out``, ``eps <= 0``, or a negative variance.
    """
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim < 2:
        raise InvalidInput(f"weight has shape {weight.shape}; expected (out, in, ...)")
    channels = weight.shape[0]
    named = {"gamma": gamma, "beta": beta, "mean": mean, "var": var}
    if bias is not None:
        named["bias"] = bias
    values = {}
    for name, value in named.items():
        array = np.asarray(value, dtype=np.float64)
        if array.shape != (channels,):
            raise InvalidInput(
                f"{name} has shape {array.shape}; expected ({channels},), one per output channel"
            )
        values[name] = array
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not (
        math.isfinite(eps) and eps > 0
    ):
        raise InvalidInput(f"eps={eps!r} must be a finite number > 0")
    if np.any(values["var"] < 0):
        position = int(np.argmax(values["var"] < 0))
        raise InvalidInput(
            f"var holds {float(values['var'][position])!r} at index {position}; expected variances >= 0"
        )
    scale = values["gamma"] / np.sqrt(values["var"] + float(eps))
    folded_weight = weight * scale.reshape((channels,) + (1,) * (weight.ndim - 1))
    folded_bias = (values.get("bias", np.zeros(channels)) - values["mean"]) * scale + values["beta"]
    return folded_weight, folded_bias


def _fold_into(
    where: Path, label: str, kind: str, layer: LinearLayer, prefix: str,
    parts: dict[str, np.ndarray], entry: dict[str, Any],
) -> LinearLayer:  # fmt: skip
    """``layer`` with the batch norm ``parts`` folded in (see :func:`fold_batchnorm`)."""
    channels = layer.out_channels
    for part, values in parts.items():
        if values.shape != (channels,):
            raise ModelFormatError(
                f"{where}: {label} ({kind}): {_key(prefix, part)!r} has shape {values.shape}; "
                f"expected ({channels},) for the {layer.describe()} it follows"
            )
    eps = entry.get("eps", DEFAULT_BATCHNORM_EPS)
    weight, bias = fold_batchnorm(
        layer.weight,
        layer.bias,
        parts.get("weight", np.ones(channels)),
        parts.get("bias", np.zeros(channels)),
        parts["running_mean"],
        parts["running_var"],
        eps,
    )
    if isinstance(layer, Dense):
        return Dense(weight, bias)
    return type(layer)(weight, bias, stride=layer.stride, padding=layer.padding)  # type: ignore[call-arg]


def _check_finite(path: Path, key: str, value: np.ndarray) -> None:
    finite = np.isfinite(value)
    if not finite.all():
        position = tuple(int(i) for i in np.argwhere(~finite)[0])
        raise ModelFormatError(
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
    except RecursionError:
        raise ModelFormatError(f"{where}: architecture JSON is nested too deeply") from None
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
    problems: list[str] = []
    _check_entries(entries, "layer", problems, inside=None)
    if problems:
        raise ModelFormatError(
            f"{where}: unsupported layers ({'; '.join(problems)}); supported types: "
            + ", ".join(sorted(_LAYER_FIELDS))
        )
    used: set[str] = set()
    layers = _build_entries(where, entries, "layer", groups, used)
    unused = sorted(set(groups) - used)
    if unused:
        raise ModelFormatError(
            f"{where}: tensors not used by any layer: "
            + ", ".join(_first_key(p, groups[p]) for p in unused)
        )
    return layers, document


def _check_entries(
    entries: list[Any], label: str, problems: list[str], *, inside: str | None
) -> None:
    """Collect every schema problem of ``entries`` (types, fields, nesting) into ``problems``.

    ``inside`` is None at the top level, ``"branch"`` or ``"skip"`` within a residual block,
    where only linear and batch-norm entries are allowed (blocks do not nest), so the
    recursion is at most two levels deep whatever the document.
    """
    for position, entry in enumerate(entries):
        where = f"{label} {position}"
        kind = entry.get("type") if isinstance(entry, dict) else None
        if not isinstance(kind, str) or kind not in _LAYER_FIELDS:
            shown = kind if isinstance(entry, dict) else entry
            problems.append(f"{where}: type {_short(shown)}")
            continue
        extra = sorted(set(entry) - _LAYER_FIELDS[kind])
        if extra:
            problems.append(f"{where} ({kind}): unknown fields {', '.join(map(_field, extra))}")
        if inside is not None and kind not in _LINEAR and kind not in _BATCHNORM:
            problems.append(
                f"{where} ({kind}): a residual {inside} holds only dense, convolution and "
                "batch-norm entries" + (" (residual blocks do not nest)" if kind == "residual" else "")
            )
            continue
        if kind != "residual":
            continue
        branch = entry.get("branch")
        if not isinstance(branch, list) or not branch:
            problems.append(f"{where} (residual): 'branch' must be a non-empty list of layer entries")
        else:
            _check_entries(branch, f"{where} branch", problems, inside="branch")
        skip = entry.get("skip")
        skip = [skip] if isinstance(skip, dict) else skip
        if skip is not None:
            if not isinstance(skip, list) or not skip:
                problems.append(
                    f"{where} (residual): 'skip' must be null (identity), a layer entry or a "
                    "non-empty list of entries"
                )
            else:
                _check_entries(skip, f"{where} skip", problems, inside="skip")
        if not isinstance(entry.get("activation_out", True), bool):
            problems.append(
                f"{where} (residual): activation_out={_short(entry['activation_out'])} must be "
                "true or false"
            )


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _field(name: str) -> str:
    """A field name for a one-line message: as is when printable and short, else its repr."""
    return name if name.isprintable() and len(name) <= 60 else _short(name)


def _claim(
    where: Path, label: str, kind: str, entry: dict[str, Any],
    groups: dict[str, dict[str, np.ndarray]], used: set[str], *, batchnorm: bool,
) -> str:  # fmt: skip
    """The tensor prefix an entry names, checked to exist, to be of the right sort and unused."""
    prefix = entry.get("key")
    if not isinstance(prefix, str):
        raise ModelFormatError(f"{where}: {label} ({kind}) needs a string 'key'")
    if prefix not in groups:
        part = "running_mean" if batchnorm else "weight"
        raise ModelFormatError(
            f"{where}: {label} ({kind}) names key {_key(prefix, part)!r}, "
            "which the file does not hold"
        )
    if prefix in used:
        raise ModelFormatError(f"{where}: key prefix {prefix!r} is used twice")
    if batchnorm and not _is_batchnorm(groups[prefix]):
        raise ModelFormatError(
            f"{where}: {label} ({kind}) names {prefix!r}, which holds no running_mean/running_var"
        )
    if not batchnorm and _is_batchnorm(groups[prefix]):
        raise ModelFormatError(
            f"{where}: {label} ({kind}) names {prefix!r}, which holds batch-norm statistics; "
            f"expected a {kind} weight"
        )
    used.add(prefix)
    return prefix


def _build_entries(
    where: Path,
    entries: list[dict[str, Any]],
    label: str,
    groups: dict[str, dict[str, np.ndarray]],
    used: set[str],
) -> list[Layer]:
    """Layers from checked entries; batch norms folded into the linear layer before them."""
    layers: list[Layer] = []
    previous: str | None = None  # kind of the entry just built, when it may take a batch norm
    for position, entry in enumerate(entries):
        kind = entry["type"]
        here = f"{label} {position}"
        try:
            if kind in _LINEAR:
                prefix = _claim(where, here, kind, entry, groups, used, batchnorm=False)
                layers.append(_linear_layer(where, here, kind, prefix, groups[prefix], entry))
            elif kind in _BATCHNORM:
                if previous not in _BATCHNORM[kind]:
                    raise ModelFormatError(
                        f"{where}: {here} ({kind}) must directly follow a "
                        f"{' or '.join(_BATCHNORM[kind])} entry, into which it is folded"
                    )
                prefix = _claim(where, here, kind, entry, groups, used, batchnorm=True)
                layers[-1] = _fold_into(
                    where, here, kind, layers[-1], prefix, groups[prefix], entry  # type: ignore[arg-type]
                )
            elif kind == "residual":
                branch = _build_entries(where, entry["branch"], f"{here} branch", groups, used)
                skip = entry.get("skip")
                projection = None
                if skip is not None:
                    skip = [skip] if isinstance(skip, dict) else skip
                    built = _build_entries(where, skip, f"{here} skip", groups, used)
                    if len(built) != 1:
                        raise ModelFormatError(
                            f"{where}: {here} (residual): 'skip' folds to {len(built)} layers; "
                            "expected one dense or convolution layer (and its batch norm)"
                        )
                    projection = built[0]
                layers.append(
                    ResidualBlock(tuple(branch), projection, entry.get("activation_out", True))  # type: ignore[arg-type]
                )
            elif kind in _POOLS:
                layers.append(_POOLS[kind](entry.get("kernel"), entry.get("stride")))
            else:
                layers.append(Flatten())
        except InvalidInput as exc:
            raise ModelFormatError(f"{where}: {here} ({kind}): {exc}") from None
        previous = kind if kind in _LINEAR else None
    return layers


def _linear_layer(
    where: Path,
    label: str,
    kind: str,
    prefix: str,
    parts: dict[str, np.ndarray],
    entry: dict[str, Any],
) -> Layer:
    cls, ndim = _LINEAR[kind]
    weight = parts["weight"]
    if weight.ndim != ndim:
        raise ModelFormatError(
            f"{where}: {label} ({kind}): {_key(prefix, 'weight')!r} has shape {weight.shape}; "
            f"expected {ndim} dimensions"
        )
    want_bias = entry.get("bias", "bias" in parts)
    if not isinstance(want_bias, bool):
        raise ModelFormatError(
            f"{where}: {label} ({kind}): bias={want_bias!r} must be true or false"
        )
    if want_bias and "bias" not in parts:
        raise ModelFormatError(
            f"{where}: {label} ({kind}) expects {_key(prefix, 'bias')!r}, missing"
        )
    bias = parts.get("bias") if want_bias else None
    if not want_bias and "bias" in parts:
        raise ModelFormatError(
            f"{where}: {label} ({kind}) says bias=false but the file holds {_key(prefix, 'bias')!r}"
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
    norms = sorted((p for p, parts in groups.items() if _is_batchnorm(parts)), key=_natural)
    if norms:
        raise ModelFormatError(
            f"{where}: batch-norm tensors ({', '.join(_key(p, 'running_mean') for p in norms)}) "
            "need a sidecar that places them, e.g. "
            f'{{"type": "batchnorm2d", "key": "{norms[0]}", "eps": 1e-05}} after their convolution'
        )
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
        Malformed or hostile file, missing or unused keys, shapes that do not chain, NaN or
        infinite weights (the message names key and position).
    InvalidInput
        A bad ``activation=`` argument.
    """
    where = Path(path)
    arrays = read_npz_arrays(where, max_bytes=max_bytes, max_elements=max_elements)
    embedded = None
    if ARCHITECTURE_KEY in arrays:
        raw = arrays.pop(ARCHITECTURE_KEY)
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise ModelFormatError(
                f"{where}: {ARCHITECTURE_KEY!r} must be a 1-D uint8 array of UTF-8 JSON"
            )
        embedded = raw.tobytes()
    return target_from_arrays(
        where, arrays, embedded=embedded, sidecar=sidecar, activation=activation,
        input_domain=input_domain, input_shape=input_shape, name=name,
    )  # fmt: skip


def target_from_arrays(
    where: str | os.PathLike[str],
    arrays: dict[str, np.ndarray],
    *,
    embedded: bytes | None = None,
    sidecar: str | os.PathLike[str] | None = None,
    activation: str | None = None,
    input_domain: tuple[float, float] | None = None,
    input_shape: tuple[int, ...] | None = None,
    name: str | None = None,
) -> TargetNet:
    """A target from state-dict named tensors, as :func:`load_npz` builds it.

    Shared by every weight-file format (``.npz``, ``.safetensors``): ``arrays`` maps
    PyTorch state-dict names to arrays already read under the size caps, ``embedded`` is the
    architecture JSON stored inside the file (if any); ``sidecar`` wins over it, and without
    either the architecture is inferred from the key order. ``where`` names the file in
    messages. Raises :class:`~ltbounds.errors.ModelFormatError` for anything the file gets wrong.
    """
    where = Path(where)
    groups = _group(where, arrays)
    notes: list[str] = []
    document: dict[str, Any] | None = None
    if sidecar is not None:
        document = read_sidecar(sidecar)
        doc_where = Path(sidecar)
    elif embedded is not None:
        document = _parse_json(where, embedded)
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
                         name=str(label), notes=notes, metadata=metadata)  # fmt: skip
    except (InvalidInput, TypeError) as exc:
        raise ModelFormatError(f"{doc_where}: {_one_line(exc)}") from None


def save_npz(target: TargetNet, path: str | os.PathLike[str]) -> Path:
    """Write ``target`` as one ``.npz`` file: float64 weights plus the embedded architecture.

    Keys are ``<layer index>.weight`` / ``<layer index>.bias`` (inside a residual block
    ``<index>.branch.<j>.*`` and ``<index>.skip.*``, as :attr:`LinearSite.key`; batch norm is
    already folded); the architecture document
    (:meth:`TargetNet.to_config`, including metadata) is stored as UTF-8 JSON under
    :data:`ARCHITECTURE_KEY`, so :func:`load_npz` needs no sidecar. The write is atomic.
    """
    arrays: dict[str, np.ndarray] = {}
    for site in target.linear_sites:
        for part, values in site.layer.parameters().items():
            arrays[f"{site.key}.{part}"] = np.asarray(values, dtype=np.float64)
    text = json.dumps(target.to_config(), sort_keys=True, allow_nan=False)
    arrays[ARCHITECTURE_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    return write_npz_atomic(path, arrays)


__all__ = [
    "ARCHITECTURE_KEY",
    "DEFAULT_BATCHNORM_EPS",
    "DEFAULT_INPUT_DOMAIN",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_ELEMENTS",
    "check_file_size",
    "fold_batchnorm",
    "load_npz",
    "read_npz_arrays",
    "read_sidecar",
    "save_npz",
    "target_from_arrays",
]
