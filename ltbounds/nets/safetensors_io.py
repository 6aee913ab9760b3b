"""Reading and writing target networks as ``.safetensors`` files, with our own bounded reader.

The safetensors format (Hugging Face) is an 8-byte little-endian header length ``N``, ``N``
bytes of UTF-8 JSON, then one byte buffer::

    {"__metadata__": {"ltbounds_architecture": "{...}"},
     "conv1.weight": {"dtype": "F32", "shape": [4, 1, 3, 3], "data_offsets": [0, 144]}, ...}

It holds no code, so it cannot execute anything; what a hostile file can still do is declare
huge shapes, overlapping or out-of-range offsets, or a header that is not JSON. This reader
checks the file size against ``max_bytes`` before reading, the header length against the file,
every entry's dtype, shape (at most ``max_elements`` entries) and offsets (inside the buffer,
``end − begin = entries × itemsize``, contiguous and non-overlapping as the format demands)
before it builds an array, and turns every failure into a one-line
:class:`~ltbounds.errors.ModelFormatError`. The ``safetensors`` package is not needed; the
tests check this reader and writer against it.

Keys follow the same PyTorch state-dict convention as ``.npz`` files (``conv1.weight``,
``fc.bias``, ``<key>_mask``, batch-norm statistics; see :mod:`ltbounds.nets.io`), and the
architecture comes, in order, from a sidecar JSON file, the JSON string :func:`save_safetensors`
stores under ``__metadata__["ltbounds_architecture"]``, or inference from the key order.
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from ltbounds._io_util import atomic_path
from ltbounds.errors import InvalidInput, ModelFormatError
from ltbounds.nets.io import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ELEMENTS,
    check_file_size,
    target_from_arrays,
)
from ltbounds.nets.target import TargetNet

#: ``__metadata__`` key under which :func:`save_safetensors` stores the architecture JSON.
ARCHITECTURE_METADATA_KEY = "ltbounds_architecture"
#: Largest JSON header read (the safetensors library's own limit is 100 MB).
MAX_HEADER_BYTES = 100 * 2**20
#: Most dimensions of one tensor.
MAX_DIMS = 16

#: safetensors dtype name -> little-endian numpy dtype; BF16 is decoded separately.
_DTYPES: dict[str, str] = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U8": "u1",
    "U16": "<u2",
    "U32": "<u4",
    "U64": "<u8",
    "BOOL": "?",
}
_ITEMSIZE = {**{name: np.dtype(code).itemsize for name, code in _DTYPES.items()}, "BF16": 2}
_WRITE_DTYPES = {"float64": "F64", "float32": "F32"}


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} appears twice")
        seen[key] = value
    return seen


def read_safetensors_arrays(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor of a ``.safetensors`` file and its ``__metadata__``, read under caps.

    Returns
    -------
    (arrays, metadata) : dict of str to ndarray, dict of str to str
        Tensors in header order (BF16 widened to float32, other dtypes as stored).

    Raises
    ------
    ModelFormatError
        A missing or oversized file, a header that is not a JSON object of valid entries, an
        unknown dtype, a shape over ``max_elements`` entries, offsets outside the buffer,
        overlapping, leaving gaps or disagreeing with the shape, or a repeated key.
    """
    where = Path(path)
    check_file_size(where, max_bytes)
    try:
        data = where.read_bytes()
    except OSError as exc:
        raise ModelFormatError(f"{where}: cannot read ({exc.strerror})") from None
    if len(data) < 8:
        raise ModelFormatError(f"{where}: {len(data)} bytes; a .safetensors file starts with an 8-byte header length")
    (header_bytes,) = struct.unpack("<Q", data[:8])
    if header_bytes > min(len(data) - 8, MAX_HEADER_BYTES):
        raise ModelFormatError(
            f"{where}: header declares {header_bytes:,} bytes but the file holds {len(data) - 8:,} after the length"
            f" (cap {MAX_HEADER_BYTES:,})"
        )
    try:
        header = json.loads(
            data[8 : 8 + header_bytes].decode("utf-8"), object_pairs_hook=_reject_duplicates
        )
    except RecursionError:
        raise ModelFormatError(f"{where}: header JSON is nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ModelFormatError(f"{where}: header is not valid JSON ({' '.join(str(exc).split())})") from None
    if not isinstance(header, dict):
        raise ModelFormatError(f"{where}: header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise ModelFormatError(f"{where}: __metadata__ must be an object of strings")
    buffer = memoryview(data)[8 + header_bytes :]
    spans: list[tuple[int, int, str]] = []
    entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
    for key, entry in header.items():
        entries[key] = _check_entry(where, key, entry, len(buffer), max_elements)
        spans.append((entries[key][2], entries[key][3], key))
    spans.sort()
    position = 0
    for begin, end, key in spans:
        if begin != position:
            problem = "overlaps the previous tensor" if begin < position else "leaves a gap before it"
            raise ModelFormatError(
                f"{where}: {key!r} starts at byte {begin:,} of the buffer and {problem} (expected {position:,})"
            )
        position = end
    if position != len(buffer):
        raise ModelFormatError(
            f"{where}: tensors cover {position:,} of the {len(buffer):,} buffer bytes; expected all"
        )
    arrays: dict[str, np.ndarray] = {}
    for key, (dtype, shape, begin, end) in entries.items():
        raw = bytes(buffer[begin:end])
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=_DTYPES[dtype])
        arrays[key] = np.array(array.reshape(shape), dtype=array.dtype.newbyteorder("="))
    if not arrays:
        raise ModelFormatError(f"{where}: file holds no tensors")
    return arrays, dict(metadata)


def _check_entry(
    where: Path, key: str, entry: Any, buffer_bytes: int, max_elements: int
) -> tuple[str, tuple[int, ...], int, int]:
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise ModelFormatError(
            f"{where}: {key!r} must be an object with exactly dtype, shape and data_offsets"
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _ITEMSIZE:
        raise ModelFormatError(
            f"{where}: {key!r} has dtype {dtype!r}; expected one of {', '.join(sorted(_ITEMSIZE))}"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMS
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise ModelFormatError(
            f"{where}: {key!r} has shape {repr(shape)[:80]}; expected at most {MAX_DIMS} non-negative integers"
        )
    elements = math.prod(shape)
    if elements > max_elements:
        raise ModelFormatError(
            f"{where}: {key!r} declares shape {tuple(shape)} ({elements:,} entries), over the cap "
            f"max_elements={max_elements:,}"
        )
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        or not 0 <= offsets[0] <= offsets[1] <= buffer_bytes
    ):
        raise ModelFormatError(
            f"{where}: {key!r} has data_offsets {repr(offsets)[:80]}; expected [begin, end] within the "
            f"{buffer_bytes:,}-byte buffer"
        )
    begin, end = offsets
    if end - begin != elements * _ITEMSIZE[dtype]:
        raise ModelFormatError(
            f"{where}: {key!r} declares shape {tuple(shape)} of {dtype} ({elements * _ITEMSIZE[dtype]:,} bytes) "
            f"but its offsets span {end - begin:,} bytes"
        )
    return dtype, tuple(shape), begin, end


def load_safetensors(
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
    """Load a target network from a ``.safetensors`` file.

    The parameters mean what they mean for :func:`ltbounds.nets.io.load_npz`: the
    architecture comes from ``sidecar``, else the one :func:`save_safetensors` embeds in the
    metadata, else the key order; ``activation``, ``input_domain`` and ``input_shape``
    override or supply what the file does not say.

    Raises
    ------
    ModelFormatError
        Malformed or hostile file (see :func:`read_safetensors_arrays`), unknown keys, shapes
        that do not chain, NaN or infinite weights.
    InvalidInput
        A bad ``activation=`` argument.
    """
    where = Path(path)
    arrays, metadata = read_safetensors_arrays(where, max_bytes=max_bytes, max_elements=max_elements)
    embedded = metadata.get(ARCHITECTURE_METADATA_KEY)
    return target_from_arrays(
        where, arrays, embedded=None if embedded is None else embedded.encode("utf-8"),
        sidecar=sidecar, activation=activation, input_domain=input_domain,
        input_shape=input_shape, name=name,
    )  # fmt: skip


def write_safetensors_arrays(
    arrays: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    *,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write named float/integer/bool arrays as one ``.safetensors`` file, atomically.

    Tensors are laid out in key order; the header is padded with spaces to a multiple of 8
    bytes, as the safetensors library writes it.
    """
    names = {np.dtype(code).newbyteorder("="): name for name, code in _DTYPES.items()}
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        name = names.get(array.dtype.newbyteorder("="))
        if name is None:
            raise InvalidInput(f"{key!r} has dtype {array.dtype}; safetensors stores float, int or bool")
        raw = array.astype(np.dtype(_DTYPES[name]), copy=False).tobytes()
        header[key] = {
            "dtype": name,
            "shape": [int(s) for s in array.shape],
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    destination = Path(path)
    with atomic_path(destination) as temporary, open(temporary, "wb") as handle:
        handle.write(struct.pack("<Q", len(text)))
        handle.write(text)
        for chunk in chunks:
            handle.write(chunk)
    return destination


def save_safetensors(
    target: TargetNet, path: str | os.PathLike[str], *, dtype: str = "float64"
) -> Path:
    """Write ``target`` as one ``.safetensors`` file with its architecture in the metadata.

    Keys are those of :func:`ltbounds.nets.io.save_npz` (``<layer index>.weight``, inside a
    residual block ``<index>.branch.<j>.weight`` and ``<index>.skip.weight``); ``dtype`` is
    ``"float64"`` (exact, the default) or ``"float32"`` (half the size, what PyTorch models
    usually hold). The write is atomic.
    """
    if dtype not in _WRITE_DTYPES:
        raise InvalidInput(f"dtype={dtype!r} must be one of {', '.join(map(repr, _WRITE_DTYPES))}")
    arrays = {
        f"{site.key}.{part}": np.asarray(values, dtype=dtype)
        for site in target.linear_sites
        for part, values in site.layer.parameters().items()
    }
    text = json.dumps(target.to_config(), sort_keys=True, allow_nan=False)
    return write_safetensors_arrays(
        arrays, path, metadata={"format": "pt", ARCHITECTURE_METADATA_KEY: text}
    )


__all__ = [
    "ARCHITECTURE_METADATA_KEY",
    "load_safetensors",
    "read_safetensors_arrays",
    "save_safetensors",
    "write_safetensors_arrays",
]
