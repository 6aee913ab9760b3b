"""Hostile files against every loader: refused as ``LtboundsError``, never a crash (issue 12).

Each loader in :data:`LOADERS` gets byte-level mutations of a valid file (truncation, bit
flips, overwritten and inserted bytes), format-aware mutations (arrays with NaN/inf, wrong
dtypes, missing or extra keys, hand-made ``.npy`` headers declaring huge shapes; JSON headers
with hostile values; TOML lines replaced) and a hand-made corpus (empty file, a directory,
a missing path, a zip bomb, deep JSON). For every input the contract is:

* the load (and first use of what it returns) either succeeds or raises an
  :class:`~ltbounds.errors.LtboundsError`, nothing else;
* it takes under :data:`CALL_SECONDS` of CPU time (process time, so a busy machine does
  not make it fail; the loaders take milliseconds, so the margin is ~100x);
* it leaves the folder holding the file exactly as it was (no temporary or partial files).

**Adding a loader** (ONNX, safetensors, ...) is one entry in :data:`LOADERS`: a name, the
valid files it reads (name → bytes, the first one mutated) and a function loading and using
the first file. Every test below then covers it.
"""

from __future__ import annotations

import io
import json
import math
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltbounds.errors import LtboundsError
from ltbounds.lemmas.proofs import load_proof
from ltbounds.nets import load_embedded
from ltbounds.nets.io import ARCHITECTURE_KEY, load_npz, save_npz
from ltbounds.ticket import Ticket

#: Largest CPU time one loader call (with the first use of its result) may take.
CALL_SECONDS = 1.0
PROOFS = Path(__file__).resolve().parents[2] / "proofs"


# -- valid files -------------------------------------------------------------------------------
def _file_bytes(write: Callable[[Path], Any], name: str) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        write(path)
        return path.read_bytes()


@cache
def _target_npz() -> dict[str, bytes]:
    target = load_embedded("digits_mlp_relu")
    return {"target.npz": _file_bytes(lambda p: save_npz(target, p), "target.npz")}


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@cache
def _sidecar() -> dict[str, bytes]:
    target = load_embedded("digits_mlp_relu")
    arrays = {
        f"{site.key}.{part}": np.asarray(values)
        for site in target.linear_sites
        for part, values in site.layer.parameters().items()
    }
    document = json.dumps(target.to_config()).encode()
    return {"arch.json": document, "weights.npz": _npz(arrays)}


@cache
def _ticket() -> dict[str, bytes]:
    from ltbounds.construct import construct  # noqa: PLC0415

    ticket = construct(load_embedded("digits_cnn_relu"), eps=0.01, rho=2, seed=0)
    return {"ticket.npz": _file_bytes(ticket.save, "ticket.npz")}


@cache
def _proof() -> dict[str, bytes]:
    return {"proof.toml": (PROOFS / "malach.toml").read_bytes()}


# -- loading and first use ---------------------------------------------------------------------
def _use_target(target: Any) -> None:
    target.forward(target.sample_inputs(2, 0))


def _load_ticket(path: Path) -> None:
    ticket = Ticket.load(path)
    ticket.summary()
    network = ticket.network()
    network.forward(network.sample_inputs(2, 0))


@dataclass(frozen=True)
class Loader:
    """A file reader under test: its valid files (the first is mutated) and how to load it."""

    name: str
    files: Callable[[], dict[str, bytes]]
    load: Callable[[Path], Any]
    #: How the first file is structured: "npz", "json" or "toml" (None: bytes only).
    kind: str | None = None


LOADERS: list[Loader] = [
    Loader("target-npz", _target_npz, lambda p: _use_target(load_npz(p)), "npz"),
    Loader("sidecar-json", _sidecar, lambda p: _use_target(load_npz(p.parent / "weights.npz", sidecar=p)), "json"),
    Loader("ticket-npz", _ticket, _load_ticket, "npz"),
    Loader("proof-toml", _proof, load_proof, "toml"),
    # Loader("onnx", _valid_onnx, lambda p: _use_target(load_onnx(p))),  <- new loaders go here
]
BY_KIND = {kind: [loader for loader in LOADERS if loader.kind == kind] for kind in ("npz", "json", "toml")}


def check_hostile(loader: Loader, content: bytes | None, *, as_directory: bool = False) -> None:
    """Write ``content`` as the loader's file, load it, and check the contract."""
    files = loader.files()
    main = next(iter(files))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for name, data in files.items():
            if name != main:
                (root / name).write_bytes(data)
        path = root / main
        if as_directory:
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
        before = sorted(p.name for p in root.iterdir())
        started = time.process_time()
        try:
            loader.load(path)
        except LtboundsError as error:
            message = str(error)
            assert message and "\n" not in message.strip(), f"{loader.name}: message not one line: {message!r}"
        seconds = time.process_time() - started
        assert seconds < CALL_SECONDS, f"{loader.name}: a hostile file took {seconds:.2f} s of CPU"
        assert sorted(p.name for p in root.iterdir()) == before, f"{loader.name}: files left behind"


FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


# -- byte-level mutations ----------------------------------------------------------------------
@st.composite
def mutated_bytes(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` truncated, bit-flipped, overwritten, spliced or replaced by noise."""
    data = bytearray(original)
    size = len(data)
    how = draw(st.sampled_from(["truncate", "flip", "overwrite", "insert", "noise", "tail"]))
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, max(0, size - 1)))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 8))):
            position = draw(st.integers(0, size - 1))
            data[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if how == "overwrite":
        start = draw(st.integers(0, size - 1))
        chunk = draw(st.binary(min_size=1, max_size=64))
        data[start : start + len(chunk)] = chunk
        return bytes(data)
    if how == "insert":
        start = draw(st.integers(0, size))
        return bytes(data[:start]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[start:])
    if how == "tail":  # a valid file with garbage after it
        return bytes(data) + draw(st.binary(min_size=1, max_size=256))
    return draw(st.binary(max_size=512))


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_byte_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = next(iter(loader.files().values()))
    check_hostile(loader, data.draw(mutated_bytes(original)))


# -- npz: array-level mutations ----------------------------------------------------------------
def _npy(descr: str, shape: tuple[int, ...], payload: bytes, *, fortran: bool = False) -> bytes:
    """A hand-made ``.npy`` member: any header numpy can parse, any payload."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, payload in members.items():
            archive.writestr(name, payload)
    return buffer.getvalue()


def _arrays(original: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(original), allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


HOSTILE_FLOATS = [math.nan, math.inf, -math.inf, 1e308, -1e308, 5e-324, 0.0, -0.0]


@st.composite
def mutated_npz(draw: st.DrawFn, original: bytes) -> bytes:
    """An archive whose arrays were changed: values, dtypes, shapes, keys or raw headers."""
    arrays = _arrays(original)
    members = {f"{k}.npy": _npy_bytes(v) for k, v in arrays.items()}
    key = draw(st.sampled_from(sorted(arrays)))
    value = arrays[key]
    how = draw(st.sampled_from(
        ["value", "dtype", "reshape", "drop", "extra", "rename", "huge-shape", "object", "lying-shape", "header-json"]
    ))  # fmt: skip
    if how == "value" and value.size:
        changed = value.astype(np.float64).reshape(-1)
        changed[draw(st.integers(0, changed.size - 1))] = draw(st.sampled_from(HOSTILE_FLOATS + [-1.0, 2**63]))
        members[f"{key}.npy"] = _npy_bytes(changed.reshape(value.shape).astype(value.dtype, copy=False)
                                           if value.dtype.kind == "f" else changed.reshape(value.shape))  # fmt: skip
    elif how == "dtype":
        dtype = draw(st.sampled_from(["<f2", ">f8", "<i1", "<u8", "|b1", "<c16", "<U3", "|S4", "<M8[s]", "<m8[s]", "|V8"]))
        try:
            members[f"{key}.npy"] = _npy_bytes(value.astype(dtype))
        except (TypeError, ValueError):
            members[f"{key}.npy"] = _npy(dtype, value.shape, bytes(value.size * np.dtype(dtype).itemsize))
    elif how == "reshape":
        shape = tuple(draw(st.lists(st.integers(0, 5), max_size=5)))
        members[f"{key}.npy"] = _npy_bytes(np.zeros(shape, dtype=value.dtype))
    elif how == "drop":
        del members[f"{key}.npy"]
    elif how == "extra":
        name = draw(st.text(min_size=1, max_size=20).filter(lambda s: "\x00" not in s))
        members[f"{name}.npy"] = _npy_bytes(np.zeros(draw(st.integers(0, 4))))
    elif how == "rename":
        members[draw(st.sampled_from([f"{key}", f"{key}.npz", f"../{key}.npy", f"{key}/x.npy"]))] = members.pop(f"{key}.npy")
    elif how == "huge-shape":
        shape = draw(st.sampled_from([(2**40,), (2**31, 2**31), (2**62, 4), (10**6, 10**6)]))
        members[f"{key}.npy"] = _npy("<f8", shape, b"\x00" * draw(st.integers(0, 64)))
    elif how == "object":
        members[f"{key}.npy"] = _npy("|O", (2,), b"\x00" * 16)
    elif how == "lying-shape":
        members[f"{key}.npy"] = _npy(value.dtype.str, (value.size + draw(st.integers(1, 1000)),), value.tobytes())
    else:  # the JSON header of a ticket or the embedded architecture
        json_key = "header" if "header" in arrays else ARCHITECTURE_KEY
        if json_key in arrays:
            document = json.loads(arrays[json_key].tobytes())
            text = json.dumps(draw(mutated_json(document)), allow_nan=True)
            members[f"{json_key}.npy"] = _npy_bytes(np.frombuffer(text.encode(), dtype=np.uint8))
    return _zip(members)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


@pytest.mark.parametrize("loader", BY_KIND["npz"], ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_npz_array_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = next(iter(loader.files().values()))
    check_hostile(loader, data.draw(mutated_npz(original)))


# -- JSON documents ----------------------------------------------------------------------------
HOSTILE_JSON = st.one_of(
    st.sampled_from([None, True, -1, 0, 2**64, -(2**63), 10**400, math.nan, math.inf, -math.inf, 1e308,
                     "", "x", "relu", "../../etc/passwd", [], {}, [0], [-1, -1], [1e308, 1e308], [[]],
                     {"type": "residual"}, {"type": "dense", "key": "0"}]),
    st.integers(), st.floats(allow_nan=True), st.text(max_size=8),
    st.lists(st.integers(-(2**40), 2**40), max_size=6),
)  # fmt: skip


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def mutated_json(draw: st.DrawFn, document: Any) -> Any:
    """``document`` with one node replaced by a hostile value, deleted, or a key added."""
    document = json.loads(json.dumps(document))
    path = draw(st.sampled_from(_paths(document)))
    if not path:
        return draw(HOSTILE_JSON)
    parent = document
    for step in path[:-1]:
        parent = parent[step]
    how = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if how == "replace":
        parent[path[-1]] = draw(HOSTILE_JSON)
    elif how == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=6))] = draw(HOSTILE_JSON)
    else:
        parent.append(draw(HOSTILE_JSON))
    return document


@pytest.mark.parametrize("loader", BY_KIND["json"], ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_json_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = json.loads(next(iter(loader.files().values())))
    hostile = data.draw(mutated_json(original))
    check_hostile(loader, json.dumps(hostile, allow_nan=True).encode())


# -- TOML proof files --------------------------------------------------------------------------
HOSTILE_TOML_VALUES = [
    "-1", "0", "nan", "inf", "-inf", "1e999", "99999999999999999999999", "true", '""', '"x"',
    '"activation.no_such"', "[1, 2]", "[]", "{ }", "{ a = 1 }", "{ activation = \"nope\" }",
    '{ lam = [1.0, 0.0] }', '{ lam = ["a", "b"] }', "1979-05-27", '"""\nmulti\n"""',
    '{ n = -5 }', '{ eps = 0.0 }', '{ eps = nan }', '{ delta = 2.0 }',
]  # fmt: skip


@st.composite
def mutated_toml(draw: st.DrawFn, original: str) -> str:
    """A proof file with one line changed: its value replaced, the line dropped or doubled."""
    lines = original.splitlines()
    position = draw(st.integers(0, len(lines) - 1))
    line = lines[position]
    how = draw(st.sampled_from(["value", "value", "value", "drop", "double", "key"]))
    if how == "value" and "=" in line:
        lines[position] = line.split("=", 1)[0] + "= " + draw(st.sampled_from(HOSTILE_TOML_VALUES))
    elif how == "drop":
        del lines[position]
    elif how == "double":
        lines.insert(position, line)
    else:
        lines.insert(position, draw(st.sampled_from(["version = 2", "samples = 0", "seed = -1", "method = \"magic\"", "box = 3", "[[obligation]]", "[proof]", "x = 1"])))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("loader", BY_KIND["toml"], ids=lambda loader: loader.name)
@settings(FUZZ, max_examples=200)
@given(data=st.data())
def test_toml_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = next(iter(loader.files().values())).decode()
    check_hostile(loader, data.draw(mutated_toml(original)).encode())


# -- a hand-made corpus ------------------------------------------------------------------------
def _zip_bomb() -> bytes:
    """A member declaring ~4 GiB uncompressed (its size fields patched), like a zip bomb."""
    data = bytearray(_zip({"0.weight.npy": _npy("<f8", (2**29 - 8,), bytes(4096))}))
    central = data.rfind(b"PK\x01\x02")
    data[22:26] = struct.pack("<I", 0xFFFFFFF0)  # local header: uncompressed size
    data[central + 24 : central + 28] = struct.pack("<I", 0xFFFFFFF0)  # central directory
    return bytes(data)


CORPUS: dict[str, Callable[[], bytes | None]] = {
    "empty": lambda: b"",
    "missing": lambda: None,
    "text": lambda: b"hello, world\n",
    "utf16": lambda: "title = 'x'".encode("utf-16"),
    "deep-json": lambda: b"[" * 100_000 + b"]" * 100_000,
    "json-null": lambda: b"null",
    "zip-empty": lambda: _zip({}),
    "zip-bomb": _zip_bomb,
    "npy-huge": lambda: _zip({"0.weight.npy": _npy("<f8", (2**40,), b"")}),
    "npy-object": lambda: _zip({"0.weight.npy": _npy("|O", (1,), b"\x00" * 8)}),
    "npy-structured": lambda: _zip({"0.weight.npy": _npy_bytes(np.zeros(3, dtype=[("a", "<f8")]))}),
    "npy-nan": lambda: _zip({"0.weight.npy": _npy_bytes(np.full((2, 2), np.nan))}),
    "npy-bad-magic": lambda: _zip({"0.weight.npy": b"\x93NUMPY\x09\x00" + bytes(100)}),
    "npy-bad-header": lambda: _zip({"0.weight.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': os.}\n"}),
    "pickle": lambda: _zip({"0.weight.npy": _npy("|O", (1,), b"\x80\x04\x95" + bytes(20))}),
    "toml-version-2": lambda: (PROOFS / "malach.toml").read_text().replace("[proof]\n", "[proof]\nversion = 2\n").encode(),
}


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.name)
@pytest.mark.parametrize("case", sorted(CORPUS) + ["directory"])
def test_hand_made_hostile_files_are_refused_cleanly(loader: Loader, case: str) -> None:
    if case == "directory":
        check_hostile(loader, None, as_directory=True)
        return
    check_hostile(loader, CORPUS[case]())


@pytest.mark.parametrize("loader", LOADERS, ids=lambda loader: loader.name)
def test_valid_files_load(loader: Loader) -> None:
    """The seeds of the mutations are themselves accepted (else the fuzzing proves nothing)."""
    files = loader.files()
    with tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            (Path(folder) / name).write_bytes(data)
        loader.load(Path(folder) / next(iter(files)))


def test_a_proof_file_of_unknown_version_is_refused_by_name() -> None:
    text = (PROOFS / "malach.toml").read_text().replace("[proof]\n", "[proof]\nversion = 2\n")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.toml"
        path.write_text(text)
        with pytest.raises(LtboundsError, match=r"\[proof\]\.version=2"):
            load_proof(path)
