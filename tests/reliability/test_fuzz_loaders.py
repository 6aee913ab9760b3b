"""Hostile files against every loader: refused as ``LtboundsError``, never a crash (issue 12).

Each loader in :data:`LOADERS` (target ``.npz``, architecture sidecar ``.json``, ticket
``.npz``, proof ``.toml``, ``.onnx``, ``.safetensors``, table ``.json`` and ``.csv``, coverage
``.json`` and ``.csv``) gets byte-level mutations of a valid file (truncation, bit flips,
overwritten and inserted bytes), format-aware mutations (arrays with NaN/inf, wrong dtypes,
missing or extra keys, hand-made ``.npy`` headers declaring huge shapes; JSON headers and
documents with hostile values; TOML lines replaced; CSV cells, rows and columns changed;
safetensors headers and their declared length; ONNX graphs with hostile dims, dtypes,
operators, attributes, dangling or cyclic edges) and a hand-made corpus (empty file, a directory, a missing path, a zip bomb,
deep JSON). For every input the contract is:

* the load (and first use of what it returns) either succeeds or raises an
  :class:`~ltbounds.errors.LtboundsError` whose message is one line, nothing else;
* it leaves the folder holding the file exactly as it was (no temporary or partial files).

How long the refusals take is measured, not asserted (no timed assertions in tests):
``benchmarks/bench_io_fuzz.py`` times every loader on damaged files. The only clock here is
a hang guard (:data:`HANG_SECONDS`, far above the milliseconds a load takes) that turns an
endless loop into a failing test instead of a stuck CI job.

**Adding a loader** (ONNX, safetensors, ...) is one entry in :data:`LOADERS`: a name, the
valid files it reads (name → bytes, the first one mutated) and a function loading and using
the first file. Every test below then covers it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import signal
import struct
import tempfile
import threading
import zipfile
from collections.abc import Callable, Iterator
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
from ltbounds.nets.onnx_io import load_onnx, save_onnx
from ltbounds.nets.safetensors_io import load_safetensors, save_safetensors
from ltbounds.subsetsum.coverage_io import load_coverage
from ltbounds.tables import load_table
from ltbounds.ticket import Ticket

#: Hang guard, not a speed goal: a load running this long (wall clock) fails the test as a
#: hang. Loads take milliseconds (benchmarks/bench_io_fuzz.py), so even a machine busy with
#: other jobs stays orders of magnitude below it.
HANG_SECONDS = 30
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


@cache
def _onnx_seed(name: str) -> bytes:
    target = load_embedded(name)
    return _file_bytes(lambda p: save_onnx(target, p), "target.onnx")


def _onnx() -> dict[str, bytes]:
    """A small convolutional GELU export (4 KB: byte mutations mostly hit the graph)."""
    return {"target.onnx": _onnx_seed("digits_cnn_gelu")}


@cache
def _safetensors() -> dict[str, bytes]:
    target = load_embedded("digits_cnn_relu")
    return {"target.safetensors": _file_bytes(lambda p: save_safetensors(target, p), "target.safetensors")}


@cache
def _table() -> dict[str, str]:
    """A bound table of the lenet5 preset (every theorem row, some not applicable), as text."""
    from ltbounds.presets import get_preset  # noqa: PLC0415
    from ltbounds.tables import build_table, to_csv, to_json  # noqa: PLC0415

    preset = get_preset("lenet5")
    table = build_table(preset.shape, 0.01, 0.01, target_name="lenet5", constant="fitted", caveats=preset.caveats)
    return {"json": to_json(table), "csv": to_csv(table)}


@cache
def _coverage() -> dict[str, str]:
    """A small real coverage sweep (2 sizes x 2 tolerances, 64 trials each), as text."""
    from ltbounds.subsetsum import concentration_grid, fit_constant  # noqa: PLC0415
    from ltbounds.subsetsum.coverage_io import coverage_csv, coverage_document, coverage_rows  # noqa: PLC0415

    results = concentration_grid([8, 9], [0.05, 0.02], 64, seed=0, workers=1)
    rows = coverage_rows(results)
    return {"json": json.dumps(coverage_document(rows, fit_constant(results)), indent=2), "csv": coverage_csv(rows)}


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
    #: How the first file is structured: "npz", "json", "toml", "csv", "onnx" or "safetensors".
    kind: str | None = None


LOADERS: list[Loader] = [
    Loader("target-npz", _target_npz, lambda p: _use_target(load_npz(p)), "npz"),
    Loader("sidecar-json", _sidecar, lambda p: _use_target(load_npz(p.parent / "weights.npz", sidecar=p)), "json"),
    Loader("ticket-npz", _ticket, _load_ticket, "npz"),
    Loader("proof-toml", _proof, load_proof, "toml"),
    Loader("onnx", _onnx, lambda p: _use_target(load_onnx(p)), "onnx"),
    Loader("safetensors", _safetensors, lambda p: _use_target(load_safetensors(p)), "safetensors"),
    Loader("table-json", lambda: {"table.json": _table()["json"].encode()}, load_table, "json"),
    Loader("table-csv", lambda: {"table.csv": _table()["csv"].encode()}, load_table, "csv"),
    Loader("coverage-json", lambda: {"delta.json": _coverage()["json"].encode()}, load_coverage, "json"),
    Loader("coverage-csv", lambda: {"delta.csv": _coverage()["csv"].encode()}, load_coverage, "csv"),
]
BY_KIND = {
    kind: [loader for loader in LOADERS if loader.kind == kind]
    for kind in ("npz", "json", "toml", "csv", "onnx", "safetensors")
}


class _Hang(BaseException):
    """Raised by the hang guard's alarm."""


@contextlib.contextmanager
def hang_guard(what: str) -> Iterator[None]:
    """Fail (instead of hanging) when the body runs over :data:`HANG_SECONDS` of wall time.

    A generous timeout, not a timing assertion: it only catches endless loops. Uses
    ``SIGALRM``, so it is active on POSIX in the main thread and a no-op elsewhere.
    """
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _Hang  # a BaseException: a loader's ``except Exception`` cannot swallow it

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
    try:
        yield
    except _Hang:
        raise AssertionError(f"{what}: still running after {HANG_SECONDS} s; a hang") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


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
        try:
            with hang_guard(f"{loader.name} on a hostile file"):
                loader.load(path)
        except LtboundsError as error:
            message = str(error)
            assert message and "\n" not in message.strip(), f"{loader.name}: message not one line: {message!r}"
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


# -- CSV: cells, rows and columns ----------------------------------------------------------------
HOSTILE_CELLS = [
    "", " ", "nan", "inf", "-inf", "1e999", "-1", "0", "1.5", "99999999999999999999999999999999", "True",
    "true", "x", "2", "ltbounds-table", "ltbounds-coverage", "1 2 x", "1  2", "\n", '"', "\x00", "é" * 3,
]  # fmt: skip


@st.composite
def mutated_csv(draw: st.DrawFn, original: str) -> str:
    """A CSV with one cell replaced (the header included), a cell added or dropped, a row
    dropped or doubled, or a column removed from every row."""
    records = list(csv.reader(io.StringIO(original, newline="")))
    row = draw(st.integers(0, len(records) - 1))
    column = draw(st.integers(0, len(records[row]) - 1))
    how = draw(st.sampled_from(["cell", "cell", "cell", "add", "drop-cell", "drop-row", "double-row", "drop-column"]))
    if how == "cell":
        records[row][column] = draw(st.one_of(st.sampled_from(HOSTILE_CELLS), st.text(max_size=8)))
    elif how == "add":
        records[row].insert(column, draw(st.sampled_from(HOSTILE_CELLS)))
    elif how == "drop-cell":
        del records[row][column]
    elif how == "drop-row":
        del records[row]
    elif how == "double-row":
        records.insert(row, list(records[row]))
    else:
        for record in records:
            del record[min(column, len(record) - 1)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(records)
    return buffer.getvalue()


@pytest.mark.parametrize("loader", BY_KIND["csv"], ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_csv_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = next(iter(loader.files().values())).decode()
    check_hostile(loader, data.draw(mutated_csv(original)).encode("utf-8", "surrogatepass"))


# -- safetensors: the JSON header and its declared length ----------------------------------------
@st.composite
def mutated_safetensors(draw: st.DrawFn, original: bytes) -> bytes:
    """The header (or the architecture JSON in its ``__metadata__``) mutated, or its length lied about."""
    (length,) = struct.unpack("<Q", original[:8])
    header, buffer = json.loads(original[8 : 8 + length]), original[8 + length :]
    how = draw(st.sampled_from(["header", "header", "architecture", "length"]))
    if how == "header":
        header = draw(mutated_json(header))
    elif how == "architecture":
        metadata = header["__metadata__"]
        document = json.loads(metadata["ltbounds_architecture"])
        metadata["ltbounds_architecture"] = json.dumps(draw(mutated_json(document)), allow_nan=True)
    text = json.dumps(header, allow_nan=True).encode()
    declared = len(text)
    if how == "length":
        declared = draw(st.sampled_from(
            [0, 1, 2, len(text) - 1, len(text) + 1, len(text) + len(buffer), 2**31, 2**63, 2**64 - 1]
        ))  # fmt: skip
    return struct.pack("<Q", declared) + text + buffer


@pytest.mark.parametrize("loader", BY_KIND["safetensors"], ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_safetensors_header_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    original = next(iter(loader.files().values()))
    check_hostile(loader, data.draw(mutated_safetensors(original)))


# -- ONNX: graph-level mutations -----------------------------------------------------------------
HOSTILE_DIMS = st.one_of(
    st.sampled_from([[], [0], [-1], [2**40], [2**31, 2**31], [2**62, 4], [1, 1, 1, 1, 1, 1, 1, 1], [3, -3]]),
    st.lists(st.integers(-2, 12), max_size=5),
)  # fmt: skip
HOSTILE_OPS = [
    "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "Erf", "Sigmoid", "Tanh", "Flatten",
    "Reshape", "AveragePool", "MaxPool", "BatchNormalization", "Identity", "Constant", "Loop", "If",
    "Scan", "Custom", "",
]  # fmt: skip
HOSTILE_INTS = st.one_of(
    st.sampled_from([[], [0], [-1], [0, 0], [2**40, 2**40], [-(2**63)], [1, 1, 1, 1, 1, 1, 1, 1]]),
    st.lists(st.integers(-3, 9), max_size=6),
)  # fmt: skip


@st.composite
def mutated_onnx(draw: st.DrawFn) -> bytes:
    """A valid export (convolutional GELU or residual) with one part of its graph made hostile:
    an initializer's dims, dtype or data; a node's operator, domain, inputs (dangling, or its own
    output: a cycle), attributes; a dropped node; the input's dims; the opset; the metadata."""
    import onnx  # noqa: PLC0415

    model = onnx.load_from_string(_onnx_seed(draw(st.sampled_from(["digits_cnn_gelu", "digits_resnet_relu"]))))
    graph = model.graph
    how = draw(st.sampled_from(
        ["dims", "dtype", "data", "op", "domain", "input", "cycle", "attribute", "drop", "graph-input",
         "opset", "metadata", "output"]
    ))  # fmt: skip
    tensor = graph.initializer[draw(st.integers(0, len(graph.initializer) - 1))]
    node = graph.node[draw(st.integers(0, len(graph.node) - 1))]
    if how == "dims":
        del tensor.dims[:]
        tensor.dims.extend(draw(HOSTILE_DIMS))
    elif how == "dtype":
        tensor.data_type = draw(st.integers(0, 30))
    elif how == "data":
        raw = tensor.raw_data
        choice = draw(st.sampled_from(["truncate", "extend", "float_data", "nan"]))
        if choice == "truncate":
            tensor.raw_data = raw[: draw(st.integers(0, max(0, len(raw) - 1)))]
        elif choice == "extend":
            tensor.raw_data = raw + draw(st.binary(min_size=1, max_size=16))
        elif choice == "float_data":  # both fields set, or the wrong count
            tensor.float_data.extend([1.0] * draw(st.integers(1, 4)))
        else:
            tensor.raw_data = np.full(len(raw) // 4, draw(st.sampled_from([np.nan, np.inf, -np.inf])), "<f4").tobytes()
    elif how == "op":
        node.op_type = draw(st.sampled_from(HOSTILE_OPS))
    elif how == "domain":
        node.domain = draw(st.sampled_from(["com.microsoft", "ai.onnx.ml", "x"]))
    elif how in ("input", "cycle"):
        names = [name for other in graph.node for name in other.output] + ["", "nope", graph.input[0].name]
        if how == "cycle":
            names = list(node.output)
        position = draw(st.integers(0, len(node.input)))
        name = draw(st.sampled_from(names))
        if position == len(node.input):
            node.input.append(name)
        else:
            node.input[position] = name
    elif how == "attribute":
        if node.attribute and draw(st.booleans()):
            attribute = node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
            if attribute.ints:
                del attribute.ints[:]
                attribute.ints.extend(draw(HOSTILE_INTS))
            else:
                attribute.i = draw(st.sampled_from([-1, 0, 2, 2**40, -(2**63)]))
        else:
            name = draw(st.sampled_from(["group", "dilations", "auto_pad", "axis", "transA", "alpha", "ceil_mode", "x"]))
            node.attribute.append(onnx.helper.make_attribute(name, draw(st.one_of(
                st.sampled_from([0, -1, 2, 2**40, "SAME_UPPER", "VALID", 0.0, math.nan]), HOSTILE_INTS.filter(bool)
            ))))  # fmt: skip
    elif how == "drop":
        del graph.node[draw(st.integers(0, len(graph.node) - 1))]
    elif how == "graph-input":
        dims = graph.input[0].type.tensor_type.shape.dim
        dim = dims[draw(st.integers(0, len(dims) - 1))]
        value = draw(st.sampled_from([0, -1, 2**40, 3, "M", ""]))
        if isinstance(value, str):
            dim.dim_param = value
        else:
            dim.dim_value = value
    elif how == "opset":
        model.opset_import[0].version = draw(st.sampled_from([1, 6, 10, 99, 2**40]))
    elif how == "metadata":
        prop = model.metadata_props[draw(st.integers(0, len(model.metadata_props) - 1))]
        prop.value = json.dumps(draw(HOSTILE_JSON), allow_nan=True)
    else:
        graph.output[0].name = draw(st.sampled_from(["", "nope", graph.input[0].name, graph.node[0].output[0]]))
    return model.SerializeToString()


@pytest.mark.parametrize("loader", BY_KIND["onnx"], ids=lambda loader: loader.name)
@FUZZ
@given(data=st.data())
def test_onnx_graph_mutations_are_refused_cleanly(loader: Loader, data: st.DataObject) -> None:
    check_hostile(loader, data.draw(mutated_onnx()))


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


# -- escapes the fuzzing found, kept as fixed cases ---------------------------------------------
def _npz_with(loader_files: dict[str, bytes], name: str, change: Callable[[dict[str, np.ndarray]], None]) -> bytes:
    arrays = _arrays(loader_files[name])
    change(arrays)
    return _zip({f"{k}.npy": _npy_bytes(v) for k, v in arrays.items()})


def _json_member(arrays: dict[str, np.ndarray], key: str, change: Callable[[Any], None]) -> None:
    document = json.loads(arrays[key].tobytes())
    change(document)
    arrays[key] = np.frombuffer(json.dumps(document).encode(), dtype=np.uint8)


def _onnx_changed(change: Callable[[Any], None]) -> bytes:
    import onnx  # noqa: PLC0415

    model = onnx.load_from_string(_onnx_seed("digits_cnn_gelu"))
    change(model)
    return model.SerializeToString()


def _onnx_attribute_not_utf8() -> bytes:
    """An attribute whose name is not UTF-8 (protobuf then hands back bytes, not a str)."""
    import onnx  # noqa: PLC0415

    def add(model: Any) -> None:
        model.graph.node[0].attribute.append(onnx.helper.make_attribute("zzzzattr", 1))

    return _onnx_changed(add).replace(b"zzzzattr", b"\xff\xfezzattr")


def _safetensors_shape_text() -> bytes:
    original = _safetensors()["target.safetensors"]
    (length,) = struct.unpack("<Q", original[:8])
    header = json.loads(original[8 : 8 + length])
    header["0.weight"]["shape"] = "1\n2"
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + original[8 + length :]


REGRESSIONS: dict[str, tuple[str, Callable[[], bytes]]] = {
    # an unsupported key holding a newline printed as is: a two-line message
    "npz-key-newline": ("target-npz", lambda: _npz_with(
        _target_npz(), "target.npz", lambda a: a.__setitem__("\nx", np.zeros(2)))),
    # an integer beyond the float range: OverflowError in check_real
    "npz-domain-1e400": ("target-npz", lambda: _npz_with(
        _target_npz(), "target.npz",
        lambda a: _json_member(a, ARCHITECTURE_KEY, lambda d: d.__setitem__("input_domain", [10**400, 1])))),
    # a weight shape beyond the float range: OverflowError in the memory estimate
    "ticket-shape-1e400": ("ticket-npz", lambda: _npz_with(
        _ticket(), "ticket.npz",
        lambda a: _json_member(a, "header", lambda d: d["specs"][0]["weight_shape"].__setitem__(0, 10**400)))),
    # a shape given as text with a newline, printed as is: a two-line message
    "safetensors-shape-text": ("safetensors", _safetensors_shape_text),
    # MatMul with three operands: ValueError when unpacking them
    "onnx-matmul-3-operands": ("onnx", lambda: _onnx_changed(
        lambda m: setattr(next(n for n in m.graph.node if n.op_type == "Gemm"), "op_type", "MatMul"))),
    # Gemm's alpha as a list of ints: a numpy broadcasting ValueError
    "onnx-gemm-alpha-ints": ("onnx", lambda: _onnx_changed(lambda m: next(
        n for n in m.graph.node if n.op_type == "Gemm").attribute.append(
        __import__("onnx").helper.make_attribute("alpha", [1, 2, 3])))),
    # a convolution whose bias is computed, not a constant: AttributeError
    "onnx-conv-computed-bias": ("onnx", lambda: _onnx_changed(
        lambda m: [n for n in m.graph.node if n.op_type == "Conv"][1].input.__setitem__(
            2, next(n for n in m.graph.node if n.op_type == "AveragePool").output[0]))),
    # an attribute name that is not UTF-8: TypeError joining names for the message
    "onnx-attribute-not-utf8": ("onnx", _onnx_attribute_not_utf8),
    # an integer beyond the float range where a number goes: OverflowError in math.isfinite
    "table-json-eps-1e400": ("table-json", lambda: _table()["json"].replace('"eps": 0.01', '"eps": 1' + "0" * 400).encode()),
    "coverage-json-delta-1e400": ("coverage-json", lambda: _coverage()["json"].replace(
        '"C_confidence": 0.95', '"C_confidence": ' + "9" * 400).encode()),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_escapes_found_by_fuzzing_stay_fixed(case: str) -> None:
    """Each of these once escaped as a non-``LtboundsError`` or a multi-line message."""
    name, content = REGRESSIONS[case]
    loader = next(loader for loader in LOADERS if loader.name == name)
    data = content()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / next(iter(loader.files()))
        for other, companion in list(loader.files().items())[1:]:
            (Path(folder) / other).write_bytes(companion)
        path.write_bytes(data)
        with pytest.raises(LtboundsError) as caught:
            loader.load(path)
    assert "\n" not in str(caught.value).strip(), str(caught.value)


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


@pytest.mark.parametrize("loader", [loader for loader in LOADERS if loader.name.startswith(("table", "coverage"))],
                         ids=lambda loader: loader.name)
def test_a_table_or_coverage_file_of_a_newer_version_is_refused_by_name(loader: Loader) -> None:
    name, data = next(iter(loader.files().items()))
    text = data.decode()
    if loader.kind == "json":
        text = text.replace('"format_version": 1', '"format_version": 2')
    else:
        text = text.replace("-table,1\n", "-table,2\n").replace("-coverage,1\r\n", "-coverage,2\r\n")
    assert text != data.decode()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(text.encode())
        with pytest.raises(LtboundsError, match=r"format_version=2; this ltbounds reads format_version 1"):
            loader.load(path)
